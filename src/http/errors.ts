/**
 * The one error type routes throw, and the contract's error codes (docs/api.md). The error handler
 * plugin (plugins/error-handler.ts) turns every failure into the contract's envelope.
 */
export const ERROR_CODES = [
  'VALIDATION_ERROR',
  'AUTHENTICATION_ERROR',
  'AUTHORIZATION_ERROR',
  'NOT_FOUND',
  'METHOD_NOT_ALLOWED',
  'CONFLICT',
  'PAYLOAD_TOO_LARGE',
  'UNSUPPORTED_MEDIA_TYPE',
  'LOCKED',
  'RATE_LIMIT_EXCEEDED',
  'INTERNAL_SERVER_ERROR',
  'SERVICE_UNAVAILABLE',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export type ErrorDetails = Record<string, string[]>;

export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: ErrorCode,
    message: string,
    readonly details?: ErrorDetails,
    /** Extra response headers (Retry-After, WWW-Authenticate). */
    readonly headers?: Record<string, string>,
  ) {
    super(message);
  }
}

export const validationError = (message: string, details?: ErrorDetails) =>
  new ApiError(400, 'VALIDATION_ERROR', message, details);
export const authenticationError = (message = 'Authentication required') =>
  new ApiError(401, 'AUTHENTICATION_ERROR', message, undefined, { 'WWW-Authenticate': 'Bearer' });
export const authorizationError = (message = 'You are not allowed to do this') =>
  new ApiError(403, 'AUTHORIZATION_ERROR', message);
export const notFound = (message = 'Resource not found') => new ApiError(404, 'NOT_FOUND', message);
export const conflict = (message: string, details?: ErrorDetails) => new ApiError(409, 'CONFLICT', message, details);
export const lockedError = (retryAfterSeconds: number) =>
  new ApiError(423, 'LOCKED', 'Account is temporarily locked after too many failed logins', undefined, {
    'Retry-After': String(Math.max(1, Math.ceil(retryAfterSeconds))),
  });
export const rateLimited = (retryAfterSeconds: number, message = 'Too many requests, slow down') =>
  new ApiError(429, 'RATE_LIMIT_EXCEEDED', message, undefined, {
    'Retry-After': String(Math.max(1, Math.ceil(retryAfterSeconds))),
  });
export const serviceUnavailable = (message = 'Service temporarily unavailable', retryAfterSeconds?: number) =>
  new ApiError(503, 'SERVICE_UNAVAILABLE', message, undefined, retryAfterSeconds ? { 'Retry-After': String(Math.max(1, Math.ceil(retryAfterSeconds))) } : undefined);
