import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createTestApp, register, type TestApp } from '../../helpers/app.js';

describe('stale rows are purged so revocation lists and counters do not grow without bound', () => {
  let t: TestApp;
  before(async () => {
    t = await createTestApp();
  });
  after(() => t.close());

  it('purgeStale drops expired revocations, sessions, login counters, one-time tokens; keeps live ones', async () => {
    const { db } = t.app.container;
    const u = await register(t.app);
    const now = Date.now();
    const day = 86_400_000;
    await db
      .insertInto('revoked_tokens')
      .values([
        { jti: 'expired-jti', user_id: u.id, expires_at: now - 1000, revoked_at: now - day },
        { jti: 'live-jti', user_id: u.id, expires_at: now + day, revoked_at: now },
      ])
      .execute();
    const session = {
      user_id: u.id,
      ip: null,
      user_agent: null,
      refresh_jti: 'r',
      previous_refresh_jti: null,
      revoked_reason: null,
    };
    await db
      .insertInto('sessions')
      .values([
        {
          ...session,
          id: 'old-session',
          created_at: now - 100 * day,
          last_used_at: now - 100 * day,
          rotated_at: now - 100 * day,
          expires_at: now - 60 * day,
          revoked_at: null,
        },
        {
          ...session,
          id: 'live-session',
          created_at: now,
          last_used_at: now,
          rotated_at: now,
          expires_at: now + day,
          revoked_at: null,
        },
      ])
      .execute();
    await db
      .insertInto('login_attempts')
      .values([
        { key: 'name:stale', failures: 2, window_started_at: now - 2 * 3600_000, locked_until: null },
        { key: 'name:fresh', failures: 2, window_started_at: now, locked_until: null },
      ])
      .execute();
    const oldToken = await t.app.container.oneTimeTokens.issue(u.id, 'password_reset', -2 * day);
    void oldToken;

    await t.app.container.purgeStale();

    const jtis = (await db.selectFrom('revoked_tokens').select('jti').execute()).map((r) => r.jti);
    assert.deepEqual(jtis, ['live-jti']);
    const sessions = (await db.selectFrom('sessions').select('id').execute()).map((r) => r.id);
    assert.deepEqual(sessions, ['live-session']);
    const keys = (await db.selectFrom('login_attempts').select('key').execute()).map((r) => r.key);
    assert.deepEqual(keys, ['name:fresh']);
    const tokens = await db
      .selectFrom('one_time_tokens')
      .select('purpose')
      .where('purpose', '=', 'password_reset')
      .execute();
    assert.equal(tokens.length, 0);
  });
});
