/**
 * How long a connection may be held, and how many one process holds (docs/security.md,
 * "Timeouts and connections"). Without these Node waits forever for a body sent one byte at a
 * time, so a few slow clients could hold every socket:
 * - a request (headers and body) must arrive within REQUEST_TIMEOUT_SECONDS, its headers within
 *   HEADERS_TIMEOUT_SECONDS; past either, Node raises ERR_HTTP_REQUEST_TIMEOUT and
 *   plugins/app/request-guard.ts answers 408 in the envelope and closes the connection;
 * - while a request is being served, a connection on which nothing moves either way for
 *   REQUEST_TIMEOUT_SECONDS is closed (Node's socket timeout, 0 by default): Node's request
 *   timeout covers only the arrival of the request, so without this an answer that never comes,
 *   or one a client never reads, would hold the socket for good;
 * - an idle keep-alive connection is closed after KEEP_ALIVE_TIMEOUT_SECONDS (longer than the
 *   shipped nginx's upstream keep-alive, 60 s, so nginx never reuses a socket we are closing);
 * - at most MAX_CONNECTIONS sockets per process; Node closes further ones at once.
 */
import type { Config } from '../config/index.js';

type ConnectionSettings = Pick<
  Config,
  'REQUEST_TIMEOUT_SECONDS' | 'HEADERS_TIMEOUT_SECONDS' | 'KEEP_ALIVE_TIMEOUT_SECONDS'
>;

/** Fastify's own options. */
export function fastifyTimeouts(config: ConnectionSettings) {
  return {
    requestTimeout: config.REQUEST_TIMEOUT_SECONDS * 1000,
    // The socket timeout; between requests Node uses keepAliveTimeout in its place.
    connectionTimeout: config.REQUEST_TIMEOUT_SECONDS * 1000,
    keepAliveTimeout: config.KEEP_ALIVE_TIMEOUT_SECONDS * 1000,
  };
}

/** Options for http(s).createServer. */
export function serverTimeouts(config: ConnectionSettings) {
  const requestMs = config.REQUEST_TIMEOUT_SECONDS * 1000;
  // Node looks for overdue requests every connectionsCheckingInterval (30 s by default), which
  // would let a short timeout run long: look a few times per timeout, at most once a second.
  return {
    headersTimeout: Math.min(config.HEADERS_TIMEOUT_SECONDS * 1000, requestMs),
    connectionsCheckingInterval: Math.min(30_000, Math.max(1000, requestMs / 4)),
  };
}
