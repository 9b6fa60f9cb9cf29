import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createContainer } from '../../../src/container.js';
import { EMERGENCY_LIMIT_KEY, getEmergencyLimit } from '../../../src/state/emergency-limit.js';
import {
  bearer,
  createTestApp,
  json,
  login,
  makeAdmin,
  makeTestConfig,
  registerAndLogin,
  uniqueUser,
  type TestApp,
} from '../../helpers/app.js';
import { createTestDatabase } from '../../helpers/database.js';
import { eventRows } from './helpers.js';

describe('security operations API', () => {
  let t: TestApp;
  let admin: Awaited<ReturnType<typeof registerAndLogin>>;
  before(async () => {
    t = await createTestApp();
    admin = await registerAndLogin(t.app, uniqueUser('secadmin'));
    await makeAdmin(t.app, admin.id);
  });
  after(() => t.close());

  const jtiOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).jti as string;

  it('revokes one access token by jti; the others of the user keep working', async () => {
    const u = await registerAndLogin(t.app, uniqueUser('rev'));
    const other = await login(t.app, u.username);
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/security/tokens/revoke',
      headers: bearer(admin.access),
      payload: { jti: jtiOf(u.access) },
    });
    assert.equal(res.statusCode, 200);
    assert.equal(json(res).success, true);
    assert.equal(
      (await t.app.inject({ method: 'GET', url: '/api/auth/me', headers: bearer(u.access) })).statusCode,
      401,
    );
    assert.equal(
      (await t.app.inject({ method: 'GET', url: '/api/auth/me', headers: bearer(other.access) })).statusCode,
      200,
    );
    // Revoking twice is harmless.
    assert.equal(
      (
        await t.app.inject({
          method: 'POST',
          url: '/api/security/tokens/revoke',
          headers: bearer(admin.access),
          payload: { jti: jtiOf(u.access) },
        })
      ).statusCode,
      200,
    );
  });

  it('revoking a refresh token jti ends its session', async () => {
    const u = await registerAndLogin(t.app, uniqueUser('revr'));
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/security/tokens/revoke',
      headers: bearer(admin.access),
      payload: { jti: jtiOf(u.refresh) },
    });
    assert.equal(json(res).data.revoked_sessions, 1);
    assert.equal(
      (await t.app.inject({ method: 'POST', url: '/api/auth/refresh', payload: { refresh_token: u.refresh } }))
        .statusCode,
      401,
    );
    assert.equal(
      (await t.app.inject({ method: 'GET', url: '/api/auth/me', headers: bearer(u.access) })).statusCode,
      401,
    );
  });

  it('revokes every session of a user by user_id', async () => {
    const u = await registerAndLogin(t.app, uniqueUser('revall'));
    const again = await login(t.app, u.username);
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/security/tokens/revoke',
      headers: bearer(admin.access),
      payload: { user_id: u.id },
    });
    assert.equal(res.statusCode, 200);
    assert.equal(json(res).data.revoked_sessions, 2);
    for (const token of [u.access, again.access])
      assert.equal(
        (await t.app.inject({ method: 'GET', url: '/api/auth/me', headers: bearer(token) })).statusCode,
        401,
      );
    assert.equal(
      (await t.app.inject({ method: 'POST', url: '/api/auth/refresh', payload: { refresh_token: again.refresh } }))
        .statusCode,
      401,
    );
    const events = await eventRows(t.app.container, 'admin_action');
    assert.ok(
      events.some(
        (e) =>
          e.user_id === admin.id && e.details!.action === 'revoke_all_sessions' && e.details!.target_user_id === u.id,
      ),
    );
  });

  it('rejects revoke bodies that are not exactly one of jti / user_id, and unknown users', async () => {
    for (const payload of [{}, { jti: 'a', user_id: 'b' }, { jti: '' }, { jti: 5 }, { jti: 'a', extra: 1 }]) {
      const res = await t.app.inject({
        method: 'POST',
        url: '/api/security/tokens/revoke',
        headers: bearer(admin.access),
        payload,
      });
      assert.equal(res.statusCode, 400, JSON.stringify(payload));
      assert.equal(json(res).error.code, 'VALIDATION_ERROR');
    }
    const missing = await t.app.inject({
      method: 'POST',
      url: '/api/security/tokens/revoke',
      headers: bearer(admin.access),
      payload: { user_id: 'no-such-user' },
    });
    assert.equal(missing.statusCode, 404);
  });

  it('sets, reads and lifts the emergency rate limit, publishing the change', async () => {
    const initial = json(
      await t.app.inject({ method: 'GET', url: '/api/security/emergency-rate-limit', headers: bearer(admin.access) }),
    );
    assert.deepEqual(initial.data, { limit: null, points: null, duration_seconds: null });
    const set = await t.app.inject({
      method: 'PUT',
      url: '/api/security/emergency-rate-limit',
      headers: bearer(admin.access),
      payload: { limit: '1000 per 2 minutes' },
    });
    assert.equal(set.statusCode, 200, set.body);
    assert.deepEqual(json(set).data, { limit: '1000 per 2 minutes', points: 1000, duration_seconds: 120 });
    assert.equal((await getEmergencyLimit(t.app.container.db))!.points, 1000);
    const published = await t.app.container.db
      .selectFrom('change_log')
      .selectAll()
      .where('kind', '=', 'setting')
      .where('key', '=', EMERGENCY_LIMIT_KEY)
      .execute();
    assert.ok(published.length >= 1);
    const read = json(
      await t.app.inject({ method: 'GET', url: '/api/security/emergency-rate-limit', headers: bearer(admin.access) }),
    );
    assert.equal(read.data.limit, '1000 per 2 minutes');
    for (const payload of [{ limit: 'lots' }, { limit: '0 per minute' }, { limit: 5 }, {}, { limit: null, x: 1 }]) {
      const res = await t.app.inject({
        method: 'PUT',
        url: '/api/security/emergency-rate-limit',
        headers: bearer(admin.access),
        payload,
      });
      assert.equal(res.statusCode, 400, JSON.stringify(payload));
    }
    const off = await t.app.inject({
      method: 'PUT',
      url: '/api/security/emergency-rate-limit',
      headers: bearer(admin.access),
      payload: { limit: null },
    });
    assert.equal(off.statusCode, 200);
    assert.equal(json(off).data.limit, null);
    assert.equal(await getEmergencyLimit(t.app.container.db), null);
  });
});

