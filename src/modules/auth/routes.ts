/**
 * /api/auth/* — every URL of docs/api.md's Authentication section, in the order listed there.
 * Handlers only translate HTTP to AuthService calls and back.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, preValidationHookHandler } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { Container } from '../../container.js';
import { ok } from '../../http/envelope.js';
import { authenticationError, validationError } from '../../core/errors.js';
import { bearerToken, presentedBearerToken } from '../../http/bearer-token.js';
import { requestContext } from '../../http/request-context.js';
import { iso, principalUserView } from '../users/user-view.js';
import type { TokenPair } from './auth-service.js';
import { DEVICE_COOKIE, deviceCredentialOf } from '../../http/device-credential.js';
import { errorResponses as errors } from '../../http/openapi.js';
import {
  changePasswordBody,
  ConfirmEmailChangeBody,
  Envelope,
  LoginBody,
  LoginData,
  MessageEnvelope,
  RefreshBody,
  registerBody,
  resetBody,
  ResetRequestBody,
  SessionParams,
  SessionSchema,
  TokenData,
  UserData,
  VerifyEmailBody,
} from './schemas.js';

export const REFRESH_COOKIE = 'flokie_refresh';
export const REFRESH_COOKIE_PATH = '/api/auth';
/**
 * Set to "session" beside a refresh cookie that must end with the browser session (login with
 * remember_me: false), so the cookies a later refresh sets stay session cookies too. It only
 * shortens the cookie's life; it grants nothing.
 */
export const REFRESH_SCOPE_COOKIE = 'flokie_refresh_scope';

/** Browser mode: the client asked for the refresh token as an HttpOnly cookie. */
const wantsCookie = (request: FastifyRequest) =>
  String(request.headers['x-auth-mode'] ?? '').toLowerCase() === 'cookie';

/**
 * Login: `username_or_email` (the original Flokie's field name) is read as `username`. It is
 * renamed before validation and before the per-username login limit reads the body
 * (plugins/app/rate-limit.ts), so the alias is counted like the name. Both at once: 400.
 */
const loginAlias: preValidationHookHandler = (request, _reply, done) => {
  const body = request.body as Record<string, unknown> | null | undefined;
  if (body && typeof body === 'object' && !Array.isArray(body) && Object.hasOwn(body, 'username_or_email')) {
    if (Object.hasOwn(body, 'username')) {
      return done(
        validationError('Send username or username_or_email, not both', {
          username_or_email: ['Send either username or username_or_email, not both'],
        }),
      );
    }
    body.username = body.username_or_email;
    delete body.username_or_email;
  }
  done();
};

