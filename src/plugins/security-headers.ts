/**
 * The guide's security headers on every response (errors, 404s and docs included), via
 * @fastify/helmet: X-Content-Type-Options, X-Frame-Options, X-XSS-Protection, Referrer-Policy,
 * Content-Security-Policy, and Strict-Transport-Security when the request came over HTTPS
 * (directly or through a trusted proxy) or the service runs in production.
 * docs/security.md explains each header and its setting.
 */
import helmet from '@fastify/helmet';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Config } from '../config/index.js';

/** Strictest policy that works for a JSON API: nothing may load, nothing may frame us. */
export const API_CSP: Record<string, string> = { 'default-src': "'none'", 'frame-ancestors': "'none'" };

/**
 * Swagger UI (@fastify/swagger-ui 6.x) renders one fixed <style> element; its hash is allowed
 * instead of 'unsafe-inline'. test/browser/docs.test.ts fails if an upgrade changes it.
 */
export const SWAGGER_UI_STYLE_HASH = "'sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w='";

/**
 * Swagger UI at /api/docs: its page loads only its own script and style files (no inline
 * script), so scripts need no 'unsafe-inline', nonce or hash. React sets element styles through
 * the CSSOM, which CSP allows; the bundled CSS uses data: images.
 */
export const DOCS_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "script-src-attr 'none'",
  `style-src 'self' ${SWAGGER_UI_STYLE_HASH}`,
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "object-src 'none'",
].join('; ');

export function cspDirectives(config: Pick<Config, 'CONTENT_SECURITY_POLICY'>): Record<string, string[]> {
  const map = config.CONTENT_SECURITY_POLICY ?? API_CSP;
  return Object.fromEntries(Object.entries(map).map(([name, value]) => [name, value.split(/\s+/).filter(Boolean)]));
}

export function hstsValue(config: Pick<Config, 'HSTS_MAX_AGE'>): string {
  return `max-age=${config.HSTS_MAX_AGE}; includeSubDomains`;
}

/** Headers for answers written outside Fastify (client errors on the raw socket). */
export function staticSecurityHeaders(config: Config): Record<string, string> {
  const csp = Object.entries(cspDirectives(config))
    .map(([name, values]) => `${name} ${values.join(' ')}`.trim())
    .join('; ');
  return {
    'Content-Security-Policy': csp,
    'X-Content-Type-Options': 'nosniff',
    'X-Frame-Options': 'DENY',
    'X-XSS-Protection': config.X_XSS_PROTECTION,
    'Referrer-Policy': 'strict-origin-when-cross-origin',
    'Cache-Control': 'no-store',
    ...(config.isProduction ? { 'Strict-Transport-Security': hstsValue(config) } : {}),
  };
}

export default fp(
  async function securityHeaders(app: FastifyInstance, { config }: { config: Config }) {
    await app.register(helmet, {
      global: true,
      contentSecurityPolicy: { useDefaults: false, directives: cspDirectives(config) },
      frameguard: { action: 'deny' },
      referrerPolicy: { policy: 'strict-origin-when-cross-origin' },
      xContentTypeOptions: true,
      // Set below: HSTS only where it means something, X-XSS-Protection from its setting.
      strictTransportSecurity: false,
      xXssProtection: false,
    });
    const hsts = hstsValue(config);
    app.addHook('onRequest', async (request, reply) => {
      reply.header('X-XSS-Protection', config.X_XSS_PROTECTION);
      // request.protocol believes X-Forwarded-Proto only from TRUSTED_PROXIES (see client-address.ts).
      if (config.isProduction || request.protocol === 'https') reply.header('Strict-Transport-Security', hsts);
    });
  },
  { name: 'flokie-security-headers' },
);
