/**
 * The guide's security headers on every response (errors, 404s and docs included):
 * X-Content-Type-Options, X-Frame-Options, X-XSS-Protection, Referrer-Policy,
 * Content-Security-Policy, and Strict-Transport-Security when the request came over HTTPS
 * (directly or through a trusted proxy) or the service runs in production.
 * docs/security.md explains each header and its setting.
 *
 * helmet decides the headers. Our policy has no per-request parts (no nonces), so helmet runs
 * once at start-up and its output is set on each response as one constant map; @fastify/helmet
 * rebuilt the whole helmet middleware on every request, a visible share of every call
 * (docs/benchmarks.md, section 2). The same map serves answers written outside Fastify.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import helmet from 'helmet';
import type { Config } from '../../config/index.js';

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

/**
 * The pages behind the e-mailed links (src/modules/link-pages): static HTML and one script of
 * ours, which may talk only to this origin. Stricter than DOCS_CSP: no style or image at all, and
 * `form-action 'none'` so the reset form can never be submitted as a URL with the password in it.
 */
export const LINK_PAGES_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "script-src-attr 'none'",
  "style-src 'none'",
  "img-src 'none'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "object-src 'none'",
].join('; ');

/**
 * Headers that replace the common ones on the link pages: the token is in their URL, so no
 * Referer may ever carry it and no cache may keep the page.
 */
export const LINK_PAGES_HEADERS: Record<string, string> = {
  'content-security-policy': LINK_PAGES_CSP,
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

export function cspDirectives(config: Pick<Config, 'CONTENT_SECURITY_POLICY'>): Record<string, string[]> {
  const map = config.CONTENT_SECURITY_POLICY ?? API_CSP;
  return Object.fromEntries(Object.entries(map).map(([name, value]) => [name, value.split(/\s+/).filter(Boolean)]));
}

export function hstsValue(config: Pick<Config, 'HSTS_MAX_AGE'>): string {
  return `max-age=${config.HSTS_MAX_AGE}; includeSubDomains`;
}

/** Runs helmet once against a recorder and returns the headers it set. */
function helmetHeaders(config: Pick<Config, 'CONTENT_SECURITY_POLICY'>): Record<string, string> {
  const headers: Record<string, string> = {};
  const recorder = {
    setHeader: (name: string, value: unknown) => void (headers[name] = String(value)),
    removeHeader: (name: string) => void delete headers[name],
  };
  let failure: unknown;
  helmet({
    contentSecurityPolicy: { useDefaults: false, directives: cspDirectives(config) },
    frameguard: { action: 'deny' },
    referrerPolicy: { policy: 'strict-origin-when-cross-origin' },
    xContentTypeOptions: true,
    // Added by securityHeaderSet: X-XSS-Protection from its setting, HSTS only where it means something.
    strictTransportSecurity: false,
    xXssProtection: false,
  })({} as IncomingMessage, recorder as unknown as ServerResponse, (error?: unknown) => (failure = error));
  if (failure) throw failure;
  return headers;
}

export interface SecurityHeaderSet {
  /** For answers over plain HTTP outside production. */
  plain: Record<string, string>;
  /** The same plus Strict-Transport-Security. */
  withHsts: Record<string, string>;
}

export function securityHeaderSet(
  config: Pick<Config, 'CONTENT_SECURITY_POLICY' | 'X_XSS_PROTECTION' | 'HSTS_MAX_AGE'>,
): SecurityHeaderSet {
  const plain = { ...helmetHeaders(config), 'X-XSS-Protection': config.X_XSS_PROTECTION };
  return { plain, withHsts: { ...plain, 'Strict-Transport-Security': hstsValue(config) } };
}

/** Headers for answers written outside Fastify (client errors on the raw socket). */
export function staticSecurityHeaders(config: Config): Record<string, string> {
  const set = securityHeaderSet(config);
  return { ...(config.isProduction ? set.withHsts : set.plain), 'Cache-Control': 'no-store' };
}

/**
 * Fastify lower-cases every header name it is given, on every request; names that already are
 * lower case come back as the same string, so nothing is allocated or hashed per request.
 */
function lowerCaseNames(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([name, value]) => [name.toLowerCase(), value]));
}

export default fp(
  async function securityHeaders(app: FastifyInstance, { config }: { config: Config }) {
    const set = securityHeaderSet(config);
    const plain = lowerCaseNames(set.plain);
    const withHsts = lowerCaseNames(set.withHsts);
    app.addHook('onRequest', (request, reply, done) => {
      // request.protocol believes X-Forwarded-Proto only from TRUSTED_PROXIES (see client-address.ts).
      reply.headers(config.isProduction || request.protocol === 'https' ? withHsts : plain);
      done();
    });
  },
  { name: 'flokie-security-headers' },
);
