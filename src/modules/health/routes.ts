/**
 * /api/health — the public check (service + database), the orchestrator probes (liveness: the
 * process answers, no database; readiness: everything serving needs), and the operators' views
 * (detailed, database, system), which reveal internals and are open only in development or to an
 * admin token / X-Health-Token.
 */
import { cpus, freemem, loadavg, totalmem } from 'node:os';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Container } from '../../container.js';
import { pingDatabase } from '../../db/index.js';
import { migrator } from '../../db/migrator.js';
import { Nullable } from '../../http/envelope.js';
import { authorizationError } from '../../core/errors.js';
import { errorResponses } from '../../http/openapi.js';
import { VERSION } from '../../core/version.js';
import { timingSafeEqual } from 'node:crypto';

const startedAt = Date.now();
const PING_TIMEOUT_MS = 2000;
/** How long /api/health reuses a database answer (see sharedPing). */
export const PUBLIC_PING_REUSE_MS = 1000;

const HealthSchema = Type.Object(
  {
    // An enum, not a union of literals: fast-json-stringify would check each branch with ajv.
    status: Type.Unsafe<'healthy' | 'unhealthy'>({ type: 'string', enum: ['healthy', 'unhealthy'] }),
    timestamp: Type.String({ format: 'date-time' }),
    version: Type.String(),
    environment: Type.String(),
    database: Type.Object({
      status: Type.String(),
      response_time: Nullable(Type.Number({ description: 'milliseconds' })),
    }),
  },
  { $id: 'Health' },
);

const SystemFigures = Type.Object({
  cpus: Type.Integer(),
  load_average: Type.Array(Type.Number()),
  memory_total: Type.Number(),
  memory_free: Type.Number(),
});
const ApplicationFigures = Type.Object({
  pid: Type.Integer(),
  node: Type.String(),
  rss: Type.Number(),
  heap_used: Type.Number(),
  event_loop_delay_ms: Type.Number(),
});
const Timestamp = Type.String({ format: 'date-time' });

const LivenessSchema = Type.Object(
  { status: Type.Literal('alive'), alive: Type.Boolean(), timestamp: Timestamp },
  { $id: 'Liveness' },
);

const ReadinessSchema = Type.Object(
  {
    status: Type.Unsafe<'ready' | 'not_ready'>({ type: 'string', enum: ['ready', 'not_ready'] }),
    ready: Type.Boolean(),
    timestamp: Timestamp,
    checks: Type.Object({
      database: Type.Object({
        status: Type.String(),
        response_time: Nullable(Type.Number({ description: 'milliseconds' })),
      }),
      migrations: Type.Object({
        status: Type.String({ description: 'applied, pending or unknown' }),
        pending: Nullable(Type.Integer()),
      }),
      redis: Type.Object({
        status: Type.String({
          description:
            'ready, unavailable (served from in-process state meanwhile: not a reason to stop traffic) or not ' +
            'configured',
        }),
      }),
    }),
  },
  { $id: 'Readiness' },
);

const DatabaseHealthSchema = Type.Object(
  {
    status: Type.Unsafe<'healthy' | 'unhealthy'>({ type: 'string', enum: ['healthy', 'unhealthy'] }),
    timestamp: Timestamp,
    database: Type.Object({
      status: Type.String(),
      response_time: Nullable(Type.Number({ description: 'milliseconds' })),
      dialect: Type.String(),
      pool: Type.Record(Type.String(), Type.Number()),
    }),
  },
  { $id: 'DatabaseHealth' },
);

const SystemHealthSchema = Type.Object(
  {
    status: Type.Literal('healthy'),
    timestamp: Timestamp,
    uptime: Type.Number({ description: 'seconds' }),
    system: SystemFigures,
    application: ApplicationFigures,
  },
  { $id: 'SystemHealth' },
);

const DetailedSchema = Type.Composite(
  [
    HealthSchema,
    Type.Object({
      uptime: Type.Number({ description: 'seconds' }),
      pool: Type.Record(Type.String(), Type.Number()),
      cache: Type.Object({ backend: Type.String(), status: Type.String() }),
      system: SystemFigures,
      application: ApplicationFigures,
      password_hashing: Type.Object({
        active: Type.Integer(),
        waiting: Type.Integer({ description: 'hashes queued behind PASSWORD_HASH_CONCURRENCY' }),
      }),
    }),
  ],
  { $id: 'DetailedHealth' },
);

/** CPU, load and memory of the machine. */
function systemFigures() {
  return { cpus: cpus().length, load_average: loadavg(), memory_total: totalmem(), memory_free: freemem() };
}

/** This process: memory and how long the event loop takes to come round. */
async function applicationFigures() {
  const memory = process.memoryUsage();
  const lag = await new Promise<number>((resolve) => {
    const t = performance.now();
    setImmediate(() => resolve(Math.round((performance.now() - t) * 100) / 100));
  });
  return {
    pid: process.pid,
    node: process.version,
    rss: memory.rss,
    heap_used: memory.heapUsed,
    event_loop_delay_ms: lag,
  };
}

