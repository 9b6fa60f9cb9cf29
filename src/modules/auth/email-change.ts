/**
 * Changing an account's e-mail address (docs/security.md "E-mail change"): the one place with its
 * rules, so a stolen access token cannot move the account to another mailbox.
 *
 * - A user's own change (PUT /api/users/profile) has already re-authenticated with the current
 *   password (AuthService.reauthenticate). It only records the new address as pending and kills
 *   every outstanding link; the account's address, login by e-mail, resets and all mail stay on
 *   the old address until the new one is confirmed.
 * - After the answer (so a free and a taken address cost the caller the same): the old address
 *   gets a notice (what, when, from which IP, what to do); the new one gets a single-use,
 *   time-limited confirmation link (one_time_tokens, purpose `email_change`, hashed at rest,
 *   EMAIL_CHANGE_EXPIRES_HOURS) — or, if another account owns it, a mail saying so and no link.
 *   The requester sees the same 202 and pending address either way.
 * - Confirming (POST /api/auth/email/confirm) applies the address in one transaction only if the
 *   user's pending address still is the link's and the address is still free (a unique violation
 *   is a 409 with nothing written), marks it verified and kills every outstanding link; then
 *   every session but the confirming one (when it carries that user's access token) is revoked
 *   and the old address is told.
 * - An administrator's change (PUT /api/users/{id}) applies at once; both addresses are told. Not
 *   to their own address: over the API that is the user's own change, which needs the current
 *   password (the profile flow above), so a stolen administrator's token cannot skip it.
 */
import type { Logger } from 'pino';
import type { Config } from '../../config/index.js';
import { isUniqueViolation } from '../../db/index.js';
import { conflict, validationError } from '../../core/errors.js';
import type { MailLinks } from '../../mail/links.js';
import type { Mailer } from '../../mail/mailer.js';
import type { SecurityEvents } from '../security/events.js';
import { normalizeEmail, type UserRepository } from '../users/user-repository.js';
import type { UserRow } from '../users/user-view.js';
import type { UsersService } from '../users/users-service.js';
import type { OneTimeTokens } from './one-time-tokens.js';
import type { SessionStore } from './sessions.js';
import type { TokenGuard } from './token-guard.js';
import type { RequestContext } from '../../core/request-context.js';

export interface EmailChangeDeps {
  config: Config;
  users: UserRepository;
  usersService: UsersService;
  oneTimeTokens: OneTimeTokens;
  sessions: SessionStore;
  tokenGuard: TokenGuard;
  mailer: Mailer;
  links: MailLinks;
  events: SecurityEvents;
  /** Background work (mail after the answer) that shutdown waits for. */
  track: (task: Promise<unknown>) => void;
  /** For failures of background work, which has no request to answer. */
  log: Logger;
}

const invalidLink = () =>
  validationError('Confirmation link is invalid or has expired', { token: ['Invalid or expired token'] });
const stamp = (ms: number) => `${new Date(ms).toISOString().replace('T', ' ').slice(0, 19)} UTC`;

export class EmailChanges {
  constructor(private readonly d: EmailChangeDeps) {}

  /**
   * Records `newEmail` as the user's pending address, together with `alsoChange` (other profile
   * fields) and the death of every outstanding link, in one transaction. The caller has
   * re-authenticated the user and checked the address differs from the current one.
   */
  async request(user: UserRow, newEmail: string, alsoChange: Partial<UserRow>, context: RequestContext): Promise<void> {
    const target = normalizeEmail(newEmail);
    const at = Date.now();
    await this.d.usersService.write(async (writer) => {
      await this.d.oneTimeTokens.invalidateAllForUser(user.id, writer);
      await writer.update(user.id, { ...alsoChange, pending_email: target });
    });
    this.d.events.emit({
      type: 'email_change_requested',
      context,
      userId: user.id,
      details: { pending_email: target },
    });
    const ip = context.ip;
    const task = (async () => {
      // After the 202 is written: whether the address is free decides the work below, and the
      // answer must not depend on it.
      await new Promise((resolve) => setImmediate(resolve));
      this.d.mailer.send({
        to: user.email,
        subject: 'Your e-mail address is being changed',
        text:
          `Someone signed in to your account "${user.username}" asked to change its e-mail address to ${target}.\n\n` +
          `When: ${stamp(at)}\nFrom IP address: ${ip}\n\n` +
          `Nothing changes until the new address is confirmed from the link sent there; until then this stays the ` +
          `account's address.\n\n` +
          `If this was not you, reset your password now (the reset mail comes to this address): that cancels the ` +
          `change and signs out every session. Then tell the administrator.\n`,
      });
      const owner = await this.d.users.findByEmail(target);
      if (owner && owner.id !== user.id) {
        this.d.mailer.send({
          to: target,
          subject: 'This e-mail address is already in use',
          text:
            `Someone asked to use this address for an account at ${this.d.config.publicUrl}. It already ` +
            `belongs to an account, so nothing was changed.\n\nIf you did not ask for this, you can ignore this ` +
            `message.\n`,
        });
        return;
      }
      const hours = this.d.config.EMAIL_CHANGE_EXPIRES_HOURS;
      const token = await this.d.oneTimeTokens.issue(user.id, 'email_change', hours * 3_600_000, target);
      this.d.mailer.send({
        to: target,
        subject: 'Confirm your new e-mail address',
        text:
          `Someone asked to make this the e-mail address of an account at ${this.d.config.publicUrl}.\n\nTo ` +
          `confirm, open this link within ${hours} hours:\n\n${this.d.links.build('email_change', token)}\n\nIf it ` +
          `was not you, ignore this message: nothing changes.\n`,
      });
    })();
    this.d.track(
      task.catch((error: unknown) =>
        this.d.log.error({ err: error, reqId: context.requestId }, 'e-mail change mail failed'),
      ),
    );
  }

