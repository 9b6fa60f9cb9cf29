/**
 * Builds every service from the config, once, for the HTTP app and the CLI alike, so both work
 * on the same database, caches and rules. Nothing here knows about HTTP.
 */
import type { Logger } from 'pino';
import type { Config } from './config/index.js';
import { databaseTimeouts, openDatabase, type DatabaseHandle } from './db/index.js';
import { migrateToLatest } from './db/migrator.js';
import { createLogger } from './logging.js';
import { MailLinks } from './mail/links.js';
import { Mailer } from './mail/mailer.js';
import { AuthService } from './modules/auth/auth-service.js';
import { Lockout } from './modules/auth/lockout.js';
import { EmailChanges } from './modules/auth/email-change.js';
import { OneTimeTokens } from './modules/auth/one-time-tokens.js';
import { PasswordHasher } from './modules/auth/password-hasher.js';
import { PasswordPolicy } from './modules/auth/password-policy.js';
import { WorkerStrengthEstimator } from './modules/auth/password-strength.js';
import { SessionStore } from './modules/auth/sessions.js';
import { Revocation } from './modules/auth/revocation.js';
import { TokenGuard } from './modules/auth/token-guard.js';
import { TokenService } from './modules/auth/tokens.js';
import { SecurityEvents } from './modules/security/events.js';
import { AdminService } from './modules/users/admin-service.js';
import { UserQueries } from './modules/users/user-queries.js';
import { UsersService } from './modules/users/users-service.js';
import { ProfileService } from './modules/users/profile-service.js';
import { UserRepository } from './modules/users/user-repository.js';
import { IntrusionDetector } from './modules/security/intrusion.js';
import { ChangeFeed, combineBuses } from './state/change-feed.js';
import { clusterWorkerBus } from './state/cluster-bus.js';
import { Alerts } from './modules/alerts/alerts.js';
import { purgeByRetention } from './modules/retention/retention.js';
import { createRedis, RedisChangeBus, type RedisClient } from './state/redis.js';

export interface ContainerOptions {
  log?: Logger;
  /** Run pending migrations before use (default: config.AUTO_MIGRATE). */
  migrate?: boolean;
}

