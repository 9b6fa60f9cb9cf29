import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { escapeJsonForHtml } from '../http/envelope.js';

/** An incoming X-Request-ID is kept only if it looks like an id, never as a log-injection vector. */
const SANE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export function genReqId(request: { headers: Record<string, string | string[] | undefined> }): string {
  const incoming = request.headers['x-request-id'];
  return typeof incoming === 'string' && SANE_REQUEST_ID.test(incoming) ? incoming : randomUUID();
}

/**
 * Request ids on every response, HTML-safe JSON (docs/api.md), and Cache-Control: no-store on
 * everything but the static docs assets, since API responses carry tokens and user data.
 */
export default fp(
  async function httpBasics(app: FastifyInstance, { accessLog }: { accessLog: boolean }) {
    // Hooks on every request take callbacks, not async functions: no promise per hook.
    app.addHook('onRequest', (request, reply, done) => {
      reply.header('x-request-id', request.id);
      done();
    });
    // One access-log line per request (Fastify's default writes two). The path only: query
    // strings can carry search terms and other personal data.
    if (accessLog) {
      app.addHook('onResponse', (request, reply, done) => {
        request.log.info(
          { method: request.method, path: request.url.split('?')[0], status: reply.statusCode, ip: request.ip, ms: Math.round(reply.elapsedTime * 10) / 10 },
          'request completed',
        );
        done();
      });
    }
    app.addHook('onSend', (request: FastifyRequest, reply, payload, done) => {
      if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
      const type = reply.getHeader('content-type');
      done(null, typeof payload === 'string' && typeof type === 'string' && type.includes('json') ? escapeJsonForHtml(payload) : payload);
    });
  },
  { name: 'flokie-http-basics' },
);
