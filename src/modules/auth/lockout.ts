/**
 * Account lockout: the one place that counts failed logins per account.
 *
 * An attempt is *reserved* before the password is checked: the counter is incremented in the
 * database first, and a request whose increment passes MAX_LOGIN_ATTEMPTS is refused without
 * checking the password. So 50 concurrent guesses get at most MAX_LOGIN_ATTEMPTS password checks,
 * on every database and across every instance. A successful login clears the counter.
 *
 * Unknown login names are counted under their own key exactly like accounts, so lockout answers
 * the same whether or not the account exists.
 */
import type { Kysely } from 'kysely';
import type { Database } from '../../db/types.js';

export interface LockoutSettings {
  maxAttempts: number;
  lockoutMs: number;
}

export type Reservation = { allowed: true; failures: number } | { allowed: false; retryAfterSeconds: number };

export const lockoutKey = (user: { id: string } | undefined, login: string) => (user ? `user:${user.id}` : `name:${login.trim().toLowerCase().slice(0, 250)}`);

export class Lockout {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly settings: LockoutSettings,
  ) {}

  /** Counts this attempt before the password is checked. */
  async reserve(key: string): Promise<Reservation> {
    const now = Date.now();
    const { maxAttempts, lockoutMs } = this.settings;
    // Make sure the row exists (outside the transaction: a duplicate-key error would abort it on PostgreSQL).
    const existing = await this.db.selectFrom('login_attempts').select('key').where('key', '=', key).executeTakeFirst();
    if (!existing) {
      try {
        await this.db.insertInto('login_attempts').values({ key, failures: 0, window_started_at: now, locked_until: null }).execute();
      } catch {
        /* inserted concurrently by another request: fine, the UPDATE below serialises us */
      }
    }
    return this.db.transaction().execute(async (trx) => {
      // Atomic increment; a window older than the lockout period starts over.
      await trx
        .updateTable('login_attempts')
        .set((eb) => ({
          failures: eb.case().when('window_started_at', '<', now - lockoutMs).then(1).else(eb('failures', '+', 1)).end(),
          window_started_at: eb.case().when('window_started_at', '<', now - lockoutMs).then(now).else(eb.ref('window_started_at')).end(),
        }))
        .where('key', '=', key)
        .where((eb) => eb.or([eb('locked_until', 'is', null), eb('locked_until', '<=', now)]))
        .execute();
      const row = await trx.selectFrom('login_attempts').selectAll().where('key', '=', key).executeTakeFirstOrThrow();
      if (row.locked_until !== null && row.locked_until > now) {
        return { allowed: false, retryAfterSeconds: (row.locked_until - now) / 1000 };
      }
      if (row.failures > maxAttempts) {
        // Past the limit without a recorded lock (a lock that expired, or concurrent attempts): lock now.
        const lockedUntil = now + lockoutMs;
        await trx.updateTable('login_attempts').set({ locked_until: lockedUntil, failures: maxAttempts, window_started_at: now }).where('key', '=', key).execute();
        return { allowed: false, retryAfterSeconds: lockoutMs / 1000 };
      }
      return { allowed: true, failures: row.failures };
    });
  }

  /** After a wrong password: locks the account when this was the last allowed attempt. Returns true if now locked. */
  async recordFailure(key: string, failures: number): Promise<boolean> {
    if (failures < this.settings.maxAttempts) return false;
    await this.db
      .updateTable('login_attempts')
      .set({ locked_until: Date.now() + this.settings.lockoutMs })
      .where('key', '=', key)
      .execute();
    return true;
  }

  /** After a successful login, or an admin unlock. */
  async clear(key: string): Promise<void> {
    await this.db.deleteFrom('login_attempts').where('key', '=', key).execute();
  }

  async lockedUntil(key: string): Promise<number | null> {
    const row = await this.db.selectFrom('login_attempts').select('locked_until').where('key', '=', key).executeTakeFirst();
    return row?.locked_until && row.locked_until > Date.now() ? row.locked_until : null;
  }
}

/** Drops counters whose window and lock are both over, so random login names cannot grow the table. */
export async function purgeStaleLoginAttempts(db: Kysely<Database>, lockoutMs: number): Promise<void> {
  const now = Date.now();
  await db
    .deleteFrom('login_attempts')
    .where('window_started_at', '<', now - lockoutMs)
    .where((eb) => eb.or([eb('locked_until', 'is', null), eb('locked_until', '<', now)]))
    .execute();
}
