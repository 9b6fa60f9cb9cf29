import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { bearer, createTestApp, json, registerAndLogin, type TestApp } from '../../helpers/app.js';

describe('auth basics', () => {
  let t: TestApp;
  before(async () => {
    t = await createTestApp();
  });
  after(() => t.close());

  it('registers, logs in and reads /me', async () => {
    const u = await registerAndLogin(t.app);
    const res = await t.app.inject({ method: 'GET', url: '/api/auth/me', headers: bearer(u.access) });
    assert.equal(res.statusCode, 200);
    const body = json(res);
    assert.equal(body.success, true);
    assert.equal(body.data.user.username, u.username);
    assert.equal(body.data.user.password_hash, undefined);
  });

  it("the guide's test_invalid_token: a garbage bearer token is 401", async () => {
    const res = await t.app.inject({ method: 'GET', url: '/api/users/profile', headers: bearer('invalid-token') });
    assert.equal(res.statusCode, 401);
    assert.equal(json(res).error.code, 'AUTHENTICATION_ERROR');
    assert.equal(json(res).request_id, res.headers['x-request-id']);
  });
});
