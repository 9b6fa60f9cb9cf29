/**
 * CORS via @fastify/cors. Only origins listed in CORS_ORIGINS are echoed back; any other origin
 * gets no CORS header at all (and its preflight a 404), so the browser keeps the response from
 * the calling page. Preflights are answered in the first request hook, before rate limits,
 * authentication or any database work, and may be cached by the browser for 10 minutes.
 * `*` with credentials is refused when the configuration is loaded.
 */
import cors from '@fastify/cors';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Config } from '../../config/index.js';

/** Response headers a cross-origin client may read. */
const EXPOSED_HEADERS = ['X-Request-ID', 'Retry-After', 'RateLimit-Limit', 'RateLimit-Remaining', 'RateLimit-Reset'];

export default fp(
  async function corsPlugin(app: FastifyInstance, { config }: { config: Config }) {
    const anyOrigin = config.CORS_ORIGINS.includes('*');
    const allowed = new Set(config.CORS_ORIGINS);
    await app.register(cors, {
      // A function (not the list itself): a refused origin must get no Access-Control-* header.
      origin: (origin, callback) =>
        callback(null, origin !== undefined && (anyOrigin || allowed.has(origin)) ? origin : false),
      methods: config.CORS_METHODS,
      allowedHeaders: config.CORS_ALLOW_HEADERS,
      exposedHeaders: EXPOSED_HEADERS,
      credentials: config.CORS_SUPPORTS_CREDENTIALS,
      maxAge: 600,
      strictPreflight: true,
    });
  },
  { name: 'flokie-cors' },
);
