/**
 * Administration: the one place holding the rules for what an administrator (HTTP API) or an
 * operator (the `flokie` CLI) may do to accounts, and the emergency operations of docs/incident-response.md
 * (lock a user out, revoke a token, revoke every session). Routes and CLI commands only
 * translate their input into these calls.
 *
 * Every action is recorded as an `admin_action` security event naming the actor (the admin's id,
 * or `cli` for the command line) and the target. Anything that changes what an existing token may
 * do (deactivation, admin flag, revocation) publishes a 'user'/'session'/'jti' change, so the token
 * guard of every running instance drops its cached answer and the change applies at once.
 */
import type { Kysely } from 'kysely';
import type { Config } from '../../config/index.js';
import { dialectOf, isUniqueViolation, withConflictRetry } from '../../db/index.js';
import type { Database } from '../../db/types.js';
import { DomainError, conflict, notFound, validationError } from '../../core/errors.js';
import { sanitizeText, USER_ID_SHAPE } from '../../http/fields.js';
import type { AuthService } from '../auth/auth-service.js';
import type { EmailChanges } from '../auth/email-change.js';
import type { Lockout } from '../auth/lockout.js';
import type { OneTimeTokens } from '../auth/one-time-tokens.js';
import type { PasswordHasher } from '../auth/password-hasher.js';
import type { SessionStore } from '../auth/sessions.js';
import type { SecurityEvents } from '../security/events.js';
import type { ChangeFeed } from '../../state/change-feed.js';
import { normalizeEmail, normalizeUsername, type UserRepository } from './user-repository.js';
import { iso, toAdminUserView, type AdminUserView, type UserRow } from './user-view.js';
import type { RequestContext } from '../../core/request-context.js';
import { actorLabel, recordAdminAction, viaOf } from './admin-action.js';


export const SORT_FIELDS = ['created_at', 'updated_at', 'username', 'email'] as const;
export type SortField = (typeof SORT_FIELDS)[number];

export interface ListQuery {
  page?: number;
  per_page?: number;
  search?: string;
  include_inactive?: boolean;
  sort_by?: SortField;
  sort_order?: 'asc' | 'desc';
}

export interface Pagination {
  page: number;
  per_page: number;
  total: number;
  pages: number;
  has_prev: boolean;
  has_next: boolean;
  prev_num: number | null;
  next_num: number | null;
}

export function pagination(page: number, perPage: number, total: number): Pagination {
  const pages = Math.ceil(total / perPage);
  return {
    page,
    per_page: perPage,
    total,
    pages,
    has_prev: page > 1,
    has_next: page < pages,
    prev_num: page > 1 ? page - 1 : null,
    next_num: page < pages ? page + 1 : null,
  };
}

export interface CreateUserInput {
  username: string;
  email: string;
  password: string;
  first_name?: string | null;
  last_name?: string | null;
  bio?: string | null;
  is_admin?: boolean;
  is_active?: boolean;
  is_verified?: boolean;
}

export interface UpdateUserInput {
  username?: string;
  email?: string;
  first_name?: string | null;
  last_name?: string | null;
  bio?: string | null;
  is_verified?: boolean;
}

export interface UserStatistics {
  total_users: number;
  active_users: number;
  inactive_users: number;
  verified_users: number;
  unverified_users: number;
  admin_users: number;
  locked_users: number;
  users_created_today: number;
  users_created_this_week: number;
  users_created_this_month: number;
}

/** Sort columns: usernames sort case-insensitively on their indexed lower-case copy. */
const SORT_COLUMNS = { created_at: 'created_at', updated_at: 'updated_at', username: 'username_lower', email: 'email' } as const;