export async function createContainer(config: Config, options: ContainerOptions = {}) {
  const log = options.log ?? createLogger(config.LOG_LEVEL, { bufferBytes: config.LOG_BUFFER_BYTES });
  const database: DatabaseHandle = openDatabase({
    url: config.DATABASE_URL,
    poolSize: config.DATABASE_POOL_SIZE,
    sslCaFile: config.DATABASE_SSL_CA_FILE || undefined,
    timeouts: databaseTimeouts(config),
    log,
  });
  const { db } = database;
  if (options.migrate ?? config.AUTO_MIGRATE) await database.withoutStatementTimeout(migrateToLatest);

  const background = new Set<Promise<unknown>>();
  const track = (task: Promise<unknown>) => {
    background.add(task);
    void task.finally(() => background.delete(task));
  };

  /** Shared Redis client when REDIS_URL is set (rate limits, counters, change bus); null on the embedded default. */
  const redis: RedisClient | null = config.REDIS_URL
    ? createRedis(config.REDIS_URL, log, 'redis', config.REDIS_COMMAND_TIMEOUT_MS)
    : null;
  const bus = redis ? new RedisChangeBus(config.REDIS_URL, redis, `${config.REDIS_KEY_PREFIX}changes`, log) : undefined;
  const changes = new ChangeFeed(db, config.CACHE_SYNC_INTERVAL_MS, combineBuses(bus, clusterWorkerBus()), (error) =>
    log.warn({ err: error }, 'change feed failed'),
  );
  const users = new UserRepository(db);
  const hasher = new PasswordHasher(config.PASSWORD_HASHER, config.BCRYPT_ROUNDS, config.PASSWORD_HASH_CONCURRENCY);
  const policy = new PasswordPolicy(
    config,
    new WorkerStrengthEstimator(config.PASSWORD_STRENGTH_WORKERS, (error) =>
      log.error({ err: error }, 'password strength worker failed'),
    ),
  );
  const tokens = new TokenService({
    secret: config.JWT_SECRET_KEY,
    issuer: config.JWT_ISSUER,
    audience: config.JWT_AUDIENCE,
    accessTtlSeconds: Math.round(config.JWT_ACCESS_TOKEN_EXPIRES_HOURS * 3600),
    refreshTtlSeconds: Math.round(config.JWT_REFRESH_TOKEN_EXPIRES_DAYS * 86400),
  });
  const sessions = new SessionStore(
    db,
    changes,
    config.SESSION_MAX_LIFETIME_DAYS * 86_400_000,
    config.REFRESH_REUSE_GRACE_SECONDS * 1000,
  );
  const tokenGuard = new TokenGuard(db, tokens, changes);
  const oneTimeTokens = new OneTimeTokens(db);
  const events = new SecurityEvents(db, log);
  const lockout = new Lockout(
    db,
    {
      maxAttempts: config.MAX_LOGIN_ATTEMPTS,
      lockoutMs: config.ACCOUNT_LOCKOUT_DURATION * 60_000,
      mode: config.LOCKOUT_MODE,
      queueTimeoutMs: config.LOGIN_QUEUE_TIMEOUT * 1000,
      secretKey: config.SECRET_KEY,
    },
    events,
  );
  const links = new MailLinks(config);
  const mailer = new Mailer(
    { smtpUrl: config.SMTP_URL || undefined, from: config.MAIL_FROM, outboxDir: config.MAIL_OUTBOX_DIR },
    (error, message) => log.error({ err: error, to: message.to, subject: message.subject }, 'could not send mail'),
  );
  const usersService = new UsersService({ config, db, users, hasher, policy, changes });
  const revocation = new Revocation({ config, db, users, sessions, changes, events });
  const auth = new AuthService({
    config,
    users,
    usersService,
    hasher,
    lockout,
    tokens,
    sessions,
    revocation,
    oneTimeTokens,
    mailer,
    links,
    events,
    track,
    log,
  });
  const emailChanges = new EmailChanges({
    config,
    users,
    usersService,
    oneTimeTokens,
    sessions,
    tokenGuard,
    mailer,
    links,
    events,
    track,
    log,
  });
  const profile = new ProfileService({ users, usersService, auth, emailChanges });
  const userQueries = new UserQueries({ config, db, users, lockout });
  const admin = new AdminService({
    config,
    users,
    usersService,
    queries: userQueries,
    lockout,
    sessions,
    events,
    auth,
    oneTimeTokens,
    emailChanges,
  });
  /** Brute force / credential stuffing / distributed attack detection, fed by login_failure events. */
  const intrusion = new IntrusionDetector(config, redis, events, log);
  /** Critical events to ALERT_WEBHOOK_URL / ALERT_EMAIL_TO through the alert_outbox table (src/modules/alerts/). */
  const alerts = new Alerts(db, config, mailer, events, log);

  /**
   * Periodic clean-up: every table that grows keeps rows only as long as src/modules/retention/
   * says. Returns rows deleted per table (`flokie purge` prints them); a table that failed is logged.
   */
  async function purgeStale(): Promise<Record<string, number>> {
    const { deleted, errors } = await purgeByRetention(db, config);
    for (const [table, error] of Object.entries(errors)) log.warn({ err: error, table }, 'retention purge failed');
    const users = deleted['users (deactivated)'] ?? 0;
    if (users > 0)
      events.emit({
        type: 'admin_action',
        message: `retention: deleted ${users} deactivated account(s)`,
        details: {
          action: 'retention_delete_users',
          count: users,
          via: 'retention',
          days: config.DEACTIVATED_USER_RETENTION_DAYS,
        },
      });
    return deleted;
  }

  let maintenance: NodeJS.Timeout | undefined;
  let started = false;
  return {
    config,
    log,
    database,
    db,
    redis,
    changes,
    users,
    usersService,
    userQueries,
    hasher,
    policy,
    lockout,
    tokens,
    sessions,
    revocation,
    tokenGuard,
    oneTimeTokens,
    events,
    mailer,
    auth,
    emailChanges,
    profile,
    admin,
    intrusion,
    alerts,
    track,
    purgeStale,
    /** Starts the background loops a long-running server needs (the CLI does not). */
    async start(): Promise<void> {
      if (started) return;
      started = true;
      await changes.start();
      alerts.start();
      maintenance = setInterval(
        () => void purgeStale().catch((error: unknown) => log.warn({ err: error }, 'maintenance failed')),
        10 * 60_000,
      );
      maintenance.unref();
    },
    /** Waits for background work, flushes events and mail, closes the database. */
    async close(): Promise<void> {
      if (maintenance) clearInterval(maintenance);
      await changes.stop();
      await Promise.allSettled([...background]);
      // Counting in flight may still raise an alert: let it, then stop listening.
      await intrusion.settle();
      intrusion.close();
      await alerts.close();
      await events.close();
      await mailer.close();
      await policy.close();
      redis?.disconnect();
      await database.close();
    },
  };
}

export type Container = Awaited<ReturnType<typeof createContainer>>;
