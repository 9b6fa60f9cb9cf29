/**
 * Per-route rate limits (RATE_LIMITS) and the emergency global limit, enforced before any work
 * is done for a request. A route names its limit with `config: { rateLimit: 'auth.login' }`
 * (src/http/route-config.ts); unnamed routes use "default"; `false` exempts a route (health
 * checks, the OpenAPI document, the Swagger UI files). Counters are keyed by the real client
 * address (request.ip, see client-address.ts). Login is also limited per username tried, so
 * neither rotating addresses nor rotating accounts escapes; that limit is counted here
 * (`perAccountRateLimit`) but applied by the lockout (src/modules/auth/lockout.ts), which alone
 * knows whether the attempt carries a trusted device credential, and a trusted device is not
 * held back by it. Over the limit: 429
 * RATE_LIMIT_EXCEEDED with Retry-After; RateLimit-Limit/-Remaining/-Reset on every limited answer.
 * The emergency limit (set by `flokie` or the admin API) applies to every route but health checks,
 * per client address, even when RATE_LIMIT_ENABLED is false.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { RateSpec } from '../config/index.js';
import type { Container } from '../container.js';
import { rateLimited } from '../http/errors.js';
import { RateLimitStore, type LimitDecision } from '../state/rate-limiter.js';
import { normalizeAddress } from './client-address.js';
import { normalizeLoginName } from '../modules/auth/login-name.js';

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

/** URL prefixes (route patterns) the emergency limit never applies to: monitors must keep working. */
const EMERGENCY_EXEMPT = ['/api/health'];

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
    const store = new RateLimitStore({ redis: container.redis, keyPrefix: `${config.REDIS_KEY_PREFIX}rl:`, log: container.log });
    app.decorate('rateLimits', store);
    const refusals = new Map<string, number>();
    app.decorate('rateLimitRefusals', refusals);
    const stopFollowing = await store.followEmergencyLimit(container.db, container.changes);
    app.addHook('onClose', async () => stopFollowing());

    async function enforce(request: FastifyRequest, reply: FastifyReply, name: string, spec: RateSpec, key: string, scope: string) {
      const decision = await store.consume(name, spec, key);
      setHeaders(reply, decision);
      if (decision.allowed) return;
      refusals.set(name, (refusals.get(name) ?? 0) + 1);
      if (decision.firstRefusal) {
        events.emit({
          type: 'rate_limit_exceeded',
          request,
          message: `Rate limit ${name} (${spec.text}) exceeded`,
          details: { limit: name, rate: spec.text, scope },
        });
      }
      throw rateLimited(decision.resetSeconds);
    }

    app.addHook('onRequest', async (request, reply) => {
      const ip = normalizeAddress(request.ip);
      const emergency = store.emergencyLimit;
      // Read once: Fastify builds a new routeOptions object on every access.
      const route = request.routeOptions;
      const pattern = route.url ?? '';
      if (emergency && !EMERGENCY_EXEMPT.some((prefix) => pattern.startsWith(prefix))) {
        await enforce(request, reply, 'emergency', emergency, `ip:${ip}`, 'ip');
      }
      if (!config.RATE_LIMIT_ENABLED) return;
      const name = route.config?.rateLimit ?? 'default';
      if (name === false) return;
      const spec = config.RATE_LIMITS[name] ?? config.RATE_LIMITS.default!;
      await enforce(request, reply, name, spec, `ip:${ip}`, 'ip');
    });

    // Keyed `username:<name>` (the login field's name), as before the lockout applied it.
    app.decorate('perAccountRateLimit', async (request: FastifyRequest, reply: FastifyReply, name: string, account: string) => {
      if (!config.RATE_LIMIT_ENABLED || normalizeLoginName(account) === '') return;
      const spec = config.RATE_LIMITS[name] ?? config.RATE_LIMITS.default!;
      // The keyed hash of the typed name: counted like the lockout counts it, and no typed text in Redis.
      await enforce(request, reply, name, spec, `username:${container.lockout.names.tag(account)}`, 'username');
    });

    app.addHook('onRoute', (route) => {
      if (docsPrefix && route.url.startsWith(docsPrefix) && route.config?.rateLimit === undefined) route.config = { ...route.config, rateLimit: false };
    });
  },
  { name: 'flokie-rate-limit' },
);
