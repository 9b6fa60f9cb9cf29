/**
 * Two real server processes on different ports, sharing this machine's PostgreSQL (a fresh
 * database) and Redis (a fresh key prefix), behave as one service: what one instance does to a
 * token, an account, a rate-limit counter or the emergency limit holds on the other at once.
 *
 * CACHE_SYNC_INTERVAL_MS is set to 60 s, so the database poll cannot be what delivers a change
 * within the 2 s bound: only the Redis pub/sub path (RedisChangeBus) and shared Redis counters
 * can. Each propagation delay is measured and printed.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { claimsOf, createPgDatabase, redisPrefix, REDIS_BASE, within } from './servers.js';
import { request, ROOT, startServer, type ServerProcess } from '../helpers/server.js';

const PASSWORD = 'Velvet-Orbit-Harbor-42';
const BOUND_MS = 2000;
const hasRateLimits = existsSync(join(ROOT, 'src/plugins/app/rate-limit.ts'));
const hasSecurityApi = existsSync(join(ROOT, 'src/modules/security/routes.ts'));
const hasAdminApi = existsSync(join(ROOT, 'src/modules/users/admin-routes.ts'));

const delays: Record<string, number> = {};
let counter = 0;
const unique = (prefix: string) => `${prefix}${++counter}_${Math.random().toString(36).slice(2, 7)}`;

describe('two instances on PostgreSQL + Redis', { timeout: 180_000 }, () => {
  let database: Awaited<ReturnType<typeof createPgDatabase>>;
  const redis = redisPrefix();
  let a: ServerProcess;
  let b: ServerProcess;
  let db: pg.Client;

  before(async () => {
    database = await createPgDatabase();
    const env = {
      DATABASE_URL: database.url,
      DATABASE_POOL_SIZE: '4',
      REDIS_URL: REDIS_BASE,
      REDIS_KEY_PREFIX: redis.prefix,
      CACHE_SYNC_INTERVAL_MS: '60000',
      MAX_LOGIN_ATTEMPTS: '3',
      RATE_LIMIT_ENABLED: 'true',
      RATE_LIMITS: JSON.stringify({
        default: '100000 per hour',
        'auth.login': '1000 per minute',
        'auth.register': '1000 per minute',
        'password.reset': '4 per minute',
      }),
      BRUTE_FORCE_ALERT_THRESHOLD: '100000',
    };
    // Started together: both apply migrations at once, which the migrator's lock must serialise.
    [a, b] = await Promise.all([startServer(env), startServer(env)]);
    db = new pg.Client({ connectionString: database.url });
    await db.connect();
  });

  after(async () => {
    const codes = await Promise.all([a?.stop(), b?.stop()]);
    await db?.end();
    await database?.drop();
    const removed = await redis.clear();
    console.log(
      `# propagation delays (ms): ${JSON.stringify(delays)}; ` +
        `instance exit codes ${codes.join(', ')}; redis keys removed ${removed}`,
    );
    assert.deepEqual(codes, [0, 0], 'both instances shut down cleanly on SIGTERM');
  });

  async function registerUser(on: ServerProcess, from = '127.0.0.1') {
    const username = unique('mi');
    const res = await request('POST', `${on.url}/api/auth/register`, {
      from,
      body: { username, email: `${username}@example.com`, password: PASSWORD },
    });
    assert.equal(res.status, 201, res.text);
    return { username, id: res.body.data.user.id as string };
  }

  async function login(on: ServerProcess, username: string, from = '127.0.0.1') {
    const res = await request('POST', `${on.url}/api/auth/login`, { from, body: { username, password: PASSWORD } });
    assert.equal(res.status, 200, res.text);
    return { access: res.body.data.access_token as string, refresh: res.body.data.refresh_token as string };
  }

  async function admin(on: ServerProcess) {
    const user = await registerUser(on, '127.0.0.9');
    await db.query('UPDATE users SET is_admin = 1 WHERE id = $1', [user.id]);
    return { ...user, ...(await login(on, user.username, '127.0.0.9')) };
  }

  const me = (on: ServerProcess, token: string) => request('GET', `${on.url}/api/auth/me`, { token });

  it('both instances serve the same database (pool sized by DATABASE_POOL_SIZE)', async () => {
    const user = await registerUser(a);
    const { access } = await login(b, user.username);
    assert.equal((await me(a, access)).body.data.user.id, user.id);
    const migrations = await db.query('SELECT count(*)::int AS n FROM flokie_migrations');
    assert.ok(migrations.rows[0].n >= 1, 'migrated once, concurrently started');
  });

  it('a token revoked by logout on A is refused on B at once', async () => {
    const user = await registerUser(a);
    const { access, refresh } = await login(a, user.username);
    assert.equal((await me(b, access)).status, 200, 'B has checked and cached the token');
    const logout = await request('POST', `${a.url}/api/auth/logout`, { token: access });
    assert.equal(logout.status, 200, logout.text);
    const since = performance.now();
    delays.logout = await within(
      BOUND_MS,
      since,
      'logout on A seen by B',
      async () => (await me(b, access)).status === 401,
    );
    const refreshed = await request('POST', `${b.url}/api/auth/refresh`, { body: { refresh_token: refresh } });
    assert.equal(refreshed.status, 401, 'the session refresh token is dead on B too');
  });

  it(
    'a token revoked by an admin (POST /api/security/tokens/revoke) on A is refused on B at once',
    { skip: !hasSecurityApi && 'src/modules/security/routes.ts not built yet' },
    async () => {
      const root = await admin(a);
      const victim = await registerUser(a);
      const { access } = await login(a, victim.username);
      assert.equal((await me(b, access)).status, 200);
      const revoke = await request('POST', `${a.url}/api/security/tokens/revoke`, {
        from: '127.0.0.9',
        token: root.access,
        body: { jti: claimsOf(access).jti },
      });
      assert.equal(revoke.status, 200, revoke.text);
      delays.admin_revoke_jti = await within(
        BOUND_MS,
        performance.now(),
        'jti revocation on A seen by B',
        async () => (await me(b, access)).status === 401,
      );

      const other = await login(a, victim.username);
      assert.equal((await me(b, other.access)).status, 200);
      const all = await request('POST', `${a.url}/api/security/tokens/revoke`, {
        from: '127.0.0.9',
        token: root.access,
        body: { user_id: victim.id },
      });
      assert.equal(all.status, 200, all.text);
      delays.admin_revoke_user = await within(
        BOUND_MS,
        performance.now(),
        'user revocation on A seen by B',
        async () => (await me(b, other.access)).status === 401,
      );
    },
  );

  it(
    'a user deactivated by an admin on A loses access on B at once',
    { skip: !hasAdminApi && 'src/modules/users/admin-routes.ts not built yet' },
    async () => {
      const root = await admin(a);
      const victim = await registerUser(a);
      const { access } = await login(a, victim.username);
      assert.equal((await me(b, access)).status, 200);
      const res = await request('POST', `${a.url}/api/users/${victim.id}/deactivate`, {
        from: '127.0.0.9',
        token: root.access,
      });
      assert.equal(res.status, 200, res.text);
      delays.deactivate = await within(
        BOUND_MS,
        performance.now(),
        'deactivation on A seen by B',
        async () => (await me(b, access)).status === 401,
      );
    },
  );

  it('failed logins through A lock the account on B (423)', async () => {
    const user = await registerUser(a, '127.0.0.4');
    for (let i = 0; i < 3; i++) {
      const res = await request('POST', `${a.url}/api/auth/login`, {
        from: '127.0.0.4',
        body: { username: user.username, password: 'Wrong-Password-000' },
      });
      assert.ok([401, 423].includes(res.status), `failure ${i + 1}: ${res.status}`);
    }
    const since = performance.now();
    delays.lockout = await within(BOUND_MS, since, 'lockout on A seen by B', async () => {
      const res = await request('POST', `${b.url}/api/auth/login`, {
        from: '127.0.0.4',
        body: { username: user.username, password: PASSWORD },
      });
      return res.status === 423 && res.body.error.code === 'LOCKED';
    });
  });

  it(
    'a rate limit counts requests on both instances together',
    { skip: !hasRateLimits && 'src/plugins/app/rate-limit.ts not built yet' },
    async () => {
      // password.reset is 4 per minute per client: two on each instance use it up.
      const from = '127.0.0.5';
      const ask = (on: ServerProcess) =>
        request('POST', `${on.url}/api/auth/password/reset-request`, { from, body: { email: 'nobody@example.com' } });
      for (const on of [a, b, a, b]) assert.equal((await ask(on)).status, 202);
      const fifth = await ask(a);
      assert.equal(fifth.status, 429, 'the fifth request (third on A) is over the shared limit');
      assert.equal(fifth.body.error.code, 'RATE_LIMIT_EXCEEDED');
      assert.ok(Number(fifth.headers['retry-after']) >= 1);
      assert.equal((await ask(b)).status, 429, 'and so is the next on B');
      const elsewhere = await request('POST', `${b.url}/api/auth/password/reset-request`, {
        from: '127.0.0.6',
        body: { email: 'nobody@example.com' },
      });
      assert.equal(elsewhere.status, 202, 'another client is not affected');
    },
  );

  it(
    'an emergency limit set on A holds on B at once, and lifting it too',
    { skip: (!hasRateLimits || !hasSecurityApi) && 'rate-limit plugin or security API not built yet' },
    async () => {
      const root = await admin(a);
      const from = '127.0.0.8';
      const probe = () => request('GET', `${b.url}/api/auth/csrf-token`, { from });
      assert.notEqual((await probe()).headers['ratelimit-limit'], '3');
      const set = await request('PUT', `${a.url}/api/security/emergency-rate-limit`, {
        from: '127.0.0.9',
        token: root.access,
        body: { limit: '3 per minute' },
      });
      assert.equal(set.status, 200, set.text);
      const since = performance.now();
      delays.emergency_set = await within(BOUND_MS, since, 'emergency limit on A applied by B', async () => {
        const res = await probe();
        return res.headers['ratelimit-limit'] === '3' || res.status === 429;
      });
      let status = 0;
      for (let i = 0; i < 4 && status !== 429; i++) status = (await probe()).status;
      assert.equal(status, 429, 'B refuses the client once the emergency budget is spent');

      const lift = await request('PUT', `${a.url}/api/security/emergency-rate-limit`, {
        from: '127.0.0.10',
        token: root.access,
        body: { limit: null },
      });
      assert.equal(lift.status, 200, lift.text);
      delays.emergency_lift = await within(
        BOUND_MS,
        performance.now(),
        'lifting on A applied by B',
        async () => (await probe()).status !== 429,
      );
    },
  );
});
