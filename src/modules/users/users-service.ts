/**
 * The one writer of user rows and their password history. Every change to a user (registration
 * and admin creation, login bookkeeping, e-mail verification and change, profile, admin edits,
 * activation, administrator rights, password, deletion) is written here, and once committed it
 * is published to the change feed, so every instance's token guard (src/modules/auth/token-guard.ts)
 * drops what it cached for that user at once. Who may make which change is decided by the
 * callers (auth-service.ts, email-change.ts, admin-service.ts, profile-service.ts); reads go
 * through the repository.
 */
import type { Kysely } from 'kysely';
import type { Config } from '../../config/index.js';
import { conflict, validationError, type DomainError } from '../../core/errors.js';
import { isUniqueViolation, withConflictRetry } from '../../db/index.js';
import type { Database } from '../../db/types.js';
import { sanitizeText } from '../../core/text.js';
import type { ChangeFeed } from '../../state/change-feed.js';
import type { PasswordHasher } from '../auth/password-hasher.js';
import type { PasswordContext, PasswordPolicy } from '../auth/password-policy.js';
import type { UserRepository } from './user-repository.js';
import type { UserRow } from './user-view.js';

export type UserChanges = Partial<Omit<UserRow, 'id' | 'created_at' | 'updated_at'>>;

type PersonFields = Pick<UserChanges, 'first_name' | 'last_name' | 'bio'>;

/**
 * How names and bio are stored, for every path that writes them (registration, profile, admin):
 * names trimmed, the bio sanitised, blank as null. Only the fields given are returned.
 */
export function cleanPersonFields(input: {
  first_name?: string | null;
  last_name?: string | null;
  bio?: string | null;
}): PersonFields {
  const fields: PersonFields = {};
  if (input.first_name !== undefined) fields.first_name = input.first_name?.trim() || null;
  if (input.last_name !== undefined) fields.last_name = input.last_name?.trim() || null;
  if (input.bio !== undefined) fields.bio = input.bio === null ? null : sanitizeText(input.bio) || null;
  return fields;
}

/** What one transaction of `UsersService.write` may do to users. */
export interface UserWriter {
  /** The transaction itself, for writes of the caller's own that belong with the change (links). */
  readonly trx: Kysely<Database>;
  /**
   * Changes a user; with `only`, just while the row still has those values (a conditional
   * UPDATE, for changes that race). Returns whether the row changed.
   */
  update(id: string, changes: UserChanges, only?: { email?: string; pending_email?: string }): Promise<boolean>;
  /** A new password hash, kept in the history (the last PASSWORD_HISTORY_COUNT, at least one). */
  setPasswordHash(id: string, hash: string): Promise<void>;
  /** Forgets a pending e-mail change, if there is one (its links died). */
  dropPendingEmail(id: string): Promise<void>;
  /** Removes the row; what belongs to it cascades away. */
  remove(id: string): Promise<void>;
}

export interface NewAccount {
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

export interface UsersServiceDeps {
  config: Config;
  db: Kysely<Database>;
  users: UserRepository;
  hasher: PasswordHasher;
  policy: PasswordPolicy;
  changes: ChangeFeed;
}

/** The 409 for a username or address someone else has, naming which. */
export function takenError(taken: { username: boolean; email: boolean }): DomainError {
  const details: Record<string, string[]> = {};
  if (taken.username) details.username = ['Username is already taken'];
  if (taken.email) details.email = ['E-mail address is already registered'];
  return conflict('Username or e-mail address is already registered', details);
}

export class UsersService {
  constructor(private readonly d: UsersServiceDeps) {}

  /**
   * Runs `work` in one transaction (again on a transient conflict) and publishes every user it
   * changed after the commit, so no cache re-reads the old row between the eviction and the commit.
   */
  async write<T>(work: (writer: UserWriter) => Promise<T>): Promise<T> {
    let changed = new Set<string>();
    const result = await withConflictRetry(() => {
      changed = new Set();
      return this.d.db.transaction().execute((trx) => work(this.writer(trx, changed)));
    });
    for (const id of changed) await this.d.changes.publish('user', id);
    return result;
  }

