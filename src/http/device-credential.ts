/**
 * Where a request carries its device credential (src/modules/auth/device-credentials.ts): the
 * `X-Device-Token` header for API clients, the HttpOnly cookie for browsers. Routes read it here
 * and hand the value to the auth services.
 */
import type { FastifyRequest } from 'fastify';

export const DEVICE_COOKIE = 'flokie_device';
export const DEVICE_HEADER = 'x-device-token';

/** The credential a request carries: the X-Device-Token header, else the cookie. */
export function deviceCredentialOf(request: FastifyRequest): string | undefined {
  const header = request.headers[DEVICE_HEADER];
  if (typeof header === 'string' && header !== '') return header;
  const cookie = request.cookies?.[DEVICE_COOKIE];
  return typeof cookie === 'string' && cookie !== '' ? cookie : undefined;
}
