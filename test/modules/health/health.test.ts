import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { migrateDown, migrateToLatest } from '../../../src/db/migrator.js';
import { PUBLIC_PING_REUSE_MS } from '../../../src/modules/health/routes.js';
import {
  bearer,
  createLoggedApp,
  createTestApp,
  json,
  makeAdmin,
  registerAndLogin,
  type TestApp,
} from '../../helpers/app.js';

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
    assert.equal(
      (await t.app.inject({ method: 'GET', url: '/api/health/detailed', headers: bearer(user.access) })).statusCode,
      403,
    );
    assert.equal(
      (await t.app.inject({ method: 'GET', url: '/api/health/detailed', headers: { 'x-health-token': 'wrong' } }))
        .statusCode,
      403,
    );
    const byToken = await t.app.inject({
      method: 'GET',
      url: '/api/health/detailed',
      headers: { 'x-health-token': 'monitor-token-0123456789' },
    });
    assert.equal(byToken.statusCode, 200);
    const body = json(byToken);
    for (const key of ['uptime', 'pool', 'cache', 'system', 'application', 'password_hashing'])
      assert.ok(key in body, key);
    await makeAdmin(t.app, user.id);
    assert.equal(
      (await t.app.inject({ method: 'GET', url: '/api/health/detailed', headers: bearer(user.access) })).statusCode,
      200,
    );
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
      '/api/auth/email/verify',
      '/api/health/liveness',
      '/api/health/readiness',
      '/api/health/database',
      '/api/health/system',
    ]) {
      assert.ok(paths.includes(p) || paths.includes(p.replace(/\/$/, '')), `missing ${p} in ${paths.join(', ')}`);
    }
    const docs = await t.app.inject({ method: 'GET', url: '/api/docs/' });
    assert.equal(docs.statusCode, 200);
    assert.match(docs.body, /swagger/i);
  });
});

describe('orchestrator probes and operator views', () => {
  let t: TestApp;
  before(async () => {
    t = await createTestApp({ HEALTH_TOKEN: 'monitor-token-0123456789' });
  });
  after(() => t.close());

  it('liveness answers without asking anything; readiness reports the database, migrations and Redis', async () => {
    const live = await t.app.inject({ method: 'GET', url: '/api/health/liveness' });
    assert.equal(live.statusCode, 200);
    assert.equal(json(live).status, 'alive');
    assert.equal(json(live).alive, true);
    const ready = await t.app.inject({ method: 'GET', url: '/api/health/readiness/' });
    assert.equal(ready.statusCode, 200, ready.body);
    const body = json(ready);
    assert.equal(body.status, 'ready');
    assert.equal(body.ready, true);
    assert.equal(body.checks.database.status, 'connected');
    assert.deepEqual(body.checks.migrations, { status: 'applied', pending: 0 });
    assert.deepEqual(body.checks.redis, { status: 'not configured' });
  });

  it('readiness reports Redis and stays ready while it is down (the service uses in-process state)', async () => {
    const prefix = `flokie-test-${Math.random().toString(36).slice(2)}:`;
    const up = await createTestApp({
      REDIS_URL: process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379',
      REDIS_KEY_PREFIX: prefix,
    });
    const down = await createTestApp({ REDIS_URL: 'redis://127.0.0.1:1', REDIS_KEY_PREFIX: prefix });
    try {
      const deadline = Date.now() + 5000;
      while (up.app.container.redis!.status !== 'ready' && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 50));
      const ok = await up.app.inject({ method: 'GET', url: '/api/health/readiness' });
      assert.deepEqual([ok.statusCode, json(ok).checks.redis.status], [200, 'ready']);
      const degraded = await down.app.inject({ method: 'GET', url: '/api/health/readiness' });
      assert.deepEqual([degraded.statusCode, json(degraded).checks.redis.status], [200, 'unavailable']);
    } finally {
      await up.close();
      await down.close();
    }
  });

  it('database and system views are for operators outside development, like /detailed', async () => {
    for (const url of ['/api/health/database', '/api/health/system']) {
      assert.equal((await t.app.inject({ method: 'GET', url })).statusCode, 403, url);
      const user = await registerAndLogin(t.app);
      assert.equal((await t.app.inject({ method: 'GET', url, headers: bearer(user.access) })).statusCode, 403, url);
      const res = await t.app.inject({ method: 'GET', url, headers: { 'x-health-token': 'monitor-token-0123456789' } });
      assert.equal(res.statusCode, 200, `${url}: ${res.body}`);
    }
    const database = json(
      await t.app.inject({
        method: 'GET',
        url: '/api/health/database',
        headers: { 'x-health-token': 'monitor-token-0123456789' },
      }),
    );
    assert.equal(database.status, 'healthy');
    assert.equal(database.database.status, 'connected');
    assert.equal(database.database.dialect, t.database.dialect);
    assert.equal(typeof database.database.pool.size, 'number');
    const system = json(
      await t.app.inject({
        method: 'GET',
        url: '/api/health/system',
        headers: { 'x-health-token': 'monitor-token-0123456789' },
      }),
    );
    assert.equal(system.status, 'healthy');
    for (const key of ['cpus', 'load_average', 'memory_total', 'memory_free']) assert.ok(key in system.system, key);
    for (const key of ['pid', 'node', 'rss', 'heap_used', 'event_loop_delay_ms'])
      assert.ok(key in system.application, key);
  });

  it('in development they are open, as /detailed is', async () => {
    const dev = await createTestApp({ NODE_ENV: 'development' });
    try {
      for (const url of ['/api/health/detailed', '/api/health/database', '/api/health/system'])
        assert.equal((await dev.app.inject({ method: 'GET', url })).statusCode, 200, url);
    } finally {
      await dev.close();
    }
  });

  it("the original's documentation paths redirect to ours, and exist only with DOCS_ENABLED", async () => {
    for (const [from, to] of [
      ['/api/doc', '/api/docs/'],
      ['/api/doc/', '/api/docs/'],
      ['/api/swagger.json', '/api/openapi.json'],
    ]) {
      const res = await t.app.inject({ method: 'GET', url: from });
      assert.equal(res.statusCode, 301, from);
      assert.equal(res.headers.location, to);
      assert.equal((await t.app.inject({ method: 'GET', url: to })).statusCode, 200, to);
    }
    const off = await createTestApp({ DOCS_ENABLED: 'false' });
    try {
      for (const url of ['/api/doc', '/api/swagger.json', '/api/docs/', '/api/openapi.json'])
        assert.equal((await off.app.inject({ method: 'GET', url })).statusCode, 404, url);
    } finally {
      await off.close();
    }
  });
});

