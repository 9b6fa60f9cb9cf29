/**
 * Lockout with device credentials (docs/security.md "Lockout"; OWASP "Slow Down Online Guessing
 * Attacks with Device Cookies"): an attacker's guesses lock only clients without a trusted
 * credential, a trusted device's failures lock only that device, an administrator can lock
 * everyone, and no answer tells whether an account exists. Runs on TEST_DATABASE_URL.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { DEVICE_CREDENTIAL_LIFETIME_SECONDS } from '../../../src/modules/auth/device-credentials.js';
import {
  bearer,
  createTestApp,
  json,
  makeAdmin,
  registerAndLogin,
  register,
  STRONG_PASSWORD,
  uniqueUser,
  type TestApp,
} from '../../helpers/app.js';

const MAX = 5;
const loginAs = (
  t: TestApp,
  username: string,
  password: string,
  headers: Record<string, string> = {},
  remoteAddress?: string,
) =>
  t.app.inject({
    method: 'POST',
    url: '/api/auth/login',
    payload: { username, password },
    headers,
    ...(remoteAddress ? { remoteAddress } : {}),
  });
const deviceToken = (res: LightMyRequestResponse) => json(res).data.device_token as string;
const device = (token: string) => ({ 'x-device-token': token });
/** The Set-Cookie line of the device cookie. */
const deviceCookieLine = (res: LightMyRequestResponse) =>
  [res.headers['set-cookie']].flat().find((c) => String(c).startsWith('flokie_device=')) as string | undefined;

async function events(t: TestApp, userId: string, type: string) {
  await t.app.container.events.flush();
  const rows = await t.app.container.db
    .selectFrom('security_events')
    .select('details')
    .where('user_id', '=', userId)
    .where('type', '=', type)
    .execute();
  return rows.map((r) => JSON.parse(r.details ?? '{}') as Record<string, unknown>);
}

