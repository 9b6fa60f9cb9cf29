import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  bearer,
  createTestApp,
  json,
  registerAndLogin,
  STRONG_PASSWORD,
  uniqueUser,
  type TestApp,
} from '../../helpers/app.js';

describe('bad input gets a 4xx in the contract envelope, nothing is stored, the process lives', () => {
  let t: TestApp;
  before(async () => {
    t = await createTestApp();
  });
  after(() => t.close());

  const userCount = async () =>
    Number(
      (
        await t.app.container.db
          .selectFrom('users')
          .select((eb) => eb.fn.countAll().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    );
  const register = (payload: unknown, headers: Record<string, string> = {}) =>
    t.app.inject({
      method: 'POST',
      url: '/api/auth/register',
      payload: payload as string,
      headers: { 'content-type': 'application/json', ...headers },
    });

  function assertEnvelope(
    res: { statusCode: number; body: string; headers: Record<string, unknown> },
    status: number,
    code: string,
  ) {
    assert.equal(res.statusCode, status, res.body);
    const body = json(res);
    assert.equal(body.success, false);
    assert.equal(body.error.code, code);
    assert.equal(typeof body.error.message, 'string');
    assert.ok(!Number.isNaN(Date.parse(body.timestamp)));
    assert.equal(body.request_id, res.headers['x-request-id']);
  }

  it('malformed JSON is 400', async () => {
    const before = await userCount();
    assertEnvelope(await register('{"username": "x",'), 400, 'VALIDATION_ERROR');
    assert.equal(await userCount(), before);
  });

  it('a non-JSON content type is 415', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/auth/register',
      payload: 'username=x',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    assertEnvelope(res, 415, 'UNSUPPORTED_MEDIA_TYPE');
  });

  it('wrong types are 400 and are not coerced', async () => {
    const res = await register(JSON.stringify({ ...uniqueUser(), username: 12345 }));
    assertEnvelope(res, 400, 'VALIDATION_ERROR');
    assert.ok(json(res).error.details.username);
    assertEnvelope(await register(JSON.stringify({ ...uniqueUser(), password: ['a', 'b'] })), 400, 'VALIDATION_ERROR');
  });

  it('unknown fields are 400 (no mass assignment of is_admin)', async () => {
    const before = await userCount();
    const res = await register(JSON.stringify({ ...uniqueUser(), is_admin: true }));
    assertEnvelope(res, 400, 'VALIDATION_ERROR');
    assert.deepEqual(json(res).error.details, { is_admin: ['Unknown field'] });
    assert.equal(await userCount(), before);
  });

  it('over-long strings and bad formats are 400', async () => {
    assertEnvelope(
      await register(JSON.stringify({ ...uniqueUser(), username: 'a'.repeat(51) })),
      400,
      'VALIDATION_ERROR',
    );
    assertEnvelope(await register(JSON.stringify({ ...uniqueUser(), email: 'not-an-email' })), 400, 'VALIDATION_ERROR');
    assertEnvelope(
      await register(JSON.stringify({ ...uniqueUser(), first_name: 'x'.repeat(101) })),
      400,
      'VALIDATION_ERROR',
    );
    assertEnvelope(
      await register(JSON.stringify({ ...uniqueUser(), password: 'p'.repeat(2000) })),
      400,
      'VALIDATION_ERROR',
    );
  });

  it('a body over BODY_LIMIT is 413', async () => {
    const res = await register(JSON.stringify({ ...uniqueUser(), bio: 'x'.repeat(200_000) }));
    assertEnvelope(res, 413, 'PAYLOAD_TOO_LARGE');
  });

  it('__proto__ and constructor keys are refused and never reach an object', async () => {
    const before = await userCount();
    assertEnvelope(
      await register(
        `{"username":"protouser","email":"p@example.com",` +
          `"password":"${STRONG_PASSWORD}","__proto__":{"is_admin":true}}`,
      ),
      400,
      'VALIDATION_ERROR',
    );
    assertEnvelope(
      await register(
        `{"username":"protouser","email":"p@example.com",` +
          `"password":"${STRONG_PASSWORD}","constructor":{"prototype":{"is_admin":true}}}`,
      ),
      400,
      'VALIDATION_ERROR',
    );
    assert.equal(await userCount(), before);
    assert.equal(({} as Record<string, unknown>).is_admin, undefined);
  });

  it('test_sql_injection: "\'; DROP TABLE users; --" as username is 400 and the table survives', async () => {
    const before = await userCount();
    const res = await register(
      JSON.stringify({ username: "'; DROP TABLE users; --", email: 'sqli@example.com', password: STRONG_PASSWORD }),
    );
    assertEnvelope(res, 400, 'VALIDATION_ERROR');
    assert.equal(await userCount(), before);
    // As a login name it is just a wrong login.
    const login = await t.app.inject({
      method: 'POST',
      url: '/api/auth/login',
      payload: { username: "admin' OR '1'='1' --", password: "' OR 1=1 --" },
    });
    assertEnvelope(login, 401, 'AUTHENTICATION_ERROR');
  });

  it("the guide's test_xss_prevention: a <script> bio is returned with no raw markup characters", async () => {
    const u = await registerAndLogin(t.app);
    const payload = "<script>alert('xss')</script> & more";
    const res = await t.app.inject({
      method: 'PUT',
      url: '/api/users/profile',
      headers: bearer(u.access),
      payload: { bio: payload },
    });
    assert.equal(res.statusCode, 200);
    assert.ok(!/[<>&]/.test(res.body), res.body);
    assert.match(res.body, /\\u003cscript\\u003e/);
    assert.equal(json(res).data.user.bio, payload, 'clients decode the original text unchanged');
  });

  it('duplicate username or e-mail is 409, case-insensitively', async () => {
    const u = uniqueUser();
    assert.equal((await register(JSON.stringify(u))).statusCode, 201);
    const res = await register(JSON.stringify({ ...u, username: u.username.toUpperCase(), email: 'other-' + u.email }));
    assertEnvelope(res, 409, 'CONFLICT');
    assert.ok(json(res).error.details.username);
    const res2 = await register(JSON.stringify({ ...uniqueUser(), email: u.email.toUpperCase() }));
    assertEnvelope(res2, 409, 'CONFLICT');
  });

  it('concurrent registrations of one username: exactly one wins, the rest are 409', async () => {
    const u = uniqueUser();
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, i) => register(JSON.stringify({ ...u, email: `r${i}-${u.email}` }))),
    );
    const statuses = results.map((r) => r.statusCode).sort();
    assert.deepEqual(statuses, [201, 409, 409, 409, 409, 409]);
  });

  it('unknown routes are 404 and wrong methods 405, in the envelope', async () => {
    assertEnvelope(await t.app.inject({ method: 'GET', url: '/api/does-not-exist' }), 404, 'NOT_FOUND');
    const res = await t.app.inject({ method: 'DELETE', url: '/api/auth/login' });
    assert.equal(res.statusCode, 405);
    assert.equal(res.headers.allow, 'POST');
  });

  it('missing, malformed and wrong-scheme Authorization headers are 401', async () => {
    assertEnvelope(await t.app.inject({ method: 'GET', url: '/api/auth/me' }), 401, 'AUTHENTICATION_ERROR');
    assertEnvelope(
      await t.app.inject({ method: 'GET', url: '/api/auth/me', headers: { authorization: 'Basic dXNlcjpwYXNz' } }),
      401,
      'AUTHENTICATION_ERROR',
    );
    assertEnvelope(
      await t.app.inject({ method: 'GET', url: '/api/auth/me', headers: { authorization: 'Bearer' } }),
      401,
      'AUTHENTICATION_ERROR',
    );
    assertEnvelope(
      await t.app.inject({ method: 'GET', url: '/api/auth/me', headers: { authorization: 'Bearer a.b.c' } }),
      401,
      'AUTHENTICATION_ERROR',
    );
    // A missing header and a malformed one are told apart, on /me and on /refresh alike.
    const missing = await t.app.inject({ method: 'GET', url: '/api/auth/me' });
    assert.equal(json(missing).error.message, 'Authentication required');
    const malformed = 'Authorization header must be "Bearer <token>"';
    const basic = { authorization: 'Basic dXNlcjpwYXNz' };
    assert.equal(
      json(await t.app.inject({ method: 'GET', url: '/api/auth/me', headers: basic })).error.message,
      malformed,
    );
    const refresh = await t.app.inject({
      method: 'POST',
      url: '/api/auth/refresh',
      headers: basic,
      payload: { refresh_token: 'x' },
    });
    assertEnvelope(refresh, 401, 'AUTHENTICATION_ERROR');
    assert.equal(json(refresh).error.message, malformed);
  });

  it("a client's X-Request-ID (no trusted proxy) is never adopted; an insane one never either", async () => {
    const kept = await t.app.inject({ method: 'GET', url: '/api/nope', headers: { 'x-request-id': 'abc-123' } });
    assert.match(String(kept.headers['x-request-id']), /^[0-9a-f-]{36}$/);
    assert.equal(json(kept).request_id, kept.headers['x-request-id']);
    const replaced = await t.app.inject({
      method: 'GET',
      url: '/api/nope',
      headers: { 'x-request-id': 'evil\nline <script>' },
    });
    assert.notEqual(replaced.headers['x-request-id'], 'evil\nline <script>');
    assert.match(String(replaced.headers['x-request-id']), /^[0-9a-f-]{36}$/);
  });

  it('profile updates accept only profile fields', async () => {
    const u = await registerAndLogin(t.app);
    const res = await t.app.inject({
      method: 'PUT',
      url: '/api/users/profile',
      headers: bearer(u.access),
      payload: { is_admin: true },
    });
    assertEnvelope(res, 400, 'VALIDATION_ERROR');
    const me = json(await t.app.inject({ method: 'GET', url: '/api/users/profile', headers: bearer(u.access) }));
    assert.equal(me.data.user.is_admin, false);
    const markup = await t.app.inject({
      method: 'PUT',
      url: '/api/users/profile',
      headers: bearer(u.access),
      payload: { first_name: '<b>Bob</b>' },
    });
    assertEnvelope(markup, 400, 'VALIDATION_ERROR');
  });

  it('free-text input is stripped of control characters', async () => {
    const u = await registerAndLogin(t.app);
    const res = await t.app.inject({
      method: 'PUT',
      url: '/api/users/profile',
      headers: bearer(u.access),
      payload: { bio: 'line one\nline\u0000 two\u0007\u001b[31m' },
    });
    assert.equal(json(res).data.user.bio, 'line one\nline two[31m');
  });
});
