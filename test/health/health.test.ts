import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PUBLIC_PING_REUSE_MS } from '../../src/modules/health/routes.js';
import { bearer, createTestApp, json, makeAdmin, registerAndLogin, type TestApp } from '../helpers/app.js';

describe('health', () => {
  let t: TestApp;
  before(async () => {
    t = await createTestApp({ HEALTH_TOKEN: 'monitor-token-0123456789' });
  });
  after(() => t.close());

  it('GET /api/health reports healthy with the database round-trip', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/api/health' });
    assert.equal(res.statusCode, 200);
    const body = json(res);
    assert.equal(body.status, 'healthy');
    assert.equal(body.environment, 'test');
    assert.equal(typeof body.version, 'string');
    assert.ok(!Number.isNaN(Date.parse(body.timestamp)));
    assert.equal(body.database.status, 'connected');
    assert.equal(typeof body.database.response_time, 'number');
  });

  it('detailed health: admin or health token outside development', async () => {
    assert.equal((await t.app.inject({ method: 'GET', url: '/api/health/detailed' })).statusCode, 403);
    const user = await registerAndLogin(t.app);
    assert.equal((await t.app.inject({ method: 'GET', url: '/api/health/detailed', headers: bearer(user.access) })).statusCode, 403);
    assert.equal((await t.app.inject({ method: 'GET', url: '/api/health/detailed', headers: { 'x-health-token': 'wrong' } })).statusCode, 403);
    const byToken = await t.app.inject({ method: 'GET', url: '/api/health/detailed', headers: { 'x-health-token': 'monitor-token-0123456789' } });
    assert.equal(byToken.statusCode, 200);
    const body = json(byToken);
    for (const key of ['uptime', 'pool', 'cache', 'system', 'application', 'password_hashing']) assert.ok(key in body, key);
    await makeAdmin(t.app, user.id);
    assert.equal((await t.app.inject({ method: 'GET', url: '/api/health/detailed', headers: bearer(user.access) })).statusCode, 200);
  });

  it('the OpenAPI document describes every contract path and the docs page is served', async () => {
    const spec = json(await t.app.inject({ method: 'GET', url: '/api/openapi.json' }));
    assert.equal(spec.openapi.startsWith('3.'), true);
    const paths = Object.keys(spec.paths);
    for (const p of [
      '/api/auth/register',
      '/api/auth/login',
      '/api/auth/refresh',
      '/api/auth/logout',
      '/api/auth/logout-all',
      '/api/auth/sessions',
      '/api/auth/sessions/{id}',
      '/api/auth/me',
      '/api/auth/password/change',
      '/api/auth/password/reset-request',
      '/api/auth/password/reset',
      '/api/auth/verify-email',
      '/api/auth/verify-email/resend',
      '/api/users/profile',
      '/api/health/',
    ]) {
      assert.ok(paths.includes(p) || paths.includes(p.replace(/\/$/, '')), `missing ${p} in ${paths.join(', ')}`);
    }
    const docs = await t.app.inject({ method: 'GET', url: '/api/docs/' });
    assert.equal(docs.statusCode, 200);
    assert.match(docs.body, /swagger/i);
  });
});

describe('health when the database is gone', () => {
  it('checks within a second share one database answer (a flood is not database load); then it pings again', async (ctx) => {
    const t = await createTestApp({ HEALTH_TOKEN: 'monitor-token-0123456789' });
    try {
      assert.equal((await t.app.inject({ method: 'GET', url: '/api/health' })).statusCode, 200);
      ctx.mock.timers.enable({ apis: ['Date'], now: Date.now() });
      await t.app.container.database.close();
      // Within the window no query is made: the database being gone does not show yet.
      const burst = await Promise.all(Array.from({ length: 5 }, () => t.app.inject({ method: 'GET', url: '/api/health' })));
      assert.deepEqual(burst.map((r) => r.statusCode), [200, 200, 200, 200, 200]);
      // Operators' view always asks the database.
      const detailed = await t.app.inject({ method: 'GET', url: '/api/health/detailed', headers: { 'x-health-token': 'monitor-token-0123456789' } });
      assert.equal(detailed.statusCode, 503);
      ctx.mock.timers.tick(PUBLIC_PING_REUSE_MS);
      const after = await t.app.inject({ method: 'GET', url: '/api/health' });
      assert.equal(after.statusCode, 503);
      assert.equal(json(after).database.status, 'unavailable');
    } finally {
      await t.app.close().catch(() => {});
      await t.database.drop();
    }
  });

  it('answers 503 unhealthy', async () => {
    const t = await createTestApp();
    try {
      await t.app.container.database.close();
      const res = await t.app.inject({ method: 'GET', url: '/api/health' });
      assert.equal(res.statusCode, 503);
      assert.equal(json(res).status, 'unhealthy');
    } finally {
      await t.app.close().catch(() => {});
      await t.database.drop();
    }
  });
});