describe('lockout with device credentials (LOCKOUT_MODE=device, the default)', () => {
  let t: TestApp;
  before(async () => {
    t = await createTestApp({ MAX_LOGIN_ATTEMPTS: String(MAX) });
  });
  after(() => t.close());

  /** A user who has logged in once: their device credential. */
  async function owner(prefix: string) {
    const u = await register(t.app, uniqueUser(prefix));
    const res = await loginAs(t, u.username, STRONG_PASSWORD);
    assert.equal(res.statusCode, 200);
    return { ...u, device: deviceToken(res) };
  }
  const lockUntrusted = async (username: string) => {
    for (let i = 0; i < MAX; i++) assert.equal((await loginAs(t, username, `Wrong-Guess-${i}-x`)).statusCode, 401);
  };

  it('the credential: HttpOnly Secure SameSite=Strict cookie on /api/auth; device_token if no cookies', async () => {
    const u = await register(t.app, uniqueUser('devcookie'));
    const res = await loginAs(t, u.username, STRONG_PASSWORD);
    const token = deviceToken(res);
    assert.match(token, /^d1\./);
    const line = deviceCookieLine(res)!;
    assert.ok(line, String(res.headers['set-cookie']));
    assert.equal(line.split(';')[0], `flokie_device=${token}`);
    for (const attribute of [
      'HttpOnly',
      'Secure',
      'SameSite=Strict',
      'Path=/api/auth',
      `Max-Age=${DEVICE_CREDENTIAL_LIFETIME_SECONDS}`,
    ])
      assert.ok(line.includes(attribute), `${attribute} in ${line}`);
    const again = await loginAs(t, u.username, STRONG_PASSWORD, device(token));
    assert.notEqual(deviceToken(again), token, 'every login issues a fresh credential');
    const cookieMode = await loginAs(t, u.username, STRONG_PASSWORD, { 'x-auth-mode': 'cookie' });
    assert.equal(json(cookieMode).data.device_token, undefined, 'cookie mode keeps it in the HttpOnly cookie only');
    assert.ok(deviceCookieLine(cookieMode));
  });

  it("an attacker's guesses lock only credential-less devices: the owner's trusted device still logs in", async () => {
    const u = await owner('devowner');
    await lockUntrusted(u.username);
    const locked = await loginAs(t, u.username, STRONG_PASSWORD);
    assert.equal(locked.statusCode, 423, 'untrusted: locked, even with the right password');
    assert.equal(json(locked).error.code, 'LOCKED');
    assert.equal((await loginAs(t, u.email, STRONG_PASSWORD)).statusCode, 423, 'by e-mail too');
    assert.equal(
      (await loginAs(t, u.username, STRONG_PASSWORD, device(u.device))).statusCode,
      200,
      'trusted by header',
    );
    assert.equal(
      (await loginAs(t, u.username, STRONG_PASSWORD, { cookie: `flokie_device=${u.device}` })).statusCode,
      200,
      'trusted by cookie',
    );
    assert.equal((await events(t, u.id, 'account_locked')).length, 1);
  });

  it('failures with a trusted credential count only for that device; deny-listed at MAX_LOGIN_ATTEMPTS', async () => {
    const u = await owner('devdeny');
    const second = deviceToken(await loginAs(t, u.username, STRONG_PASSWORD));
    for (let i = 0; i < MAX; i++)
      assert.equal((await loginAs(t, u.username, `Wrong-${i}-pw`, device(u.device))).statusCode, 401);
    const denied = await loginAs(t, u.username, STRONG_PASSWORD, device(u.device));
    assert.equal(denied.statusCode, 423, 'the deny-listed credential is refused, right password or not');
    assert.ok(Number(denied.headers['retry-after']) > 0);
    assert.equal(
      (await loginAs(t, u.username, STRONG_PASSWORD, device(second))).statusCode,
      200,
      'another trusted device is unaffected',
    );
    assert.equal(
      (await loginAs(t, u.username, STRONG_PASSWORD)).statusCode,
      200,
      'and so are devices without a credential',
    );
    const locks = await events(t, u.id, 'device_locked');
    assert.equal(locks.length, 1);
    assert.equal((await events(t, u.id, 'account_locked')).length, 0);
    const failures = await events(t, u.id, 'login_failure');
    assert.equal(failures.filter((f) => f.device === 'trusted' && f.reason === 'bad_credentials').length, MAX);
    const all = await t.app.container.db
      .selectFrom('security_events')
      .select('details')
      .where('user_id', '=', u.id)
      .execute();
    assert.ok(
      all.every((r) => !String(r.details).includes(u.device) && !String(r.details).includes(u.device.split('.')[2]!)),
      'no credential or nonce in events',
    );
  });

  it("another user's credential, or a tampered, expired or respelled one, counts as no credential", async () => {
    const u = await owner('devforged');
    const other = await owner('devother');
    const parts = u.device.split('.');
    const flip = (c: string) => (c === 'A' ? 'B' : 'A');
    const expired = t.app.container.lockout.devices.issue(
      u.id,
      Date.now() - (DEVICE_CREDENTIAL_LIFETIME_SECONDS + 60) * 1000,
    ).value;
    const forgeries = {
      "another user's": other.device,
      'tampered nonce': [parts[0], parts[1], flip(parts[2]![0]!) + parts[2]!.slice(1), parts[3], parts[4]].join('.'),
      'tampered expiry': [parts[0], parts[1], parts[2], String(Number(parts[3]) + 1), parts[4]].join('.'),
      'tampered MAC': [...parts.slice(0, 4), parts[4]!.slice(0, -1) + flip(parts[4]!.at(-1)!)].join('.'),
      'other user id': [parts[0], other.id, ...parts.slice(2)].join('.'),
      expired,
      'upper-cased': u.device.toUpperCase(),
      'padded MAC': `${u.device}=`,
      'two values': `${u.device}, ${u.device}`,
      empty: '',
      huge: 'd1.' + 'a'.repeat(5000),
    };
    await lockUntrusted(u.username);
    for (const [label, token] of Object.entries(forgeries)) {
      const res = await loginAs(t, u.username, STRONG_PASSWORD, device(token));
      assert.equal(res.statusCode, 423, `${label}: treated as no credential (${res.statusCode})`);
      const viaCookie = await loginAs(t, u.username, STRONG_PASSWORD, {
        cookie: `flokie_device=${encodeURIComponent(token)}`,
      });
      assert.equal(viaCookie.statusCode, 423, `${label} as a cookie`);
    }
    assert.equal(
      (await loginAs(t, u.username, STRONG_PASSWORD, device(u.device))).statusCode,
      200,
      'the real one still works',
    );
    // The other user's own device was not charged with anything.
    assert.equal((await events(t, other.id, 'login_failure')).length, 0);
  });

  it("guesses with another user's credential count on the target's untrusted counter, not that device", async () => {
    const victim = await owner('devvictim');
    const attacker = await owner('devattacker');
    for (let i = 0; i < MAX; i++)
      assert.equal((await loginAs(t, victim.username, `Guess-${i}-pw`, device(attacker.device))).statusCode, 401);
    assert.equal((await loginAs(t, victim.username, STRONG_PASSWORD)).statusCode, 423);
    assert.equal((await loginAs(t, attacker.username, STRONG_PASSWORD, device(attacker.device))).statusCode, 200);
    assert.equal((await loginAs(t, victim.username, STRONG_PASSWORD, device(victim.device))).statusCode, 200);
  });

  it('unknown names answer exactly like an account without a credential, whatever credential is sent', async () => {
    const known = await register(t.app, uniqueUser('devknown'));
    const someone = await owner('devsomeone');
    const shape = (res: LightMyRequestResponse) => ({
      status: res.statusCode,
      code: json(res).error?.code,
      message: json(res).error?.message,
      retry: res.headers['retry-after'] !== undefined,
    });
    const ghost = `ghost_${Math.random().toString(36).slice(2, 8)}`;
    const a = [];
    const b = [];
    for (let i = 0; i < MAX + 2; i++) {
      a.push(shape(await loginAs(t, known.username, `Wrong-${i}-pw`)));
      b.push(shape(await loginAs(t, ghost, `Wrong-${i}-pw`, device(someone.device))));
    }
    assert.deepEqual(b, a);
    assert.deepEqual(
      a.map((x) => x.status),
      [...Array(MAX).fill(401), 423, 423],
    );
  });

  it('50 concurrent guesses, one credential: <= MAX_LOGIN_ATTEMPTS checks; the device is deny-listed', async () => {
    const u = await owner('devflood');
    const row = (await t.app.container.users.findById(u.id))!;
    const hasher = t.app.container.hasher;
    const verify = hasher.verify.bind(hasher);
    let checks = 0;
    hasher.verify = async (password, hash) => {
      // eslint-disable-next-line security/detect-possible-timing-attacks -- test spy, no secret compared
      if (hash === row.password_hash) checks++;
      return verify(password, hash);
    };
    try {
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) => loginAs(t, u.username, `Wrong-${i}-pw`, device(u.device))),
      );
      const statuses = results.map((r) => r.statusCode);
      assert.equal(statuses.filter((s) => s === 401).length, MAX, statuses.join(','));
      assert.equal(statuses.filter((s) => s === 423).length, 50 - MAX);
      assert.equal(checks, MAX);
    } finally {
      hasher.verify = verify;
    }
    assert.equal((await loginAs(t, u.username, STRONG_PASSWORD)).statusCode, 200);
  });

  it('password change: wrong current passwords count toward lockout (12 lock) on their device', async () => {
    const u = await registerAndLogin(t.app, uniqueUser('devchange'));
    const trusted = deviceToken(u.res);
    const change = (current: string, headers: Record<string, string> = {}) =>
      t.app.inject({
        method: 'POST',
        url: '/api/auth/password/change',
        headers: { ...bearer(u.access), ...headers },
        payload: {
          current_password: current,
          new_password: 'Quiet-Lantern-Meadow-77',
          confirm_password: 'Quiet-Lantern-Meadow-77',
        },
      });
    const codes = [];
    for (let i = 0; i < 12; i++) codes.push((await change(`Wrong-Guess-${i}-pw`)).statusCode);
    assert.deepEqual(codes, [...Array(MAX).fill(400), ...Array(12 - MAX).fill(423)]);
    assert.equal((await change(STRONG_PASSWORD)).statusCode, 423, 'the right password while locked');
    assert.equal((await loginAs(t, u.username, STRONG_PASSWORD)).statusCode, 423, 'the same counter as logins');
    const failures = await events(t, u.id, 'login_failure');
    assert.equal(failures.filter((f) => f.flow === 'password_change' && f.reason === 'bad_credentials').length, MAX);
    assert.equal(failures.filter((f) => f.flow === 'password_change' && f.reason === 'locked').length, 12 - MAX + 1);
    // The owner's trusted device re-authenticates on its own counter.
    assert.equal((await change(STRONG_PASSWORD, device(trusted))).statusCode, 200);
  });

  it('an administrator can lock every device, trusted ones included; unlock clears every kind of lock', async () => {
    const admin = await registerAndLogin(t.app, uniqueUser('devadmin'));
    await makeAdmin(t.app, admin.id);
    const u = await owner('devlocked');
    const spare = deviceToken(await loginAs(t, u.username, STRONG_PASSWORD));
    const view = async () =>
      json(await t.app.inject({ method: 'GET', url: `/api/users/${u.id}`, headers: bearer(admin.access) })).data.user;

    await lockUntrusted(u.username);
    for (let i = 0; i < MAX; i++) await loginAs(t, u.username, `Wrong-${i}-pw`, device(spare));
    assert.equal((await view()).lock_scope, 'untrusted_devices');
    assert.ok(Date.parse((await view()).locked_until) > Date.now());

    const lock = await t.app.inject({
      method: 'POST',
      url: `/api/users/${u.id}/lock`,
      headers: bearer(admin.access),
      payload: { minutes: 90 },
    });
    assert.equal(lock.statusCode, 200, lock.body);
    assert.equal(json(lock).data.user.lock_scope, 'all');
    const until = Date.parse(json(lock).data.user.locked_until);
    assert.ok(Math.abs(until - (Date.now() + 90 * 60_000)) < 60_000, json(lock).data.user.locked_until);
    assert.equal(
      (await loginAs(t, u.username, STRONG_PASSWORD, device(u.device))).statusCode,
      423,
      'the trusted device is locked too',
    );
    const stats = json(
      await t.app.inject({ method: 'GET', url: '/api/users/statistics', headers: bearer(admin.access) }),
    ).data;
    assert.ok(stats.locked_users >= 1);

    const unlock = await t.app.inject({
      method: 'POST',
      url: `/api/users/${u.id}/unlock`,
      headers: bearer(admin.access),
    });
    assert.equal(unlock.statusCode, 200);
    assert.equal(json(unlock).data.user.locked_until, null);
    assert.equal(json(unlock).data.user.lock_scope, null);
    assert.equal((await loginAs(t, u.username, STRONG_PASSWORD, device(u.device))).statusCode, 200);
    assert.equal(
      (await loginAs(t, u.username, STRONG_PASSWORD, device(spare))).statusCode,
      200,
      'the deny-listed device is cleared',
    );
    assert.equal((await loginAs(t, u.username, STRONG_PASSWORD)).statusCode, 200, 'the untrusted lock is cleared');

    // Without minutes: until unlocked. Bad bodies are 400.
    const forever = await t.app.inject({
      method: 'POST',
      url: `/api/users/${u.id}/lock`,
      headers: bearer(admin.access),
    });
    assert.equal(forever.statusCode, 200, forever.body);
    assert.equal(json(forever).data.user.locked_until, '9999-12-31T23:59:59.999Z');
    assert.equal((await loginAs(t, u.username, STRONG_PASSWORD, device(u.device))).statusCode, 423);
    for (const payload of [
      { minutes: 0 },
      { minutes: -5 },
      { minutes: 'ten' },
      { minutes: 1.5 },
      { minutes: 6_000_000 },
      { hours: 1 },
    ]) {
      const bad = await t.app.inject({
        method: 'POST',
        url: `/api/users/${u.id}/lock`,
        headers: bearer(admin.access),
        payload,
      });
      assert.equal(bad.statusCode, 400, JSON.stringify(payload));
    }
    assert.equal(
      (await t.app.inject({ method: 'POST', url: `/api/users/${u.id}/unlock`, headers: bearer(admin.access) }))
        .statusCode,
      200,
    );
    const lockEvents = await events(t, u.id, 'account_locked_by_admin');
    assert.equal(lockEvents.length, 2);
    assert.equal(lockEvents[0]!.by, admin.id);
  });
});

