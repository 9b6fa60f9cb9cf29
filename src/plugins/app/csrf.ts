/**
 * CSRF protection for browser (cookie) mode, built on @fastify/csrf-protection: a per-browser
 * secret lives in a signed, HttpOnly, Secure cookie (path /api/auth, like the refresh cookie);
 * GET /api/auth/csrf-token hands out tokens derived from it, each valid WTF_CSRF_TIME_LIMIT
 * seconds. A state-changing request that authenticates by the refresh cookie must echo a token
 * in `X-CSRF-Token`: a page on another origin can make the browser send the cookie, but it can
 * read neither the cookie nor the token response, so it cannot produce the header. Requests
 * authenticated by a bearer token carry no ambient credential and need no token.
 *
 * Each token is bound to the refresh session it protects: it is made (and checked) with the
 * session id of the request's refresh cookie as @fastify/csrf's userInfo. So a secret and token
 * pair obtained with one session's cookie (an attacker's own, say) is refused beside another
 * session's cookie, even when the attacker plants the secret cookie in the victim's browser
 * (cookie tossing from a sibling subdomain). The session id survives refresh rotation, so one
 * token serves the whole session; a browser fetches its token after logging in.
 * Failure: 403 AUTHORIZATION_ERROR and a `csrf_failure` security event.
 */
import { createHmac } from 'node:crypto';
import csrfProtection from '@fastify/csrf-protection';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { Container } from '../../container.js';
import { authorizationError } from '../../core/errors.js';
import { requestContext } from '../../http/request-context.js';

export const CSRF_COOKIE = 'flokie_csrf';
export const CSRF_HEADER = 'x-csrf-token';

declare module 'fastify' {
  interface FastifyInstance {
    /** Throws 403 unless the request carries a valid X-CSRF-Token (no-op when WTF_CSRF_ENABLED=false). */
    verifyCsrf: (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
    /** A fresh CSRF token for this browser and its refresh session (sets the secret cookie on first use). */
    issueCsrfToken: (request: FastifyRequest, reply: FastifyReply) => Promise<string>;
  }
}

export default fp(
  async function csrf(
    app: FastifyInstance,
    options: { container: Container; cookiePath: string; refreshCookie: string },
  ) {
    const { container, cookiePath, refreshCookie } = options;
    const { config, events, tokens } = container;
    /** The session id a request's token is bound to, found before the (synchronous) check runs. */
    const boundSessions = new WeakMap<FastifyRequest, string>();
    /** The refresh session of the request's refresh cookie, or '' without a valid one. */
    const refreshSessionOf = async (request: FastifyRequest): Promise<string> => {
      const cookie = request.cookies?.[refreshCookie];
      if (!cookie) return '';
      return tokens.verify(cookie, 'refresh').then(
        (claims) => claims.sid,
        () => '',
      );
    };
    await app.register(csrfProtection, {
      sessionPlugin: '@fastify/cookie',
      cookieKey: CSRF_COOKIE,
      cookieOpts: {
        path: cookiePath,
        httpOnly: true,
        secure: true,
        sameSite: config.SESSION_COOKIE_SAMESITE.toLowerCase() as 'lax' | 'strict' | 'none',
        // Signed with SECRET_KEY: a sibling subdomain that can plant cookies cannot plant a secret it knows.
        signed: true,
      },
      // userInfo tokens carry an HMAC of the session id; its key is derived from SECRET_KEY.
      csrfOpts: {
        validity: config.WTF_CSRF_TIME_LIMIT * 1000,
        hmacKey: createHmac('sha256', config.SECRET_KEY).update('flokie csrf session binding').digest(),
      },
      getUserInfo: (request) => boundSessions.get(request) ?? '',
      getToken: (request) => {
        const value = request.headers[CSRF_HEADER];
        return typeof value === 'string' ? value : '';
      },
    });

    app.decorate('issueCsrfToken', async (request: FastifyRequest, reply: FastifyReply) =>
      reply.generateCsrf({ userInfo: await refreshSessionOf(request) }),
    );

    app.decorate('verifyCsrf', async (request: FastifyRequest, reply: FastifyReply) => {
      if (!config.WTF_CSRF_ENABLED) return;
      boundSessions.set(request, await refreshSessionOf(request));
      let failure: Error | undefined;
      // csrfProtection answers through reply.send(error) or next(); capture which, without sending.
      const probe = { send: (error: Error) => (failure = error) } as unknown as FastifyReply;
      let passed = false;
      app.csrfProtection.call(app, request, Object.assign(Object.create(reply) as FastifyReply, probe), () => {
        passed = true;
      });
      if (passed && !failure) return;
      const reason =
        request.headers[CSRF_HEADER] === undefined
          ? 'missing token'
          : request.cookies?.[CSRF_COOKIE]
            ? 'invalid or expired token'
            : 'missing secret cookie';
      events.emit({
        type: 'csrf_failure',
        context: requestContext(request),
        message: `CSRF check failed: ${reason}`,
        details: { reason, origin: request.headers.origin ?? null },
      });
      throw authorizationError('CSRF token missing, invalid or expired');
    });
  },
  { name: 'flokie-csrf', dependencies: ['flokie-cookie', 'flokie-error-handler'] },
);
