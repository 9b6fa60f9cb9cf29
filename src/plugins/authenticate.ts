import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { Container } from '../container.js';
import { authenticationError, authorizationError } from '../core/errors.js';
import { presentedBearerToken } from '../http/bearer-token.js';
import type { Principal } from '../modules/auth/token-guard.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated user and token claims, set by `app.authenticate`. */
    principal: Principal | null;
  }
  interface FastifyInstance {
    /** preHandler: requires a valid access token (Authorization: Bearer …). */
    authenticate: (request: FastifyRequest) => Promise<void>;
    /** preHandler: requires a valid access token of an active admin. */
    requireAdmin: (request: FastifyRequest) => Promise<void>;
  }
}

export default fp(
  async function authenticatePlugin(app: FastifyInstance, { container }: { container: Container }) {
    app.decorateRequest('principal', null);

    app.decorate('authenticate', async (request: FastifyRequest) => {
      if (request.principal) return; // already verified in this request (the rate limiter's per-user key)
      const token = presentedBearerToken(request);
      if (!token) throw authenticationError('Authentication required');
      request.principal = await container.tokenGuard.authenticate(token);
    });

    app.decorate('requireAdmin', async (request: FastifyRequest) => {
      await app.authenticate(request);
      if (!request.principal?.user.is_admin) throw authorizationError('Administrator access required');
    });
  },
  { name: 'flokie-authenticate' },
);