export default async function authRoutes(
  fastify: FastifyInstance,
  { container }: { container: Pick<Container, 'auth' | 'emailChanges' | 'sessions' | 'config'> },
) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { auth, emailChanges, sessions: sessionStore, config } = container;
  const tags = ['Authentication'];
  const bearer = [{ bearerAuth: [] }];

  const cookieOptions = () => ({
    httpOnly: true,
    secure: true,
    sameSite: config.SESSION_COOKIE_SAMESITE.toLowerCase() as 'lax' | 'strict' | 'none',
    path: REFRESH_COOKIE_PATH,
  });

  /**
   * Token pair into the response: both in the body, or the refresh token as a cookie in browser
   * mode. The cookie lasts as long as the refresh token, or only for the browser session when
   * `persistent` is false (login's remember_me: false, remembered by REFRESH_SCOPE_COOKIE).
   */
  function deliver(
    request: FastifyRequest,
    reply: FastifyReply,
    pair: TokenPair,
    asCookie: boolean,
    persistent?: boolean,
  ) {
    const { refresh_expires_in, ...body } = pair;
    if (!asCookie) return body;
    const lasting = persistent ?? request.cookies?.[REFRESH_SCOPE_COOKIE] !== 'session';
    reply.setCookie(REFRESH_COOKIE, pair.refresh_token, {
      ...cookieOptions(),
      ...(lasting ? { maxAge: refresh_expires_in } : {}),
    });
    if (!lasting) reply.setCookie(REFRESH_SCOPE_COOKIE, 'session', cookieOptions());
    else if (request.cookies?.[REFRESH_SCOPE_COOKIE] !== undefined)
      reply.clearCookie(REFRESH_SCOPE_COOKIE, { path: REFRESH_COOKIE_PATH });
    const { refresh_token: _omit, ...withoutRefresh } = body;
    return withoutRefresh;
  }

  function clearRefreshCookies(reply: FastifyReply) {
    reply.clearCookie(REFRESH_COOKIE, { path: REFRESH_COOKIE_PATH });
    reply.clearCookie(REFRESH_SCOPE_COOKIE, { path: REFRESH_COOKIE_PATH });
  }

  app.post(
    '/register',
    {
      config: { rateLimit: 'auth.register' },
      schema: {
        tags,
        operationId: 'register',
        summary: 'Create an account',
        body: registerBody(config),
        response: { 201: Envelope(UserData), ...errors(409) },
      },
    },
    async (request, reply) => {
      const user = await auth.register(request.body, requestContext(request));
      return reply.code(201).send(ok('Registration successful. Check your e-mail to verify your address.', { user }));
    },
  );

  app.post(
    '/login',
    {
      config: { rateLimit: 'auth.login' },
      preValidation: loginAlias,
      schema: {
        tags,
        operationId: 'login',
        summary: 'Log in with username or e-mail and password',
        description:
          'Send `X-Auth-Mode: cookie` to receive the refresh token as an HttpOnly cookie instead of in the body. ' +
          '`username_or_email` is accepted as an alias of `username` (original Flokie clients); ' +
          '`remember_me: false` makes the refresh cookie last only as long as the browser session. ' +
          'A successful login also issues a device credential (LOCKOUT_MODE=device): the HttpOnly cookie ' +
          '`flokie_device` (Path=/api/auth, SameSite=Strict), and outside cookie mode `device_token` in the ' +
          'body. ' +
          'Send it back (cookie, or `X-Device-Token` header) on later logins: failures from that device then count ' +
          'against that device only, and it keeps logging in while the account is locked for devices without ' +
          'one. ' +
          'Answers 423 only when the counter the attempt belongs to is locked, and 429 when too many checks for it ' +
          'are already in flight for LOGIN_QUEUE_TIMEOUT seconds.',
        body: LoginBody,
        response: { 200: Envelope(LoginData), ...errors(401, 423) },
      },
    },
    async (request, reply) => {
      const cookieMode = wantsCookie(request);
      const { tokens, user, device } = await auth.login(
        request.body.username,
        request.body.password,
        requestContext(request),
        {
          deviceCredential: deviceCredentialOf(request),
          untrustedLimit: () => app.perAccountRateLimit(request, reply, 'auth.login', request.body.username),
        },
      );
      const pair = deliver(request, reply, tokens, cookieMode, request.body.remember_me ?? true);
      if (device) {
        reply.setCookie(DEVICE_COOKIE, device.value, {
          httpOnly: true,
          secure: true,
          sameSite: 'strict',
          path: REFRESH_COOKIE_PATH,
          maxAge: device.maxAgeSeconds,
        });
      }
      // In cookie mode the browser keeps the credential in the HttpOnly cookie only, like the refresh token.
      return ok('Login successful', {
        ...pair,
        ...(device && !cookieMode ? { device_token: device.value } : {}),
        user,
      });
    },
  );

  app.post(
    '/refresh',
    {
      schema: {
        tags,
        operationId: 'refreshTokens',
        summary: 'Exchange a refresh token for a new token pair',
        description:
          'The refresh token may come as `Authorization: Bearer`, as `refresh_token` in the body, or as the ' +
          'refresh cookie. It is spent: presenting it again revokes the whole session. ' +
          'The body is optional (a header- or cookie-only refresh sends none); a refresh by cookie needs ' +
          '`X-CSRF-Token` (403 without it).',
        body: RefreshBody,
        response: { 200: Envelope(TokenData), ...errors(401, 403) },
      },
    },
    async (request, reply) => {
      const explicit = presentedBearerToken(request) ?? request.body?.refresh_token;
      const token = explicit ?? request.cookies?.[REFRESH_COOKIE];
      if (!token) throw authenticationError('Refresh token required');
      const fromCookie = !explicit;
      // The cookie is an ambient credential any page can make the browser send: demand the CSRF token
      // (plugins/app/csrf.ts).
      if (fromCookie) await app.verifyCsrf(request, reply);
      const pair = await auth.refresh(token, requestContext(request));
      // A refresh that came by cookie answers by cookie, so the browser never sees the token.
      return ok('Token refreshed', deliver(request, reply, pair, wantsCookie(request) || fromCookie));
    },
  );

  app.post(
    '/logout',
    {
      preHandler: app.authenticate,
      schema: {
        tags,
        operationId: 'logout',
        security: bearer,
        summary: 'Revoke this session',
        response: { 200: MessageEnvelope },
      },
    },
    async (request, reply) => {
      await auth.logout(request.principal!, requestContext(request));
      clearRefreshCookies(reply);
      return ok('Logged out', {});
    },
  );

  app.post(
    '/logout-all',
    {
      preHandler: app.authenticate,
      schema: {
        tags,
        operationId: 'logoutAll',
        security: bearer,
        summary: 'Revoke every session of this user',
        response: { 200: Envelope(Type.Object({ revoked_sessions: Type.Integer() })) },
      },
    },
    async (request, reply) => {
      const count = await auth.logoutAll(request.principal!, requestContext(request));
      clearRefreshCookies(reply);
      return ok('Logged out of every session', { revoked_sessions: count });
    },
  );

  app.get(
    '/sessions',
    {
      preHandler: app.authenticate,
      schema: {
        tags,
        operationId: 'listSessions',
        security: bearer,
        summary: 'List active sessions',
        response: { 200: Envelope(Type.Object({ sessions: Type.Array(SessionSchema) })) },
      },
    },
    async (request) => {
      const current = request.principal!.claims.sid;
      const sessions = await sessionStore.listActive(request.principal!.user.id);
      return ok('Active sessions', {
        sessions: sessions.map((s) => ({
          id: s.id,
          created_at: iso(s.created_at)!,
          last_used_at: iso(s.last_used_at)!,
          expires_at: iso(s.expires_at)!,
          ip: s.ip,
          user_agent: s.user_agent,
          current: s.id === current,
        })),
      });
    },
  );

  app.delete(
    '/sessions/:id',
    {
      preHandler: app.authenticate,
      schema: {
        tags,
        operationId: 'revokeSession',
        security: bearer,
        summary: 'Revoke one of your sessions',
        params: SessionParams,
        response: { 200: MessageEnvelope, ...errors(404) },
      },
    },
    async (request) => {
      await auth.revokeSession(request.principal!, request.params.id, requestContext(request));
      return ok('Session revoked', {});
    },
  );

  app.get(
    '/me',
    {
      preHandler: app.authenticate,
      schema: {
        tags,
        operationId: 'getCurrentUser',
        security: bearer,
        summary: 'The authenticated user',
        response: { 200: Envelope(UserData) },
      },
    },
    async (request) => ok('Current user', { user: principalUserView(request.principal!.user) }),
  );

  app.post(
    '/password/change',
    {
      preHandler: app.authenticate,
      schema: {
        tags,
        operationId: 'changePassword',
        security: bearer,
        summary: 'Change password',
        description:
          'Revokes every session, this one included, kills every outstanding reset, verification and e-mail change ' +
          'link, and returns a fresh token pair for a new session. ' +
          'A wrong `current_password` is a 400 and counts as a failed login for lockout (send `X-Device-Token` or ' +
          'the device cookie to have it counted on your device); a locked counter is a 423.',
        body: changePasswordBody(config),
        response: { 200: Envelope(TokenData), ...errors(423) },
      },
    },
    async (request, reply) => {
      const { current_password, new_password, confirm_password } = request.body;
      if (new_password !== confirm_password)
        throw validationError('Passwords do not match', { confirm_password: ['Does not match new_password'] });
      const pair = await auth.changePassword(
        request.principal!,
        current_password,
        new_password,
        deviceCredentialOf(request),
        requestContext(request),
      );
      return ok(
        'Password changed; other sessions were signed out',
        deliver(request, reply, pair, wantsCookie(request)),
      );
    },
  );

  app.get(
    '/csrf-token',
    {
      schema: {
        tags,
        operationId: 'getCsrfToken',
        summary: 'CSRF token for browser (cookie) mode',
        description:
          'Send it back as `X-CSRF-Token` on state-changing requests that authenticate by the refresh cookie (POST ' +
          '/api/auth/refresh without a token in the header or body). Valid for `expires_in` seconds, and only ' +
          'beside the refresh cookie of the session it was fetched with (fetch it after logging in); also sets ' +
          'the HttpOnly cookie it is checked against.',
        response: {
          200: Envelope(Type.Object({ csrf_token: Type.String(), expires_in: Type.Integer() }, { $id: 'CsrfToken' })),
        },
      },
    },
    async (request, reply) =>
      ok('CSRF token', {
        csrf_token: await app.issueCsrfToken(request, reply),
        expires_in: config.WTF_CSRF_TIME_LIMIT,
      }),
  );

  app.post(
    '/password/reset-request',
    {
      config: { rateLimit: 'password.reset' },
      schema: {
        tags,
        operationId: 'requestPasswordReset',
        summary: 'E-mail a password-reset link',
        description: 'Answers 202 whether or not the address is registered.',
        body: ResetRequestBody,
        response: { 202: MessageEnvelope },
      },
    },
    async (request, reply) => {
      auth.requestPasswordReset(request.body.email, requestContext(request));
      return reply.code(202).send(ok('If the address is registered, a reset link is on its way', {}));
    },
  );

  app.post(
    '/password/reset',
    {
      config: { rateLimit: 'password.reset.complete' },
      schema: {
        tags,
        operationId: 'resetPassword',
        summary: 'Set a new password with a reset token',
        description: 'The token works once; every session is revoked.',
        body: resetBody(config),
        response: { 200: MessageEnvelope },
      },
    },
    async (request) => {
      const { token, new_password, confirm_password } = request.body;
      if (new_password !== confirm_password)
        throw validationError('Passwords do not match', { confirm_password: ['Does not match new_password'] });
      await auth.resetPassword(token, new_password, requestContext(request));
      return ok('Password has been reset; please log in', {});
    },
  );

  for (const [path, operationId, summary] of [
    ['/verify-email', 'verifyEmail', 'Confirm an e-mail address with the token from the e-mail'],
    ['/email/verify', 'verifyEmailAlias', 'Alias of POST /api/auth/verify-email (the original Flokie path)'],
  ] as const) {
    app.post(
      path,
      { schema: { tags, operationId, summary, body: VerifyEmailBody, response: { 200: MessageEnvelope } } },
      async (request) => {
        await auth.verifyEmail(request.body.token, requestContext(request));
        return ok('E-mail address verified', {});
      },
    );
  }

  app.post(
    '/email/confirm',
    {
      schema: {
        tags,
        operationId: 'confirmEmailChange',
        summary: 'Confirm a new e-mail address with the token from the confirmation e-mail',
        description:
          'Applies the pending address of PUT /api/users/profile, marks it verified, and kills every outstanding ' +
          'link. Every session of the user is revoked, except the one of a valid access token of that user sent ' +
          'with this request. ' +
          '400 for an invalid, used or expired token or when the pending address changed since; 409 when the ' +
          'address was registered by another account meanwhile (nothing changes).',
        body: ConfirmEmailChangeBody,
        response: { 200: MessageEnvelope, ...errors(409) },
      },
    },
    async (request) => {
      await emailChanges.confirm(request.body.token, bearerToken(request), requestContext(request));
      return ok('E-mail address changed', {});
    },
  );

  app.post(
    '/verify-email/resend',
    {
      preHandler: app.authenticate,
      schema: {
        tags,
        operationId: 'resendVerificationEmail',
        security: bearer,
        summary: 'Send the verification e-mail again',
        response: { 202: MessageEnvelope },
      },
    },
    async (request, reply) => {
      const outcome = await auth.resendVerification(request.principal!.user.id);
      return reply
        .code(202)
        .send(
          ok(outcome === 'already_verified' ? 'E-mail address is already verified' : 'Verification e-mail sent', {}),
        );
    },
  );
}
