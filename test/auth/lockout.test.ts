import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createTestApp, json, register, type TestApp } from '../helpers/app.js';

const loginReq = (username: string, password: string) => ({ method: 'POST' as const, url: '/api/auth/login', payload: { username, password } });

/** The parts of an error answer that must not differ between known and unknown accounts. */
const shape = (res: { statusCode: number; body: string; headers: Record<string, unknown> }) => {
  const body = json(res);
  return { status: res.statusCode, code: body.error?.code, message: body.error?.message, retry: res.headers['retry-after'] !== undefined };
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
      const results = await Promise.all(Array.from({ length: 50 }, () => t.app.inject(loginReq(u.username, 'wrong-password'))));
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
    const rows = await t.app.container.db.selectFrom('security_events').select(['type', 'details']).where('user_id', '=', u.id).execute();
    const types = rows.map((r) => r.type);
    assert.equal(types.filter((x) => x === 'login_failure').length, 6);
    assert.equal(types.filter((x) => x === 'account_locked').length, 1);
    assert.ok(rows.every((r) => !String(r.details).includes('wrong-password')));
  });
});
