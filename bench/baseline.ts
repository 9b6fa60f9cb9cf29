/**
 * The baseline: a bare Fastify app answering /api/health and /api/auth/me with the same JSON
 * shape (and the same fast response serialisation) as Flokie, but with no security work at all:
 * no database, no token check, no logging, no extra headers. The ratio Flokie / baseline is what
 * the security costs. With BASELINE_HEADERS it also sends a given set of response headers.
 * bench/run.ts transpiles this file and runs it with plain `node`, so the baseline pays no loader
 * cost that the built service does not pay either.
 */
import Fastify from 'fastify';

const port = Number(process.env.PORT ?? 5001);
const app = Fastify({ logger: false });

// BASELINE_HEADERS (a JSON object): a second reference that also sends Flokie's response headers,
// so the bench can tell the cost of the headers on the wire from the cost of the work behind them.
const extraHeaders = process.env.BASELINE_HEADERS
  ? (JSON.parse(process.env.BASELINE_HEADERS) as Record<string, string>)
  : null;
if (extraHeaders) {
  app.addHook('onRequest', (_request, reply, done) => {
    reply.headers(extraHeaders);
    done();
  });
}

const health = {
  type: 'object',
  properties: {
    status: { type: 'string' },
    timestamp: { type: 'string' },
    version: { type: 'string' },
    environment: { type: 'string' },
    database: {
      type: 'object',
      properties: { status: { type: 'string' }, response_time: { type: ['number', 'null'] } },
    },
  },
} as const;

const user = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    username: { type: 'string' },
    email: { type: 'string' },
    first_name: { type: ['string', 'null'] },
    last_name: { type: ['string', 'null'] },
    bio: { type: ['string', 'null'] },
    is_active: { type: 'boolean' },
    is_verified: { type: 'boolean' },
    is_admin: { type: 'boolean' },
    created_at: { type: 'string' },
    updated_at: { type: 'string' },
    last_login_at: { type: ['string', 'null'] },
  },
} as const;

const me = {
  type: 'object',
  properties: {
    success: { type: 'boolean' },
    message: { type: 'string' },
    data: { type: 'object', properties: { user } },
  },
} as const;

const createdAt = new Date().toISOString();

app.get('/api/health', { schema: { response: { 200: health } } }, async () => ({
  status: 'healthy',
  timestamp: new Date().toISOString(),
  version: '1.0.0',
  environment: 'production',
  database: { status: 'connected', response_time: 0.05 },
}));

app.get('/api/auth/me', { schema: { response: { 200: me } } }, async () => ({
  success: true,
  message: 'Current user',
  data: {
    user: {
      id: '00000000-0000-4000-8000-000000000002',
      username: 'user0000002',
      email: 'user0000002@example.test',
      first_name: 'Grace',
      last_name: 'Lovelace2',
      bio: null,
      is_active: true,
      is_verified: true,
      is_admin: false,
      created_at: createdAt,
      updated_at: createdAt,
      last_login_at: null,
    },
  },
}));

await app.listen({ port, host: '127.0.0.1' });
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