  /**
   * Applies a pending change from its confirmation link. `accessToken` is the bearer token sent
   * with the link, if any: its session (when valid and of this user) survives the change.
   */
  async confirm(token: string, accessToken: string | null, context: RequestContext): Promise<void> {
    const confirmingSession = await this.sessionOf(accessToken);
    const now = Date.now();
    let applied: { user: UserRow; target: string };
    let userId: string | undefined;
    try {
      applied = await this.d.usersService.write(async (writer) => {
        const spent = await this.d.oneTimeTokens.spend(token, 'email_change', writer.trx);
        if (!spent?.targetEmail) throw invalidLink();
        const target = spent.targetEmail;
        userId = spent.userId;
        const user = await this.d.users.findById(spent.userId, writer.trx);
        if (!user?.is_active || user.pending_email !== target) throw invalidLink();
        const changes = { email: target, pending_email: null, is_verified: 1 };
        if (!(await writer.update(user.id, changes, { pending_email: target }))) throw invalidLink();
        await this.d.oneTimeTokens.invalidateAllForUser(user.id, writer);
        return { user, target };
      });
    } catch (error) {
      if (!isUniqueViolation(error)) throw error;
      this.d.events.emit({ type: 'email_change_failed', context, userId, details: { reason: 'address_in_use' } });
      throw conflict('E-mail address is already registered', { email: ['E-mail address is already registered'] });
    }
    const { user, target } = applied;
    const keep = confirmingSession?.userId === user.id ? confirmingSession.sessionId : undefined;
    const revoked = await this.d.sessions.revokeAllForUser(user.id, 'email_change', keep);
    this.d.events.emit({
      type: 'email_changed',
      context,
      userId: user.id,
      details: {
        previous_email: user.email,
        email: target,
        by: 'user',
        revoked_sessions: revoked,
        kept_session: keep !== undefined,
      },
    });
    this.d.mailer.send({
      to: user.email,
      subject: 'Your e-mail address was changed',
      text:
        `The e-mail address of your account "${user.username}" is now ${target}.\n\n` +
        `When: ${stamp(now)}\nConfirmed from IP address: ${context.ip}\n\n` +
        `Mail for the account, password resets included, now goes to the new address, and every other session was ` +
        `signed out.\n\n` +
        `If this was not you, tell the administrator at once.\n`,
    });
  }

  /**
   * Refuses an administrator's direct change (AdminService.update, over the API) of their own
   * address: that is a user's own change, which needs the current password (PUT /api/users/profile).
   * An operator at the CLI acts as nobody and is not refused.
   */
  assertAdministratorMayChange(targetId: string, context: RequestContext): void {
    if (context.actor?.userId !== targetId) return;
    throw validationError(
      'Change your own e-mail address through PUT /api/users/profile: it needs your current password',
      { email: ['Your own address changes through PUT /api/users/profile, with current_password'] },
    );
  }

  /** An administrator changed a user's address directly (AdminService.update): both addresses are told. */
  notifyAdministratorChange(user: UserRow, previous: string, next: string, context: RequestContext): void {
    const at = stamp(Date.now());
    this.d.events.emit({
      type: 'email_changed',
      context,
      userId: user.id,
      details: { previous_email: previous, email: next, by: 'administrator' },
    });
    this.d.mailer.send({
      to: previous,
      subject: 'Your e-mail address was changed by an administrator',
      text:
        `An administrator changed the e-mail address of your account "${user.username}" to ${next} ` +
        `(${at}).\n\nMail for the account, password resets included, now goes to the new address. If you did not ` +
        `expect this, contact the administrator.\n`,
    });
    this.d.mailer.send({
      to: next,
      subject: 'This is now your account e-mail address',
      text:
        `An administrator made this the e-mail address of the account "${user.username}" at ` +
        `${this.d.config.publicUrl} (${at}).\n\nIf you do not know this account, contact the administrator.\n`,
    });
  }

  /** The session of a valid access token, if any (confirming works without one). */
  private async sessionOf(token: string | null): Promise<{ userId: string; sessionId: string } | null> {
    if (!token) return null;
    try {
      const principal = await this.d.tokenGuard.authenticate(token);
      return { userId: principal.user.id, sessionId: principal.claims.sid };
    } catch {
      return null;
    }
  }
}
