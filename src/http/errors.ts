/**
 * The HTTP edge of the domain errors (src/core/errors.ts): each contract code's status and the
 * headers that go with it. `HttpError` is for the few failures only the HTTP layer knows about
 * (a URL too long, a method not allowed) and carries its own status. plugins/app/error-handler.ts turns
 * every failure into the contract's envelope (docs/api.md).
 */
import { DomainError, type ErrorCode, type ErrorDetails } from '../core/errors.js';

export const STATUS_BY_CODE: Record<ErrorCode, number> = {
  VALIDATION_ERROR: 400,
  AUTHENTICATION_ERROR: 401,
  AUTHORIZATION_ERROR: 403,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  CONFLICT: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  LOCKED: 423,
  RATE_LIMIT_EXCEEDED: 429,
  INTERNAL_SERVER_ERROR: 500,
  SERVICE_UNAVAILABLE: 503,
};

export class HttpError extends DomainError {
  constructor(
    readonly statusCode: number,
    code: ErrorCode,
    message: string,
    details?: ErrorDetails,
  ) {
    super(code, message, details);
  }
}

export function httpStatusOf(error: DomainError): number {
  return error instanceof HttpError ? error.statusCode : STATUS_BY_CODE[error.code];
}

export function httpHeadersOf(error: DomainError): Record<string, string> | undefined {
  if (error.code === 'AUTHENTICATION_ERROR') return { 'WWW-Authenticate': 'Bearer' };
  if (error.retryAfterSeconds === undefined) return undefined;
  return { 'Retry-After': String(Math.max(1, Math.ceil(error.retryAfterSeconds))) };
}
