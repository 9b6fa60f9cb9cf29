/** CORS: listed origins echoed, others get no CORS header; preflights answered before any limit. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config/index.js';
import { createTestApp, type TestApp } from '../helpers/app.js';

const GOOD = 'https://app.example.com';
const EVIL = 'https://evil.example.net';

describe('CORS', () => {
  let t: TestApp;
  before(async () => {
    // A limit of 1 per hour shows preflights neither count nor get limited.
    t = await createTestApp({
      CORS_ORIGINS: `["${GOOD}", "https://www.example.com"]`,
      RATE_LIMIT_ENABLED: 'true',
      RATE_LIMITS: '{"default": "1 per hour", "auth.login": "1 per hour"}',
    });
  });
  after(() => t.close());

  it('echoes a listed origin with credentials and exposed headers', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/api/health', headers: { origin: GOOD } });
    assert.equal(res.headers['access-control-allow-origin'], GOOD);
    assert.equal(res.headers['access-control-allow-credentials'], 'true');
    assert.match(String(res.headers['access-control-expose-headers']), /X-Request-ID/);
    assert.match(String(res.headers.vary), /Origin/);
  });

  it('gives a disallowed origin no CORS header at all', async () => {
    for (const origin of [EVIL, 'null', `${GOOD}.evil.example`, 'http://app.example.com']) {
      const res = await t.app.inject({ method: 'GET', url: '/api/health', headers: { origin } });
      assert.equal(res.statusCode, 200);
      const corsHeaders = Object.keys(res.headers).filter((h) => h.startsWith('access-control-'));
      assert.deepEqual(corsHeaders, [], origin);
    }
  });

  it('answers an allowed preflight 204 with methods, headers and max-age, before rate limits', async () => {
    for (let i = 0; i < 5; i++) {
      const res = await t.app.inject({
        method: 'OPTIONS',
        url: '/api/auth/login',
        remoteAddress: '192.0.2.50',
        headers: {
          origin: GOOD,
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'content-type,x-csrf-token',
        },
      });
      assert.equal(res.statusCode, 204);
      assert.equal(res.headers['access-control-allow-origin'], GOOD);
      assert.equal(res.headers['access-control-allow-methods'], 'GET, POST, PUT, DELETE, OPTIONS');
      assert.equal(
        res.headers['access-control-allow-headers'],
        'Content-Type, Authorization, X-CSRF-Token, X-Auth-Mode, X-Request-ID, X-Device-Token',
      );
      assert.equal(res.headers['access-control-max-age'], '600');
      assert.equal(res.headers['ratelimit-remaining'], undefined);
    }
    // The address's one login request per hour is still unspent.
    const login = await t.app.inject({
      method: 'POST',
      url: '/api/auth/login',
      remoteAddress: '192.0.2.50',
      payload: { username: 'nobody', password: 'x' },
    });
    assert.equal(login.statusCode, 401);
  });

  it('refuses a disallowed preflight without CORS headers', async () => {
    const res = await t.app.inject({
      method: 'OPTIONS',
      url: '/api/auth/login',
      headers: { origin: EVIL, 'access-control-request-method': 'POST' },
    });
    assert.ok(res.statusCode >= 400 && res.statusCode < 500);
    assert.equal(res.headers['access-control-allow-origin'], undefined);
    assert.equal(res.headers['access-control-allow-methods'], undefined);
    assert.equal(JSON.parse(res.body).success, false);
  });

  it('list settings accept a comma-separated string; * with credentials is refused at start', () => {
    const base = { NODE_ENV: 'test', SECRET_KEY: 'x'.repeat(40), JWT_SECRET_KEY: 'y'.repeat(40) };
    const config = loadConfig(
      { ...base, CORS_ORIGINS: `${GOOD}, https://b.example`, CORS_METHODS: 'GET,POST' },
      { dotenv: false },
    );
    assert.deepEqual(config.CORS_ORIGINS, [GOOD, 'https://b.example']);
    assert.deepEqual(config.CORS_METHODS, ['GET', 'POST']);
    assert.throws(() => loadConfig({ ...base, CORS_ORIGINS: '*' }, { dotenv: false }), /CORS_ORIGINS/);
    assert.doesNotThrow(() =>
      loadConfig({ ...base, CORS_ORIGINS: '*', CORS_SUPPORTS_CREDENTIALS: 'false' }, { dotenv: false }),
    );
  });
});

describe('CORS with no origins configured', () => {
  it('sends no CORS header to anyone', async () => {
    const t = await createTestApp();
    try {
      const res = await t.app.inject({ method: 'GET', url: '/api/health', headers: { origin: GOOD } });
      assert.equal(res.headers['access-control-allow-origin'], undefined);
      assert.equal(res.headers['access-control-allow-credentials'], undefined);
    } finally {
      await t.close();
    }
  });
});
