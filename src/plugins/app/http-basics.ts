import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { escapeJsonForHtml } from '../../http/envelope.js';

/** An incoming X-Request-ID is considered only if it looks like an id, never as a log-injection vector. */
const SANE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

interface RawRequest {
  headers: Record<string, string | string[] | undefined>;
  socket?: { remoteAddress?: string };
}

/** The X-Request-ID a client sent that we did not adopt (logged apart as `client_request_id`). */
const clientRequestIds = new WeakMap<object, string>();

/**
 * Fastify's genReqId: a sane X-Request-ID is our request id only when it comes from a trusted
 * proxy (TRUSTED_PROXIES, the same check as client-address.ts), which sets it for its own
 * correlation. Anyone else gets an id we make, so logs and security events never carry a
 * client-chosen id as ours; the client's is kept for the access line as `client_request_id`.
 */
export function requestIdGenerator(trustedPeer: (address: string) => boolean): (request: RawRequest) => string {
  return (request) => {
    const incoming = request.headers['x-request-id'];
    if (typeof incoming !== 'string' || !SANE_REQUEST_ID.test(incoming)) return randomUUID();
    if (trustedPeer(request.socket?.remoteAddress ?? '')) return incoming;
    clientRequestIds.set(request, incoming);
    return randomUUID();
  };
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
          {
            method: request.method,
            path: request.url.split('?')[0],
            status: reply.statusCode,
            ip: request.ip,
            ms: Math.round(reply.elapsedTime * 10) / 10,
            client_request_id: clientRequestIds.get(request.raw),
          },
          'request completed',
        );
        done();
      });
    }
    app.addHook('onSend', (request: FastifyRequest, reply, payload, done) => {
      if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
      const type = reply.getHeader('content-type');
      done(
        null,
        typeof payload === 'string' && typeof type === 'string' && type.includes('json')
          ? escapeJsonForHtml(payload)
          : payload,
      );
    });
  },
  { name: 'flokie-http-basics' },
);
