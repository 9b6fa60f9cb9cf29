/**
 * A Redis that stalls — connection open, no answers, no reset (a partition, a frozen host) — is
 * bounded by REDIS_COMMAND_TIMEOUT_MS: the first unanswered command closes the connection, every
 * caller falls back to its in-process store at once until Redis answers again, and the limits
 * keep holding (nothing silently open). The stall comes from a TCP proxy (test/helpers/tcp-proxy.ts)
 * between the service and the Redis at TEST_REDIS_URL, which .ci/run starts.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { startTcpProxy, throughProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { createLoggedApp, type LoggedApp } from '../helpers/app.js';
import { REDIS_URL, redisSkip } from '../helpers/redis.js';
import { sleep } from '../helpers/server.js';

const COMMAND_TIMEOUT_MS = 300;
const skip = await redisSkip();

describe('a stalled Redis (REDIS_COMMAND_TIMEOUT_MS)', { skip, timeout: 60_000 }, () => {
  const prefix = `flokie-test-${randomBytes(4).toString('hex')}:`;
  let proxy: TcpProxy;
  let t: LoggedApp;
  before(async () => {
    const target = new URL(REDIS_URL);
    proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 6379) });
    t = await createLoggedApp({
      RATE_LIMIT_ENABLED: 'true',
      REDIS_URL: throughProxy(REDIS_URL, proxy),
      REDIS_KEY_PREFIX: prefix,
      REDIS_COMMAND_TIMEOUT_MS: String(COMMAND_TIMEOUT_MS),
    });
    for (let i = 0; i < 100 && t.container.redis!.status !== 'ready'; i++) await sleep(20);
  });
  after(async () => {
    proxy?.resume();
    await t?.close();
    await proxy?.close();
    const admin = new Redis(REDIS_URL);
    const keys = await admin.keys(`${prefix}*`);
    if (keys.length) await admin.del(...keys);
    admin.disconnect();
  });

  const login = (i: number) =>
    t.app.inject({
      method: 'POST',
      url: '/api/auth/login',
      remoteAddress: '198.51.100.60',
      payload: { username: `stall${i}`, password: 'wrong' },
    });

  it('requests are answered within the bound and still limited; Redis is used again once it answers', async () => {
    assert.equal(t.container.redis!.status, 'ready');
    assert.deepEqual([(await login(0)).statusCode, (await login(1)).statusCode], [401, 401]);

    // Counted from the stall on: on a loaded host the first connection itself may have timed out and been
    // logged (and its recovery) before the test began.
    const stalledAt = Date.now();
    proxy.stall('hold');
    const times: number[] = [];
    const codes: number[] = [];
    for (let i = 0; i < 7; i++) {
      const started = performance.now();
      codes.push((await login(i + 2)).statusCode);
      times.push(Math.round(performance.now() - started));
    }
    console.log(
      `# stalled Redis: login answers after ${times.join(', ')} ms (command timeout ${COMMAND_TIMEOUT_MS} ms)`,
    );
    for (const ms of times) assert.ok(ms < 5 * COMMAND_TIMEOUT_MS, `answered after ${ms} ms`);
    assert.ok(
      times.slice(1).every((ms) => ms < COMMAND_TIMEOUT_MS),
      'after the first timeout nobody waits for Redis',
    );
    // The in-process counter starts afresh, but the limit holds: 5, then refused.
    assert.deepEqual(codes, [401, 401, 401, 401, 401, 429, 429]);
    const down = t.lines.filter(
      (l) => l.msg === 'redis unavailable; using in-process fallback' && Number(l.time) >= stalledAt,
    );
    assert.equal(down.length, 1, 'logged once');

    proxy.resume();
    for (let i = 0; i < 200 && t.container.redis!.status !== 'ready'; i++) await sleep(25);
    assert.equal(t.container.redis!.status, 'ready', 'reconnected without a restart');
    assert.ok(t.lines.some((l) => l.msg === 'redis connection restored'));
    assert.equal(await t.container.redis!.ping(), 'PONG');
  });
});
