/**
 * Retention: how long each table that grows keeps its rows, in one table, enforced by the periodic
 * purge (container.purgeStale, every 10 minutes in each server process), by `flokie purge` on
 * demand, and listed by `flokie check`. docs/deployment.md ("Retention") is this table in prose.
 * Rows are deleted only once they can no longer matter to a rule (a revoked token past its expiry,
 * a login counter whose window and lock are over) or once the operator's retention setting says so.
 */
import { purgeStaleLoginAttempts } from '../auth/lockout.js';
import { purgeExpiredRevocations } from '../auth/revocation.js';
import type { Kysely } from 'kysely';
import type { Config } from '../../config/index.js';
import type { SettingKey } from '../../config/settings.js';
import type { Database } from '../../db/types.js';

const DAY = 86_400_000;
/** Expired one-time links are kept a day, so a late click reads "expired" rather than "invalid". */
const ONE_TIME_TOKEN_GRACE_MS = DAY;
/**
 * Other processes read the change log for CACHE_SYNC_INTERVAL_MS plus an overlap; an hour is plenty
 * (src/state/change-feed.ts).
 */
export const CHANGE_LOG_RETENTION_MS = 3_600_000;

export interface RetentionPolicy {
  table: string;
  /** The setting that decides it, when an operator can choose. */
  setting?: SettingKey;
  /** What is kept, in words, for `flokie check` and `flokie purge`. */
  describe(config: Config): string;
  /** Deletes what the policy no longer keeps; returns how many rows went. */
  purge(db: Kysely<Database>, config: Config, now: number): Promise<number>;
}

const deleted = (result: { numDeletedRows: bigint }) => Number(result.numDeletedRows);

export const RETENTION: RetentionPolicy[] = [
  {
    table: 'security_events',
    setting: 'SECURITY_EVENT_RETENTION_DAYS',
    describe: (c) => `${c.SECURITY_EVENT_RETENTION_DAYS} days`,
    purge: async (db, c, now) =>
      deleted(
        await db
          .deleteFrom('security_events')
          .where('created_at', '<', now - c.SECURITY_EVENT_RETENTION_DAYS * DAY)
          .executeTakeFirst(),
      ),
  },
  {
    table: 'sessions',
    setting: 'SESSION_RETENTION_DAYS',
    describe: (c) => `${c.SESSION_RETENTION_DAYS} days after a session expired or was revoked`,
    purge: async (db, c, now) => {
      const cutoff = now - c.SESSION_RETENTION_DAYS * DAY;
      return deleted(
        await db
          .deleteFrom('sessions')
          .where((eb) => eb.or([eb('expires_at', '<', cutoff), eb('revoked_at', '<', cutoff)]))
          .executeTakeFirst(),
      );
    },
  },
  {
    table: 'revoked_tokens',
    describe: () => 'until the revoked token would have expired (then it fails verification anyway)',
    purge: (db, _c, now) => purgeExpiredRevocations(db, now),
  },
  {
    table: 'login_attempts',
    setting: 'ACCOUNT_LOCKOUT_DURATION',
    describe: (c) =>
      `until the counting window and any lock are over (${c.ACCOUNT_LOCKOUT_DURATION} min); in-flight slots when ` +
      `their lease ends`,
    // The lockout owns its tables (counters and in-flight slots) and how they expire.
    purge: (db, c, now) => purgeStaleLoginAttempts(db, c.ACCOUNT_LOCKOUT_DURATION * 60_000, now),
  },
  {
    table: 'one_time_tokens',
    describe: () => '1 day after the link expired',
    purge: async (db, _c, now) =>
      deleted(
        await db
          .deleteFrom('one_time_tokens')
          .where('expires_at', '<', now - ONE_TIME_TOKEN_GRACE_MS)
          .executeTakeFirst(),
      ),
  },
  {
    table: 'alert_outbox',
    setting: 'ALERT_OUTBOX_RETENTION_DAYS',
    describe: (c) => `${c.ALERT_OUTBOX_RETENTION_DAYS} days after delivery or giving up (undelivered alerts are kept)`,
    purge: async (db, c, now) => {
      const cutoff = now - c.ALERT_OUTBOX_RETENTION_DAYS * DAY;
      return deleted(
        await db
          .deleteFrom('alert_outbox')
          .where((eb) => eb.or([eb('delivered_at', '<', cutoff), eb('given_up_at', '<', cutoff)]))
          .executeTakeFirst(),
      );
    },
  },
  {
    table: 'change_log',
    describe: () => '1 hour (only other processes catching up read it)',
    purge: async (db, _c, now) =>
      deleted(
        await db
          .deleteFrom('change_log')
          .where('created_at', '<', now - CHANGE_LOG_RETENTION_MS)
          .executeTakeFirst(),
      ),
  },
  {
    table: 'users (deactivated)',
    setting: 'DEACTIVATED_USER_RETENTION_DAYS',
    describe: (c) =>
      c.DEACTIVATED_USER_RETENTION_DAYS === 0
        ? 'forever (0 = keep)'
        : `${c.DEACTIVATED_USER_RETENTION_DAYS} days after the last change to a deactivated account (its sessions, ` +
          `links and password history go with it)`,
    purge: async (db, c, now) => {
      if (c.DEACTIVATED_USER_RETENTION_DAYS === 0) return 0;
      // updated_at of a deactivated account is its deactivation or a later admin change: it only ever keeps a row
      // longer.
      return deleted(
        await db
          .deleteFrom('users')
          .where('is_active', '=', 0)
          .where('updated_at', '<', now - c.DEACTIVATED_USER_RETENTION_DAYS * DAY)
          .executeTakeFirst(),
      );
    },
  },
];

/** Runs every policy; one failing table does not stop the others. Returns rows deleted per table. */
export async function purgeByRetention(
  db: Kysely<Database>,
  config: Config,
  now = Date.now(),
): Promise<{ deleted: Record<string, number>; errors: Record<string, unknown> }> {
  const result: Record<string, number> = {};
  const errors: Record<string, unknown> = {};
  for (const policy of RETENTION) {
    try {
      result[policy.table] = await policy.purge(db, config, now);
    } catch (error) {
      errors[policy.table] = error;
    }
  }
  return { deleted: result, errors };
}
