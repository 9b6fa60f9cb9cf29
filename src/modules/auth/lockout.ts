/**
 * Lockout: the one place that counts password guesses, decides which counter a guess is charged
 * to, caps the guesses in flight, and locks (docs/security.md "Lockout").
 *
 * Counters (rows of `login_attempts`, keyed as in src/db/types.ts):
 * - LOCKOUT_MODE=device (default), after OWASP's "device cookies": a guess that carries a valid
 *   device credential of that very user (device-credentials.ts) counts against that device only
 *   (`device:<user>:<nonce>`), and MAX_LOGIN_ATTEMPTS failures deny-list that credential; every
 *   other guess counts against the account's untrusted-device counter (`user:<id>`), whose lock
 *   stops only clients without a trusted credential. So an attacker cannot lock the owner out of
 *   a device the owner has logged in from, and a stolen credential buys one device's worth.
 * - LOCKOUT_MODE=account: every guess counts against `user:<id>` and its lock stops everyone.
 * - Unknown login names count under `name:<login>` exactly like an account without a device
 *   credential, so no answer tells whether an account exists.
 * - `admin:<id>`: a lock an administrator set (`flokie users lock`, POST /api/users/{id}/lock);
 *   it stops every device, trusted or not, until it ends or `unlock` clears every lock.
 *
 * In flight versus failed: before a password is checked the attempt takes a slot on its counter
 * (a `login_reservations` row with a lease), and a slot is given only while failures + attempts
 * in flight < MAX_LOGIN_ATTEMPTS. So 50 concurrent guesses still get at most MAX_LOGIN_ATTEMPTS
 * password checks per counter, on every database and across instances, but an attempt in flight
 * is never mistaken for a failure: an attempt that finds every slot taken waits (woken in-process
 * when a slot frees, polling the database for other instances) up to LOGIN_QUEUE_TIMEOUT, then
 * gets 429; only a counter that really is locked answers 423. A failure is counted and its slot
 * freed in one transaction, so no waiter can slip in between. A slot whose process died frees
 * itself when its lease (RESERVATION_LEASE_MS) ends.
 *
 * The same counters serve re-authentication (current password on password and e-mail change).
 */
import { LoginNames } from './login-name.js';
import { randomUUID } from 'node:crypto';
import { sql, type ExpressionBuilder, type Kysely, type SqlBool } from 'kysely';
import { withConflictRetry } from '../../db/index.js';
import type { Database } from '../../db/types.js';
import { lockedError, rateLimited } from '../../core/errors.js';
import type { SecurityEvents } from '../security/events.js';
import type { UserRow } from '../users/user-view.js';
import { DeviceCredentials, type DeviceIdentity } from './device-credentials.js';
import type { RequestContext } from '../../core/request-context.js';

export type LockoutMode = 'device' | 'account';

export interface LockoutSettings {
  maxAttempts: number;
  lockoutMs: number;
  mode: LockoutMode;
  /** How long an attempt waits for a free slot before 429 (LOGIN_QUEUE_TIMEOUT). */
  queueTimeoutMs: number;
  /** Key for device credentials (SECRET_KEY). */
  secretKey: string;
}

/** A slot not released within this long is free again (its process died, or it hung). */
export const RESERVATION_LEASE_MS = 60_000;
/** How often a waiting attempt looks again for slots freed by other instances. */
const POLL_MS = 200;
/** An administrator's lock without an end: until `unlock` (9999-12-31T23:59:59.999Z). */
export const UNTIL_UNLOCKED = 253_402_300_799_999;

export type AttemptFlow = 'login' | 'password_change' | 'email_change';
/** What the password check found: accepted, or why not. */
export type CheckOutcome = 'ok' | 'bad_credentials' | 'inactive';

export interface Attempt {
  /** The account the attempt is for; undefined for an unknown login name. */
  user: UserRow | undefined;
  /** The login name as typed (for unknown names and events). */
  login: string;
  /** The device credential the request carries, if any. */
  deviceCredential?: string;
  /** Who asked, for the security events. */
  context: RequestContext;
  flow: AttemptFlow;
  /**
   * The per-username rate limit (src/plugins/app/rate-limit.ts): applied to attempts without a trusted
   * device credential only.
   */
  untrustedLimit?: () => Promise<void>;
}

