/**
 * Domain errors: what services and the rules they own throw. They name what went wrong (a code
 * from the contract's list, docs/api.md) and never an HTTP status; the HTTP edge
 * (src/http/errors.ts, used by plugins/app/error-handler.ts) maps each code to its status and headers.
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

/** Field name → messages, as the contract's `error.details`. */
export type ErrorDetails = Record<string, string[]>;

export class DomainError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: ErrorDetails,
    /** When trying again makes sense (LOCKED, RATE_LIMIT_EXCEEDED, SERVICE_UNAVAILABLE). */
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }
}

export const validationError = (message: string, details?: ErrorDetails) =>
  new DomainError('VALIDATION_ERROR', message, details);
export const authenticationError = (message = 'Authentication required') =>
  new DomainError('AUTHENTICATION_ERROR', message);
export const authorizationError = (message = 'You are not allowed to do this') =>
  new DomainError('AUTHORIZATION_ERROR', message);
export const notFound = (message = 'Resource not found') => new DomainError('NOT_FOUND', message);
export const conflict = (message: string, details?: ErrorDetails) => new DomainError('CONFLICT', message, details);
export const lockedError = (retryAfterSeconds: number) =>
  new DomainError('LOCKED', 'Account is temporarily locked after too many failed logins', undefined, retryAfterSeconds);
export const rateLimited = (retryAfterSeconds: number, message = 'Too many requests, slow down') =>
  new DomainError('RATE_LIMIT_EXCEEDED', message, undefined, retryAfterSeconds);
export const serviceUnavailable = (message = 'Service temporarily unavailable', retryAfterSeconds?: number) =>
  new DomainError('SERVICE_UNAVAILABLE', message, undefined, retryAfterSeconds);
