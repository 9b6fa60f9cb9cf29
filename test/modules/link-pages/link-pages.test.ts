/**
 * The pages behind the e-mailed links over plain HTTP: every security header, their own strict
 * CSP (no inline script or style anywhere in the HTML), no-referrer, no-store; GET and HEAD only;
 * the HTML is a constant that nothing in the request reaches.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { generateSecret } from '../../../src/config/secret-strength.js';
import { LINK_PAGES_SCRIPT_PATH } from '../../../src/modules/link-pages/routes.js';
import { LINK_PAGES_CSP } from '../../../src/plugins/external/security-headers.js';
import { createTestApp, json, type TestApp } from '../../helpers/app.js';

const PAGES = ['/verify-email', '/reset-password', '/confirm-email-change'];

function assertPageHeaders(res: LightMyRequestResponse, label: string) {
  assert.equal(res.statusCode, 200, label);
  assert.equal(res.headers['content-security-policy'], LINK_PAGES_CSP, label);
  assert.equal(res.headers['referrer-policy'], 'no-referrer', label);
  assert.equal(res.headers['cache-control'], 'no-store', label);
  assert.equal(res.headers['x-content-type-options'], 'nosniff', label);
  assert.equal(res.headers['x-frame-options'], 'DENY', label);
  assert.equal(res.headers['x-xss-protection'], '0', label);
  assert.equal(res.headers['cross-origin-opener-policy'], 'same-origin', label);
  assert.ok(res.headers['x-request-id'], label);
}

describe('link pages over HTTP', () => {
  let t: TestApp;
  before(async () => {
    // The default limit at its smallest: the pages must not spend or need any of it.
    t = await createTestApp({ RATE_LIMIT_ENABLED: 'true', RATE_LIMITS: '{"default": "1 per hour"}' });
  });
  after(() => t.close());

  it('every page and the script carry the security headers, on GET and HEAD', async () => {
    for (const url of [...PAGES, LINK_PAGES_SCRIPT_PATH]) {
      for (const method of ['GET', 'HEAD'] as const) {
        for (let i = 0; i < 3; i++) {
          assertPageHeaders(await t.app.inject({ method, url: `${url}?token=abc` }), `${method} ${url}`);
        }
      }
    }
    const page = await t.app.inject({ method: 'GET', url: '/reset-password' });
    assert.equal(page.headers['content-type'], 'text/html; charset=utf-8');
    const script = await t.app.inject({ method: 'GET', url: LINK_PAGES_SCRIPT_PATH });
    assert.equal(script.headers['content-type'], 'text/javascript; charset=utf-8');
  });

  it('the CSP is as strict as the docs page: no inline or eval anywhere, only our own script and API', () => {
    const directives = new Map(
      LINK_PAGES_CSP.split(/;\s*/).map((d) => [d.split(' ')[0]!, d.split(' ').slice(1).join(' ')]),
    );
    assert.doesNotMatch(LINK_PAGES_CSP, /unsafe-|data:|\*|https?:/);
    for (const [name, value] of Object.entries({
      'default-src': "'none'",
      'script-src': "'self'",
      'script-src-attr': "'none'",
      'style-src': "'none'",
      'connect-src': "'self'",
      'base-uri': "'none'",
      'form-action': "'none'",
      'frame-ancestors': "'none'",
      'object-src': "'none'",
    })) {
      assert.equal(directives.get(name), value, name);
    }
  });

  it('the HTML has no inline script, style or event handler, and one external script', async () => {
    for (const url of PAGES) {
      const html = (await t.app.inject({ method: 'GET', url })).body;
      const scripts = html.match(/<script\b[^>]*>/g) ?? [];
      assert.deepEqual(scripts, ['<script src="assets/flokie-links.js" defer>'], url);
      assert.match(html, /<script [^>]*><\/script>/, url);
      assert.doesNotMatch(html, /<style|style=|\son[a-z]+=|javascript:/i, url);
    }
    // The form can never send the password in a URL, even if the script did not run.
    const reset = (await t.app.inject({ method: 'GET', url: '/reset-password' })).body;
    assert.match(reset, /<form id="reset-form" method="post" hidden>/);
  });

  it('the script writes text only and removes the token before it posts it', async () => {
    const script = (await t.app.inject({ method: 'GET', url: LINK_PAGES_SCRIPT_PATH })).body;
    assert.doesNotMatch(script, /innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function/);
    assert.ok(script.indexOf('history.replaceState') < script.indexOf('fetch('), 'replaceState comes first');
    for (const route of ['api/auth/verify-email', 'api/auth/password/reset', 'api/auth/email/confirm']) {
      assert.ok(script.includes(`'${route}'`), route);
    }
  });

  it('nothing of the request reaches the HTML: unknown or hostile query parameters change nothing', async () => {
    for (const url of PAGES) {
      const plain = (await t.app.inject({ method: 'GET', url })).body;
      const query = '?token=%22%3E%3Cscript%3Ealert(1)%3C/script%3E&utm_source=x&token=2&a[b]=c';
      const hostile = await t.app.inject({ method: 'GET', url: `${url}${query}` });
      assert.equal(hostile.statusCode, 200, url);
      assert.equal(hostile.body, plain, url);
    }
  });

  it('answers only GET and HEAD: other methods get 405 in the error envelope', async () => {
    let client = 0;
    for (const url of [...PAGES, LINK_PAGES_SCRIPT_PATH]) {
      for (const method of ['POST', 'PUT', 'DELETE', 'PATCH'] as const) {
        // Each from its own address: a refused method counts against the default limit (1 per hour here).
        client += 1;
        const res = await t.app.inject({ method, url, payload: { token: 'x' }, remoteAddress: `192.0.2.${client}` });
        assert.equal(res.statusCode, 405, `${method} ${url}`);
        assert.equal(json(res).success, false);
        assert.equal(res.headers['x-frame-options'], 'DENY');
      }
    }
  });

  it('the pages stay out of the OpenAPI document, and the API keeps its own CSP and Referrer-Policy', async () => {
    const paths = Object.keys(json(await t.app.inject({ method: 'GET', url: '/api/openapi.json' }))['paths']);
    for (const url of PAGES) assert.ok(!paths.includes(url), url);
    const api = await t.app.inject({ method: 'GET', url: '/api/health' });
    assert.equal(api.headers['content-security-policy'], "default-src 'none';frame-ancestors 'none'");
    assert.equal(api.headers['referrer-policy'], 'strict-origin-when-cross-origin');
  });

  it('a team linking to its own front end still gets harmless pages here', async () => {
    const own = await createTestApp({
      EMAIL_VERIFY_URL: 'https://app.example.com/verify/{token}',
      PASSWORD_RESET_URL: 'https://app.example.com/reset#{token}',
    });
    try {
      for (const url of PAGES) assertPageHeaders(await own.app.inject({ method: 'GET', url }), url);
    } finally {
      await own.close();
    }
  });

  it('in production the pages carry HSTS as well', async () => {
    const prod = await createTestApp({
      NODE_ENV: 'production',
      SECRET_KEY: generateSecret(),
      JWT_SECRET_KEY: generateSecret(),
      RATE_LIMIT_ENABLED: 'true',
      HSTS_MAX_AGE: '31536000',
    });
    try {
      for (const url of PAGES) {
        const res = await prod.app.inject({ method: 'GET', url });
        assertPageHeaders(res, url);
        assert.equal(res.headers['strict-transport-security'], 'max-age=31536000; includeSubDomains', url);
      }
    } finally {
      await prod.close();
    }
  });
});
