/**
 * Rate limits in Redis: one count shared by every instance; a Redis outage falls back to
 * in-process counters (logged, limits still enforced, no 500, no crash). Needs the Redis at
 * TEST_REDIS_URL (default redis://127.0.0.1:6379), which .ci/run starts.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { createLoggedApp, type LoggedApp } from '../helpers/app.js';
import { REDIS_URL, redisSkip } from '../helpers/redis.js';
import { sleep } from '../helpers/server.js';

const skip = await redisSkip();

const login = (app: LoggedApp, ip: string, i: number) =>
  app.app.inject({
    method: 'POST',
    url: '/api/auth/login',
    remoteAddress: ip,
    payload: { username: `r${i}`, password: 'wrong' },
  });

describe('rate limits in Redis', { skip }, () => {
  const prefix = `flokie-test-${randomBytes(4).toString('hex')}:`;
  let admin: Redis;
  before(() => {
    admin = new Redis(REDIS_URL);
  });
  after(async () => {
    const keys = await admin.keys(`${prefix}*`);
    if (keys.length) await admin.del(...keys);
    admin.disconnect();
  });

  it('two instances share one count per address, kept in Redis under REDIS_KEY_PREFIX', async () => {
    const database: TestDatabase = await createTestDatabase({ file: true });
    const env = { RATE_LIMIT_ENABLED: 'true', REDIS_URL, REDIS_KEY_PREFIX: prefix };
    const a = await createLoggedApp(env, database);
    const b = await createLoggedApp(env, database);
    try {
      assert.equal(a.app.rateLimits.backend, 'redis');
      const codes: number[] = [];
      for (let i = 0; i < 7; i++) codes.push((await login(i % 2 ? b : a, '198.51.100.40', i)).statusCode);
      assert.deepEqual(codes, [401, 401, 401, 401, 401, 429, 429]);
      const keys = await admin.keys(`${prefix}rl:auth.login*`);
      assert.ok(
        keys.some((k) => k.includes('ip:198.51.100.40')),
        keys.join(','),
      );
      // Concurrent requests spread over both instances: Redis counts atomically.
      const burst = await Promise.all(Array.from({ length: 20 }, (_, i) => login(i % 2 ? b : a, '198.51.100.41', i)));
      assert.equal(burst.filter((r) => r.statusCode === 429).length, 15);
    } finally {
      await a.close();
      await b.close();
      await database.drop();
    }
  });

  it('the bucket in Redis: Retry-After is when the next request is allowed, on either instance', async () => {
    const database: TestDatabase = await createTestDatabase({ file: true });
    const env = {
      RATE_LIMIT_ENABLED: 'true',
      REDIS_URL,
      REDIS_KEY_PREFIX: prefix,
      RATE_LIMITS: '{"default": "4 per 8 seconds"}',
    };
    const a = await createLoggedApp(env, database);
    const b = await createLoggedApp(env, database);
    try {
      const me = (t: LoggedApp) => t.app.inject({ method: 'GET', url: '/api/auth/me', remoteAddress: '198.51.100.44' });
      const codes = (batch: { statusCode: number }[]) => batch.map((r) => r.statusCode).sort();
      for (let i = 0; i < 100 && [a, b].some((t) => t.container.redis!.status !== 'ready'); i++) await sleep(20);
      // Concurrent, so the 2 s steady interval cannot end in the middle of the batch on a slow machine.
      const burst = await Promise.all(Array.from({ length: 6 }, (_, i) => me(i % 2 ? b : a)));
      assert.deepEqual(codes(burst), [401, 401, 401, 401, 429, 429]);
      const wait = Math.max(...burst.filter((r) => r.statusCode === 429).map((r) => Number(r.headers['retry-after'])));
      assert.ok(wait >= 1 && wait <= 2, `Retry-After ${wait}`);
      await sleep(wait * 1000 + 150);
      assert.deepEqual(
        codes(await Promise.all([me(a), me(b)])),
        [401, 429],
        'one more after Retry-After, not a new window',
      );
      const hundred = await createLoggedApp(
        { RATE_LIMIT_ENABLED: 'true', REDIS_URL, REDIS_KEY_PREFIX: prefix },
        database,
      );
      try {
        let last = await me(hundred);
        for (let i = 0; i < 100; i++) last = await me(hundred);
        assert.equal(last.statusCode, 429);
        const retryAfter = Number(last.headers['retry-after']);
        assert.ok(retryAfter >= 30 && retryAfter <= 36, `Retry-After ${retryAfter} for 100 per hour`);
      } finally {
        await hundred.close();
      }
    } finally {
      await a.close();
      await b.close();
      await database.drop();
    }
  });

  it('Redis unreachable from the start: in-process fallback enforces the limit and says so in the log', async () => {
    const t = await createLoggedApp({
      RATE_LIMIT_ENABLED: 'true',
      REDIS_URL: 'redis://127.0.0.1:1',
      REDIS_KEY_PREFIX: prefix,
    });
    try {
      const codes: number[] = [];
      for (let i = 0; i < 7; i++) codes.push((await login(t, '198.51.100.42', i)).statusCode);
      assert.deepEqual(codes, [401, 401, 401, 401, 401, 429, 429]);
      const fallbackLogs = t.lines.filter((l) => String(l.msg).startsWith('rate limiter: Redis unavailable'));
      assert.equal(fallbackLogs.length, 1, 'logged once per outage');
      assert.equal(fallbackLogs[0]!.level, 50);
      assert.equal((await t.app.inject({ method: 'GET', url: '/api/health' })).statusCode, 200);
    } finally {
      await t.close();
    }
  });

  it('Redis lost mid-run: requests keep being answered and limited, never a 500', async () => {
    const t = await createLoggedApp({ RATE_LIMIT_ENABLED: 'true', REDIS_URL, REDIS_KEY_PREFIX: prefix });
    try {
      for (let i = 0; i < 50 && t.container.redis!.status !== 'ready'; i++) await sleep(20);
      const before = [(await login(t, '198.51.100.43', 0)).statusCode, (await login(t, '198.51.100.43', 1)).statusCode];
      assert.deepEqual(before, [401, 401]);
      assert.equal(
        t.lines.some((l) => String(l.msg).startsWith('rate limiter: Redis unavailable')),
        false,
      );
      // Cut the connection for good (no reconnect), as when the Redis host disappears.
      t.container.redis!.disconnect(false);
      const codes: number[] = [];
      for (let i = 0; i < 7; i++) codes.push((await login(t, '198.51.100.43', i + 2)).statusCode);
      // The in-process counter starts afresh, but the limit holds: 5 more, then refused.
      assert.deepEqual(codes, [401, 401, 401, 401, 401, 429, 429]);
      assert.ok(t.lines.some((l) => String(l.msg).startsWith('rate limiter: Redis unavailable')));
    } finally {
      await t.close();
    }
  });
});
