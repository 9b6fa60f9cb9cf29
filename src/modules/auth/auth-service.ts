/**
 * Account flows: register, login, refresh, logout, password change/reset, e-mail verification,
 * and re-authentication (the current password, for password and e-mail change).
 * Each rule it applies is owned elsewhere (hashing: password-hasher.ts, strength:
 * password-policy.ts, lockout and device credentials: lockout.ts, tokens: tokens.ts, sessions:
 * sessions.ts, links: one-time-tokens.ts and src/mail/links.ts); this file puts them in order and
 * records what happened as security events.
 */
import type { Logger } from 'pino';
import type { Config } from '../../config/index.js';
import { DomainError, authenticationError, notFound, validationError } from '../../core/errors.js';
import type { MailLinks } from '../../mail/links.js';
import type { Mailer } from '../../mail/mailer.js';
import type { SecurityEvents } from '../security/events.js';
import type { UserRepository } from '../users/user-repository.js';
import type { UsersService } from '../users/users-service.js';
import { toUserView, type UserRow, type UserView } from '../users/user-view.js';
import type { AttemptFlow, Lockout } from './lockout.js';
import type { OneTimeTokens } from './one-time-tokens.js';
import type { PasswordHasher } from './password-hasher.js';
import type { Revocation } from './revocation.js';
import { requireSession, type RevokeReason, type SessionRow, type SessionStore } from './sessions.js';
import type { Principal } from './token-guard.js';
import type { TokenService } from './tokens.js';
import type { RequestContext } from '../../core/request-context.js';

export interface TokenPair {
  access_token: string;
  refresh_token: string;
  token_type: 'Bearer';
  expires_in: number;
  /** Refresh token lifetime, for the cookie's Max-Age. */
  refresh_expires_in: number;
}

export interface RegisterInput {
  username: string;
  email: string;
  password: string;
  first_name?: string;
  last_name?: string;
}

/** The one message for every failed login, whatever was wrong. */
const BAD_CREDENTIALS = 'Invalid username or password';

export interface LoginOptions {
  /** The device credential the request carries, if any (device-credentials.ts). */
  deviceCredential: string | undefined;
  /** The per-username rate limit, which lockout.ts applies to attempts without a trusted device credential. */
  untrustedLimit: () => Promise<void>;
}

export interface LoginResult {
  tokens: TokenPair;
  user: UserView;
  /** A fresh device credential (LOCKOUT_MODE=device), else null. */
  device: { value: string; maxAgeSeconds: number } | null;
}

export interface AuthDeps {
  config: Config;
  users: UserRepository;
  usersService: UsersService;
  hasher: PasswordHasher;
  lockout: Lockout;
  tokens: TokenService;
  sessions: SessionStore;
  revocation: Revocation;
  oneTimeTokens: OneTimeTokens;
  mailer: Mailer;
  links: MailLinks;
  events: SecurityEvents;
  /** Background work (mail, reset requests) that shutdown waits for. */
  track: (task: Promise<unknown>) => void;
  /** For failures of background work, which has no request to answer. */
  log: Logger;
}

export class AuthService {
  constructor(private readonly d: AuthDeps) {}

  /** Stores a new password (kept in the history), kills every outstanding link, and revokes every session. */
  private async setPassword(user: UserRow, password: string, reason: RevokeReason): Promise<void> {
    const hash = await this.d.hasher.hash(password);
    await this.d.usersService.write(async (writer) => {
      await writer.setPasswordHash(user.id, hash);
      await this.d.oneTimeTokens.invalidateAllForUser(user.id, writer);
    });
    await this.d.sessions.revokeAllForUser(user.id, reason);
  }

  async register(input: RegisterInput, context: RequestContext): Promise<UserView> {
    const user = await this.d.usersService.create(input);
    this.d.events.emit({ type: 'registration', context, userId: user.id, details: { username: user.username } });
    await this.sendVerification(user);
    return toUserView(user);
  }

  async login(login: string, password: string, context: RequestContext, options: LoginOptions): Promise<LoginResult> {
    const user = await this.d.users.findByLogin(login);
    const attempt = await this.d.lockout.run(
      {
        user,
        login,
        deviceCredential: options.deviceCredential,
        context,
        flow: 'login',
        untrustedLimit: options.untrustedLimit,
      },
      async () => {
        // Unknown users cost one hash verification too, so timing does not reveal which accounts exist.
        const valid = user
          ? await this.d.hasher.verify(password, user.password_hash)
          : await this.d.hasher.verifyDummy(password);
        if (!valid || !user) return 'bad_credentials';
        return user.is_active ? 'ok' : 'inactive';
      },
    );
    if (!attempt.ok || !user) throw authenticationError(BAD_CREDENTIALS);
    const changes: { last_login_at: number; password_hash?: string } = { last_login_at: Date.now() };
    if (this.d.hasher.needsRehash(user.password_hash)) changes.password_hash = await this.d.hasher.hash(password);
    await this.d.usersService.recordLogin(user.id, changes);
    const session = await this.d.sessions.create(user.id, context.ip, context.userAgent);
    const tokens = await this.issuePair(session, session.refresh_jti);
    const device = this.d.lockout.issueDeviceCredential(user.id);
    this.d.events.emit({
      type: 'login_success',
      context,
      userId: user.id,
      details: {
        session_id: session.id,
        password_upgraded: 'password_hash' in changes,
        ...(device ? { device: attempt.trusted ? 'trusted' : 'new' } : {}),
      },
    });
    return { tokens, user: toUserView({ ...user, ...changes, password_hash: '' }), device };
  }

