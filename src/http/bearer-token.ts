/**
 * The token of `Authorization: Bearer <token>`. A missing and a malformed header both give null:
 * each caller decides what that means (plugins/authenticate.ts refuses both, each with its own
 * message; the rate limiter falls back to the address; confirming an e-mail change goes on without).
 */
import type { FastifyRequest } from 'fastify';
import { authenticationError } from '../core/errors.js';

const BEARER = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/i;

export function bearerToken(request: FastifyRequest): string | null {
  const header = request.headers.authorization;
  const match = header === undefined ? null : BEARER.exec(header);
  return match ? match[1]! : null;
}

/** An Authorization header is there, but it is not "Bearer <token>". */
export function hasMalformedAuthorization(request: FastifyRequest): boolean {
  return request.headers.authorization !== undefined && bearerToken(request) === null;
}

export const malformedAuthorization = () => authenticationError('Authorization header must be "Bearer <token>"');
