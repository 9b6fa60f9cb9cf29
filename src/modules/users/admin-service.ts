/**
 * Account changes by an administrator (HTTP API) or an operator (the `flokie` CLI): the one
 * place holding the rules for what they may do to accounts (create, edit, activate, deactivate,
 * grant or remove administration, lock, unlock, delete; docs/incident-response.md). Routes and CLI
 * commands only translate their input into these calls; reads are user-queries.ts's, token and
 * session revocation src/modules/auth/revocation.ts's.
 *
 * Every action is recorded as an `admin_action` security event (admin-action.ts). The rows are
 * written by users-service.ts, which publishes each change so the token guard of every running
 * instance drops its cached answer and the change applies at once.
 */
import type { Config } from '../../config/index.js';
import type { RequestContext } from '../../core/request-context.js';
import { validationError } from '../../core/errors.js';
import { dialectOf, isUniqueViolation } from '../../db/index.js';
import type { AuthService } from '../auth/auth-service.js';
import type { EmailChanges } from '../auth/email-change.js';
import type { Lockout } from '../auth/lockout.js';
import type { OneTimeTokens } from '../auth/one-time-tokens.js';
import type { SessionStore } from '../auth/sessions.js';
import type { SecurityEvents } from '../security/events.js';
import { actorLabel, recordAdminAction, viaOf } from './admin-action.js';
import { normalizeEmail, normalizeUsername, type UserRepository } from './user-repository.js';
import type { UserQueries } from './user-queries.js';
import { iso, type UserRow } from './user-view.js';
import {
  cleanPersonFields,
  takenError,
  type NewAccount,
  type UserChanges,
  type UserWriter,
  type UsersService,
} from './users-service.js';

/** An administrator creates accounts with the same fields as any other creation path. */
export type CreateUserInput = NewAccount;

export interface UpdateUserInput {
  username?: string;
  email?: string;
  first_name?: string | null;
  last_name?: string | null;
  bio?: string | null;
  is_verified?: boolean;
}

export interface AdminDeps {
  config: Config;
  users: UserRepository;
  usersService: UsersService;
  queries: UserQueries;
  lockout: Lockout;
  sessions: SessionStore;
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

  private record(
    context: RequestContext,
    action: string,
    targetId: string | null,
    details: Record<string, unknown> = {},
  ): void {
    recordAdminAction(this.d.events, context, action, targetId, details);
  }

  private get(id: string): Promise<UserRow> {
    return this.d.queries.get(id);
  }

  /** Creates an account through the same path as self-registration (users-service.ts). */
  async create(input: CreateUserInput, context: RequestContext): Promise<UserRow> {
    const user = await this.d.usersService.create({
      username: input.username,
      email: input.email,
      password: input.password,
      first_name: input.first_name,
      last_name: input.last_name,
      bio: input.bio,
      is_admin: input.is_admin ?? false,
      is_active: input.is_active ?? true,
      is_verified: input.is_verified ?? false,
    });
    this.record(context, 'create_user', user.id, { username: user.username, is_admin: Boolean(user.is_admin) });
    return user;
  }

  async update(id: string, input: UpdateUserInput, context: RequestContext): Promise<UserRow> {
    const current = await this.get(id);
    const changes: UserChanges = {};
    if (input.username !== undefined && input.username.trim() !== current.username) {
      changes.username = input.username.trim();
      changes.username_lower = normalizeUsername(input.username);
    }
    if (input.email !== undefined && normalizeEmail(input.email) !== current.email) {
      this.d.emailChanges.assertAdministratorMayChange(id, context);
      changes.email = normalizeEmail(input.email);
      if (input.is_verified === undefined) changes.is_verified = 0;
    }
    const taken = await this.d.users.taken({ username: changes.username, email: changes.email }, id);
    if (taken.username || taken.email) throw takenError(taken);
    Object.assign(changes, cleanPersonFields(input));
    if (input.is_verified !== undefined) changes.is_verified = input.is_verified ? 1 : 0;
    try {
      // A new address makes every outstanding link (and a pending self-service change) stale: they die with the change.
      // A link being spent at the same moment can deadlock with this on PostgreSQL/MariaDB; the loser retries.
      await this.d.usersService.write(async (writer) => {
        await writer.update(id, changes);
        if (changes.email) await this.d.oneTimeTokens.invalidateAllForUser(id, writer);
      });
    } catch (error) {
      if (isUniqueViolation(error))
        throw takenError(await this.d.users.taken({ username: changes.username, email: changes.email }, id));
      throw error;
    }
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
  private async guardLastAdmin(
    target: UserRow,
    context: RequestContext,
    what: string,
    change: (writer: UserWriter) => Promise<void>,
  ): Promise<void> {
    await this.d.usersService.write(async (writer) => {
      if (viaOf(context) === 'api') {
        let admins = writer.trx
          .selectFrom('users')
          .select(['id'])
          .where('is_admin', '=', 1)
          .where('is_active', '=', 1)
          .orderBy('id');
        if (this.dialect !== 'sqlite') admins = admins.forUpdate();
        const rows = await admins.execute();
        const targetIsActiveAdmin = rows.some((r) => r.id === target.id);
        if (targetIsActiveAdmin && rows.length <= 1) {
          const whom = context.actor?.userId === target.id ? 'yourself' : 'this user';
          throw validationError(`You cannot ${what} ${whom}: the account is the last active administrator`);
        }
      }
      await change(writer);
    });
  }

  /** Deactivates, kills every outstanding link and revokes every session: the user's existing tokens fail at once. */
  async deactivate(id: string, context: RequestContext, reason = 'deactivate_user'): Promise<UserRow> {
    const user = await this.get(id);
    await this.guardLastAdmin(user, context, 'deactivate', async (writer) => {
      await writer.update(id, { is_active: 0 });
      await this.d.oneTimeTokens.invalidateAllForUser(id, writer);
    });
    const revoked = await this.d.sessions.revokeAllForUser(id, 'deactivated');
    this.record(context, reason, id, { username: user.username, revoked_sessions: revoked });
    return this.get(id);
  }

  async activate(id: string, context: RequestContext): Promise<UserRow> {
    const user = await this.get(id);
    await this.d.usersService.update(id, { is_active: 1 });
    this.record(context, 'activate_user', id, { username: user.username });
    return this.get(id);
  }

  /**
   * Locks logins for every device, trusted or not, for `minutes` or until unlocked. Sessions are kept (deactivate ends
   * them).
   */
  async lock(id: string, minutes: number | undefined, context: RequestContext): Promise<UserRow> {
    const user = await this.get(id);
    const until = await this.d.lockout.lockForEveryone(id, minutes);
    this.d.events.emit({
      type: 'account_locked_by_admin',
      context,
      userId: id,
      details: {
        by: actorLabel(context),
        until: minutes === undefined ? 'unlock' : iso(until),
        minutes: minutes ?? null,
      },
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
    if (!isAdmin && context.actor?.userId === id)
      throw validationError('You cannot remove your own administrator rights');
    if (isAdmin) await this.d.usersService.update(id, { is_admin: 1 });
    else
      await this.guardLastAdmin(
        user,
        context,
        'demote',
        async (writer) => void (await writer.update(id, { is_admin: 0 })),
      );
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
    await this.guardLastAdmin(user, context, 'delete', async (writer) => {
      await this.d.oneTimeTokens.invalidateAllForUser(id, writer);
      await writer.remove(id);
    });
    // Sessions went with the row, and the write was published: every instance's token guard forgets the user at once.
    await this.d.lockout.unlock(id);
    this.record(context, 'hard_delete_user', id, { username: user.username });
  }
}