  /**
   * The current password of a signed-in user, asked again before a sensitive change (password,
   * e-mail). A wrong one is a failed login attempt for lockout (same counter, limits and events,
   * lockout.ts) and a 400 on `current_password`; a locked counter is a 423.
   */
  async reauthenticate(
    userId: string,
    password: string,
    flow: Exclude<AttemptFlow, 'login'>,
    deviceCredential: string | undefined,
    context: RequestContext,
  ): Promise<UserRow> {
    const user = await this.d.users.findById(userId);
    if (!user) throw authenticationError();
    const attempt = await this.d.lockout.run(
      { user, login: user.username, deviceCredential, context, flow },
      async () => ((await this.d.hasher.verify(password, user.password_hash)) ? 'ok' : 'bad_credentials'),
    );
    if (!attempt.ok)
      throw validationError('Current password is incorrect', { current_password: ['Current password is incorrect'] });
    return user;
  }

  private async issuePair(session: SessionRow, refreshJti: string): Promise<TokenPair> {
    const notAfter = Math.floor(session.expires_at / 1000);
    const claims = { sub: session.user_id, sid: session.id };
    const [access, refresh] = await Promise.all([
      this.d.tokens.sign('access', claims, notAfter),
      this.d.tokens.sign('refresh', { ...claims, jti: refreshJti }, notAfter),
    ]);
    const now = Math.floor(Date.now() / 1000);
    return {
      access_token: access.token,
      refresh_token: refresh.token,
      token_type: 'Bearer',
      expires_in: access.exp - now,
      refresh_expires_in: refresh.exp - now,
    };
  }

  async refresh(refreshToken: string, context: RequestContext): Promise<TokenPair> {
    try {
      return await this.rotate(refreshToken, context);
    } catch (error) {
      // Clients of the original Flokie sometimes send the access token here: say so.
      if (
        error instanceof DomainError &&
        error.code === 'AUTHENTICATION_ERROR' &&
        (await this.isAccessToken(refreshToken))
      ) {
        throw authenticationError(
          'This is an access token: /refresh needs the refresh token from login or from the last refresh',
        );
      }
      throw error;
    }
  }

  private isAccessToken(token: string): Promise<boolean> {
    return this.d.tokens.verify(token, 'access').then(
      () => true,
      () => false,
    );
  }

  /** Spends a refresh token for a new pair in the same session (sessions.ts decides reuse and retries). */
  private async rotate(refreshToken: string, context: RequestContext): Promise<TokenPair> {
    const claims = await this.d.tokens.verify(refreshToken, 'refresh');
    if (await this.d.revocation.isRevoked(claims.jti)) throw authenticationError('Token has been revoked');
    const result = await this.d.sessions.rotate(claims);
    if (!result.ok && result.reason === 'reuse') {
      this.d.events.emit({
        type: 'refresh_token_reuse',
        context,
        userId: claims.sub,
        message: 'Refresh token reused: session revoked',
        details: { session_id: claims.sid },
      });
    }
    requireSession(result);
    const user = await this.d.users.findById(claims.sub);
    if (!user?.is_active) {
      await this.d.sessions.revoke(result.session.id, 'deactivated');
      throw authenticationError('Account is deactivated');
    }
    // A retry after a lost answer (sessions.ts) is recorded as such: its unused successor was replaced.
    const retry = result.replacedJti ? { retry_of_lost_answer: true } : {};
    this.d.events.emit({
      type: 'token_refreshed',
      context,
      userId: user.id,
      details: { session_id: result.session.id, ...retry },
    });
    return this.issuePair(result.session, result.refreshJti);
  }

  async logout(principal: Principal, context: RequestContext): Promise<void> {
    await this.d.sessions.revoke(principal.claims.sid, 'logout');
    this.d.events.emit({
      type: 'logout',
      context,
      userId: principal.user.id,
      details: { session_id: principal.claims.sid },
    });
  }

  async logoutAll(principal: Principal, context: RequestContext): Promise<number> {
    const count = await this.d.sessions.revokeAllForUser(principal.user.id, 'logout_all');
    this.d.events.emit({ type: 'logout', context, userId: principal.user.id, details: { all_sessions: true, count } });
    return count;
  }

  async revokeSession(principal: Principal, sessionId: string, context: RequestContext): Promise<void> {
    const session = await this.d.sessions.findForUser(sessionId, principal.user.id);
    if (!session || session.revoked_at !== null) throw notFound('Session not found');
    await this.d.sessions.revoke(session.id, 'user_revoked');
    this.d.events.emit({
      type: 'session_revoked',
      context,
      userId: principal.user.id,
      details: { session_id: session.id },
    });
  }