export interface AttemptResult {
  ok: boolean;
  /** The attempt carried a valid device credential of this user. */
  trusted: boolean;
}

/** Which kind of lock an account is under, for administrators. */
export interface AccountLock {
  until: number;
  /**
   * `all`: every device (an administrator's lock, or any lock in account mode); `untrusted_devices`: devices without a
   * credential.
   */
  scope: 'all' | 'untrusted_devices';
}

type Counter = { key: string; kind: 'device' | 'account' | 'name' };
type Slot = { id: string; key: string; attempt: number };
type Acquired = { state: 'reserved'; slot: Slot } | { state: 'locked'; retryAfterSeconds: number } | { state: 'full' };

const accountKey = (userId: string) => `user:${userId}`;
const adminKey = (userId: string) => `admin:${userId}`;
const deviceKey = (identity: DeviceIdentity) => `device:${identity.userId}:${identity.nonce}`;
/**
 * Every device counter of a user (`device:<id>:…`); LIKE's wildcards in the id are escaped with `!` (same on every
 * database).
 */
const deviceKeysOf = (userId: string) =>
  sql<SqlBool>`${sql.ref('key')} like ${`device:${userId.replace(/[!%_]/g, '!$&')}:%`} escape '!'`;

export class Lockout {
  readonly devices: DeviceCredentials;
  /** Keyed hashes of typed login names: counter keys and event details of unknown names. */
  readonly names: LoginNames;
  /** Attempts in this process waiting for a slot, per counter key. */
  private readonly waiters = new Map<string, Set<() => void>>();

  constructor(
    private readonly db: Kysely<Database>,
    private readonly settings: LockoutSettings,
    private readonly events: SecurityEvents,
  ) {
    this.devices = new DeviceCredentials(settings.secretKey);
    this.names = new LoginNames(settings.secretKey);
  }

  get mode(): LockoutMode {
    return this.settings.mode;
  }

  /**
   * Runs one password check under the lockout: picks the counter, applies the per-username limit
   * to untrusted attempts (423 instead of its 429 when the counter is locked), takes a slot
   * (waiting for one if needed), runs `check`, and records the outcome with its security events.
   * Throws 423 when the counter (or an administrator's lock) is locked, 429 when no slot frees in
   * time.
   */
  async run(attempt: Attempt, check: () => Promise<CheckOutcome>): Promise<AttemptResult> {
    const identity = this.settings.mode === 'device' ? this.devices.verify(attempt.deviceCredential) : null;
    const trusted = identity !== null && attempt.user !== undefined && identity.userId === attempt.user.id;
    const counter: Counter = trusted
      ? { key: deviceKey(identity), kind: 'device' }
      : attempt.user
        ? { key: accountKey(attempt.user.id), kind: 'account' }
        : { key: `name:${this.names.tag(attempt.login)}`, kind: 'name' };
    // Never the typed text (it may be a password typed into the wrong field): login-name.ts.
    const who = attempt.user ? { username: attempt.user.username } : { login_hash: this.names.tag(attempt.login) };
    const base = {
      ...who,
      flow: attempt.flow,
      ...(this.settings.mode === 'device' ? { device: trusted ? 'trusted' : 'untrusted' } : {}),
    };
    const userId = attempt.user?.id;
    if (!trusted && attempt.untrustedLimit) {
      // The lock outranks the per-username limit: with the defaults both trip at the 5th attempt,
      // and a locked counter must say 423 (with when it ends), not 429.
      try {
        await attempt.untrustedLimit();
      } catch (error) {
        const until = Math.max(
          (await this.lockedUntil(counter.key)) ?? 0,
          (await this.lockedUntil(adminKey(userId ?? '-'))) ?? 0,
        );
        if (until === 0) throw error;
        this.events.emit({
          type: 'login_failure',
          context: attempt.context,
          userId,
          details: { reason: 'locked', ...base },
        });
        throw lockedError(Math.max(1, (until - Date.now()) / 1000));
      }
    }

    // Unknown names look for an administrator's lock too (under a key that never exists), so they cost the same.
    const acquired = await this.acquire(counter.key, adminKey(userId ?? '-'));
    if (acquired.state === 'locked') {
      this.events.emit({
        type: 'login_failure',
        context: attempt.context,
        userId,
        details: { reason: 'locked', ...base },
      });
      throw lockedError(acquired.retryAfterSeconds);
    }
    if (acquired.state === 'full') {
      this.events.emit({
        type: 'rate_limit_exceeded',
        context: attempt.context,
        userId,
        message: 'Login attempts in flight: no free slot in time',
        details: { limit: 'login.in_flight', scope: counter.kind, ...base },
      });
      throw rateLimited(
        Math.max(1, this.settings.queueTimeoutMs / 1000),
        'Too many login attempts in progress for this account; try again shortly',
      );
    }
    const { slot } = acquired;
    let outcome: CheckOutcome;
    try {
      outcome = await check();
    } catch (error) {
      await this.release(slot);
      throw error;
    }
    if (outcome === 'ok') {
      await this.succeed(slot);
      return { ok: true, trusted };
    }
    const locked = await this.fail(slot);
    this.events.emit({
      type: 'login_failure',
      context: attempt.context,
      userId,
      details: { reason: outcome, attempt: slot.attempt, ...base },
    });
    if (locked)
      this.events.emit({
        type: counter.kind === 'device' ? 'device_locked' : 'account_locked',
        context: attempt.context,
        userId,
        details: base,
      });
    return { ok: false, trusted };
  }