describe('health when the database is gone', () => {
  it('checks within a second share one database answer (a flood is not load); then it pings again', async (ctx) => {
    const t = await createTestApp({ HEALTH_TOKEN: 'monitor-token-0123456789' });
    try {
      assert.equal((await t.app.inject({ method: 'GET', url: '/api/health' })).statusCode, 200);
      ctx.mock.timers.enable({ apis: ['Date'], now: Date.now() });
      await t.app.container.database.close();
      // Within the window no query is made: the database being gone does not show yet.
      const burst = await Promise.all(
        Array.from({ length: 5 }, () => t.app.inject({ method: 'GET', url: '/api/health' })),
      );
      assert.deepEqual(
        burst.map((r) => r.statusCode),
        [200, 200, 200, 200, 200],
      );
      // Operators' view always asks the database.
      const detailed = await t.app.inject({
        method: 'GET',
        url: '/api/health/detailed',
        headers: { 'x-health-token': 'monitor-token-0123456789' },
      });
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

  it('readiness: 503 while migrations are pending, 503 without the database; liveness stays 200', async (ctx) => {
    const t = await createTestApp();
    try {
      ctx.mock.timers.enable({ apis: ['Date'], now: Date.now() });
      await migrateDown(t.app.container.db);
      const pending = await t.app.inject({ method: 'GET', url: '/api/health/readiness' });
      assert.equal(pending.statusCode, 503, pending.body);
      assert.equal(json(pending).status, 'not_ready');
      assert.deepEqual(json(pending).checks.migrations, { status: 'pending', pending: 1 });
      await migrateToLatest(t.app.container.db);
      ctx.mock.timers.tick(PUBLIC_PING_REUSE_MS);
      assert.equal((await t.app.inject({ method: 'GET', url: '/api/health/readiness' })).statusCode, 200);
      await t.app.container.database.close();
      ctx.mock.timers.tick(PUBLIC_PING_REUSE_MS);
      const gone = await t.app.inject({ method: 'GET', url: '/api/health/readiness' });
      assert.equal(gone.statusCode, 503);
      assert.equal(json(gone).checks.database.status, 'unavailable');
      assert.equal((await t.app.inject({ method: 'GET', url: '/api/health/liveness' })).statusCode, 200);
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

  it('only the plain check and probes are unlimited: 150 X-Health-Token guesses from one address get 429', async () => {
    const limited = await createLoggedApp({ RATE_LIMIT_ENABLED: 'true', HEALTH_TOKEN: 'monitor-token-0123456789' });
    try {
      const codes: number[] = [];
      for (let i = 0; i < 150; i++) {
        const guess = await limited.app.inject({
          method: 'GET',
          url: '/api/health/detailed',
          remoteAddress: '198.51.100.70',
          headers: { 'x-health-token': `guess-${i}` },
        });
        codes.push(guess.statusCode);
      }
      assert.deepEqual(codes, [...Array<number>(100).fill(403), ...Array<number>(50).fill(429)]);
      for (const url of ['/api/health/database', '/api/health/system']) {
        assert.equal(
          (await limited.app.inject({ method: 'GET', url, remoteAddress: '198.51.100.70' })).statusCode,
          429,
          url,
        );
      }
      for (const url of ['/api/health', '/api/health/liveness', '/api/health/readiness']) {
        assert.equal(
          (await limited.app.inject({ method: 'GET', url, remoteAddress: '198.51.100.70' })).statusCode,
          200,
          url,
        );
      }
    } finally {
      await limited.close();
    }
  });
});
