/** Rate limits with the guide's defaults, exact counts, headers, events, per-username login limit, emergency limit. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { loadConfig } from '../../src/config/index.js';
import { generateSecret } from '../../src/config/secret-strength.js';
import { setEmergencyLimit } from '../../src/state/emergency-limit.js';
import { createTestDatabase } from '../helpers/database.js';
import { createLoggedApp, uniqueUser } from '../helpers/app.js';
import { sleep } from '../helpers/server.js';

const ON = { RATE_LIMIT_ENABLED: 'true' };

async function statuses(app: FastifyInstance, count: number, request: (i: number) => InjectOptions): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < count; i++) out.push((await app.inject(request(i))).statusCode);
  return out;
}
const times = (n: number, status: number) => Array<number>(n).fill(status);

describe('rate limits (in-process store, guide defaults)', () => {
  it('auth.login: 5 per minute per address, then 429 with Retry-After, RateLimit-* and one event', async () => {
    const t = await createLoggedApp(ON);
    const events: { type: string; details: Record<string, unknown> | null }[] = [];
    t.container.events.onEvent((e) => events.push(e));
    try {
      const responses = [];
      for (let i = 0; i < 7; i++) {
        responses.push(
          await t.app.inject({
            method: 'POST',
            url: '/api/auth/login',
            remoteAddress: '198.51.100.1',
            payload: { username: `nobody${i}`, password: 'wrong' },
          }),
        );
      }
      assert.deepEqual(
        responses.map((r) => r.statusCode),
        [...times(5, 401), 429, 429],
      );
      assert.deepEqual(
        responses.slice(0, 5).map((r) => r.headers['ratelimit-remaining']),
        ['4', '3', '2', '1', '0'],
      );
      const refused = responses[5]!;
      assert.equal(refused.headers['ratelimit-limit'], '5');
      assert.equal(refused.headers['ratelimit-remaining'], '0');
      const retryAfter = Number(refused.headers['retry-after']);
      assert.ok(retryAfter >= 1 && retryAfter <= 60, String(retryAfter));
      assert.ok(Number(refused.headers['ratelimit-reset']) <= 60);
      const body = JSON.parse(refused.body);
      assert.equal(body.success, false);
      assert.equal(body.error.code, 'RATE_LIMIT_EXCEEDED');
      const limitEvents = events.filter((e) => e.type === 'rate_limit_exceeded');
      assert.equal(limitEvents.length, 1, 'reported once per window, not once per refused request');
      assert.equal(limitEvents[0]!.details!.limit, 'auth.login');
      // Another address is unaffected.
      const other = await t.app.inject({
        method: 'POST',
        url: '/api/auth/login',
        remoteAddress: '198.51.100.2',
        payload: { username: 'x', password: 'y' },
      });
      assert.equal(other.statusCode, 401);
    } finally {
      await t.close();
    }
  });

  it('auth.login is also limited per username, whatever the address', async () => {
    // Lockout above the limit here, so the limit's own answer shows (with the defaults the lock
    // trips at the same attempt and answers 423 instead: test/modules/auth/device-lockout.test.ts).
    const t = await createLoggedApp({ ...ON, MAX_LOGIN_ATTEMPTS: '10' });
    try {
      const codes = await statuses(t.app, 7, (i) => ({
        method: 'POST',
        url: '/api/auth/login',
        remoteAddress: `203.0.113.${i + 1}`,
        payload: { username: i % 2 ? 'Victim' : 'victim ', password: `guess-${i}` },
      }));
      assert.deepEqual(codes, [...times(5, 401), 429, 429]);
    } finally {
      await t.close();
    }
  });

  it('auth.register: 3/min; password.reset: 2 requests/min; completing a reset has its own looser limit', async () => {
    const t = await createLoggedApp(ON);
    try {
      const reg = await statuses(t.app, 4, () => ({
        method: 'POST',
        url: '/api/auth/register',
        remoteAddress: '198.51.100.3',
        payload: uniqueUser('rl'),
      }));
      assert.deepEqual(reg, [201, 201, 201, 429]);
      const request = () => ({
        method: 'POST' as const,
        url: '/api/auth/password/reset-request',
        remoteAddress: '198.51.100.4',
        payload: { email: 'a@example.com' },
      });
      const complete = () => ({
        method: 'POST' as const,
        url: '/api/auth/password/reset',
        remoteAddress: '198.51.100.4',
        payload: { token: 'nope', new_password: 'Velvet-Orbit-Harbor-42', confirm_password: 'Velvet-Orbit-Harbor-42' },
      });
      assert.deepEqual(await statuses(t.app, 3, request), [202, 202, 429]);
      // Two requests do not block the reset itself: password.reset.complete (10 per minute) counts it.
      const completions = await statuses(t.app, 11, complete);
      assert.deepEqual(completions, [...times(10, 400), 429]);
      assert.equal((await t.app.inject(request())).statusCode, 429, 'requests are still held back');
    } finally {
      await t.close();
    }
  });

  it('default: 100 per hour on other routes; only the plain health check and the probes are exempt', async () => {
    const t = await createLoggedApp(ON);
    try {
      const responses = [];
      for (let i = 0; i < 101; i++)
        responses.push(await t.app.inject({ method: 'GET', url: '/api/auth/me', remoteAddress: '198.51.100.5' }));
      assert.deepEqual(
        responses.map((r) => r.statusCode),
        [...times(100, 401), 429],
      );
      assert.deepEqual(
        responses.slice(0, 100).map((r) => Number(r.headers['ratelimit-remaining'])),
        Array.from({ length: 100 }, (_, i) => 99 - i),
      );
      // A bucket, not a fixed hour: the next request is allowed within 3600 / 100 = 36 s.
      const refused = responses[100]!;
      const retryAfter = Number(refused.headers['retry-after']);
      assert.ok(retryAfter >= 30 && retryAfter <= 36, `Retry-After ${retryAfter}`);
      assert.equal(refused.headers['ratelimit-reset'], String(retryAfter));
      assert.equal(refused.headers['ratelimit-limit'], '100');
      // Unknown URLs count against the default too (probing is not free).
      assert.equal(
        (await t.app.inject({ method: 'GET', url: '/api/unknown', remoteAddress: '198.51.100.5' })).statusCode,
        429,
      );
      for (const url of ['/api/health', '/api/health/', '/api/health/liveness', '/api/health/readiness']) {
        const health = await statuses(t.app, 120, () => ({ method: 'GET', url, remoteAddress: '198.51.100.5' }));
        assert.deepEqual(health, times(120, 200), url);
      }
      assert.equal(
        (await t.app.inject({ method: 'GET', url: '/api/openapi.json', remoteAddress: '198.51.100.5' })).statusCode,
        200,
      );
    } finally {
      await t.close();
    }
  });

  it('Retry-After is true: the next request is allowed once it has passed, and not before', async () => {
    const t = await createLoggedApp({ ...ON, RATE_LIMITS: '{"default": "3 per 6 seconds"}' });
    try {
      const me = () => t.app.inject({ method: 'GET', url: '/api/auth/me', remoteAddress: '198.51.100.9' });
      const codes = (batch: { statusCode: number }[]) => batch.map((r) => r.statusCode).sort();
      // Concurrent, so the 2 s steady interval cannot end in the middle of the batch on a slow machine.
      const burst = await Promise.all(Array.from({ length: 5 }, me));
      assert.deepEqual(codes(burst), [401, 401, 401, 429, 429]);
      const wait = Math.max(...burst.filter((r) => r.statusCode === 429).map((r) => Number(r.headers['retry-after'])));
      assert.ok(wait >= 1 && wait <= 2, `Retry-After ${wait}`);
      await sleep(wait * 1000 + 150);
      assert.deepEqual(
        codes(await Promise.all([me(), me()])),
        [401, 429],
        'one more after Retry-After, not a whole new window',
      );
    } finally {
      await t.close();
    }
  });

  it('default counts per verified user, else per address; a forged token counts against its address', async () => {
    const t = await createLoggedApp({ ...ON, RATE_LIMITS: '{"default": "10 per hour"}' });
    try {
      const loginFrom = async (address: string) => {
        const user = uniqueUser('pu');
        assert.equal(
          (await t.app.inject({ method: 'POST', url: '/api/auth/register', remoteAddress: address, payload: user }))
            .statusCode,
          201,
        );
        const res = await t.app.inject({
          method: 'POST',
          url: '/api/auth/login',
          remoteAddress: address,
          payload: { username: user.username, password: user.password },
        });
        return JSON.parse(res.body).data.access_token as string;
      };
      const alice = await loginFrom('198.51.100.60');
      const bob = await loginFrom('198.51.100.60');
      const me = (token: string | null, remoteAddress: string) => ({
        method: 'GET' as const,
        url: '/api/auth/me',
        remoteAddress,
        headers: token ? { authorization: `Bearer ${token}` } : {},
      });
      // Alice's count follows her: 10 from one address, then the 11th from another is refused.
      const aliceCodes = await statuses(t.app, 11, (i) => me(alice, i < 10 ? '198.51.100.61' : '198.51.100.62'));
      assert.deepEqual(aliceCodes, [...times(10, 200), 429]);
      // Her 10 did not use up the address: Bob and an anonymous client there get through.
      assert.equal((await t.app.inject(me(bob, '198.51.100.61'))).statusCode, 200);
      assert.equal((await t.app.inject(me(null, '198.51.100.61'))).statusCode, 401);
      // A token with a forged signature names Alice but is not verified: it counts against its address.
      const [header, payload] = alice.split('.');
      const forged = `${header}.${payload}.${'A'.repeat(43)}`;
      const forgedCodes = await statuses(t.app, 11, () => me(forged, '198.51.100.63'));
      assert.deepEqual(forgedCodes, [...times(10, 401), 429]);
      assert.equal(
        (await t.app.inject(me(bob, '198.51.100.63'))).statusCode,
        200,
        'a valid user from that address still gets through',
      );
    } finally {
      await t.close();
    }
  });

  it('concurrent requests are counted atomically: exactly the limit gets through', async () => {
    const t = await createLoggedApp(ON);
    try {
      const results = await Promise.all(
        Array.from({ length: 25 }, (_, i) =>
          t.app.inject({
            method: 'POST',
            url: '/api/auth/login',
            remoteAddress: '198.51.100.6',
            payload: { username: `c${i}`, password: 'x' },
          }),
        ),
      );
      assert.equal(results.filter((r) => r.statusCode === 429).length, 20);
    } finally {
      await t.close();
    }
  });

  it('RATE_LIMITS overrides only the keys it names; RATE_LIMIT_ENABLED=false only outside production', async () => {
    const t = await createLoggedApp({ ...ON, RATE_LIMITS: '{"auth.login": "2 per 30 seconds"}' });
    try {
      assert.deepEqual(t.container.config.RATE_LIMITS['auth.register']!.points, 3);
      const codes = await statuses(t.app, 3, (i) => ({
        method: 'POST',
        url: '/api/auth/login',
        remoteAddress: '198.51.100.7',
        payload: { username: `o${i}`, password: 'x' },
      }));
      assert.deepEqual(codes, [401, 401, 429]);
    } finally {
      await t.close();
    }
    const off = await createLoggedApp({ RATE_LIMIT_ENABLED: 'false' });
    try {
      const codes = await statuses(off.app, 8, (i) => ({
        method: 'POST',
        url: '/api/auth/login',
        remoteAddress: '198.51.100.8',
        payload: { username: `p${i}`, password: 'x' },
      }));
      assert.deepEqual(codes, times(8, 401));
    } finally {
      await off.close();
    }
    assert.throws(
      () =>
        loadConfig(
          {
            NODE_ENV: 'production',
            SECRET_KEY: generateSecret(),
            JWT_SECRET_KEY: generateSecret(),
            RATE_LIMIT_ENABLED: 'false',
          },
          { dotenv: false },
        ),
      /RATE_LIMIT_ENABLED/,
    );
  });
});

describe('emergency rate limit', () => {
  it('limits all but health checks, per address, then lifts; other instances follow in the sync interval', async () => {
    const database = await createTestDatabase({ file: true });
    // RATE_LIMIT_ENABLED=false: the emergency limit is an operator's explicit act and applies anyway.
    const a = await createLoggedApp({ RATE_LIMIT_ENABLED: 'false' }, database);
    const b = await createLoggedApp({ RATE_LIMIT_ENABLED: 'false' }, database);
    try {
      await setEmergencyLimit(a.container.db, a.container.changes, '2 per minute');
      // In force here when the call returns: the next request on this instance is limited.
      assert.equal(a.app.rateLimits.emergencyLimit?.points, 2, 'the instance that set it applies it');
      // Quick successive changes: reads run in order, so an older read never puts its value back last.
      for (const rate of ['3 per minute', null, '4 per minute', '2 per minute']) {
        await setEmergencyLimit(a.container.db, a.container.changes, rate);
        assert.equal(a.app.rateLimits.emergencyLimit?.text ?? null, rate);
      }
      const codes = await statuses(a.app, 3, () => ({
        method: 'GET',
        url: '/api/openapi.json',
        remoteAddress: '198.51.100.30',
      }));
      assert.deepEqual(codes, [200, 200, 429]);
      assert.equal(
        (
          await a.app.inject({
            method: 'POST',
            url: '/api/auth/login',
            remoteAddress: '198.51.100.30',
            payload: { username: 'a', password: 'b' },
          })
        ).statusCode,
        429,
      );
      assert.equal(
        (await a.app.inject({ method: 'GET', url: '/api/health', remoteAddress: '198.51.100.30' })).statusCode,
        200,
      );
      assert.equal(
        (await a.app.inject({ method: 'GET', url: '/api/openapi.json', remoteAddress: '198.51.100.31' })).statusCode,
        200,
        'per address',
      );

      for (let i = 0; i < 50 && !b.app.rateLimits.emergencyLimit; i++) await sleep(50);
      assert.equal(
        b.app.rateLimits.emergencyLimit?.text,
        '2 per minute',
        'the other instance picked it up from the change feed',
      );
      const codesB = await statuses(b.app, 3, () => ({
        method: 'GET',
        url: '/api/auth/me',
        remoteAddress: '198.51.100.32',
      }));
      assert.deepEqual(codesB, [401, 401, 429]);

      await setEmergencyLimit(b.container.db, b.container.changes, null);
      for (let i = 0; i < 50 && a.app.rateLimits.emergencyLimit; i++) await sleep(50);
      assert.equal(a.app.rateLimits.emergencyLimit, null);
      assert.equal(
        (await a.app.inject({ method: 'GET', url: '/api/openapi.json', remoteAddress: '198.51.100.30' })).statusCode,
        200,
      );
      assert.ok(
        a.lines.some((l) => l.msg === 'emergency rate limit in force') &&
          a.lines.some((l) => l.msg === 'emergency rate limit lifted'),
      );
    } finally {
      await a.close();
      await b.close();
      await database.drop();
    }
  });
});
