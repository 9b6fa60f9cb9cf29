/**
 * The guide's pre-deployment security checklist as code (`flokie check`). It inspects the
 * configuration and environment the service would run with and rates each item pass / warn / fail.
 * Items marked `critical` are the ones `npm start` in production refuses to start on
 * (src/server.ts); the rest are advice a deployment should follow.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse as parseDotenv } from 'dotenv';
import { secretProblem, type Config, type ConfigProblem } from '../config/index.js';
import { dialectOf } from '../db/index.js';
import { operationsChecks } from './operations-checks.js';

export type Status = 'pass' | 'warn' | 'fail';

export interface CheckResult {
  id: string;
  title: string;
  status: Status;
  detail: string;
  /** A failure here stops a production start. */
  critical: boolean;
}

export interface CheckOptions {
  /** Folder of the deployment (.env, git checkout); default the working directory. */
  cwd?: string;
  /** The raw environment (to tell a configured secret from a development-generated one). */
  env?: NodeJS.ProcessEnv;
  /** Skip the checks that run git (production start: the image may have no git). */
  skipGit?: boolean;
}

const LOCAL_HOSTS = new Set(['localhost', '127.0.0.1', '::1', '[::1]', '']);

/** A setting's value as written in the environment or .env, before development defaults fill it. */
function rawValue(name: string, options: CheckOptions): string {
  const env = options.env ?? process.env;
  if (env[name] !== undefined) return env[name]!;
  const file = resolve(options.cwd ?? process.cwd(), '.env');
  // eslint-disable-next-line security/detect-non-literal-fs-filename -- the deployment's own .env, as loadConfig
  if (!existsSync(file)) return '';
  // eslint-disable-next-line security/detect-non-literal-fs-filename -- idem
  return parseDotenv(readFileSync(file))[name] ?? '';
}

function git(args: string[], cwd: string): { status: number | null; stdout: string } {
  const result = spawnSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  return { status: result.error ? null : result.status, stdout: result.stdout ?? '' };
}