  /** A fresh device credential for a user who just logged in (device mode), else null. */
  issueDeviceCredential(userId: string): { value: string; maxAgeSeconds: number } | null {
    return this.settings.mode === 'device' ? this.devices.issue(userId) : null;
  }

  // ------------------------------------------------------------------ slots

  /** A slot on `key`, or why not; waits up to LOGIN_QUEUE_TIMEOUT while every slot is taken. */
  private async acquire(key: string, lockKey: string): Promise<Acquired> {
    const deadline = Date.now() + this.settings.queueTimeoutMs;
    for (;;) {
      // Listen before looking, so a slot freed in between is not missed.
      const wake = this.listen(key);
      let result: Acquired;
      try {
        result = await this.tryReserve(key, lockKey);
      } catch (error) {
        wake.cancel();
        throw error;
      }
      const left = deadline - Date.now();
      if (result.state !== 'full' || left <= 0) {
        wake.cancel();
        return result;
      }
      await wake.wait(Math.min(left, POLL_MS + Math.random() * 50));
    }
  }

  private listen(key: string): { wait(ms: number): Promise<void>; cancel(): void } {
    let wakeUp!: () => void;
    const woken = new Promise<void>((resolve) => (wakeUp = resolve));
    let set = this.waiters.get(key);
    if (!set) this.waiters.set(key, (set = new Set()));
    set.add(wakeUp);
    const cancel = () => {
      set.delete(wakeUp);
      if (set.size === 0 && this.waiters.get(key) === set) this.waiters.delete(key);
    };
    return {
      cancel,
      async wait(ms) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([woken, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
        clearTimeout(timer);
        cancel();
      },
    };
  }

  private notify(key: string): void {
    const set = this.waiters.get(key);
    if (!set) return;
    this.waiters.delete(key);
    for (const wakeUp of set) wakeUp();
  }

  private async ensureRow(key: string, now: number): Promise<void> {
    // Outside the transaction: a duplicate-key error would abort it on PostgreSQL.
    const existing = await this.db.selectFrom('login_attempts').select('key').where('key', '=', key).executeTakeFirst();
    if (existing) return;
    try {
      await this.db
        .insertInto('login_attempts')
        .values({ key, failures: 0, window_started_at: now, locked_until: null })
        .execute();
    } catch {
      /* inserted concurrently by another request: fine, the UPDATE below serialises us */
    }
  }

  private async tryReserve(key: string, lockKey: string): Promise<Acquired> {
    const { maxAttempts, lockoutMs } = this.settings;
    await this.ensureRow(key, Date.now());
    return withConflictRetry(() =>
      this.db.transaction().execute(async (trx): Promise<Acquired> => {
        const now = Date.now();
        const windowOver = (eb: ExpressionBuilder<Database, 'login_attempts'>) =>
          eb.and([
            eb('window_started_at', '<=', now - lockoutMs),
            eb.or([eb('locked_until', 'is', null), eb('locked_until', '<=', now)]),
          ]);
        // Locks the counter row for the rest of the transaction (every database), and starts a
        // new window once the old one and any lock are over. MySQL assigns left to right, so each
        // condition reads only columns assigned after it.
        await trx
          .updateTable('login_attempts')
          .set((eb) => ({
            failures: eb.case().when(windowOver(eb)).then(0).else(eb.ref('failures')).end(),
            window_started_at: eb.case().when(windowOver(eb)).then(now).else(eb.ref('window_started_at')).end(),
            locked_until: eb.case().when('locked_until', '<=', now).then(null).else(eb.ref('locked_until')).end(),
          }))
          .where('key', '=', key)
          .execute();
        const rows = await trx
          .selectFrom('login_attempts')
          .select(['key', 'failures', 'locked_until'])
          .where('key', 'in', [key, lockKey])
          .execute();
        const lockedUntil = Math.max(
          0,
          ...rows.map((r) => (r.locked_until !== null && r.locked_until > now ? r.locked_until : 0)),
        );
        if (lockedUntil > 0) return { state: 'locked', retryAfterSeconds: (lockedUntil - now) / 1000 };
        const failures = rows.find((r) => r.key === key)?.failures ?? 0;
        const live = await trx
          .selectFrom('login_reservations')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .where('key', '=', key)
          .where('expires_at', '>', now)
          .executeTakeFirstOrThrow();
        const inFlight = Number(live.n);
        if (failures + inFlight >= maxAttempts) return { state: 'full' };
        const id = randomUUID();
        await trx
          .insertInto('login_reservations')
          .values({ id, key, expires_at: now + RESERVATION_LEASE_MS })
          .execute();
        return { state: 'reserved', slot: { id, key, attempt: failures + inFlight + 1 } };
      }),
    );
  }

  /**
   * A wrong password: counts the failure and frees the slot together; locks at MAX_LOGIN_ATTEMPTS. Returns true if this
   * failure locked.
   */
  private async fail(slot: Slot): Promise<boolean> {
    const { maxAttempts, lockoutMs } = this.settings;
    const locked = await withConflictRetry(() =>
      this.db.transaction().execute(async (trx) => {
        const now = Date.now();
        await trx
          .updateTable('login_attempts')
          .set((eb) => ({
            failures: eb
              .case()
              .when('window_started_at', '<=', now - lockoutMs)
              .then(1)
              .else(eb('failures', '+', 1))
              .end(),
            window_started_at: eb
              .case()
              .when('window_started_at', '<=', now - lockoutMs)
              .then(now)
              .else(eb.ref('window_started_at'))
              .end(),
          }))
          .where('key', '=', slot.key)
          .where((eb) => eb.or([eb('locked_until', 'is', null), eb('locked_until', '<=', now)]))
          .execute();
        await trx.deleteFrom('login_reservations').where('id', '=', slot.id).execute();
        const row = await trx
          .selectFrom('login_attempts')
          .select(['failures', 'locked_until'])
          .where('key', '=', slot.key)
          .executeTakeFirst();
        if (!row || row.failures < maxAttempts || (row.locked_until !== null && row.locked_until > now)) return false;
        await trx
          .updateTable('login_attempts')
          .set({ locked_until: now + lockoutMs, window_started_at: now, failures: maxAttempts })
          .where('key', '=', slot.key)
          .execute();
        return true;
      }),
    );
    this.notify(slot.key);
    return locked;
  }

  /** The right password: the counter starts over and the slot is freed. */
  private async succeed(slot: Slot): Promise<void> {
    await withConflictRetry(() =>
      this.db.transaction().execute(async (trx) => {
        const now = Date.now();
        await trx
          .updateTable('login_attempts')
          .set({ failures: 0, window_started_at: now })
          .where('key', '=', slot.key)
          .where((eb) => eb.or([eb('locked_until', 'is', null), eb('locked_until', '<=', now)]))
          .execute();
        await trx.deleteFrom('login_reservations').where('id', '=', slot.id).execute();
      }),
    );
    this.notify(slot.key);
  }

  /** The check itself failed (not the password): free the slot without counting anything. */
  private async release(slot: Slot): Promise<void> {
    await this.db.deleteFrom('login_reservations').where('id', '=', slot.id).execute();
    this.notify(slot.key);
  }

  // ------------------------------------------------------------------ administration

  /**
   * An administrator's lock: every device, trusted or not, for `minutes` or, without them, until
   * unlocked. Returns when it ends (epoch ms; UNTIL_UNLOCKED for no end).
   */
  async lockForEveryone(userId: string, minutes: number | undefined): Promise<number> {
    const key = adminKey(userId);
    const now = Date.now();
    const until = minutes === undefined ? UNTIL_UNLOCKED : now + minutes * 60_000;
    await this.ensureRow(key, now);
    await this.db
      .updateTable('login_attempts')
      .set({ locked_until: until, window_started_at: now })
      .where('key', '=', key)
      .execute();
    return until;
  }

  /** Clears every lock and counter of an account: untrusted devices, each trusted device, an administrator's lock. */
  async unlock(userId: string): Promise<void> {
    await this.db
      .deleteFrom('login_attempts')
      .where((eb) => eb.or([eb('key', 'in', [accountKey(userId), adminKey(userId)]), deviceKeysOf(userId)]))
      .execute();
  }

  /**
   * After a password reset: the owner proved the mailbox, so failure counters start over (an administrator's lock
   * stays).
   */
  async clearFailures(userId: string): Promise<void> {
    await this.db
      .deleteFrom('login_attempts')
      .where((eb) => eb.or([eb('key', '=', accountKey(userId)), deviceKeysOf(userId)]))
      .execute();
  }

  /** The end of a running lock on a counter key, or null. */
  async lockedUntil(key: string): Promise<number | null> {
    const row = await this.db
      .selectFrom('login_attempts')
      .select('locked_until')
      .where('key', '=', key)
      .executeTakeFirst();
    return row?.locked_until && row.locked_until > Date.now() ? row.locked_until : null;
  }

  /** The running account-wide lock of one user, if any. */
  async stateOf(userId: string): Promise<AccountLock | undefined> {
    return (await this.accountLocks([userId])).get(userId);
  }

  /** Running account-wide locks (not single devices) of these users. */
  async accountLocks(userIds: string[]): Promise<Map<string, AccountLock>> {
    const out = new Map<string, AccountLock>();
    if (userIds.length === 0) return out;
    const now = Date.now();
    const rows = await this.db
      .selectFrom('login_attempts')
      .select(['key', 'locked_until'])
      .where(
        'key',
        'in',
        userIds.flatMap((id) => [accountKey(id), adminKey(id)]),
      )
      .where('locked_until', '>', now)
      .execute();
    // An administrator's lock, which stops every device, is the one shown when both run.
    const adminLast = [
      ...rows.filter((r) => !r.key.startsWith('admin:')),
      ...rows.filter((r) => r.key.startsWith('admin:')),
    ];
    for (const row of adminLast) {
      const admin = row.key.startsWith('admin:');
      out.set(row.key.slice(row.key.indexOf(':') + 1), {
        until: row.locked_until!,
        scope: admin || this.settings.mode === 'account' ? 'all' : 'untrusted_devices',
      });
    }
    return out;
  }

  /** How many accounts are under an account-wide lock now. */
  async countLockedAccounts(): Promise<number> {
    const rows = await this.db
      .selectFrom('login_attempts')
      .select('key')
      .where((eb) => eb.or([eb('key', 'like', 'user:%'), eb('key', 'like', 'admin:%')]))
      .where('locked_until', '>', Date.now())
      .execute();
    return new Set(rows.map((r) => r.key.slice(r.key.indexOf(':') + 1))).size;
  }
}

/**
 * Drops counters whose window and lock are both over, and leases that ended, so random login names cannot grow the
 * tables.
 */
export async function purgeStaleLoginAttempts(db: Kysely<Database>, lockoutMs: number, now: number): Promise<number> {
  const counters = await db
    .deleteFrom('login_attempts')
    .where('window_started_at', '<', now - lockoutMs)
    .where((eb) => eb.or([eb('locked_until', 'is', null), eb('locked_until', '<', now)]))
    .executeTakeFirst();
  const slots = await db.deleteFrom('login_reservations').where('expires_at', '<', now).executeTakeFirst();
  return Number(counters.numDeletedRows) + Number(slots.numDeletedRows);
}
