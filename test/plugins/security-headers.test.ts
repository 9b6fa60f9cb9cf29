/** Security headers on every status class, CSP for the API and the docs, HSTS rules, Cache-Control. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { bearer, createLoggedApp, createTestApp, registerAndLogin, type TestApp } from '../helpers/app.js';
import { generateSecret } from '../../src/config/secret-strength.js';

function assertGuideHeaders(res: LightMyRequestResponse, label: string) {
  assert.equal(res.headers['x-content-type-options'], 'nosniff', label);
  assert.equal(res.headers['x-frame-options'], 'DENY', label);
  assert.equal(res.headers['x-xss-protection'], '0', label);
  assert.equal(res.headers['referrer-policy'], 'strict-origin-when-cross-origin', label);
  assert.ok(String(res.headers['content-security-policy']).includes("frame-ancestors 'none'"), label);
}

describe('security headers', () => {
  let t: TestApp;
  before(async () => {
    t = await createTestApp({ RATE_LIMIT_ENABLED: 'true', RATE_LIMITS: '{"default": "2 per hour"}' });
  });
  after(() => t.close());

  it('are on 2xx, 4xx (400, 401, 404, 405, 413, 415, 429) and docs responses', async () => {
    const cases: [string, InjectOptions, number][] = [
      ['health', { method: 'GET', url: '/api/health' }, 200],
      ['unknown route', { method: 'GET', url: '/api/nothing-here' }, 404],
      ['wrong method', { method: 'PATCH', url: '/api/auth/login' }, 405],
      ['no token', { method: 'GET', url: '/api/auth/me' }, 401],
      [
        'malformed json',
        {
          method: 'POST',
          url: '/api/auth/verify-email',
          headers: { 'content-type': 'application/json' },
          payload: '{"token":',
        },
        400,
      ],
      [
        'form body',
        {
          method: 'POST',
          url: '/api/auth/verify-email',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          payload: 'token=x',
        },
        415,
      ],
      [
        'huge body',
        {
          method: 'POST',
          url: '/api/auth/verify-email',
          headers: { 'content-type': 'application/json' },
          payload: JSON.stringify({ token: 'x'.repeat(200_000) }),
        },
        413,
      ],
      ['over the default limit', { method: 'GET', url: '/api/auth/me' }, 429],
      ['docs page', { method: 'GET', url: '/api/docs' }, 200],
      ['docs asset', { method: 'GET', url: '/api/docs/static/swagger-ui-bundle.js' }, 200],
      ['openapi', { method: 'GET', url: '/api/openapi.json' }, 200],
    ];
    for (const [i, [label, request, status]] of cases.entries()) {
      // Each case from its own address (the default limit here is 2 per hour); the 429 case spends its budget first.
      const remoteAddress = `192.0.2.${i + 1}`;
      if (status === 429) for (let n = 0; n < 2; n++) await t.app.inject({ ...request, remoteAddress });
      const res = await t.app.inject({ ...request, remoteAddress });
      assert.equal(res.statusCode, status, `${label}: ${res.body.slice(0, 200)}`);
      assertGuideHeaders(res, label);
      if (status >= 400) assert.equal(JSON.parse(res.body).success, false, label);
    }
  });

  it('API responses get the strictest CSP and no-store; no HSTS over plain HTTP outside production', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/api/health' });
    assert.equal(res.headers['content-security-policy'], "default-src 'none';frame-ancestors 'none'");
    assert.equal(res.headers['cache-control'], 'no-store');
    assert.equal(res.headers['strict-transport-security'], undefined);
  });

  it('the docs page gets a CSP whose scripts need no unsafe-inline, and loads no inline script', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/api/docs' });
    const csp = String(res.headers['content-security-policy']);
    const scriptSrc = /script-src ([^;]*)/.exec(csp)?.[1] ?? '';
    assert.equal(scriptSrc.trim(), "'self'");
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.match(csp, /default-src 'none'/);
    // Every <script> in the page has a src: nothing the CSP would have to allow inline.
    const scripts = res.body.match(/<script\b[^>]*>/g) ?? [];
    assert.ok(scripts.length >= 3);
    for (const tag of scripts) assert.match(tag, /\ssrc="/);
  });

  it('a token-bearing response is no-store', async () => {
    const u = await registerAndLogin(t.app);
    assert.equal(u.res.headers['cache-control'], 'no-store');
    const me = await t.app.inject({ method: 'GET', url: '/api/auth/me', headers: bearer(u.access) });
    // (over the 2-per-hour default by now: still no-store)
    assert.equal(me.headers['cache-control'], 'no-store');
  });
});

describe('HSTS', () => {
  it('is sent for HTTPS through a trusted proxy, not when an untrusted peer claims it', async () => {
    const t = await createTestApp({ TRUSTED_PROXIES: '10.0.0.1' });
    try {
      const viaProxy = await t.app.inject({
        method: 'GET',
        url: '/api/health',
        remoteAddress: '10.0.0.1',
        headers: { 'x-forwarded-proto': 'https' },
      });
      assert.equal(viaProxy.headers['strict-transport-security'], 'max-age=31536000; includeSubDomains');
      const spoofed = await t.app.inject({
        method: 'GET',
        url: '/api/health',
        remoteAddress: '198.51.100.7',
        headers: { 'x-forwarded-proto': 'https' },
      });
      assert.equal(spoofed.headers['strict-transport-security'], undefined);
    } finally {
      await t.close();
    }
  });

  it('is always sent in production, with HSTS_MAX_AGE', async () => {
    const t = await createTestApp({
      NODE_ENV: 'production',
      SECRET_KEY: generateSecret(),
      JWT_SECRET_KEY: generateSecret(),
      RATE_LIMIT_ENABLED: 'true',
      HSTS_MAX_AGE: '63072000',
    });
    try {
      const res = await t.app.inject({ method: 'GET', url: '/api/nothing' });
      assert.equal(res.statusCode, 404);
      assert.equal(res.headers['strict-transport-security'], 'max-age=63072000; includeSubDomains');
    } finally {
      await t.close();
    }
  });

  it('X-XSS-Protection and CONTENT_SECURITY_POLICY follow their settings', async () => {
    const t = await createTestApp({
      X_XSS_PROTECTION: '1; mode=block',
      CONTENT_SECURITY_POLICY: '{"default-src": "\'self\'", "img-src": "\'self\' data:"}',
    });
    try {
      const res = await t.app.inject({ method: 'GET', url: '/api/health' });
      assert.equal(res.headers['x-xss-protection'], '1; mode=block');
      assert.equal(res.headers['content-security-policy'], "default-src 'self';img-src 'self' data:");
    } finally {
      await t.close();
    }
  });
});

describe('security headers on a 500', () => {
  it('an unexpected error still answers with the headers and no internals', async () => {
    const t = await createLoggedApp({ LOG_LEVEL: 'silent' }, undefined, (app) =>
      app.get('/api/test-crash', async () => {
        throw new Error('SELECT secret FROM /etc/passwd');
      }),
    );
    try {
      const res = await t.app.inject({ method: 'GET', url: '/api/test-crash' });
      assert.equal(res.statusCode, 500);
      assertGuideHeaders(res, '500');
      assert.equal(res.headers['cache-control'], 'no-store');
      assert.doesNotMatch(res.body, /SELECT|passwd/);
      assert.equal(JSON.parse(res.body).error.code, 'INTERNAL_SERVER_ERROR');
    } finally {
      await t.close();
    }
  });
});