export function runChecks(config: Config, options: CheckOptions = {}): CheckResult[] {
  const cwd = options.cwd ?? process.cwd();
  const results: CheckResult[] = [];
  const add = (id: string, title: string, status: Status, detail: string, critical = false) =>
    results.push({ id, title, status, detail, critical });

  // Secrets management
  for (const key of ['SECRET_KEY', 'JWT_SECRET_KEY'] as const) {
    const raw = rawValue(key, options);
    const problem = raw
      ? secretProblem(raw)
      : 'is not set (development generates one; production refuses to start without it)';
    add(
      `secret.${key}`,
      `${key} is strong`,
      problem ? 'fail' : 'pass',
      problem ? `${key} ${problem}; run \`flokie secrets generate\`` : `${Buffer.byteLength(raw)} bytes`,
      true,
    );
  }
  const healthToken = rawValue('HEALTH_TOKEN', options);
  const healthProblem = healthToken ? secretProblem(healthToken) : null;
  add(
    'secret.HEALTH_TOKEN',
    'HEALTH_TOKEN is strong',
    healthProblem ? 'fail' : 'pass',
    healthProblem
      ? `HEALTH_TOKEN ${healthProblem}; run \`flokie secrets generate\``
      : healthToken
        ? `${Buffer.byteLength(healthToken)} bytes`
        : 'not set: the operator health views open to admin tokens only',
    true,
  );
  const secret = rawValue('SECRET_KEY', options);
  const jwtSecret = rawValue('JWT_SECRET_KEY', options);
  const dbPassword = (() => {
    try {
      return decodeURIComponent(new URL(config.DATABASE_URL).password);
    } catch {
      return '';
    }
  })();
  const same =
    secret && secret === jwtSecret
      ? 'SECRET_KEY equals JWT_SECRET_KEY'
      : dbPassword && (dbPassword === secret || dbPassword === jwtSecret)
        ? 'the database password equals an application secret'
        : '';
  add(
    'secret.unique',
    'Secrets are unique',
    same ? 'fail' : 'pass',
    same || 'SECRET_KEY, JWT_SECRET_KEY and the database password all differ',
    true,
  );

  if (!options.skipGit) {
    const inRepo = git(['rev-parse', '--is-inside-work-tree'], cwd);
    if (inRepo.status !== 0) {
      add(
        'git.ignore',
        'Secrets are not in version control',
        'warn',
        'not a git checkout (or git is missing): cannot check that .env and *.key are ignored',
      );
    } else {
      const problems: string[] = [];
      if (git(['check-ignore', '-q', '.env'], cwd).status !== 0) problems.push('.env is not ignored by git');
      if (git(['check-ignore', '-q', '--no-index', 'flokie-check-probe.key'], cwd).status !== 0)
        problems.push('*.key files are not ignored by git');
      const tracked = git(['ls-files', '--', '.env', '*.key', '**/*.key', '*.pem', '**/*.pem'], cwd).stdout.trim();
      if (tracked) problems.push(`committed secret files: ${tracked.split('\n').slice(0, 5).join(', ')}`);
      add(
        'git.ignore',
        'Secrets are not in version control',
        problems.length ? 'fail' : 'pass',
        problems.join('; ') || '.env and *.key are ignored, none committed',
      );
    }
  }

  // Authentication
  const accessHours = config.JWT_ACCESS_TOKEN_EXPIRES_HOURS;
  add(
    'tokens.access',
    'Access token lifetime',
    accessHours > 1 ? 'warn' : 'pass',
    `${accessHours} h${accessHours > 1 ? ' (1 hour or less is advised)' : ''}`,
  );
  const refreshDays = config.JWT_REFRESH_TOKEN_EXPIRES_DAYS;
  add(
    'tokens.refresh',
    'Refresh token lifetime',
    refreshDays > 30 ? 'warn' : 'pass',
    `${refreshDays} days${refreshDays > 30 ? ' (30 days or less is advised)' : ''}`,
  );
  const policyIssues: string[] = [];
  if (config.MIN_PASSWORD_LENGTH < 8) policyIssues.push(`MIN_PASSWORD_LENGTH ${config.MIN_PASSWORD_LENGTH} < 8`);
  if (config.PASSWORD_MIN_SCORE < 2) policyIssues.push(`PASSWORD_MIN_SCORE ${config.PASSWORD_MIN_SCORE} < 2`);
  if (config.MAX_LOGIN_ATTEMPTS > 10) policyIssues.push(`MAX_LOGIN_ATTEMPTS ${config.MAX_LOGIN_ATTEMPTS} > 10`);
  add(
    'passwords.policy',
    'Password policy is enforced',
    config.MIN_PASSWORD_LENGTH < 8 ? 'fail' : policyIssues.length ? 'warn' : 'pass',
    policyIssues.join('; ') ||
      `min length ${config.MIN_PASSWORD_LENGTH}, strength score ≥ ${config.PASSWORD_MIN_SCORE}, lockout after ` +
        `${config.MAX_LOGIN_ATTEMPTS} failures`,
  );

  // Database security
  const dialect = dialectOf(config.DATABASE_URL);
  if (dialect === 'sqlite') {
    add(
      'database.tls',
      'Database connections use TLS',
      config.isProduction ? 'warn' : 'pass',
      'SQLite: a local file, no network connection (one instance only; use PostgreSQL for several)',
      true,
    );
  } else {
    const url = new URL(config.DATABASE_URL);
    const local = LOCAL_HOSTS.has(url.hostname) || url.searchParams.get('host')?.startsWith('/') === true;
    const tls =
      dialect === 'postgres'
        ? ['require', 'verify-ca', 'verify-full'].includes(url.searchParams.get('sslmode') ?? '')
        : ['true', 'required', 'require'].includes(url.searchParams.get('ssl') ?? '');
    const how = dialect === 'postgres' ? 'sslmode=require (or verify-full)' : 'ssl=true';
    add(
      'database.tls',
      'Database connections use TLS',
      tls ? 'pass' : local ? 'warn' : 'fail',
      tls
        ? 'TLS required'
        : local
          ? `local database without TLS; add ${how} if traffic leaves the host`
          : `remote database ${url.hostname} without TLS: add ${how} to DATABASE_URL`,
      true,
    );
    const pw = url.password ? decodeURIComponent(url.password) : '';
    add(
      'database.credentials',
      'Database credentials are secure',
      !pw ? (local ? 'warn' : 'fail') : pw.length < 16 ? 'warn' : 'pass',
      !pw
        ? 'no password in DATABASE_URL'
        : pw.length < 16
          ? 'database password shorter than 16 characters (`flokie secrets generate` makes one)'
          : 'password set',
    );
  }

  // Network security
  const https = Boolean(config.TLS_CERT_FILE) || config.FORCE_HTTPS || config.TRUSTED_PROXIES.length > 0;
  const publicHttp = config.PUBLIC_URL.startsWith('http://');
  add(
    'network.https',
    'HTTPS is enforced',
    publicHttp && config.isProduction ? 'fail' : https ? 'pass' : 'warn',
    publicHttp && config.isProduction
      ? 'PUBLIC_URL is http://: links in e-mails would go out unencrypted'
      : https
        ? config.TLS_CERT_FILE
          ? 'TLS served directly'
          : config.FORCE_HTTPS
            ? 'plain HTTP redirected to HTTPS'
            : 'TLS terminated by a trusted proxy'
        : 'no TLS_CERT_FILE, FORCE_HTTPS or TRUSTED_PROXIES: make sure a proxy terminates TLS',
  );
  // Where it is sent is plugins/external/security-headers.ts's rule: every answer in production,
  // HTTPS requests elsewhere.
  const hstsWhere = config.isProduction
    ? 'on every answer'
    : `on HTTPS requests only (NODE_ENV=${config.NODE_ENV}; production sends it on every answer)`;
  add(
    'network.hsts',
    'HSTS is sent',
    config.HSTS_MAX_AGE === 0 ? 'fail' : config.HSTS_MAX_AGE < 15_552_000 ? 'warn' : 'pass',
    config.HSTS_MAX_AGE === 0
      ? 'HSTS_MAX_AGE=0: never sent'
      : `max-age=${config.HSTS_MAX_AGE}${config.HSTS_MAX_AGE < 15_552_000 ? ' (use at least 6 months)' : ''}, ` +
          `${hstsWhere}`,
    true,
  );
  const wildcard = config.CORS_ORIGINS.includes('*');
  const plainOrigins = config.CORS_ORIGINS.filter(
    (o) => o.startsWith('http://') && !/^http:\/\/(localhost|127\.0\.0\.1)(:|$)/.test(o),
  );
  add(
    'network.cors',
    'CORS is restricted',
    wildcard ? 'fail' : plainOrigins.length ? 'warn' : 'pass',
    wildcard
      ? 'CORS_ORIGINS contains "*"'
      : plainOrigins.length
        ? `plain-HTTP origins allowed: ${plainOrigins.join(', ')}`
        : config.CORS_ORIGINS.length
          ? `allowed: ${config.CORS_ORIGINS.join(', ')}`
          : 'no cross-origin access',
    true,
  );
  add(
    'network.csrf',
    'CSRF protection is on',
    config.WTF_CSRF_ENABLED ? 'pass' : 'fail',
    config.WTF_CSRF_ENABLED ? 'X-CSRF-Token required in cookie mode' : 'WTF_CSRF_ENABLED=false',
    true,
  );

  // Input validation / abuse
  const login = config.RATE_LIMITS['auth.login'];
  const loginPerMinute = login ? (login.points * 60) / login.durationSeconds : Infinity;
  add(
    'ratelimit.enabled',
    'Rate limits are on',
    !config.RATE_LIMIT_ENABLED ? 'fail' : loginPerMinute > 20 ? 'warn' : 'pass',
    !config.RATE_LIMIT_ENABLED
      ? 'RATE_LIMIT_ENABLED=false'
      : `login ${login?.text}${loginPerMinute > 20 ? ' (loose: over 20 per minute)' : ''}, default ` +
          `${config.RATE_LIMITS.default?.text}`,
    true,
  );
  if (config.WEB_CONCURRENCY > 1 && !config.REDIS_URL)
    add(
      'ratelimit.shared',
      'Counters are shared between workers',
      'warn',
      'WEB_CONCURRENCY > 1 without REDIS_URL: limits and brute-force counters are per process',
    );

  // Monitoring
  add(
    'logging.level',
    'Security logging is enabled',
    config.LOG_LEVEL === 'silent' || config.LOG_LEVEL === 'fatal'
      ? 'fail'
      : ['debug', 'trace'].includes(config.LOG_LEVEL)
        ? 'warn'
        : 'pass',
    `LOG_LEVEL=${config.LOG_LEVEL}` +
      `${['debug', 'trace'].includes(config.LOG_LEVEL) ? ' (verbose; use info in production)' : ''}`,
  );
  let sentry: [Status, string] = ['warn', 'SENTRY_DSN is not set: errors and critical security events are only logged'];
  if (config.SENTRY_DSN) {
    try {
      const dsn = new URL(config.SENTRY_DSN);
      sentry =
        dsn.username && /^https?:$/.test(dsn.protocol)
          ? ['pass', `reporting to ${dsn.hostname}`]
          : ['fail', 'SENTRY_DSN is not a DSN like https://key@host/project'];
    } catch {
      sentry = ['fail', 'SENTRY_DSN is not a valid URL'];
    }
  }
  add('monitoring.sentry', 'Error monitoring is configured', sentry[0], sentry[1]);
  add(
    'monitoring.intrusion',
    'Intrusion detection is active',
    config.BRUTE_FORCE_ALERT_THRESHOLD > 100 ? 'warn' : 'pass',
    `alert after ${config.BRUTE_FORCE_ALERT_THRESHOLD} failed logins per IP per ` +
      `hour${config.BRUTE_FORCE_BLOCK_MINUTES ? `, block ${config.BRUTE_FORCE_BLOCK_MINUTES} min` : ''}`,
  );
  add(
    'debug.off',
    'Debug mode is off',
    config.NODE_ENV !== 'production' ? 'fail' : config.DOCS_ENABLED ? 'warn' : 'pass',
    config.NODE_ENV !== 'production'
      ? `NODE_ENV=${config.NODE_ENV} (development conveniences on: generated secrets, HSTS only over HTTPS, ` +
          `operator health views open)`
      : config.DOCS_ENABLED
        ? 'API docs are served (DOCS_ENABLED=true); fine if intended'
        : 'NODE_ENV=production',
  );
  // Operations: alerts, metrics, backups, retention (src/cli/operations-checks.ts).
  results.push(...operationsChecks(config));

  return results;
}