const uptime = () => Math.round((Date.now() - startedAt) / 1000);

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export default async function healthRoutes(fastify: FastifyInstance, { container }: { container: Container }) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { config } = container;
  const tags = ['Health'];
  const operatorsOnly: Record<string, string[]>[] = [{ bearerAuth: [] }, { healthToken: [] }];

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
    {
      schema: {
        tags,
        operationId: 'getHealth',
        summary: 'Service and database health',
        response: { 200: HealthSchema, 503: HealthSchema },
      },
    },
    async (_request, reply) => {
      const health = probe(await sharedPing());
      return reply.code(health.status === 'healthy' ? 200 : 503).send(health);
    },
  );

  /**
   * Operators' views (detailed, database, system). Development: open. Elsewhere: an admin token, or X-Health-Token
   * equal to HEALTH_TOKEN.
   */
  async function detailedAccess(request: FastifyRequest) {
    if (config.NODE_ENV === 'development') return;
    const given = request.headers['x-health-token'];
    if (config.HEALTH_TOKEN && typeof given === 'string' && safeEqual(given, config.HEALTH_TOKEN)) return;
    if (!request.headers.authorization)
      throw authorizationError('This health view needs an admin token or X-Health-Token');
    await app.requireAdmin(request);
  }

  app.get(
    '/detailed',
    {
      preHandler: detailedAccess,
      schema: {
        tags,
        operationId: 'getDetailedHealth',
        summary: 'Detailed health (admin or health token outside development)',
        security: operatorsOnly,
        response: { 200: DetailedSchema, 503: DetailedSchema, ...errorResponses(403) },
      },
    },
    async (_request, reply) => {
      const health = probe(await ping());
      return reply.code(health.status === 'healthy' ? 200 : 503).send({
        ...health,
        uptime: uptime(),
        pool: container.database.poolStats(),
        cache: { backend: config.REDIS_URL ? 'redis' : 'memory', status: 'ok' },
        system: systemFigures(),
        application: await applicationFigures(),
        password_hashing: container.hasher.load,
      });
    },
  );

  app.get(
    '/liveness',
    {
      schema: {
        tags,
        operationId: 'getLiveness',
        summary: 'Liveness probe: the process answers (no database, no dependency)',
        response: { 200: LivenessSchema },
      },
    },
    async () => ({ status: 'alive' as const, alive: true, timestamp: new Date().toISOString() }),
  );

  /**
   * All migrations applied? Asked once per sharedPing window until the answer is yes, which is
   * then kept: migrations are applied at start (AUTO_MIGRATE) or by `npx flokie migrate`, not undone
   * under a running service.
   */
  let migrationsApplied = false;
  let lastMigrationCheck: { at: number; result: Promise<{ status: string; pending: number | null }> } | null = null;
  function migrationState(): Promise<{ status: string; pending: number | null }> {
    if (migrationsApplied) return Promise.resolve({ status: 'applied', pending: 0 });
    const now = Date.now();
    if (lastMigrationCheck && now - lastMigrationCheck.at < PUBLIC_PING_REUSE_MS) return lastMigrationCheck.result;
    const result = migrator(container.db)
      .getMigrations()
      .then(
        (list) => {
          const pending = list.filter((m) => m.executedAt === undefined).length;
          migrationsApplied = pending === 0;
          return { status: pending === 0 ? 'applied' : 'pending', pending };
        },
        () => ({ status: 'unknown', pending: null }),
      );
    lastMigrationCheck = { at: now, result };
    return result;
  }

  app.get(
    '/readiness',
    {
      schema: {
        tags,
        operationId: 'getReadiness',
        summary: 'Readiness probe: 200 when the database answers and its schema is up to date, else 503',
        description:
          'Redis is reported but never makes the service unready: without it the service serves from in-process state.',
        response: { 200: ReadinessSchema, 503: ReadinessSchema },
      },
    },
    async (_request, reply) => {
      const [database, migrations] = await Promise.all([sharedPing(), migrationState()]);
      const redis = !container.redis ? 'not configured' : container.redis.status === 'ready' ? 'ready' : 'unavailable';
      const ready = database.status === 'connected' && migrations.status === 'applied';
      return reply.code(ready ? 200 : 503).send({
        status: ready ? 'ready' : 'not_ready',
        ready,
        timestamp: new Date().toISOString(),
        checks: { database, migrations, redis: { status: redis } },
      });
    },
  );

  app.get(
    '/database',
    {
      preHandler: detailedAccess,
      schema: {
        tags,
        operationId: 'getDatabaseHealth',
        summary: 'Database round trip and pool (admin or health token outside development)',
        security: operatorsOnly,
        response: { 200: DatabaseHealthSchema, 503: DatabaseHealthSchema, ...errorResponses(403) },
      },
    },
    async (_request, reply) => {
      const database = await ping();
      const healthy = database.status === 'connected';
      return reply.code(healthy ? 200 : 503).send({
        status: healthy ? 'healthy' : 'unhealthy',
        timestamp: new Date().toISOString(),
        database: { ...database, dialect: container.database.dialect, pool: container.database.poolStats() },
      });
    },
  );

  app.get(
    '/system',
    {
      preHandler: detailedAccess,
      schema: {
        tags,
        operationId: 'getSystemHealth',
        summary: 'Machine and process figures (admin or health token outside development)',
        security: operatorsOnly,
        response: { 200: SystemHealthSchema, ...errorResponses(403) },
      },
    },
    async () => ({
      status: 'healthy' as const,
      timestamp: new Date().toISOString(),
      uptime: uptime(),
      system: systemFigures(),
      application: await applicationFigures(),
    }),
  );
}
