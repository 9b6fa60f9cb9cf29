import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { randomUUID } from 'node:crypto';
import { buildApp } from '../../../src/app.js';
import { RESERVATION_LEASE_MS } from '../../../src/modules/auth/lockout.js';
import { createTestApp, json, makeTestConfig, register, type TestApp } from '../../helpers/app.js';

const loginReq = (username: string, password: string) => ({
  method: 'POST' as const,
  url: '/api/auth/login',
  payload: { username, password },
});

/** The parts of an error answer that must not differ between known and unknown accounts. */
const shape = (res: { statusCode: number; body: string; headers: Record<string, unknown> }) => {
  const body = json(res);
  return {
    status: res.statusCode,
    code: body.error?.code,
    message: body.error?.message,
    retry: res.headers['retry-after'] !== undefined,
  };
};

describe('account lockout', () => {
  let t: TestApp;
  before(async () => {
    t = await createTestApp({ MAX_LOGIN_ATTEMPTS: '5', ACCOUNT_LOCKOUT_DURATION: '30' });
  });
  after(() => t.close());

  it('locks after MAX_LOGIN_ATTEMPTS failures: 423 even with the right password', async () => {
    const u = await register(t.app);
    for (let i = 0; i < 5; i++) {
      const res = await t.app.inject(loginReq(u.username, 'wrong-password'));
      assert.equal(res.statusCode, 401, `attempt ${i + 1}`);
      assert.equal(json(res).error.message, 'Invalid username or password');
    }
    const locked = await t.app.inject(loginReq(u.username, u.password));
    assert.equal(locked.statusCode, 423);
    assert.equal(json(locked).error.code, 'LOCKED');
    assert.ok(Number(locked.headers['retry-after']) > 0);
    // Logging in by e-mail is the same account and the same lock.
    assert.equal((await t.app.inject(loginReq(u.email, u.password))).statusCode, 423);
  });

  it('a successful login resets the count', async () => {
    const u = await register(t.app);
    for (let i = 0; i < 4; i++) assert.equal((await t.app.inject(loginReq(u.username, 'nope'))).statusCode, 401);
    assert.equal((await t.app.inject(loginReq(u.username, u.password))).statusCode, 200);
    for (let i = 0; i < 4; i++) assert.equal((await t.app.inject(loginReq(u.username, 'nope'))).statusCode, 401);
    assert.equal((await t.app.inject(loginReq(u.username, u.password))).statusCode, 200);
  });

  it('the lock ends after ACCOUNT_LOCKOUT_DURATION', async () => {
    const u = await register(t.app);
    for (let i = 0; i < 5; i++) await t.app.inject(loginReq(u.username, 'nope'));
    assert.equal((await t.app.inject(loginReq(u.username, u.password))).statusCode, 423);
    // Move the lock into the past instead of waiting 30 minutes.
    await t.app.container.db
      .updateTable('login_attempts')
      .set({ locked_until: Date.now() - 1000, window_started_at: Date.now() - 31 * 60_000 })
      .where('key', '=', `user:${u.id}`)
      .execute();
    assert.equal((await t.app.inject(loginReq(u.username, u.password))).statusCode, 200);
  });

  it('50 concurrent wrong attempts get at most MAX_LOGIN_ATTEMPTS password checks', async () => {
    const u = await register(t.app);
    const hasher = t.app.container.hasher;
    const original = hasher.verify.bind(hasher);
    let checks = 0;
    hasher.verify = async (password, hash) => {
      checks++;
      return original(password, hash);
    };
    try {
      const results = await Promise.all(
        Array.from({ length: 50 }, () => t.app.inject(loginReq(u.username, 'wrong-password'))),
      );
      const statuses = results.map((r) => r.statusCode);
      assert.equal(statuses.filter((s) => s === 401).length, 5, `statuses: ${statuses.join(',')}`);
      assert.equal(statuses.filter((s) => s === 423).length, 45);
      assert.equal(checks, 5);
    } finally {
      hasher.verify = original;
    }
    assert.equal((await t.app.inject(loginReq(u.username, u.password))).statusCode, 423);
  });

  it('unknown usernames go through the same counter and get the same answers', async () => {
    const known = await register(t.app);
    const unknown = 'ghost_' + Math.random().toString(36).slice(2, 8);
    const knownAnswers = [];
    const unknownAnswers = [];
    for (let i = 0; i < 6; i++) {
      knownAnswers.push(shape(await t.app.inject(loginReq(known.username, 'wrong-password'))));
      unknownAnswers.push(shape(await t.app.inject(loginReq(unknown, 'wrong-password'))));
    }
    assert.deepEqual(unknownAnswers, knownAnswers);
    assert.equal(knownAnswers[5]!.status, 423);
  });

  it('failures and lockouts are recorded as security events', async () => {
    const u = await register(t.app);
    for (let i = 0; i < 6; i++) await t.app.inject(loginReq(u.username, 'wrong-password'));
    await t.app.container.events.flush();
    const rows = await t.app.container.db
      .selectFrom('security_events')
      .select(['type', 'details'])
      .where('user_id', '=', u.id)
      .execute();
    const types = rows.map((r) => r.type);
    assert.equal(types.filter((x) => x === 'login_failure').length, 6);
    assert.equal(types.filter((x) => x === 'account_locked').length, 1);
    assert.ok(rows.every((r) => !String(r.details).includes('wrong-password')));
  });
});

