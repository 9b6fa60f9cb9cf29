/**
 * What administrators and operators read about accounts: one user (by id, or by name at the
 * CLI), lists, prefix search and statistics, each with the account's running lock
 * (src/modules/auth/lockout.ts). Nothing here writes.
 */
import type { ExpressionBuilder, Kysely } from 'kysely';
import type { Config } from '../../config/index.js';
import { notFound } from '../../core/errors.js';
import { dialectOf } from '../../db/index.js';
import type { Database } from '../../db/types.js';
import { USER_ID_SHAPE } from '../../core/text.js';
import type { Lockout } from '../auth/lockout.js';
import type { UserRepository } from './user-repository.js';
import { toAdminUserView, type AdminUserView, type UserRow } from './user-view.js';

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
const SORT_COLUMNS = {
  created_at: 'created_at',
  updated_at: 'updated_at',
  username: 'username_lower',
  email: 'email',
} as const;

/** LIKE pattern for "starts with", with the user's own wildcards escaped. */
const likePrefix = (text: string) => `${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
export interface UserQueriesDeps {
  config: Config;
  db: Kysely<Database>;
  users: UserRepository;
  lockout: Lockout;
}

export class UserQueries {
  private readonly dialect;

  constructor(private readonly d: UserQueriesDeps) {
    this.dialect = dialectOf(d.config.DATABASE_URL);
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
    const user = USER_ID_SHAPE.test(ref)
      ? await this.d.users.findById(ref.toLowerCase())
      : await this.d.users.findByLogin(ref);
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
    return (eb: ExpressionBuilder<Database, 'users'>) => {
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
}
