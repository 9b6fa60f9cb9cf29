/**
 * What the original Flokie's clients send, accepted where it weakens nothing
 * (docs/migrating-from-flokie-python.md): `username_or_email` in login, `remember_me`, the
 * /api/auth/email/verify path, and a clear answer to an access token sent to /refresh.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { bearer, createTestApp, json, login, register, STRONG_PASSWORD, type TestApp } from '../../helpers/app.js';

function setCookies(res: LightMyRequestResponse): Record<string, string> {
  const raw = res.headers['set-cookie'];
  const list = raw === undefined ? [] : Array.isArray(raw) ? raw : [raw];
  return Object.fromEntries(list.map((line) => [line.split('=')[0]!, line]));
}
const pair = (line: string) => line.split(';')[0]!;

describe('login: username_or_email is an alias of username', () => {
  let t: TestApp;
  before(async () => {
    t = await createTestApp();
  });
  after(() => t.close());

  it('logs in by username or e-mail under either name', async () => {
    const user = await register(t.app);
    for (const [field, value] of [
      ['username_or_email', user.username],
      ['username_or_email', user.email.toUpperCase()],
      ['username', user.email],
    ]) {
      const res = await t.app.inject({
        method: 'POST',
        url: '/api/auth/login',
        payload: { [field!]: value, password: STRONG_PASSWORD },
      });
      assert.equal(res.statusCode, 200, `${field}=${value}: ${res.body}`);
      assert.equal(json(res).data.user.id, user.id);
    }
  });

  it('both names at once, or neither, is a 400 naming the field; a wrong password is the usual 401', async () => {
    const user = await register(t.app);
    const both = await t.app.inject({
      method: 'POST',
      url: '/api/auth/login',
      payload: { username: user.username, username_or_email: user.username, password: STRONG_PASSWORD },
    });
    assert.equal(both.statusCode, 400);
    assert.equal(json(both).error.code, 'VALIDATION_ERROR');
    assert.deepEqual(Object.keys(json(both).error.details), ['username_or_email']);
    const neither = await t.app.inject({
      method: 'POST',
      url: '/api/auth/login',
      payload: { password: STRONG_PASSWORD },
    });
    assert.equal(neither.statusCode, 400);
    assert.deepEqual(json(neither).error.details, { username: ['This field is required'] });
    const wrongType = await t.app.inject({
      method: 'POST',
      url: '/api/auth/login',
      payload: { username_or_email: 42, password: STRONG_PASSWORD },
    });
    assert.equal(wrongType.statusCode, 400);
    const wrong = await t.app.inject({
      method: 'POST',
      url: '/api/auth/login',
      payload: { username_or_email: user.username, password: 'Not-The-Password-9' },
    });
    assert.equal(wrong.statusCode, 401);
    assert.equal(json(wrong).error.message, 'Invalid username or password');
  });

  it('the per-username login limit counts the alias like the name (switching fields does not escape it)', async () => {
    const limited = await createTestApp({ RATE_LIMIT_ENABLED: 'true', RATE_LIMITS: '{"auth.login": "4 per minute"}' });
    try {
      const user = await register(limited.app);
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) {
        const field = i % 2 ? 'username_or_email' : 'username';
        // A new address each time: only the per-username counter can stop this.
        const res = await limited.app.inject({
          method: 'POST',
          url: '/api/auth/login',
          remoteAddress: `198.51.100.${i + 1}`,
          payload: { [field]: user.username, password: 'Wrong-Password-99' },
        });
        statuses.push(res.statusCode);
      }
      assert.deepEqual(statuses, [401, 401, 401, 401, 429, 429]);
    } finally {
      await limited.close();
    }
  });

  it('is in the OpenAPI document, described as an alias', async () => {
    const spec = json(await t.app.inject({ method: 'GET', url: '/api/openapi.json' }));
    const schema = spec.paths['/api/auth/login'].post.requestBody.content['application/json'].schema;
    assert.match(schema.properties.username_or_email.description, /Alias of `username`/);
    assert.equal(schema.properties.remember_me.type, 'boolean');
    assert.match(spec.paths['/api/auth/email/verify'].post.summary, /Alias of POST \/api\/auth\/verify-email/);
  });
});

describe('remember_me and the browser refresh cookie', () => {
  let t: TestApp;
  before(async () => {
    t = await createTestApp();
  });
  after(() => t.close());

  async function cookieLogin(extra: Record<string, unknown>) {
    const user = await register(t.app);
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/auth/login',
      headers: { 'x-auth-mode': 'cookie' },
      payload: { username: user.username, password: STRONG_PASSWORD, ...extra },
    });
    assert.equal(res.statusCode, 200, res.body);
    return { res, cookies: setCookies(res) };
  }

  async function refreshByCookie(cookieHeader: string) {
    // Like a browser, which sends the refresh cookie along: the token is bound to that session.
    const csrf = await t.app.inject({ method: 'GET', url: '/api/auth/csrf-token', headers: { cookie: cookieHeader } });
    const secret = pair(setCookies(csrf).flokie_csrf!);
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/auth/refresh',
      headers: { cookie: `${cookieHeader}; ${secret}`, 'x-csrf-token': json(csrf).data.csrf_token },
    });
    assert.equal(res.statusCode, 200, res.body);
    return setCookies(res);
  }

  it('absent or true: the refresh cookie lasts as long as the refresh token (Max-Age), as before', async () => {
    for (const extra of [{}, { remember_me: true }]) {
      const { cookies } = await cookieLogin(extra);
      assert.match(cookies.flokie_refresh!, /Max-Age=\d+/);
      assert.equal(cookies.flokie_refresh_scope, undefined);
    }
  });

  it('false: a browser-session cookie (no Max-Age, no Expires), and it stays one through refreshes', async () => {
    const { cookies } = await cookieLogin({ remember_me: false });
    const refresh = cookies.flokie_refresh!;
    assert.doesNotMatch(refresh, /Max-Age|Expires/i);
    assert.match(refresh, /HttpOnly/);
    assert.match(refresh, /Secure/);
    assert.match(cookies.flokie_refresh_scope!, /^flokie_refresh_scope=session;/);
    assert.doesNotMatch(cookies.flokie_refresh_scope!, /Max-Age|Expires/i);
    const next = await refreshByCookie(`${pair(refresh)}; ${pair(cookies.flokie_refresh_scope!)}`);
    assert.ok(next.flokie_refresh && pair(next.flokie_refresh) !== pair(refresh), 'rotated');
    assert.doesNotMatch(next.flokie_refresh, /Max-Age|Expires/i);
    // Logging out clears both.
  });

  it('logout clears the refresh cookie and its scope marker', async () => {
    const { res } = await cookieLogin({ remember_me: false });
    const out = await t.app.inject({
      method: 'POST',
      url: '/api/auth/logout',
      headers: { ...bearer(json(res).data.access_token), 'content-type': 'application/json' },
    });
    assert.equal(out.statusCode, 200);
    const cleared = setCookies(out);
    assert.match(cleared.flokie_refresh!, /Expires=Thu, 01 Jan 1970|Max-Age=0/);
    assert.match(cleared.flokie_refresh_scope!, /Expires=Thu, 01 Jan 1970|Max-Age=0/);
  });

  it('remember_me must be a JSON boolean; it changes nothing outside cookie mode', async () => {
    const user = await register(t.app);
    const text = await t.app.inject({
      method: 'POST',
      url: '/api/auth/login',
      payload: { username: user.username, password: STRONG_PASSWORD, remember_me: 'false' },
    });
    assert.equal(text.statusCode, 400);
    assert.deepEqual(json(text).error.details, { remember_me: ['Must be true or false'] });
    const body = await t.app.inject({
      method: 'POST',
      url: '/api/auth/login',
      payload: { username: user.username, password: STRONG_PASSWORD, remember_me: false },
    });
    assert.equal(body.statusCode, 200);
    assert.equal(typeof json(body).data.refresh_token, 'string');
    // Outside cookie mode no refresh cookie is set (the device credential cookie is, as on every login).
    const cookies = [body.headers['set-cookie'] ?? []].flat();
    assert.deepEqual(
      cookies.filter((c) => c.startsWith('flokie_refresh')),
      [],
    );
  });
});

describe('the original paths and mistakes', () => {
  let t: TestApp;
  before(async () => {
    t = await createTestApp();
  });
  after(() => t.close());

  it('POST /api/auth/email/verify verifies like /verify-email, once', async () => {
    const user = await register(t.app);
    const token = await t.app.container.oneTimeTokens.issue(user.id, 'email_verification', 60_000, user.email);
    const res = await t.app.inject({ method: 'POST', url: '/api/auth/email/verify', payload: { token } });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal((await t.app.container.users.findById(user.id))!.is_verified, 1);
    const again = await t.app.inject({ method: 'POST', url: '/api/auth/email/verify/', payload: { token } });
    assert.equal(again.statusCode, 400);
    const none = await t.app.inject({
      method: 'POST',
      url: '/api/auth/email/verify',
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(none.statusCode, 400);
    assert.equal(json(none).error.message, 'A JSON request body is required');
  });

  it('an access token sent to /refresh is refused, naming the token to send, and nothing is spent', async () => {
    const user = await register(t.app);
    const tokens = await login(t.app, user.username);
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/auth/refresh',
      headers: { ...bearer(tokens.access), 'content-type': 'application/json' },
    });
    assert.equal(res.statusCode, 401);
    assert.match(json(res).error.message, /access token: \/refresh needs the refresh token/);
    // The session lives on: the refresh token still works, the access token too.
    const ok = await t.app.inject({ method: 'POST', url: '/api/auth/refresh', headers: bearer(tokens.refresh) });
    assert.equal(ok.statusCode, 200);
    // A plain bad token keeps the plain answer.
    const junk = await t.app.inject({ method: 'POST', url: '/api/auth/refresh', headers: bearer('a.b.c') });
    assert.equal(json(junk).error.message, 'Invalid token');
  });
});
