/**
 * Per-route rate limits (RATE_LIMITS) and the emergency global limit, enforced before any work
 * is done for a request. A route names its limit with `config: { rateLimit: 'auth.login' }`
 * (src/http/route-config.ts); unnamed routes use "default"; `false` exempts a route. Which routes
 * are exempt is decided here alone (`isExempt`): the plain health check and the orchestrators'
 * liveness and readiness probes, the OpenAPI document and the Swagger UI files.
 *
 * Keys: the "default" limit counts per user when the request carries a valid access token
 * (verified by the token guard, never read from an unverified token) and per address otherwise;
 * named limits (the auth routes) always count per address. An address is keyed by
 * clientAddressKey (client-address.ts): an IPv6 client by its /64. Login is also limited per
 * username tried, so neither rotating addresses nor rotating accounts escapes; that limit is
 * counted here (`perAccountRateLimit`) but applied by the lockout (src/modules/auth/lockout.ts),
 * which alone knows whether the attempt carries a trusted device credential, and a trusted device
 * is not held back by it. Each limit is a bucket (src/state/rate-limiter.ts). Over the limit: 429
 * RATE_LIMIT_EXCEEDED with Retry-After (when the next request is allowed); RateLimit-Limit,
 * -Remaining and -Reset on every limited answer. The emergency limit (set by `flokie` or the admin
 * API) applies to every route but the exempt health checks, per client address, even when
 * RATE_LIMIT_ENABLED is false.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { RateSpec } from '../../config/index.js';
import type { Container } from '../../container.js';
import { rateLimited } from '../../core/errors.js';
import { bearerToken } from '../../http/bearer-token.js';
import { RateLimitStore, type LimitDecision } from '../../state/rate-limiter.js';
import { clientAddressKey } from '../../core/client-address.js';
import { normalizeLoginName } from '../../modules/auth/login-name.js';
import { requestContext } from '../../http/request-context.js';
import { isOpenHealthProbe, routePattern } from '../../modules/health/open-probes.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The counters behind every limit (shared through Redis when REDIS_URL is set). */
    rateLimits: RateLimitStore;
    /** Refusals per limit name since start (read by /metrics). */
    rateLimitRefusals: Map<string, number>;
    /**
     * Counts one request against limit `name` for the account named `account` (case- and
     * space-insensitive), whatever the address; 429 over the limit. The login route hands it to
     * the lockout, which applies it to attempts without a trusted device credential.
     */
    perAccountRateLimit: (request: FastifyRequest, reply: FastifyReply, name: string, account: string) => Promise<void>;
  }
}

/**
 * Routes exempt from the per-route limits but not from the emergency limit: the API description
 * (and its old paths), the metrics scrape (every 15 s is over 100 per hour; it needs METRICS_TOKEN)
 * and the link pages.
 */
const UNLIMITED_ROUTES: readonly string[] = [
  ...['/api/openapi.json', '/api/doc', '/api/swagger.json', '/api/metrics'],
  // The e-mailed links' pages and their script: constant answers, cheaper than the counting.
  ...['/verify-email', '/reset-password', '/confirm-email-change', '/assets/flokie-links.js'],
];

export interface RateLimitOptions {
  container: Container;
  /** Route patterns under this prefix (Swagger UI's static files) are exempt from the default limit. */
  docsPrefix?: string;
}

/** RateLimit-* headers of the tightest limit that applied to this request. */
function setHeaders(reply: FastifyReply, decision: LimitDecision): void {
  const current = reply.getHeader('ratelimit-remaining');
  if (current !== undefined && Number(current) < decision.remaining) return;
  // Lower-case names: Fastify lower-cases each name per request, a no-op on these.
  reply.header('ratelimit-limit', String(decision.limit));
  reply.header('ratelimit-remaining', String(decision.remaining));
  reply.header('ratelimit-reset', String(decision.resetSeconds));
}

