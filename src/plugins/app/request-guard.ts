/**
 * Bad input that never reaches a route: an answer in the contract's error envelope, never a 500
 * and never a crash.
 * - Oversized request line + headers (MAX_HEADER_BYTES), malformed HTTP, duplicate
 *   Content-Length or Content-Length with Transfer-Encoding: Node's parser refuses them before
 *   Fastify sees a request; `clientErrorHandler` writes 431/400 envelopes with the security
 *   headers straight to the socket, then closes it (the stream cannot be trusted afterwards).
 * - URLs that cannot be percent-decoded: 400 (`frameworkErrors`).
 * - URLs longer than MAX_URL_LENGTH: 414; a NUL byte anywhere in the URL (raw or %00): 400.
 *   Bodies over BODY_LIMIT (413), non-JSON bodies (415) and malformed JSON (400) are Fastify's
 *   content-type parser errors mapped by plugins/app/error-handler.ts; text/plain gets no parser, so it is 415 too.
 * - An empty body sent as application/json counts as no body (see the parser below).
 */
import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { Config } from '../../config/index.js';
import type { ErrorCode } from '../../core/errors.js';
import { HttpError } from '../../http/errors.js';
import { escapeJsonForHtml } from '../../http/envelope.js';
import { errorBody, sendApiError } from './error-handler.js';
import { staticSecurityHeaders } from '../external/security-headers.js';

/** Request line plus headers, in bytes (Node's default, made explicit). */
export const MAX_HEADER_BYTES = 16 * 1024;
export const MAX_URL_LENGTH = 8 * 1024;

/** Fastify's `clientErrorHandler`: errors Node's HTTP parser raises on the raw socket. */
export function clientErrorHandler(config: Config) {
  const headers = staticSecurityHeaders(config);
  return function onClientError(this: FastifyInstance, error: NodeJS.ErrnoException, socket: Socket) {
    if (error.code === 'ECONNRESET' || socket.destroyed) return;
    let status = 400;
    const code: ErrorCode = 'VALIDATION_ERROR';
    let message = 'Malformed HTTP request';
    if (error.code === 'HPE_HEADER_OVERFLOW') {
      status = 431;
      message = `Request headers are too large (limit ${MAX_HEADER_BYTES} bytes)`;
    } else if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      status = 408;
      message = 'Request timed out';
    } else if (error.code === 'HPE_UNEXPECTED_CONTENT_LENGTH' || error.code === 'HPE_INVALID_TRANSFER_ENCODING') {
      message = 'Conflicting Content-Length / Transfer-Encoding headers';
    }
    this.log.info(
      { err: { code: error.code, message: error.message }, ip: socket.remoteAddress },
      'refused malformed request',
    );
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    const requestId = randomUUID();
    const body = escapeJsonForHtml(JSON.stringify(errorBody(new HttpError(status, code, message), requestId)));
    const lines = [
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}`,
      'Content-Type: application/json; charset=utf-8',
      `Content-Length: ${Buffer.byteLength(body)}`,
      `X-Request-ID: ${requestId}`,
      'Connection: close',
      ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
    ];
    socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
  };
}

/**
 * Fastify's `frameworkErrors`: a URL that cannot be decoded ("%zz") is refused before routing and
 * before any hook, so the envelope and the security headers are set here.
 */
export function frameworkErrors(config: Config) {
  const headers = staticSecurityHeaders(config);
  return (error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    reply.headers(headers).header('X-Request-ID', String(request.id));
    const message = error.code === 'FST_ERR_BAD_URL' ? 'URL is not validly encoded' : 'Bad request';
    return sendApiError(reply, new HttpError(400, 'VALIDATION_ERROR', message));
  };
}

export default fp(
  async function requestGuard(app: FastifyInstance) {
    // Every route speaks JSON: a text/plain body (what a cross-site "simple" request can send
    // without a preflight) is 415, like any other non-JSON type, instead of a string for the schema.
    app.removeContentTypeParser('text/plain');
    // `Content-Type: application/json` with an empty body (what Python's requests sends with
    // `json=None`) is no body at all, as if the header were absent; routes that need a body
    // answer 400 "A JSON request body is required". Anything else goes to Fastify's own parser.
    const parseJson = app.getDefaultJsonParser(
      app.initialConfig.onProtoPoisoning ?? 'error',
      app.initialConfig.onConstructorPoisoning ?? 'error',
    );
    app.removeContentTypeParser('application/json');
    app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
      if (body.length === 0) return done(null, undefined);
      return parseJson(request, body as string, done);
    });
    app.addHook('onRequest', (request, _reply, done) => {
      if (request.url.length > MAX_URL_LENGTH)
        return done(new HttpError(414, 'VALIDATION_ERROR', `URL is too long (limit ${MAX_URL_LENGTH} characters)`));
      if (/%00|\u0000/i.test(request.url))
        return done(new HttpError(400, 'VALIDATION_ERROR', 'URL contains a NUL byte'));
      done();
    });
  },
  { name: 'flokie-request-guard', dependencies: ['flokie-error-handler'] },
);
