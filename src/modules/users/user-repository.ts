import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Database } from '../../db/types.js';
import type { UserRow } from './user-view.js';

export interface NewUser {
  username: string;
  email: string;
  password_hash: string;
  first_name?: string | null;
  last_name?: string | null;
  bio?: string | null;
  is_admin?: boolean;
  is_verified?: boolean;
  is_active?: boolean;
}

export const normalizeEmail = (email: string) => email.trim().toLowerCase();
export const normalizeUsername = (username: string) => username.trim().toLowerCase();

/** Plain data access for users; rules (who may do what) live in the services that call it. */
export class UserRepository {
  constructor(private readonly db: Kysely<Database>) {}

  findById(id: string, db: Kysely<Database> = this.db): Promise<UserRow | undefined> {
    return db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /** A login name is a username or an e-mail address, both case-insensitive. */
  findByLogin(login: string): Promise<UserRow | undefined> {
    const value = login.trim().toLowerCase();
    const column = value.includes('@') ? 'email' : 'username_lower';
    return this.db.selectFrom('users').selectAll().where(column, '=', value).executeTakeFirst();
  }

  findByEmail(email: string): Promise<UserRow | undefined> {
    return this.db.selectFrom('users').selectAll().where('email', '=', normalizeEmail(email)).executeTakeFirst();
  }

  /** Which of username / email are already taken (case-insensitively), optionally ignoring one user. */
  async taken(
    fields: { username?: string; email?: string },
    exceptId?: string,
  ): Promise<{ username: boolean; email: boolean }> {
    const result = { username: false, email: false };
    if (fields.username !== undefined) {
      let q = this.db.selectFrom('users').select('id').where('username_lower', '=', normalizeUsername(fields.username));
      if (exceptId) q = q.where('id', '!=', exceptId);
      result.username = (await q.executeTakeFirst()) !== undefined;
    }
    if (fields.email !== undefined) {
      let q = this.db.selectFrom('users').select('id').where('email', '=', normalizeEmail(fields.email));
      if (exceptId) q = q.where('id', '!=', exceptId);
      result.email = (await q.executeTakeFirst()) !== undefined;
    }
    return result;
  }

  async insert(user: NewUser, db: Kysely<Database> = this.db): Promise<UserRow> {
    const now = Date.now();
    const row: UserRow = {
      id: randomUUID(),
      username: user.username.trim(),
      username_lower: normalizeUsername(user.username),
      email: normalizeEmail(user.email),
      password_hash: user.password_hash,
      first_name: user.first_name ?? null,
      last_name: user.last_name ?? null,
      bio: user.bio ?? null,
      is_active: user.is_active === false ? 0 : 1,
      is_verified: user.is_verified ? 1 : 0,
      is_admin: user.is_admin ? 1 : 0,
      password_changed_at: now,
      created_at: now,
      updated_at: now,
      last_login_at: null,
      pending_email: null,
    };
    await db.insertInto('users').values(row).execute();
    await db
      .insertInto('password_history')
      .values({ user_id: row.id, password_hash: row.password_hash, created_at: now })
      .execute();
    return row;
  }

  /** A plain write, without publishing: changes go through users-service.ts, which publishes them. */
  async update(id: string, changes: Partial<Omit<UserRow, 'id' | 'created_at'>>): Promise<void> {
    await this.db
      .updateTable('users')
      .set({ ...changes, updated_at: Date.now() })
      .where('id', '=', id)
      .execute();
  }
}
