/**
 * Retention (src/modules/retention/retention.ts): for every table that grows, an old row goes and a
 * row still inside its retention stays, through container.purgeStale (the periodic purge) and
 * `flokie purge` (the CLI, which prints what it deleted). SQLite, PostgreSQL, MariaDB.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { createContainer, type Container } from '../../../src/container.js';
import { RETENTION } from '../../../src/modules/retention/retention.js';
import { makeTestConfig, STRONG_PASSWORD } from '../../helpers/app.js';
import { createTestDatabase, type TestDatabase } from '../../helpers/database.js';
import { runCli } from '../../cli/helpers.js';

const DAY = 86_400_000;

describe('retention: each growing table keeps rows only as long as its setting says', () => {
  let database: TestDatabase;
  let c: Container;
  const settings = {
    SECURITY_EVENT_RETENTION_DAYS: '10',
    SESSION_RETENTION_DAYS: '7',
    ALERT_OUTBOX_RETENTION_DAYS: '5',
    DEACTIVATED_USER_RETENTION_DAYS: '20',
    ACCOUNT_LOCKOUT_DURATION: '30',
  };

  before(async () => {
    database = await createTestDatabase({ file: true });
    c = await createContainer(makeTestConfig(settings, database.url), { migrate: true });
  });
  after(async () => {
    await c.close();
    await database.drop();
  });

  async function user(name: string, active: boolean, updatedDaysAgo: number) {
    const created = await c.users.insert({
      username: name,
      email: `${name}@example.com`,
      password_hash: await c.hasher.hash(STRONG_PASSWORD),
    });
    await c.db
      .updateTable('users')
      .set({ is_active: active ? 1 : 0, updated_at: Date.now() - updatedDaysAgo * DAY })
      .where('id', '=', created.id)
      .execute();
    return created.id;
  }

  async function seed() {
    const now = Date.now();
    const owner = await user(`owner${now}`, true, 400);
    const ev = (type: string, daysAgo: number) => ({
      type,
      severity: 'info',
      user_id: null,
      ip: null,
      user_agent: null,
      request_id: null,
      endpoint: null,
      details: null,
      created_at: now - daysAgo * DAY,
    });
    await c.db
      .insertInto('security_events')
      .values([ev('old_event', 11), ev('fresh_event', 9)])
      .execute();
    const session = (id: string, fields: { expires: number; revoked: number | null }) => ({
      id,
      user_id: owner,
      created_at: now - 100 * DAY,
      last_used_at: now - 50 * DAY,
      expires_at: now + fields.expires * DAY,
      ip: null,
      user_agent: null,
      refresh_jti: `r-${id}`,
      previous_refresh_jti: null,
      rotated_at: now - 50 * DAY,
      revoked_at: fields.revoked === null ? null : now - fields.revoked * DAY,
      revoked_reason: fields.revoked === null ? null : 'logout',
    });
    await c.db
      .insertInto('sessions')
      .values([
        session(`expired-long-ago-${now}`, { expires: -8, revoked: null }),
        session(`revoked-long-ago-${now}`, { expires: 30, revoked: 8 }),
        session(`expired-recently-${now}`, { expires: -6, revoked: null }),
        session(`revoked-recently-${now}`, { expires: 30, revoked: 6 }),
        session(`live-${now}`, { expires: 30, revoked: null }),
      ])
      .execute();
    await c.db
      .insertInto('revoked_tokens')
      .values([
        { jti: `expired-${now}`, user_id: owner, expires_at: now - 1000, revoked_at: now - DAY },
        { jti: `live-${now}`, user_id: owner, expires_at: now + DAY, revoked_at: now },
      ])
      .execute();
    await c.db
      .insertInto('login_attempts')
      .values([
        { key: `name:stale-${now}`, failures: 3, window_started_at: now - 31 * 60_000, locked_until: null },
        { key: `name:lock-over-${now}`, failures: 5, window_started_at: now - 40 * 60_000, locked_until: now - 60_000 },
        {
          key: `name:still-locked-${now}`,
          failures: 5,
          window_started_at: now - 40 * 60_000,
          locked_until: now + 60_000,
        },
        { key: `name:fresh-${now}`, failures: 1, window_started_at: now, locked_until: null },
      ])
      .execute();
    // Login attempts in flight: a lease that ended (a process died mid-login) and one still held.
    await c.db
      .insertInto('login_reservations')
      .values([
        { id: `ended-${now}`, key: `name:fresh-${now}`, expires_at: now - 1000 },
        { id: `held-${now}`, key: `name:fresh-${now}`, expires_at: now + 60_000 },
      ])
      .execute();
    const ott = (hash: string, expiresAgoMs: number) => ({
      token_hash: hash.padEnd(64, '0').slice(0, 64),
      user_id: owner,
      purpose: 'password_reset' as const,
      expires_at: now - expiresAgoMs,
      used_at: null,
      created_at: now - 3 * DAY,
    });
    await c.db
      .insertInto('one_time_tokens')
      .values([ott(`a${now}`, DAY + 60_000), ott(`b${now}`, DAY - 60_000)])
      .execute();
    const alert = (key: string, fields: { delivered?: number; givenUp?: number; createdDaysAgo: number }) => ({
      type: 'brute_force_detected',
      fold_key: key,
      open_key: null,
      severity: 'critical',
      summary: 's',
      details: '{}',
      occurrences: 1,
      created_at: now - fields.createdDaysAgo * DAY,
      last_seen_at: now - fields.createdDaysAgo * DAY,
      fold_until: now - fields.createdDaysAgo * DAY,
      attempts: 1,
      next_attempt_at: now,
      claimed_until: 0,
      claim_token: null,
      webhook_sent_at: null,
      email_sent_at: null,
      delivered_at: fields.delivered === undefined ? null : now - fields.delivered * DAY,
      given_up_at: fields.givenUp === undefined ? null : now - fields.givenUp * DAY,
      last_error: null,
    });
    await c.db
      .insertInto('alert_outbox')
      .values([
        alert(`delivered-old-${now}`, { delivered: 6, createdDaysAgo: 6 }),
        alert(`given-up-old-${now}`, { givenUp: 6, createdDaysAgo: 7 }),
        alert(`delivered-recent-${now}`, { delivered: 4, createdDaysAgo: 4 }),
        alert(`undelivered-old-${now}`, { createdDaysAgo: 60 }),
      ])
      .execute();
    await c.db
      .insertInto('change_log')
      .values([
        { kind: 'user', key: `old-${now}`, created_at: now - 2 * 3_600_000 },
        { kind: 'user', key: `fresh-${now}`, created_at: now - 60_000 },
      ])
      .execute();
    const gone = await user(`gone${now}`, false, 21);
    await c.db
      .insertInto('sessions')
      .values(session(`of-gone-${now}`, { expires: 30, revoked: null }))
      .execute();
    await c.db.updateTable('sessions').set({ user_id: gone }).where('id', '=', `of-gone-${now}`).execute();
    const recent = await user(`recent${now}`, false, 19);
    const activeOld = await user(`active${now}`, true, 400);
    return { now, owner, gone, recent, activeOld };
  }

  const ids = async (table: 'sessions' | 'change_log' | 'alert_outbox', column: 'id' | 'key' | 'fold_key') =>
    (await c.db.selectFrom(table).select(sql.ref<string | number>(column).as('v')).execute()).map((r) => String(r.v));

  it('purgeStale deletes exactly what each policy no longer keeps, per table', async () => {
    const s = await seed();
    const deleted = await c.purgeStale();
    assert.deepEqual(Object.keys(deleted).sort(), RETENTION.map((p) => p.table).sort(), 'every policy ran');
    assert.equal(deleted.security_events, 1);
    assert.deepEqual(
      (
        await c.db
          .selectFrom('security_events')
          .select('type')
          .where('type', 'in', ['old_event', 'fresh_event'])
          .execute()
      ).map((r) => r.type),
      ['fresh_event'],
    );

    assert.equal(deleted.sessions, 2);
    const sessions = await ids('sessions', 'id');
    assert.deepEqual(sessions.filter((id) => id.endsWith(String(s.now))).sort(), [
      `expired-recently-${s.now}`,
      `live-${s.now}`,
      `revoked-recently-${s.now}`,
    ]);
    assert.ok(!sessions.includes(`of-gone-${s.now}`), "a deleted account's sessions go with it");

    assert.equal(deleted.revoked_tokens, 1);
    assert.deepEqual(
      (await c.db.selectFrom('revoked_tokens').select('jti').execute()).map((r) => r.jti),
      [`live-${s.now}`],
    );

    assert.equal(deleted.login_attempts, 3, 'two counters and one ended reservation');
    const keys = (await c.db.selectFrom('login_attempts').select('key').execute()).map((r) => r.key).sort();
    assert.deepEqual(keys, [`name:fresh-${s.now}`, `name:still-locked-${s.now}`]);
    assert.deepEqual(
      (await c.db.selectFrom('login_reservations').select('id').execute()).map((r) => r.id),
      [`held-${s.now}`],
      'a reservation whose lease ended is purged, a held one kept',
    );

    assert.equal(deleted.one_time_tokens, 1);
    assert.equal((await c.db.selectFrom('one_time_tokens').select('token_hash').execute()).length, 1);

    assert.equal(deleted.alert_outbox, 2);
    assert.deepEqual(
      (await ids('alert_outbox', 'fold_key')).sort(),
      [`delivered-recent-${s.now}`, `undelivered-old-${s.now}`],
      'undelivered alerts are never purged',
    );

    assert.equal(deleted.change_log, 1);
    assert.deepEqual(
      (await ids('change_log', 'key')).filter((k) => k.endsWith(String(s.now))),
      [`fresh-${s.now}`],
    );

    assert.equal(deleted['users (deactivated)'], 1);
    const users = (await c.db.selectFrom('users').select('id').execute()).map((r) => r.id);
    assert.ok(
      !users.includes(s.gone) && users.includes(s.recent) && users.includes(s.activeOld) && users.includes(s.owner),
    );
    await c.events.flush();
    const audit = await c.db
      .selectFrom('security_events')
      .select('details')
      .where('type', '=', 'admin_action')
      .execute();
    assert.ok(
      audit.some((e) => /"action":"retention_delete_users","count":1/.test(String(e.details))),
      'the deletion is on record',
    );

    const again = await c.purgeStale();
    assert.ok(
      Object.values(again).every((n) => n === 0),
      `a second run deletes nothing: ${JSON.stringify(again)}`,
    );
  });

  it('DEACTIVATED_USER_RETENTION_DAYS=0 keeps deactivated accounts forever', async () => {
    const keep = await createContainer(
      makeTestConfig({ ...settings, DEACTIVATED_USER_RETENTION_DAYS: '0' }, database.url),
      { migrate: false },
    );
    try {
      const id = await user(`ancient${Date.now()}`, false, 3000);
      const deleted = await keep.purgeStale();
      assert.equal(deleted['users (deactivated)'], 0);
      assert.ok(await keep.db.selectFrom('users').select('id').where('id', '=', id).executeTakeFirst());
      await keep.db.deleteFrom('users').where('id', '=', id).execute();
    } finally {
      await keep.close();
    }
  });

  it('`flokie purge` runs it now and prints rows deleted and what is kept, per table', async () => {
    await seed();
    const env = Object.fromEntries(Object.entries(settings).map(([k, v]) => [k, v]));
    const result = await runCli(['purge'], { env: { ...env, DATABASE_URL: database.url } });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^security_events +1 {2}kept: 10 days$/m);
    assert.match(result.stdout, /^sessions +2 {2}kept: 7 days after a session expired or was revoked$/m);
    assert.match(result.stdout, /^alert_outbox +2 {2}kept: 5 days after delivery or giving up/m);
    assert.match(
      result.stdout,
      /^users \(deactivated\) +1 {2}kept: 20 days after the last change to a deactivated account/m,
    );
    assert.equal(result.stdout.trim().split('\n').length, RETENTION.length);
  });
});