describe("unlock clears exactly one user's device locks", () => {
  let t: TestApp;
  before(async () => {
    t = await createTestApp();
  });
  after(() => t.close());

  it("LIKE's wildcards in a user id match only themselves", async () => {
    const db = t.app.container.db;
    const now = Date.now();
    const keys = [
      'device:ab_c%!:n1',
      'device:abXcYZ:n2',
      'device:ab_c%!x:n3',
      'user:ab_c%!',
      'admin:ab_c%!',
      'user:abXcYZ',
    ];
    await db
      .insertInto('login_attempts')
      .values(keys.map((key) => ({ key, failures: 5, window_started_at: now, locked_until: now + 600_000 })))
      .execute();
    await t.app.container.lockout.unlock('ab_c%!');
    const left = (await db.selectFrom('login_attempts').select('key').where('key', 'in', keys).execute())
      .map((r) => r.key)
      .sort();
    assert.deepEqual(left, ['device:ab_c%!x:n3', 'device:abXcYZ:n2', 'user:abXcYZ'].sort());
  });
});

describe('a trusted device and the per-username login limit', () => {
  let t: TestApp;
  before(async () => {
    t = await createTestApp({
      RATE_LIMIT_ENABLED: 'true',
      RATE_LIMITS: JSON.stringify({ 'auth.login': '5 per minute', default: '10000 per hour' }),
      MAX_LOGIN_ATTEMPTS: '100',
    });
  });
  after(() => t.close());

  it('is not held back by the per-username limit; the per-IP limit still applies', async () => {
    const u = await register(t.app, uniqueUser('devlimit'));
    const first = await loginAs(t, u.username, STRONG_PASSWORD, {}, '192.0.2.1');
    assert.equal(first.statusCode, 200);
    const token = deviceToken(first);
    // Guesses from many addresses use up the per-username limit (1 of 5 was the owner's login).
    const guesses = [];
    for (let i = 0; i < 6; i++)
      guesses.push((await loginAs(t, u.username, `Guess-${i}-pw`, {}, `198.51.100.${i + 10}`)).statusCode);
    assert.deepEqual(guesses, [401, 401, 401, 401, 429, 429]);
    assert.equal(
      (await loginAs(t, u.username, STRONG_PASSWORD, {}, '192.0.2.2')).statusCode,
      429,
      'without the credential: limited per username',
    );
    assert.equal(
      (await loginAs(t, u.username, STRONG_PASSWORD, device(token), '192.0.2.3')).statusCode,
      200,
      'with it: not',
    );
    // The per-address limit still applies to the trusted device: 5 per minute from 192.0.2.4.
    const own = [];
    for (let i = 0; i < 6; i++)
      own.push((await loginAs(t, u.username, STRONG_PASSWORD, device(token), '192.0.2.4')).statusCode);
    assert.deepEqual(own, [200, 200, 200, 200, 200, 429]);
  });
});

