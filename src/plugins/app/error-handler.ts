import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import FindMyWay, { type HTTPMethod } from 'find-my-way';
import { DATABASE_RETRY_AFTER_SECONDS, isDatabaseUnavailable } from '../../db/index.js';
import { DomainError, serviceUnavailable, type ErrorCode } from '../../core/errors.js';
import { HttpError, httpHeadersOf, httpStatusOf, STATUS_BY_CODE } from '../../http/errors.js';
import { validationDetails, type AjvError } from '../../http/validation.js';

/** Status code → contract code for errors raised by Fastify itself or its plugins. */
const CODE_BY_STATUS = Object.fromEntries(
  Object.entries(STATUS_BY_CODE).map(([code, status]) => [status, code]),
) as Record<number, ErrorCode>;

function toDomainError(
  error: FastifyError & { validation?: AjvError[]; validationContext?: string },
  request: FastifyRequest,
): DomainError {
  if (error instanceof DomainError) return error;
  if (error.validation) {
    const { details, total } = validationDetails(error.validation, error.validationContext);
    const shown = Object.values(details).reduce((n, messages) => n + messages.length, 0);
    let message =
      total > shown ? `Request validation failed (${shown} of ${total} problems shown)` : 'Request validation failed';
    // No body at all (or an empty one sent as JSON) where the route needs one.
    if (error.validationContext === 'body' && request.body == null) message = 'A JSON request body is required';
    return new DomainError('VALIDATION_ERROR', message, details);
  }
  const status = error.statusCode ?? 500;
  if (status >= 500) return new DomainError('INTERNAL_SERVER_ERROR', 'An unexpected error occurred');
  const code = CODE_BY_STATUS[status] ?? 'VALIDATION_ERROR';
  const messages: Partial<Record<string, string>> = {
    FST_ERR_CTP_INVALID_JSON_BODY: 'Malformed JSON body',
    FST_ERR_CTP_BODY_TOO_LARGE: 'Request body is too large',
    FST_ERR_CTP_INVALID_MEDIA_TYPE: 'Unsupported Content-Type; send application/json',
    FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'Content-Length does not match the body',
  };
  let message = messages[error.code] ?? (status < 500 && error.message ? error.message : 'Request failed');
  if (error instanceof SyntaxError || /JSON/.test(error.message)) message = 'Malformed JSON body';
  if (/prototype|constructor/i.test(error.message)) message = 'Body contains a forbidden property name';
  return new HttpError(status, code, message);
}

export function errorBody(error: DomainError, requestId: string) {
  return {
    success: false as const,
    error: { code: error.code, message: error.message, ...(error.details ? { details: error.details } : {}) },
    timestamp: new Date().toISOString(),
    request_id: requestId,
  };
}

export function sendApiError(reply: FastifyReply, error: DomainError): FastifyReply {
  const headers = httpHeadersOf(error);
  if (headers) reply.headers(headers);
  return reply
    .code(httpStatusOf(error))
    .type('application/json; charset=utf-8')
    .send(errorBody(error, String(reply.request.id)));
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Called for every 5xx with the original error (Sentry hooks in here). */
    reportError: (error: unknown, request: FastifyRequest) => void;
  }
}

/**
 * Every failure → the contract's error envelope: thrown domain errors (src/core/errors.ts), schema validation errors,
 * Fastify's body-parsing errors, unknown routes (404) and known paths with the wrong method (405).
 * 500s carry no internals; the original is logged and reported. A database that is unreachable or
 * too slow is a 503 with Retry-After, never a 500 (src/db/availability.ts decides which errors).
 */
export default fp(
  async function errorHandler(app: FastifyInstance) {
    app.decorate('reportError', () => {});

    app.setErrorHandler((error: FastifyError, request, reply) => {
      if (!(error instanceof DomainError) && isDatabaseUnavailable(error)) {
        // Not a bug: the database did not answer. Logged once per outage (src/db/availability.ts), not per request.
        if (app.hasDecorator('container')) app.container.database.outage.note(error);
        return sendApiError(
          reply,
          serviceUnavailable('Service temporarily unavailable; retry shortly', DATABASE_RETRY_AFTER_SECONDS),
        );
      }
      const apiError = toDomainError(error, request);
      if (httpStatusOf(apiError) >= 500) {
        request.log.error({ err: error }, 'unhandled error');
        app.reportError(error, request);
      }
      return sendApiError(reply, apiError);
    });

    // A second router holding every route only to tell 404 from 405.
    const router = FindMyWay({ ignoreTrailingSlash: true });
    app.addHook('onRoute', (route) => {
      const methods = Array.isArray(route.method) ? route.method : [route.method];
      for (const method of methods) {
        if (method === 'HEAD' || method === 'OPTIONS') continue;
        try {
          router.on(method as HTTPMethod, route.url, () => {});
        } catch {
          /* duplicate registration of the same route pattern */
        }
      }
    });

    app.setNotFoundHandler((request, reply) => {
      const path = request.url.split('?')[0] ?? '/';
      const allowed = (['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const).filter(
        (m) => m !== request.method && router.find(m, path),
      );
      if (allowed.length > 0 && request.method !== 'OPTIONS') {
        reply.header('Allow', allowed.join(', '));
        return sendApiError(
          reply,
          new HttpError(405, 'METHOD_NOT_ALLOWED', `Method ${request.method} is not allowed here`),
        );
      }
      return sendApiError(reply, new HttpError(404, 'NOT_FOUND', 'The requested resource was not found'));
    });
  },
  { name: 'flokie-error-handler' },
);