  /** Changes the password, revokes every session (this one too) and starts a fresh one. */
  async changePassword(
    principal: Principal,
    current: string,
    next: string,
    deviceCredential: string | undefined,
    context: RequestContext,
  ): Promise<TokenPair> {
    const user = await this.reauthenticate(principal.user.id, current, 'password_change', deviceCredential, context);
    await this.d.usersService.assertAcceptablePassword(next, user, user.id);
    await this.setPassword(user, next, 'password_change');
    this.d.events.emit({ type: 'password_changed', context, userId: user.id });
    const session = await this.d.sessions.create(user.id, context.ip, context.userAgent);
    return this.issuePair(session, session.refresh_jti);
  }

  /** Always succeeds from the caller's view; the lookup and mail happen after the response. */
  requestPasswordReset(email: string, context: RequestContext): void {
    const task = (async () => {
      // Start after the 202 is written: a known address costs more work (token, mail), and on a
      // synchronous driver (SQLite) that work would otherwise delay the answer measurably.
      await new Promise((resolve) => setImmediate(resolve));
      const user = await this.d.users.findByEmail(email);
      this.d.events.emit({
        type: 'password_reset_requested',
        context,
        userId: user?.id,
        details: { known: Boolean(user) },
      });
      if (!user || !user.is_active) return;
      const token = await this.d.oneTimeTokens.issue(
        user.id,
        'password_reset',
        this.d.config.PASSWORD_RESET_EXPIRES_MINUTES * 60_000,
      );
      const link = this.d.links.build('password_reset', token);
      this.d.mailer.send({
        to: user.email,
        subject: 'Reset your password',
        text:
          `Someone asked to reset the password of your account "${user.username}".\n\nTo choose a new ` +
          `password, open this link within ${this.d.config.PASSWORD_RESET_EXPIRES_MINUTES} ` +
          `minutes:\n\n${link}\n\nIf it was not you, ignore this message: your password stays as it is.\n`,
      });
    })();
    this.d.track(
      task.catch((error: unknown) =>
        this.d.log.error({ err: error, reqId: context.requestId }, 'password reset request failed'),
      ),
    );
  }

  async resetPassword(token: string, password: string, context: RequestContext): Promise<void> {
    // Check strength before spending the token, so a weak choice can be corrected with the same link.
    const userId = await this.d.oneTimeTokens.peek(token, 'password_reset');
    const user = userId ? await this.d.users.findById(userId) : undefined;
    // Deactivation kills a user's links; a deactivated account is refused here as well.
    if (!user?.is_active)
      throw validationError('Reset link is invalid or has expired', { token: ['Invalid or expired token'] });
    await this.d.usersService.assertAcceptablePassword(password, user, user.id);
    if ((await this.d.oneTimeTokens.consume(token, 'password_reset')) !== user.id) {
      throw validationError('Reset link is invalid or has expired', { token: ['Invalid or expired token'] });
    }
    await this.setPassword(user, password, 'password_reset');
    await this.d.lockout.clearFailures(user.id);
    this.d.events.emit({ type: 'password_reset', context, userId: user.id });
  }

  /**
   * A verification link confirms the address it was mailed to, nothing else: the link records that
   * address, and the account is marked verified in the same conditional UPDATE that checks the
   * account still has it. An address change racing the link (an administrator's change applies at
   * once) leaves the new address unverified, whichever commits first.
   */
  async verifyEmail(token: string, context: RequestContext): Promise<void> {
    const invalid = () =>
      validationError('Verification link is invalid or has expired', { token: ['Invalid or expired token'] });
    // Published once committed (users-service.ts): /me says verified at once.
    const userId = await this.d.usersService.write(async (writer) => {
      const spent = await this.d.oneTimeTokens.spend(token, 'email_verification', writer.trx);
      if (!spent?.targetEmail) throw invalid();
      if (!(await writer.update(spent.userId, { is_verified: 1 }, { email: spent.targetEmail }))) throw invalid();
      return spent.userId;
    });
    this.d.events.emit({ type: 'email_verified', context, userId });
  }

  /** The verification e-mail again, for a signed-in user whose address is not verified yet. */
  async resendVerification(userId: string): Promise<'sent' | 'already_verified'> {
    const user = await this.d.users.findById(userId);
    if (user?.is_verified) return 'already_verified';
    if (user) await this.sendVerification(user);
    return 'sent';
  }

  async sendVerification(user: UserRow): Promise<void> {
    if (user.is_verified) return;
    const hours = this.d.config.EMAIL_VERIFICATION_EXPIRES_HOURS;
    const token = await this.d.oneTimeTokens.issue(user.id, 'email_verification', hours * 3_600_000, user.email);
    const link = this.d.links.build('verify_email', token);
    this.d.mailer.send({
      to: user.email,
      subject: 'Confirm your e-mail address',
      text:
        `Welcome, ${user.username}.\n\nPlease confirm your e-mail address by opening this link within ${hours} ` +
        `hours:\n\n${link}\n`,
    });
  }
}