describe('the lock and the per-username limit with the defaults (5 failures, 5 logins per minute per username)', () => {
  let t: TestApp;
  before(async () => {
    t = await createTestApp({ RATE_LIMIT_ENABLED: 'true' });
  });
  after(() => t.close());

  it('the 6th wrong attempt within a minute on a locked account is 423 with when the lock ends, not 429', async () => {
    const u = await register(t.app, uniqueUser('lockfirst'));
    const codes = [];
    for (let i = 0; i < 5; i++)
      codes.push((await loginAs(t, u.username, `Guess-${i}-pw`, {}, `198.51.100.${i + 100}`)).statusCode);
    assert.deepEqual(codes, [401, 401, 401, 401, 401]);
    for (const password of ['Guess-6-pw', STRONG_PASSWORD]) {
      const sixth = await loginAs(t, u.username, password, {}, '198.51.100.120');
      assert.equal(sixth.statusCode, 423, password);
      assert.equal(json(sixth).error.code, 'LOCKED');
      const retryAfter = Number(sixth.headers['retry-after']);
      assert.ok(retryAfter > 1700 && retryAfter <= 1800, `Retry-After ${retryAfter}: the end of the 30-minute lock`);
    }
    // An unknown name answers the same way (no enumeration).
    const ghost = [];
    for (let i = 0; i < 6; i++)
      ghost.push((await loginAs(t, 'no-such-user-lockfirst', `Guess-${i}-pw`, {}, `198.51.100.${i + 130}`)).statusCode);
    assert.deepEqual(ghost, [401, 401, 401, 401, 401, 423]);
  });

  it("a correct login from a trusted device is never 429 or 423 because of an attacker's failures", async () => {
    const u = await register(t.app, uniqueUser('trustedowner'));
    const first = await loginAs(t, u.username, STRONG_PASSWORD, {}, '192.0.2.60');
    assert.equal(first.statusCode, 200);
    const token = deviceToken(first);
    const guesses = [];
    for (let i = 0; i < 12; i++)
      guesses.push((await loginAs(t, u.username, `Guess-${i}-pw`, {}, `198.51.100.${i + 150}`)).statusCode);
    assert.ok(
      guesses.every((code) => [401, 423, 429].includes(code)) && guesses.slice(6).every((code) => code !== 401),
      guesses.join(),
    );
    assert.equal((await loginAs(t, u.username, STRONG_PASSWORD, device(token), '192.0.2.61')).statusCode, 200);
  });
});

describe('LOCKOUT_MODE=account (no device credentials)', () => {
  let t: TestApp;
  before(async () => {
    t = await createTestApp({ LOCKOUT_MODE: 'account', MAX_LOGIN_ATTEMPTS: String(MAX) });
  });
  after(() => t.close());

  it('issues no credential, consults none, and MAX_LOGIN_ATTEMPTS failures lock the account for everyone', async () => {
    const u = await register(t.app, uniqueUser('acctmode'));
    const res = await loginAs(t, u.username, STRONG_PASSWORD);
    assert.equal(json(res).data.device_token, undefined);
    assert.equal(deviceCookieLine(res), undefined);
    const forged = t.app.container.lockout.devices.issue(u.id).value;
    for (let i = 0; i < MAX; i++)
      assert.equal((await loginAs(t, u.username, `Wrong-${i}-pw`, device(forged))).statusCode, 401);
    assert.equal(
      (await loginAs(t, u.username, STRONG_PASSWORD, device(forged))).statusCode,
      423,
      'even a valid credential does not help',
    );
    assert.equal((await loginAs(t, u.username, STRONG_PASSWORD)).statusCode, 423);
  });
});
