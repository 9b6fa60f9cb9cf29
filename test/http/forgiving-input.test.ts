/**
 * Input as ordinary clients send it, accepted where that costs nothing: an empty body sent as
 * JSON is no body (Python's requests sends `Content-Type: application/json` and
 * `Content-Length: 0` with `json=None`); query booleans in any case and as 1/0 (`False`);
 * trailing slashes. Routes that need a body still answer a clear 400; other content types 415.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  bearer,
  createTestApp,
  json,
  login,
  makeAdmin,
  register,
  registerAndLogin,
  STRONG_PASSWORD,
  type TestApp,
} from '../helpers/app.js';

const EMPTY_JSON: Record<string, string>[] = [
  { 'content-type': 'application/json', 'content-length': '0' },
  { 'content-type': 'application/json; charset=utf-8', 'content-length': '0' },
  { 'content-type': 'application/json' }, // no Content-Length at all
];

describe('an empty body sent as JSON is no body', () => {
  let t: TestApp;
  let admin: Awaited<ReturnType<typeof registerAndLogin>>;
  before(async () => {
    t = await createTestApp();
    admin = await registerAndLogin(t.app);
    await makeAdmin(t.app, admin.id);
  });
  after(() => t.close());

  it('routes taking no body: refresh, logout(-all), resend, session delete, (de)activate, unlock, delete', async () => {
    for (const headers of EMPTY_JSON) {
      const user = await registerAndLogin(t.app);
      const asUser = { ...bearer(user.access), ...headers };
      const asAdmin = { ...bearer(admin.access), ...headers };
      const target = await register(t.app);
      const other = await login(t.app, user.username);
      const sessions = json(
        await t.app.inject({ method: 'GET', url: '/api/auth/sessions', headers: bearer(user.access) }),
      ).data.sessions as { id: string; current: boolean }[];
      const calls: [string, string, Record<string, string>, number][] = [
        ['POST', '/api/auth/refresh', { ...headers, ...bearer(other.refresh) }, 200],
        ['POST', '/api/auth/verify-email/resend', asUser, 202],
        ['DELETE', `/api/auth/sessions/${sessions.find((s) => !s.current)!.id}`, asUser, 200],
        ['POST', `/api/users/${target.id}/deactivate`, asAdmin, 200],
        ['POST', `/api/users/${target.id}/activate`, asAdmin, 200],
        ['POST', `/api/users/${target.id}/unlock`, asAdmin, 200],
        ['DELETE', `/api/users/${target.id}`, asAdmin, 200],
        ['POST', '/api/auth/logout', asUser, 200],
        ['POST', '/api/auth/logout-all', { ...bearer((await login(t.app, user.username)).access), ...headers }, 200],
      ];
      for (const [method, url, h, status] of calls) {
        const res = await t.app.inject({ method: method as 'POST', url, headers: h });
        assert.equal(res.statusCode, status, `${method} ${url} with ${JSON.stringify(headers)}: ${res.body}`);
      }
      // The soft delete really happened.
      assert.equal((await t.app.container.users.findById(target.id))!.is_active, 0);
    }
  });

  it('routes that need a body answer 400 "A JSON request body is required", with or without the header', async () => {
    const routes: [string, string][] = [
      ['POST', '/api/auth/register'],
      ['POST', '/api/auth/login'],
      ['POST', '/api/auth/password/change'],
      ['POST', '/api/auth/password/reset-request'],
      ['POST', '/api/auth/password/reset'],
      ['POST', '/api/auth/verify-email'],
      ['PUT', '/api/users/profile'],
      ['POST', '/api/users'],
      ['PUT', `/api/users/${admin.id}`],
      ['POST', `/api/users/${admin.id}/admin`],
      ['POST', '/api/security/tokens/revoke'],
      ['PUT', '/api/security/emergency-rate-limit'],
    ];
    for (const [method, url] of routes) {
      for (const headers of [...EMPTY_JSON, {}]) {
        const res = await t.app.inject({
          method: method as 'POST',
          url,
          headers: { ...bearer(admin.access), ...headers },
        });
        assert.equal(res.statusCode, 400, `${method} ${url} ${JSON.stringify(headers)}: ${res.body}`);
        const error = json(res).error;
        assert.equal(error.code, 'VALIDATION_ERROR');
        assert.equal(error.message, 'A JSON request body is required');
        assert.deepEqual(error.details, { body: ['A JSON object is required'] });
      }
    }
  });

  it('a body that is only whitespace, or JSON null, or not JSON, is still refused as it was', async () => {
    const whitespace = await t.app.inject({
      method: 'POST',
      url: '/api/auth/logout',
      headers: { ...bearer(admin.access), 'content-type': 'application/json' },
      payload: '  ',
    });
    assert.equal(whitespace.statusCode, 400);
    assert.equal(json(whitespace).error.message, 'Malformed JSON body');
    const nul = await t.app.inject({
      method: 'POST',
      url: '/api/auth/login',
      headers: { 'content-type': 'application/json' },
      payload: 'null',
    });
    assert.equal(nul.statusCode, 400);
    const proto = await t.app.inject({
      method: 'POST',
      url: '/api/auth/login',
      headers: { 'content-type': 'application/json' },
      payload: '{"__proto__":{"x":1},"username":"a","password":"b"}',
    });
    assert.equal(proto.statusCode, 400);
    assert.equal(json(proto).error.message, 'Malformed JSON body');
  });

  it('a form-encoded body (requests.post(data=…)) is 415 with a message that says to send JSON', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/auth/login',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: `username=${admin.username}&password=${STRONG_PASSWORD}`,
    });
    assert.equal(res.statusCode, 415);
    assert.equal(json(res).error.message, 'Unsupported Content-Type; send application/json');
  });
});

describe('query booleans: true/false/1/0 in any case', () => {
  let t: TestApp;
  let auth: Record<string, string>;
  let inactiveId: string;
  before(async () => {
    t = await createTestApp();
    const admin = await registerAndLogin(t.app);
    await makeAdmin(t.app, admin.id);
    auth = bearer(admin.access);
    const inactive = await register(t.app);
    inactiveId = inactive.id;
    await t.app.inject({ method: 'POST', url: `/api/users/${inactive.id}/deactivate`, headers: auth });
  });
  after(() => t.close());

  const listed = async (value: string) => {
    const res = await t.app.inject({
      method: 'GET',
      url: `/api/users?include_inactive=${encodeURIComponent(value)}`,
      headers: auth,
    });
    assert.equal(res.statusCode, 200, `${value}: ${res.body}`);
    return (json(res).data.users as { id: string }[]).some((u) => u.id === inactiveId);
  };

  it('include_inactive=False / false / FALSE / 0 leave inactive users out; True / true / 1 bring them in', async () => {
    for (const value of ['False', 'false', 'FALSE', '0']) assert.equal(await listed(value), false, value);
    for (const value of ['True', 'true', 'TRUE', '1']) assert.equal(await listed(value), true, value);
    const search = await t.app.inject({
      method: 'GET',
      url: '/api/users/search?q=user&limit=5&include_inactive=False',
      headers: auth,
    });
    assert.equal(search.statusCode, 200, search.body);
  });

  it('anything else is a 400 in our words', async () => {
    for (const value of ['yes', 'no', 'on', '2', '', 'Fals']) {
      const res = await t.app.inject({ method: 'GET', url: `/api/users?include_inactive=${value}`, headers: auth });
      assert.equal(res.statusCode, 400, value);
      assert.deepEqual(json(res).error.details, { include_inactive: ['Must be true or false'] }, value);
    }
    const twice = await t.app.inject({
      method: 'GET',
      url: '/api/users?include_inactive=true&include_inactive=false',
      headers: auth,
    });
    assert.equal(twice.statusCode, 400);
  });

  it('DELETE ?hard_delete=False is a soft delete; ?hard_delete=True removes the row', async () => {
    const soft = await register(t.app);
    assert.equal(
      (await t.app.inject({ method: 'DELETE', url: `/api/users/${soft.id}?hard_delete=False`, headers: auth }))
        .statusCode,
      200,
    );
    assert.equal((await t.app.container.users.findById(soft.id))!.is_active, 0);
    const hard = await register(t.app);
    const res = await t.app.inject({
      method: 'DELETE',
      url: `/api/users/${hard.id}/?hard_delete=True`,
      headers: { ...auth, 'content-type': 'application/json', 'content-length': '0' },
    });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(await t.app.container.users.findById(hard.id), undefined);
  });

  it('trailing slashes are the same path', async () => {
    assert.equal(
      (await t.app.inject({ method: 'GET', url: '/api/users/?include_inactive=False', headers: auth })).statusCode,
      200,
    );
    assert.equal((await t.app.inject({ method: 'GET', url: '/api/users/statistics/', headers: auth })).statusCode, 200);
  });
});
