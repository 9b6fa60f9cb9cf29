/**
 * The session wrapper (client/session.ts) against a real server over HTTP, body mode (Node).
 * Expiry is real: the process clock (node:test's Date mock, which the server in this process
 * reads too) moves two hours on, past the access tokens' hour and well within the refresh token's
 * 30 days, so the server answers 401 "Token has expired" exactly as it would in production.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it, mock } from 'node:test';
import {
  AccountLockedError,
  createFlokieSession,
  FlokieError,
  RateLimitedError,
  SessionEndedError,
} from '../../client/index.js';
import { createLoggedApp, type LoggedApp, register, STRONG_PASSWORD } from '../helpers/app.js';

const TWO_HOURS = 2 * 3600 * 1000;
const WRONG = 'Wrong-Password-123456';

describe('client session (Node, body mode)', () => {
  let t: LoggedApp;
  let baseUrl: string;
  const refreshes: number[] = [];
  const events: { type: string }[] = [];

  before(async () => {
    t = await createLoggedApp({ LOG_LEVEL: 'silent' }, undefined, (app) =>
      app.addHook('onResponse', async (request, reply) => {
        if (request.method === 'POST' && request.url.startsWith('/api/auth/refresh')) refreshes.push(reply.statusCode);
      }),
    );
    t.container.events.onEvent((e) => events.push(e));
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    baseUrl = `http://127.0.0.1:${(t.app.server.address() as { port: number }).port}`;
  });
  after(async () => {
    await t?.close();
  });
  afterEach(() => {
    mock.timers.reset();
    refreshes.length = 0;
    events.length = 0;
  });

  it('20 concurrent calls with an expired access token: one refresh, 20 successes, no reuse event', async () => {
    const user = await register(t.app);
    const session = createFlokieSession({ baseUrl, mode: 'body' });
    await session.login({ username: user.username, password: STRONG_PASSWORD });
    const before = session.accessToken;
    assert.equal((await session.api.GET('/api/auth/me')).response.status, 200);

    mock.timers.enable({ apis: ['Date'], now: Date.now() });
    mock.timers.tick(TWO_HOURS);
    // The old token really is expired for the server now.
    const direct = await fetch(`${baseUrl}/api/auth/me`, { headers: { authorization: `Bearer ${before}` } });
    assert.equal(direct.status, 401);
    assert.match(((await direct.json()) as { error: { message: string } }).error.message, /expired/);

    const results = await Promise.all(Array.from({ length: 20 }, () => session.api.GET('/api/auth/me')));
    assert.deepEqual(
      results.map((r) => r.response.status),
      Array(20).fill(200),
    );
    const usernames = results.map((r) => (r.data as { data: { user: { username: string } } }).data.user.username);
    assert.deepEqual(usernames, Array(20).fill(user.username));
    assert.deepEqual(refreshes, [200], 'exactly one refresh reached the server');
    assert.notEqual(session.accessToken, before);
    assert.equal(events.filter((e) => e.type === 'refresh_token_reuse').length, 0);

    // And again, two hours later: the rotated refresh token works the same way.
    mock.timers.tick(TWO_HOURS);
    const again = await Promise.all(Array.from({ length: 20 }, () => session.api.GET('/api/auth/me')));
    assert.ok(again.every((r) => r.response.status === 200));
    assert.deepEqual(refreshes, [200, 200]);
    assert.equal(events.filter((e) => e.type === 'refresh_token_reuse').length, 0);
  });

  it('a revoked session: the calls fail with SessionEndedError after one refused refresh, and stay ended', async () => {
    const user = await register(t.app);
    const session = createFlokieSession({ baseUrl, mode: 'body' });
    await session.login({ username: user.username, password: STRONG_PASSWORD });
    await t.container.sessions.revokeAllForUser(user.id, 'admin');
    const results = await Promise.allSettled(Array.from({ length: 5 }, () => session.api.GET('/api/auth/me')));
    for (const r of results) {
      assert.equal(r.status, 'rejected');
      assert.ok(r.reason instanceof SessionEndedError, String(r.reason));
    }
    assert.deepEqual(refreshes, [401], 'one refresh attempt for all five calls');
    assert.equal(session.accessToken, null);
    const later = await session.api.GET('/api/auth/me');
    assert.equal(later.response.status, 401, 'no session, no refresh: the plain 401');
    assert.deepEqual(refreshes, [401]);
  });

  it('a locked account: login fails with AccountLockedError (423, Retry-After)', async () => {
    const user = await register(t.app);
    const session = createFlokieSession({ baseUrl, mode: 'body' });
    for (let i = 0; i < 5; i++) {
      const refused = await session.login({ username: user.username, password: WRONG }).catch((e: unknown) => e);
      assert.ok(refused instanceof FlokieError && refused.status === 401, String(refused));
    }
    const locked = await session.login({ username: user.username, password: WRONG }).catch((e: unknown) => e);
    assert.ok(locked instanceof AccountLockedError, String(locked));
    assert.ok((locked.retryAfterSeconds ?? 0) > 0);
  });
});

describe('client session: 429 handling', () => {
  const limited = (retryAfter: string | null) =>
    new Response(JSON.stringify({ success: false, error: { code: 'RATE_LIMIT_EXCEEDED', message: 'Slow down' } }), {
      status: 429,
      headers: retryAfter === null ? {} : { 'retry-after': retryAfter },
    });
  const json = { 'content-type': 'application/json' };
  const ok = () => new Response(JSON.stringify({ success: true, data: { id: 'x' } }), { headers: json });
  const base = { baseUrl: 'http://api.test', mode: 'body' as const };

  it('waits for Retry-After (within the cap) and retries', async () => {
    const answers = [limited('2'), ok()];
    const slept: number[] = [];
    const sleep = async (ms: number) => void slept.push(ms);
    const session = createFlokieSession({ ...base, fetch: async () => answers.shift()!, sleep });
    const res = await session.api.GET('/api/auth/me');
    assert.equal(res.response.status, 200);
    assert.deepEqual(slept, [2000]);
  });

  it('Retry-After over the cap, missing, or 429 past the retries: RateLimitedError, no wait past the cap', async () => {
    const slept: number[] = [];
    const sleep = async (ms: number) => void slept.push(ms);
    const over = createFlokieSession({ ...base, maxRetryAfterSeconds: 5, fetch: async () => limited('600'), sleep });
    const e1 = await over.api.GET('/api/auth/me').catch((e: unknown) => e);
    assert.ok(e1 instanceof RateLimitedError);
    assert.equal(e1.retryAfterSeconds, 600);
    const missing = createFlokieSession({ ...base, fetch: async () => limited(null), sleep });
    assert.ok((await missing.api.GET('/api/auth/me').catch((e: unknown) => e)) instanceof RateLimitedError);
    assert.deepEqual(slept, []);
    let calls = 0;
    const fetch = async () => (calls++, limited('1'));
    const forever = createFlokieSession({ ...base, rateLimitRetries: 2, fetch, sleep });
    assert.ok((await forever.api.GET('/api/auth/me').catch((e: unknown) => e)) instanceof RateLimitedError);
    assert.equal(calls, 3);
    assert.deepEqual(slept, [1000, 1000]);
  });
});
