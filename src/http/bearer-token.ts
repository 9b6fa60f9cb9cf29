/**
 * The token of `Authorization: Bearer <token>`. A missing and a malformed header both give null:
 * the rate limiter falls back to the address and confirming an e-mail change goes on without;
 * authenticate and /refresh use `presentedBearerToken`, which refuses a malformed header.
 */
import type { FastifyRequest } from 'fastify';
import { authenticationError } from '../core/errors.js';

const BEARER = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/i;

export function bearerToken(request: FastifyRequest): string | null {
  const header = request.headers.authorization;
  const match = header === undefined ? null : BEARER.exec(header);
  return match ? match[1]! : null;
}

/**
 * The token of a request that must not carry a malformed header: null when there is no Authorization
 * header, a 401 when there is one that is not "Bearer <token>" (authenticate and /refresh).
 */
export function presentedBearerToken(request: FastifyRequest): string | null {
  const token = bearerToken(request);
  if (token === null && request.headers.authorization !== undefined) {
    throw authenticationError('Authorization header must be "Bearer <token>"');
  }
  return token;
}
