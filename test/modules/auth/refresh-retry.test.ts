/**
 * A retry after a lost answer is not theft (src/modules/auth/sessions.ts, docs/security.md):
 * within REFRESH_REUSE_GRACE_SECONDS of a rotation whose answer never arrived, the client's retry
 * with the token it still holds gets a fresh pair for the same session and the unused successor
 * stops working; after the window, or once the successor was used, it is theft (session revoked,
 * critical refresh_token_reuse event). Compare-and-swap in SQL: of retries racing, exactly one wins.
 * Runs on the database TEST_DATABASE_URL names (PostgreSQL and MariaDB in .ci/run).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { decodeJwt } from 'jose';
import { bearer, createTestApp, json, registerAndLogin, type TestApp } from '../../helpers/app.js';

const refreshWith = (token: string) => ({
  method: 'POST' as const,
  url: '/api/auth/refresh',
  payload: { refresh_token: token },
});
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function sessionOf(t: TestApp, refreshToken: string) {
  const { sid } = decodeJwt(refreshToken) as { sid: string };
  return t.app.container.db.selectFrom('sessions').selectAll().where('id', '=', sid).executeTakeFirstOrThrow();
}

async function reuseEvents(t: TestApp, userId: string) {
  await t.app.container.events.flush();
  return t.app.container.db
    .selectFrom('security_events')
    .select(['type', 'severity', 'details'])
    .where('user_id', '=', userId)
    .where('type', '=', 'refresh_token_reuse')
    .execute();
}

describe('refresh retry after a lost answer (default grace, 10 s)', () => {
  let t: TestApp;
  before(async () => {
    t = await createTestApp();
  });
  after(() => t.close());

  it('the retry gets a fresh pair for the same session; the lost successor is dead; no theft is raised', async () => {
    const u = await registerAndLogin(t.app);
    // The rotation commits, its answer is lost on the way back: the client never sees `lost`.
    const lost = json(await t.app.inject(refreshWith(u.refresh))).data;
    const retry = await t.app.inject(refreshWith(u.refresh));
    assert.equal(retry.statusCode, 200, retry.body);
    const pair = json(retry).data;
    assert.equal(decodeJwt(pair.refresh_token).sid, decodeJwt(u.refresh).sid, 'same session');
    assert.notEqual(decodeJwt(pair.refresh_token).jti, decodeJwt(lost.refresh_token).jti);
    assert.equal(
      (await t.app.inject({ method: 'GET', url: '/api/auth/me', headers: bearer(pair.access_token) })).statusCode,
      200,
    );
    assert.deepEqual(await reuseEvents(t, u.id), [], 'no theft alert');
    const session = await sessionOf(t, u.refresh);
    assert.equal(session.revoked_at, null);
    assert.equal(
      session.refresh_jti,
      decodeJwt(pair.refresh_token).jti,
      'the retry’s token is the one that may be spent next',
    );

    // The client carries on with its new pair as usual.
    const next = await t.app.inject(refreshWith(pair.refresh_token));
    assert.equal(next.statusCode, 200, next.body);
    const events = await t.app.container.db
      .selectFrom('security_events')
      .select('details')
      .where('user_id', '=', u.id)
      .where('type', '=', 'token_refreshed')
      .execute();
    assert.equal(
      events.filter((e) => String(e.details).includes('retry_of_lost_answer')).length,
      1,
      'the retry is recorded as one',
    );
  });

  it('the successor that was replaced is dead: presenting it is theft', async () => {
    const u = await registerAndLogin(t.app);
    const lost = json(await t.app.inject(refreshWith(u.refresh))).data;
    const retry = json(await t.app.inject(refreshWith(u.refresh))).data;
    // Whoever holds the lost answer (it was intercepted, not lost) is found out when using it.
    assert.equal((await t.app.inject(refreshWith(lost.refresh_token))).statusCode, 401);
    assert.notEqual((await sessionOf(t, u.refresh)).revoked_at, null, 'session revoked');
    assert.equal(
      (await t.app.inject(refreshWith(retry.refresh_token))).statusCode,
      401,
      'every token of the session is dead',
    );
    assert.equal((await reuseEvents(t, u.id)).length, 1);
  });

  it('theft: after its successor was used, the old token revokes the session (critical), even in window', async () => {
    const u = await registerAndLogin(t.app);
    const b = json(await t.app.inject(refreshWith(u.refresh))).data;
    const c = json(await t.app.inject(refreshWith(b.refresh_token))).data;
    const stolen = await t.app.inject(refreshWith(u.refresh));
    assert.equal(stolen.statusCode, 401);
    assert.notEqual((await sessionOf(t, u.refresh)).revoked_at, null);
    assert.equal((await t.app.inject(refreshWith(c.refresh_token))).statusCode, 401);
    assert.equal(
      (await t.app.inject({ method: 'GET', url: '/api/auth/me', headers: bearer(c.access_token) })).statusCode,
      401,
    );
    assert.deepEqual(
      (await reuseEvents(t, u.id)).map((e) => [e.type, e.severity]),
      [['refresh_token_reuse', 'critical']],
    );
  });

  it('a thief replaying within the window is found out at the real client’s next refresh', async () => {
    const u = await registerAndLogin(t.app);
    const real = json(await t.app.inject(refreshWith(u.refresh))).data;
    // The thief replays the stolen, spent token before the real client refreshes again.
    assert.equal((await t.app.inject(refreshWith(u.refresh))).statusCode, 200, 'looks like a retry');
    assert.equal(
      (await t.app.inject(refreshWith(real.refresh_token))).statusCode,
      401,
      'the real client’s token was the replaced successor',
    );
    assert.notEqual((await sessionOf(t, u.refresh)).revoked_at, null, 'and that revokes the session');
    assert.equal((await reuseEvents(t, u.id)).length, 1);
  });

  it('two retries racing: exactly one gets the pair, the other a 401 that does not revoke the session', async () => {
    for (let round = 0; round < 5; round++) {
      const u = await registerAndLogin(t.app);
      await t.app.inject(refreshWith(u.refresh)); // answer lost
      const results = await Promise.all([t.app.inject(refreshWith(u.refresh)), t.app.inject(refreshWith(u.refresh))]);
      const statuses = results.map((r) => r.statusCode).sort();
      assert.deepEqual(statuses, [200, 401], `round ${round}`);
      const winner = json(results.find((r) => r.statusCode === 200)!).data;
      assert.equal((await sessionOf(t, u.refresh)).revoked_at, null, 'session alive');
      assert.deepEqual(await reuseEvents(t, u.id), []);
      assert.equal((await t.app.inject(refreshWith(winner.refresh_token))).statusCode, 200, 'the winner’s pair works');
    }
  });

  it('a retry is served once per rotation: a second retry of the same token is refused without revoking', async () => {
    const u = await registerAndLogin(t.app);
    await t.app.inject(refreshWith(u.refresh)); // answer lost
    const first = json(await t.app.inject(refreshWith(u.refresh))).data; // served
    assert.equal((await t.app.inject(refreshWith(u.refresh))).statusCode, 401);
    assert.equal((await sessionOf(t, u.refresh)).revoked_at, null);
    assert.equal((await t.app.inject(refreshWith(first.refresh_token))).statusCode, 200);
  });

  it('eight concurrent uses of a token: one rotation, at most one retry; session lives, 1 token current', async () => {
    for (let round = 0; round < 3; round++) {
      const u = await registerAndLogin(t.app);
      const results = await Promise.all(Array.from({ length: 8 }, () => t.app.inject(refreshWith(u.refresh))));
      const ok = results.filter((r) => r.statusCode === 200);
      assert.ok(ok.length >= 1 && ok.length <= 2, results.map((r) => r.statusCode).join(','));
      const session = await sessionOf(t, u.refresh);
      assert.equal(session.revoked_at, null);
      const current = ok
        .map((r) => decodeJwt(json(r).data.refresh_token).jti)
        .filter((jti) => jti === session.refresh_jti);
      assert.equal(current.length, 1, 'exactly one of the returned refresh tokens may be spent');
      assert.deepEqual(await reuseEvents(t, u.id), []);
    }
  });
});

describe('refresh retry outside the window', () => {
  let t: TestApp;
  before(async () => {
    t = await createTestApp({ REFRESH_REUSE_GRACE_SECONDS: '1' });
  });
  after(() => t.close());

  it('after REFRESH_REUSE_GRACE_SECONDS the re-presented token is theft', async () => {
    const u = await registerAndLogin(t.app);
    await t.app.inject(refreshWith(u.refresh)); // answer lost
    await sleep(1200);
    assert.equal((await t.app.inject(refreshWith(u.refresh))).statusCode, 401);
    assert.notEqual((await sessionOf(t, u.refresh)).revoked_at, null, 'session revoked');
    assert.equal((await reuseEvents(t, u.id)).length, 1);
  });
});

describe('REFRESH_REUSE_GRACE_SECONDS=0', () => {
  let t: TestApp;
  before(async () => {
    t = await createTestApp({ REFRESH_REUSE_GRACE_SECONDS: '0' });
  });
  after(() => t.close());

  it('every re-presented token is theft, and of concurrent uses exactly one succeeds', async () => {
    const u = await registerAndLogin(t.app);
    await t.app.inject(refreshWith(u.refresh));
    assert.equal((await t.app.inject(refreshWith(u.refresh))).statusCode, 401);
    assert.notEqual((await sessionOf(t, u.refresh)).revoked_at, null);
    const v = await registerAndLogin(t.app);
    const results = await Promise.all(Array.from({ length: 8 }, () => t.app.inject(refreshWith(v.refresh))));
    assert.equal(results.filter((r) => r.statusCode === 200).length, 1);
  });
});