  /** One change to one user, on its own. */
  async update(id: string, changes: UserChanges): Promise<void> {
    await this.write((writer) => writer.update(id, changes));
  }

  private writer(trx: Kysely<Database>, changed: Set<string>): UserWriter {
    const historyCount = Math.max(1, this.d.config.PASSWORD_HISTORY_COUNT);
    return {
      trx,
      update: async (id, changes, only = {}) => {
        let query = trx
          .updateTable('users')
          .set({ ...changes, updated_at: Date.now() })
          .where('id', '=', id);
        if (only.email !== undefined) query = query.where('email', '=', only.email);
        if (only.pending_email !== undefined) query = query.where('pending_email', '=', only.pending_email);
        const result = await query.executeTakeFirst();
        changed.add(id);
        return Number(result.numUpdatedRows) === 1;
      },
      setPasswordHash: async (id, hash) => {
        const now = Date.now();
        await trx
          .updateTable('users')
          .set({ password_hash: hash, password_changed_at: now, updated_at: now })
          .where('id', '=', id)
          .execute();
        changed.add(id);
        await trx
          .insertInto('password_history')
          .values({ user_id: id, password_hash: hash, created_at: now })
          .execute();
        const keep = await trx
          .selectFrom('password_history')
          .select('id')
          .where('user_id', '=', id)
          .orderBy('created_at', 'desc')
          .orderBy('id', 'desc')
          .limit(historyCount)
          .execute();
        const kept = keep.map((k) => k.id);
        await trx.deleteFrom('password_history').where('user_id', '=', id).where('id', 'not in', kept).execute();
      },
      dropPendingEmail: async (id) => {
        await trx
          .updateTable('users')
          .set({ pending_email: null })
          .where('id', '=', id)
          .where('pending_email', 'is not', null)
          .execute();
        changed.add(id);
      },
      remove: async (id) => {
        await trx.deleteFrom('users').where('id', '=', id).execute();
        changed.add(id);
      },
    };
  }

  /**
   * Login bookkeeping: the time, and the hash upgraded to the current algorithm. Not published:
   * no token check depends on either, and a login must not evict the user's other tokens.
   */
  async recordLogin(id: string, changes: Pick<UserChanges, 'last_login_at' | 'password_hash'>): Promise<void> {
    await this.d.users.update(id, changes);
  }

  /** Rejects a new password that breaks a strength rule or repeats a recent one. */
  async assertAcceptablePassword(password: string, context: PasswordContext, userId?: string): Promise<void> {
    const problems = await this.d.policy.check(password, context);
    if (problems.length) throw validationError('Password does not meet the requirements', { password: problems });
    const count = this.d.config.PASSWORD_HISTORY_COUNT;
    if (userId && count > 0) {
      const recent = await this.d.db
        .selectFrom('password_history')
        .select('password_hash')
        .where('user_id', '=', userId)
        .orderBy('created_at', 'desc')
        .orderBy('id', 'desc')
        .limit(count)
        .execute();
      const matches = await Promise.all(recent.map((r) => this.d.hasher.verify(password, r.password_hash)));
      if (matches.some(Boolean)) {
        throw validationError('Password was used recently', {
          new_password: [`Password must differ from your last ${count} passwords`],
        });
      }
    }
  }

  /**
   * Creates an account, for registration and administrators alike: the names must be free, the
   * password must pass the policy, and the first history row is written with the user. A name
   * taken by a concurrent request is the same 409 as one taken before.
   */
  async create(account: NewAccount): Promise<UserRow> {
    const input = { ...account, ...cleanPersonFields(account) };
    const names = { username: input.username, email: input.email };
    const taken = await this.d.users.taken(names);
    await this.assertAcceptablePassword(input.password, {
      ...names,
      first_name: input.first_name ?? undefined,
      last_name: input.last_name ?? undefined,
    });
    if (taken.username || taken.email) throw takenError(taken);
    const { password, ...fields } = input;
    const password_hash = await this.d.hasher.hash(password);
    try {
      return await this.d.db.transaction().execute((trx) => this.d.users.insert({ ...fields, password_hash }, trx));
    } catch (error) {
      if (isUniqueViolation(error)) throw takenError(await this.d.users.taken(names));
      throw error;
    }
  }
}
