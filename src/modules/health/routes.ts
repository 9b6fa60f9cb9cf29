/** /api/health — liveness with a database round-trip, and a detailed view for operators. */
import { cpus, freemem, loadavg, totalmem } from 'node:os';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Container } from '../../container.js';
import { pingDatabase } from '../../db/index.js';
import { Nullable } from '../../http/envelope.js';
import { authorizationError } from '../../http/errors.js';
import { timingSafeEqual } from 'node:crypto';

const VERSION = process.env.npm_package_version ?? '1.0.0';
const startedAt = Date.now();
const PING_TIMEOUT_MS = 2000;
/** How long /api/health reuses a database answer (see sharedPing). */
export const PUBLIC_PING_REUSE_MS = 1000;

const HealthSchema = Type.Object({
  // An enum, not a union of literals: fast-json-stringify would check each branch with ajv.
  status: Type.Unsafe<'healthy' | 'unhealthy'>({ type: 'string', enum: ['healthy', 'unhealthy'] }),
  timestamp: Type.String({ format: 'date-time' }),
  version: Type.String(),
  environment: Type.String(),
  database: Type.Object({ status: Type.String(), response_time: Nullable(Type.Number({ description: 'milliseconds' })) }),
});

const DetailedSchema = Type.Composite([
  HealthSchema,
  Type.Object({
    uptime: Type.Number({ description: 'seconds' }),
    pool: Type.Record(Type.String(), Type.Number()),
    cache: Type.Object({ backend: Type.String(), status: Type.String() }),
    system: Type.Object({ cpus: Type.Integer(), load_average: Type.Array(Type.Number()), memory_total: Type.Number(), memory_free: Type.Number() }),
    application: Type.Object({ pid: Type.Integer(), node: Type.String(), rss: Type.Number(), heap_used: Type.Number(), event_loop_delay_ms: Type.Number() }),
    password_hashing: Type.Object({ active: Type.Integer(), waiting: Type.Integer({ description: 'hashes queued behind PASSWORD_HASH_CONCURRENCY' }) }),
  }),
]);

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export default async function healthRoutes(fastify: FastifyInstance, { container }: { container: Container }) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { config } = container;
  const tags = ['Health'];

  /** One database round trip, bounded by PING_TIMEOUT_MS; never throws. */
  async function ping(): Promise<{ status: 'connected' | 'unavailable'; response_time: number | null }> {
    let timer: NodeJS.Timeout | undefined;
    try {
      const response_time = await Promise.race([
        pingDatabase(container.db),
        new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('timeout')), PING_TIMEOUT_MS))),
      ]);
      return { status: 'connected', response_time };
    } catch {
      return { status: 'unavailable', response_time: null };
    } finally {
      // Cleared, not just unref'd: a flood of health checks must not leave a timer per request behind.
      clearTimeout(timer);
    }
  }

  /**
   * The public check is exempt from rate limits (monitors and load balancers must always get
   * through), so it must not turn a flood into database load: every check within
   * PUBLIC_PING_REUSE_MS shares one round trip, the one in flight included. /detailed pings afresh.
   */
  let lastPing: { at: number; result: ReturnType<typeof ping> } | null = null;
  function sharedPing(): ReturnType<typeof ping> {
    const now = Date.now();
    if (lastPing && now - lastPing.at < PUBLIC_PING_REUSE_MS) return lastPing.result;
    lastPing = { at: now, result: ping() };
    return lastPing.result;
  }

  function probe(database: { status: string; response_time: number | null }) {
    return {
      status: database.status === 'connected' ? ('healthy' as const) : ('unhealthy' as const),
      timestamp: new Date().toISOString(),
      version: VERSION,
      environment: config.NODE_ENV,
      database,
    };
  }

  app.get(
    '/',
    { config: { rateLimit: false }, schema: { tags, summary: 'Service and database health', response: { 200: HealthSchema, 503: HealthSchema } } },
    async (_request, reply) => {
      const health = probe(await sharedPing());
      return reply.code(health.status === 'healthy' ? 200 : 503).send(health);
    },
  );

  /** Development: open. Elsewhere: an admin token, or X-Health-Token equal to HEALTH_TOKEN. */
  async function detailedAccess(request: FastifyRequest) {
    if (config.NODE_ENV === 'development') return;
    const given = request.headers['x-health-token'];
    if (config.HEALTH_TOKEN && typeof given === 'string' && safeEqual(given, config.HEALTH_TOKEN)) return;
    if (!request.headers.authorization) throw authorizationError('Detailed health needs an admin token or X-Health-Token');
    await app.requireAdmin(request);
  }

  app.get(
    '/detailed',
    {
      config: { rateLimit: false },
      preHandler: detailedAccess,
      schema: { tags, summary: 'Detailed health (admin or health token outside development)', security: [{ bearerAuth: [] }, { healthToken: [] }], response: { 200: DetailedSchema, 503: DetailedSchema } },
    },
    async (_request, reply) => {
      const health = probe(await ping());
      const memory = process.memoryUsage();
      const lag = await new Promise<number>((resolve) => {
        const t = performance.now();
        setImmediate(() => resolve(Math.round((performance.now() - t) * 100) / 100));
      });
      return reply.code(health.status === 'healthy' ? 200 : 503).send({
        ...health,
        uptime: Math.round((Date.now() - startedAt) / 1000),
        pool: container.database.poolStats(),
        cache: { backend: config.REDIS_URL ? 'redis' : 'memory', status: 'ok' },
        system: { cpus: cpus().length, load_average: loadavg(), memory_total: totalmem(), memory_free: freemem() },
        application: { pid: process.pid, node: process.version, rss: memory.rss, heap_used: memory.heapUsed, event_loop_delay_ms: lag },
        password_hashing: container.hasher.load,
      });
    },
  );
}