export default fp(
  async function rateLimit(app: FastifyInstance, { container, docsPrefix }: RateLimitOptions) {
    const { config, events } = container;
    const store = new RateLimitStore({
      redis: container.redis,
      keyPrefix: `${config.REDIS_KEY_PREFIX}rl:`,
      log: container.log,
    });
    app.decorate('rateLimits', store);
    const refusals = new Map<string, number>();
    app.decorate('rateLimitRefusals', refusals);
    const stopFollowing = await store.followEmergencyLimit(container.db, container.changes);
    app.addHook('onClose', async () => stopFollowing());

    async function enforce(
      request: FastifyRequest,
      reply: FastifyReply,
      name: string,
      spec: RateSpec,
      key: string,
      scope: string,
    ) {
      const decision = await store.consume(name, spec, key);
      setHeaders(reply, decision);
      if (decision.allowed) return;
      refusals.set(name, (refusals.get(name) ?? 0) + 1);
      if (decision.firstRefusal) {
        events.emit({
          type: 'rate_limit_exceeded',
          context: requestContext(request),
          message: `Rate limit ${name} (${spec.text}) exceeded`,
          details: { limit: name, rate: spec.text, scope },
        });
      }
      throw rateLimited(decision.resetSeconds);
    }

    /**
     * `user:<id>` for a request with a valid access token, else null (the caller keys it by address).
     * The verified principal is kept on the request, so the route's `authenticate` does not verify twice.
     */
    async function verifiedUserKey(request: FastifyRequest): Promise<string | null> {
      try {
        const token = bearerToken(request);
        if (!token) return null;
        request.principal = await container.tokenGuard.authenticate(token);
        return `user:${request.principal.user.id}`;
      } catch {
        return null; // an invalid token counts against the address; the route refuses it itself
      }
    }

    app.addHook('onRequest', async (request, reply) => {
      // Read once: Fastify builds a new routeOptions object on every access.
      const route = request.routeOptions;
      const name = route.config?.rateLimit ?? 'default';
      // No limit at all (the emergency limit included) on the open health probes.
      if (isOpenHealthProbe(route.url)) return;
      // Keyed lazily: a request counted per user needs no address parsing.
      const ip = () => `ip:${clientAddressKey(request.ip, config.RATE_LIMIT_IPV6_PREFIX)}`;
      const emergency = store.emergencyLimit;
      if (emergency) await enforce(request, reply, 'emergency', emergency, ip(), 'ip');
      if (!config.RATE_LIMIT_ENABLED || name === false) return;
      const spec = config.RATE_LIMITS[name] ?? config.RATE_LIMITS.default!;
      const user = name === 'default' ? await verifiedUserKey(request) : null;
      await enforce(request, reply, name, spec, user ?? ip(), user ? 'user' : 'ip');
    });

    // Keyed `username:<name>` (the login field's name), as before the lockout applied it.
    app.decorate(
      'perAccountRateLimit',
      async (request: FastifyRequest, reply: FastifyReply, name: string, account: string) => {
        if (!config.RATE_LIMIT_ENABLED || normalizeLoginName(account) === '') return;
        const spec = config.RATE_LIMITS[name] ?? config.RATE_LIMITS.default!;
        // The keyed hash of the typed name: counted like the lockout counts it, and no typed text in Redis.
        await enforce(request, reply, name, spec, `username:${container.lockout.names.tag(account)}`, 'username');
      },
    );

    // The one place that decides which routes the per-route limits skip; a route cannot exempt itself.
    app.addHook('onRoute', (route) => {
      const url = routePattern(route.url);
      const docs = docsPrefix !== undefined && url.startsWith(docsPrefix);
      const exempt = isOpenHealthProbe(url) || UNLIMITED_ROUTES.includes(url) || docs;
      route.config = { ...route.config, rateLimit: exempt ? false : route.config?.rateLimit || undefined };
    });
  },
  { name: 'flokie-rate-limit', dependencies: ['flokie-error-handler', 'flokie-authenticate'] },
);