/** LIKE pattern for "starts with", with the user's own wildcards escaped. */
const likePrefix = (text: string) => `${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

export interface AdminDeps {
  config: Config;
  db: Kysely<Database>;
  users: UserRepository;
  hasher: PasswordHasher;
  lockout: Lockout;
  sessions: SessionStore;
  changes: ChangeFeed;
  events: SecurityEvents;
  auth: AuthService;
  oneTimeTokens: OneTimeTokens;
  emailChanges: EmailChanges;
}

export class AdminService {
  private readonly dialect;

  constructor(private readonly d: AdminDeps) {
    this.dialect = dialectOf(d.config.DATABASE_URL);
  }

  private record(context: RequestContext, action: string, targetId: string | null, details: Record<string, unknown> = {}): void {
    recordAdminAction(this.d.events, context, action, targetId, details);
  }

  async view(row: UserRow): Promise<AdminUserView> {
    return (await this.views([row]))[0]!;
  }

  async views(rows: UserRow[]): Promise<AdminUserView[]> {
    const locks = await this.d.lockout.accountLocks(rows.map((r) => r.id));
    return rows.map((r) => toAdminUserView(r, locks.get(r.id)));
  }

  async get(id: string): Promise<UserRow> {
    const user = await this.d.users.findById(id);
    if (!user) throw notFound('User not found');
    return user;
  }

  /**
   * A user by id, or by username / e-mail (the CLI names users, the API uses ids). A reference with
   * the shape of an id is only ever an id: no username may have that shape, so a user named like
   * another user's id cannot make a command act on that other user.
   */
  async find(ref: string): Promise<UserRow> {
    const user = USER_ID_SHAPE.test(ref) ? await this.d.users.findById(ref.toLowerCase()) : await this.d.users.findByLogin(ref);
    if (!user) throw notFound(`No user "${ref}"`);
    return user;
  }

  /**
   * "Starts with" on username or e-mail. Both columns are unique-indexed, so this is an index
   * range scan even with millions of rows (a leading-wildcard LIKE would read the whole table).
   * SQLite only uses an index for a range, so it gets the equivalent range; PostgreSQL needs the
   * pattern-ops indexes of migration 002; MySQL uses the unique indexes for LIKE 'x%'.
   */
  private searchFilter(term: string) {
    const text = term.trim().toLowerCase();
    return (eb: any) => {
      if (this.dialect === 'sqlite') {
        const upper = `${text}\u{10FFFF}`;
        return eb.or([
          eb.and([eb('username_lower', '>=', text), eb('username_lower', '<', upper)]),
          eb.and([eb('email', '>=', text), eb('email', '<', upper)]),
        ]);
      }
      const pattern = likePrefix(text);
      return eb.or([eb('username_lower', 'like', pattern), eb('email', 'like', pattern)]);
    };
  }

  async list(query: ListQuery): Promise<{ users: AdminUserView[]; pagination: Pagination }> {
    const page = query.page ?? 1;
    const perPage = query.per_page ?? 20;
    let base = this.d.db.selectFrom('users');
    if (!query.include_inactive) base = base.where('is_active', '=', 1);
    if (query.search?.trim()) base = base.where(this.searchFilter(query.search));
    const countRow = await base.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    const total = Number(countRow.n);
    const column = SORT_COLUMNS[query.sort_by ?? 'created_at'];
    const order = query.sort_order ?? 'desc';
    const rows = await base
      .selectAll()
      .orderBy(column, order)
      .orderBy('id', order)
      .limit(perPage)
      .offset((page - 1) * perPage)
      .execute();
    return { users: await this.views(rows), pagination: pagination(page, perPage, total) };
  }

  /** The search query itself (public so a test can check its plan uses the indexes). */
  searchQuery(q: string, limit: number, includeInactive: boolean) {
    let query = this.d.db.selectFrom('users').selectAll().where(this.searchFilter(q));
    if (!includeInactive) query = query.where('is_active', '=', 1);
    return query.orderBy('username_lower').limit(limit);
  }

  async search(q: string, limit: number, includeInactive: boolean): Promise<AdminUserView[]> {
    return this.views(await this.searchQuery(q, limit, includeInactive).execute());
  }

  /**
   * Counts in one pass over users plus index range counts for the time windows. "Today", "this
   * week" (from Monday) and "this month" are calendar periods in UTC.
   */
  async statistics(): Promise<UserStatistics> {
    const now = new Date();
    const startOfDay = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
    const startOfWeek = startOfDay - ((now.getUTCDay() + 6) % 7) * 86_400_000;
    const startOfMonth = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1);
    const totals = await this.d.db
      .selectFrom('users')
      .select((eb) => [
        eb.fn.countAll<number>().as('total'),
        eb.fn.sum<number>('is_active').as('active'),
        eb.fn.sum<number>('is_verified').as('verified'),
        eb.fn.sum<number>('is_admin').as('admins'),
      ])
      .executeTakeFirstOrThrow();
    const since = async (from: number) =>
      Number(
        (
          await this.d.db
            .selectFrom('users')
            .select((eb) => eb.fn.countAll<number>().as('n'))
            .where('created_at', '>=', from)
            .executeTakeFirstOrThrow()
        ).n,
      );
    const total = Number(totals.total);
    const active = Number(totals.active ?? 0);
    const verified = Number(totals.verified ?? 0);
    return {
      total_users: total,
      active_users: active,
      inactive_users: total - active,
      verified_users: verified,
      unverified_users: total - verified,
      admin_users: Number(totals.admins ?? 0),
      locked_users: await this.d.lockout.countLockedAccounts(),
      users_created_today: await since(startOfDay),
      users_created_this_week: await since(startOfWeek),
      users_created_this_month: await since(startOfMonth),
    };
  }

  private takenError(taken: { username: boolean; email: boolean }): DomainError {
    const details: Record<string, string[]> = {};
    if (taken.username) details.username = ['Username is already taken'];
    if (taken.email) details.email = ['E-mail address is already registered'];
    return conflict('Username or e-mail address is already registered', details);
  }

  /** Creates an account; the password goes through the same policy as self-registration. */
  async create(input: CreateUserInput, context: RequestContext): Promise<UserRow> {
    await this.d.auth.assertAcceptablePassword(input.password, { username: input.username, email: input.email, first_name: input.first_name ?? undefined, last_name: input.last_name ?? undefined });
    const taken = await this.d.users.taken({ username: input.username, email: input.email });
    if (taken.username || taken.email) throw this.takenError(taken);
    const password_hash = await this.d.hasher.hash(input.password);
    let user: UserRow;
    try {
      user = await this.d.db.transaction().execute((trx) =>
        this.d.users.insert(
          {
            username: input.username,
            email: input.email,
            password_hash,
            first_name: input.first_name?.trim() || null,
            last_name: input.last_name?.trim() || null,
            bio: input.bio == null ? null : sanitizeText(input.bio) || null,
            is_admin: input.is_admin ?? false,
            is_active: input.is_active ?? true,
            is_verified: input.is_verified ?? false,
          },
          trx,
        ),
      );
    } catch (error) {
      if (isUniqueViolation(error)) throw this.takenError(await this.d.users.taken(input));
      throw error;
    }
    this.record(context, 'create_user', user.id, { username: user.username, is_admin: Boolean(user.is_admin) });
    return user;
  }

  async update(id: string, input: UpdateUserInput, context: RequestContext): Promise<UserRow> {
    const current = await this.get(id);
    const changes: Partial<UserRow> = {};
    if (input.username !== undefined && input.username.trim() !== current.username) {
      changes.username = input.username.trim();
      changes.username_lower = normalizeUsername(input.username);
    }
    if (input.email !== undefined && normalizeEmail(input.email) !== current.email) {
      changes.email = normalizeEmail(input.email);
      if (input.is_verified === undefined) changes.is_verified = 0;
    }
    const taken = await this.d.users.taken({ username: changes.username, email: changes.email }, id);
    if (taken.username || taken.email) throw this.takenError(taken);
    if (input.first_name !== undefined) changes.first_name = input.first_name?.trim() || null;
    if (input.last_name !== undefined) changes.last_name = input.last_name?.trim() || null;
    if (input.bio !== undefined) changes.bio = input.bio === null ? null : sanitizeText(input.bio) || null;
    if (input.is_verified !== undefined) changes.is_verified = input.is_verified ? 1 : 0;
    try {
      // A new address makes every outstanding link (and a pending self-service change) stale: they die with the change.
      // A link being spent at the same moment can deadlock with this on PostgreSQL/MariaDB; the loser retries.
      await withConflictRetry(() =>
        this.d.db.transaction().execute(async (trx) => {
          await this.d.users.update(id, changes, trx);
          if (changes.email) await this.d.oneTimeTokens.invalidateAllForUser(id, trx);
        }),
      );
    } catch (error) {
      if (isUniqueViolation(error)) throw this.takenError(await this.d.users.taken({ username: changes.username, email: changes.email }, id));
      throw error;
    }
    await this.d.changes.publish('user', id);
    this.record(context, 'update_user', id, { fields: Object.keys(changes).filter((k) => k !== 'username_lower') });
    const updated = await this.get(id);
    if (changes.email) this.d.emailChanges.notifyAdministratorChange(updated, current.email, updated.email, context);
    // A new, unconfirmed address gets a verification e-mail.
    if (changes.email && !updated.is_verified) await this.d.auth.sendVerification(updated);
    return updated;
  }

  /**
   * Runs `change` (which takes administration away from `target`) in one transaction that first
   * locks every active admin row, so two admins deactivating or demoting each other (or
   * themselves) at the same moment cannot both pass the check: the second waits for the first and
   * then counts what it left. SQLite runs one transaction at a time already. Through the API the
   * last active administrator cannot be removed; an operator at the CLI (an emergency tool) can.
   */
  private async guardLastAdmin(target: UserRow, context: RequestContext, what: string, change: (trx: Kysely<Database>) => Promise<void>): Promise<void> {
    await withConflictRetry(() =>
      this.d.db.transaction().execute(async (trx) => {
        if (viaOf(context) === 'api') {
          let admins = trx.selectFrom('users').select(['id']).where('is_admin', '=', 1).where('is_active', '=', 1).orderBy('id');
          if (this.dialect !== 'sqlite') admins = admins.forUpdate();
          const rows = await admins.execute();
          const targetIsActiveAdmin = rows.some((r) => r.id === target.id);
          if (targetIsActiveAdmin && rows.length <= 1) {
            const whom = context.actor?.userId === target.id ? 'yourself' : 'this user';
            throw validationError(`You cannot ${what} ${whom}: the account is the last active administrator`);
          }
        }
        await change(trx);
      }),
    );
  }

  /** Deactivates, kills every outstanding link and revokes every session: the user's existing tokens fail at once. */
  async deactivate(id: string, context: RequestContext, reason = 'deactivate_user'): Promise<UserRow> {
    const user = await this.get(id);
    await this.guardLastAdmin(user, context, 'deactivate', async (trx) => {
      await this.d.users.update(id, { is_active: 0 }, trx);
      await this.d.oneTimeTokens.invalidateAllForUser(id, trx);
    });
    const revoked = await this.d.sessions.revokeAllForUser(id, 'deactivated');
    this.record(context, reason, id, { username: user.username, revoked_sessions: revoked });
    return this.get(id);
  }

  async activate(id: string, context: RequestContext): Promise<UserRow> {
    const user = await this.get(id);
    await this.d.users.update(id, { is_active: 1 });
    await this.d.changes.publish('user', id);
    this.record(context, 'activate_user', id, { username: user.username });
    return this.get(id);
  }

  /** Locks logins for every device, trusted or not, for `minutes` or until unlocked. Sessions are kept (deactivate ends them). */
  async lock(id: string, minutes: number | undefined, context: RequestContext): Promise<UserRow> {
    const user = await this.get(id);
    const until = await this.d.lockout.lockForEveryone(id, minutes);
    this.d.events.emit({
      type: 'account_locked_by_admin',
      context,
      userId: id,
      details: { by: actorLabel(context), until: minutes === undefined ? 'unlock' : iso(until), minutes: minutes ?? null },
    });
    this.record(context, 'lock_user', id, { username: user.username, minutes: minutes ?? null });
    return user;
  }

  /** Clears every lock: untrusted devices, each trusted device, an administrator's lock. */
  async unlock(id: string, context: RequestContext): Promise<UserRow> {
    const user = await this.get(id);
    const wasLocked = (await this.d.lockout.stateOf(id)) !== undefined;
    await this.d.lockout.unlock(id);
    this.d.events.emit({ type: 'account_unlocked', context, userId: id, details: { by: actorLabel(context) } });
    this.record(context, 'unlock_user', id, { username: user.username, was_locked: wasLocked });
    return user;
  }

  async setAdmin(id: string, isAdmin: boolean, context: RequestContext): Promise<UserRow> {
    const user = await this.get(id);
    if (!isAdmin && context.actor?.userId === id) throw validationError('You cannot remove your own administrator rights');
    if (isAdmin) await this.d.users.update(id, { is_admin: 1 });
    else await this.guardLastAdmin(user, context, 'demote', (trx) => this.d.users.update(id, { is_admin: 0 }, trx));
    await this.d.changes.publish('user', id);
    this.record(context, isAdmin ? 'grant_admin' : 'revoke_admin', id, { username: user.username });
    return this.get(id);
  }

  /** Soft delete deactivates (the row and its history stay); hard delete removes the row, cascading to its sessions. */
  async remove(id: string, hard: boolean, context: RequestContext): Promise<void> {
    if (!hard) {
      await this.deactivate(id, context, 'soft_delete_user');
      return;
    }
    const user = await this.get(id);
    // The rows cascade away with the user; killing the links first says so, in the same transaction.
    await this.guardLastAdmin(user, context, 'delete', async (trx) => {
      await this.d.oneTimeTokens.invalidateAllForUser(id, trx);
      await trx.deleteFrom('users').where('id', '=', id).execute();
    });
    // Sessions went with the row; this tells every instance's token guard at once.
    await this.d.sessions.revokeAllForUser(id, 'deactivated');
    await this.d.lockout.unlock(id);
    await this.d.changes.publish('user', id);
    this.record(context, 'hard_delete_user', id, { username: user.username });
  }
}