/**
 * Attempts in flight are not failures (docs/security.md "Lockout"): the cap on concurrent checks
 * per counter makes extra attempts wait for a slot, and only a counter that is really locked
 * answers 423.
 */
describe('login attempts in flight', () => {
  let t: TestApp;
  before(async () => {
    t = await createTestApp({ MAX_LOGIN_ATTEMPTS: '5', LOGIN_QUEUE_TIMEOUT: '0.6' }, { fileDatabase: true });
  });
  after(() => t.close());

  /** Slots taken by "another instance": reservation rows on the account's counter. */
  const holdSlots = (userId: string, count: number, expiresAt: number) =>
    t.app.container.db
      .insertInto('login_reservations')
      .values(Array.from({ length: count }, () => ({ id: randomUUID(), key: `user:${userId}`, expires_at: expiresAt })))
      .execute();

  it('16 concurrent logins with the correct password: 16 x 200, none told the account is locked', async () => {
    const slow = await createTestApp({ MAX_LOGIN_ATTEMPTS: '5' });
    try {
      const u = await register(slow.app);
      const results = await Promise.all(
        Array.from({ length: 16 }, () => slow.app.inject(loginReq(u.username, u.password))),
      );
      assert.deepEqual(
        results.map((r) => r.statusCode),
        Array(16).fill(200),
        results.map((r) => r.body.slice(0, 120)).join('\n'),
      );
      const reservations = await slow.app.container.db.selectFrom('login_reservations').select('id').execute();
      assert.equal(reservations.length, 0, 'every slot was given back');
    } finally {
      await slow.close();
    }
  });

  it('no free slot within LOGIN_QUEUE_TIMEOUT: 429 + Retry-After, never 423, no failure counted', async () => {
    const u = await register(t.app);
    await holdSlots(u.id, 5, Date.now() + 60_000);
    const started = Date.now();
    const res = await t.app.inject(loginReq(u.username, u.password));
    assert.equal(res.statusCode, 429, res.body);
    assert.equal(json(res).error.code, 'RATE_LIMIT_EXCEEDED');
    assert.ok(Number(res.headers['retry-after']) >= 1);
    assert.ok(Date.now() - started >= 500, 'it waited for a slot first');
    const row = await t.app.container.db
      .selectFrom('login_attempts')
      .select(['failures', 'locked_until'])
      .where('key', '=', `user:${u.id}`)
      .executeTakeFirst();
    assert.equal(row?.failures ?? 0, 0);
    assert.equal(row?.locked_until ?? null, null);
  });

  it('slots of a process that died free themselves when their lease ends', async () => {
    const u = await register(t.app);
    assert.ok(RESERVATION_LEASE_MS <= 120_000, 'a lease is bounded');
    await holdSlots(u.id, 5, Date.now() - 1);
    assert.equal((await t.app.inject(loginReq(u.username, u.password))).statusCode, 200, 'expired leases hold nothing');
  });

  it('a slot freed by another instance is found by polling the database', async () => {
    const u = await register(t.app);
    const other = await buildApp(makeTestConfig({ MAX_LOGIN_ATTEMPTS: '5', LOGIN_QUEUE_TIMEOUT: '5' }, t.database.url));
    await other.ready();
    try {
      const hasher = t.app.container.hasher;
      const verify = hasher.verify.bind(hasher);
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      hasher.verify = async (password, hash) => {
        await gate;
        return verify(password, hash);
      };
      // Five correct logins in flight on this instance take every slot; the sixth, on the other instance, waits.
      const holding = Array.from({ length: 5 }, () => t.app.inject(loginReq(u.username, u.password)));
      for (let i = 0; i < 100; i++) {
        const n = await t.app.container.db
          .selectFrom('login_reservations')
          .select('id')
          .where('key', '=', `user:${u.id}`)
          .execute();
        if (n.length === 5) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      const waiting = other.inject(loginReq(u.username, u.password));
      await new Promise((r) => setTimeout(r, 300));
      release();
      hasher.verify = verify;
      const statuses = (await Promise.all([...holding, waiting])).map((r) => r.statusCode);
      assert.deepEqual(statuses, Array(6).fill(200));
    } finally {
      await other.close();
    }
  });
});