/**
 * The whole checklist for a configuration read by inspectConfig: each setting it could not accept
 * is one FAIL item (`config.<VARIABLE>`), unless a checklist item already reports that rule; the
 * other items are rated with that setting's default in its place.
 */
export function runChecklist(
  inspection: { config: Config; problems: ConfigProblem[] },
  options: CheckOptions & { criticalOnly?: boolean } = {},
): CheckResult[] {
  const results = options.criticalOnly
    ? criticalFailures(inspection.config, options)
    : runChecks(inspection.config, options);
  // The rules that carry a `check` id are items that fail whenever the rule does, so they are in `results` too.
  const reported = new Set(results.map((r) => r.id));
  const invalid = inspection.problems
    .filter((p) => !(p.check && reported.has(p.check)))
    .map((p): CheckResult => ({
      id: `config.${p.setting}`,
      title: `${p.setting} is valid`,
      status: 'fail',
      detail: `${p.message} (the service refuses to start; other items use its default)`,
      critical: true,
    }));
  return [...invalid, ...results];
}

/** The failures that stop a production start. */
export function criticalFailures(config: Config, options: CheckOptions = {}): CheckResult[] {
  return runChecks(config, { ...options, skipGit: true }).filter((r) => r.critical && r.status === 'fail');
}

export function formatResult(r: CheckResult): string {
  return `${r.status.toUpperCase().padEnd(4)}  ${r.title}: ${r.detail}`;
}
