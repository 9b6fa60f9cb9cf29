/**
 * The HTTP edge's half of src/core/request-context.ts: a service's view of a Fastify request.
 * Built on demand (cheap), after `authenticate` has set the principal when the route needs one.
 */
import type { FastifyRequest } from 'fastify';
import type { RequestContext } from '../core/request-context.js';

export function requestContext(request: FastifyRequest): RequestContext {
  const principal = request.principal;
  return {
    ip: request.ip,
    userAgent: request.headers['user-agent']?.slice(0, 512) ?? null,
    requestId: String(request.id),
    endpoint: `${request.method} ${request.routeOptions.url ?? request.url.split('?')[0]}`.slice(0, 200),
    actor: principal
      ? { userId: principal.user.id, sessionId: principal.claims.sid, isAdmin: Boolean(principal.user.is_admin) }
      : null,
  };
}