describe('security event storage', () => {
  it('purges events older than SECURITY_EVENT_RETENTION_DAYS through purgeStale', async () => {
    const database = await createTestDatabase({ file: true });
    const c = await createContainer(makeTestConfig({ SECURITY_EVENT_RETENTION_DAYS: '7' }, database.url), {
      migrate: true,
    });
    try {
      const day = 86_400_000;
      await c.db
        .insertInto('security_events')
        .values([
          {
            type: 'login_failure',
            severity: 'warning',
            user_id: null,
            ip: '1.1.1.1',
            user_agent: null,
            request_id: null,
            endpoint: null,
            details: null,
            created_at: Date.now() - 8 * day,
          },
          {
            type: 'login_failure',
            severity: 'warning',
            user_id: null,
            ip: '1.1.1.2',
            user_agent: null,
            request_id: null,
            endpoint: null,
            details: null,
            created_at: Date.now() - 6 * day,
          },
        ])
        .execute();
      await c.purgeStale();
      const left = await c.db.selectFrom('security_events').select('ip').execute();
      assert.deepEqual(
        left.map((r) => r.ip),
        ['1.1.1.2'],
      );
    } finally {
      await c.close();
      await database.drop();
    }
  });

  it('loses no queued event on a clean shutdown', async () => {
    const database = await createTestDatabase({ file: true });
    const config = makeTestConfig({}, database.url);
    const c = await createContainer(config, { migrate: true });
    for (let i = 0; i < 250; i++)
      c.events.emit({ type: 'suspicious_header', ip: `10.0.0.${i % 250}`, details: { n: i } });
    await c.close();
    const reopened = await createContainer(config, { migrate: false });
    const count = await reopened.db
      .selectFrom('security_events')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    assert.equal(Number(count.n), 250);
    await reopened.close();
    await database.drop();
  });
});
