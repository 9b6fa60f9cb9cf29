/**
 * A retry after a lost answer is not theft, against real server processes on PostgreSQL: a client
 * sends a refresh to instance A and loses the answer on the wire (it drops the connection as the
 * answer starts to arrive), A is killed (SIGKILL), and the client retries with the token it still
 * holds on instance B: it gets a fresh pair for the same session, no refresh_token_reuse event, and
 * the successor A had issued is dead. Two retries racing: exactly one pair. And the theft side:
 * once the successor was used, the old token revokes the session.
 */
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { claimsOf, createPgDatabase } from './servers.js';
import { request, startServer, type ServerProcess } from '../helpers/server.js';

const PASSWORD = 'Velvet-Orbit-Harbor-42';

/** Sends a refresh and drops the connection as soon as the answer starts: the client never reads it. */
function refreshAndLoseTheAnswer(server: ServerProcess, refreshToken: string): Promise<void> {
  const body = JSON.stringify({ refresh_token: refreshToken });
  return new Promise((resolve, reject) => {
    const socket = net.connect(server.port, '127.0.0.1', () => {
      socket.write(
        `POST /api/auth/refresh HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
          `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
    });
    socket.once('data', () => {
      socket.destroy();
      resolve();
    });
    socket.on('error', reject);
  });
}

describe('refresh retry after a lost answer, on PostgreSQL with a killed instance', { timeout: 180_000 }, () => {
  let database: Awaited<ReturnType<typeof createPgDatabase>>;
  let a: ServerProcess;
  let b: ServerProcess;
  let db: pg.Client;

  before(async () => {
    database = await createPgDatabase();
    const env = { DATABASE_URL: database.url, DATABASE_POOL_SIZE: '4', RATE_LIMIT_ENABLED: 'false' };
    a = await startServer(env);
    b = await startServer(env);
    db = new pg.Client({ connectionString: database.url });
    await db.connect();
  });
  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await db?.end();
    await database?.drop();
  });

  const session = async (sid: string) =>
    (await db.query('SELECT refresh_jti, revoked_at, revoked_reason FROM sessions WHERE id = $1', [sid])).rows[0];
  const reuseEvents = async (userId: string) =>
    (
      await db.query(
        "SELECT count(*)::int AS n FROM security_events WHERE user_id = $1 AND type = 'refresh_token_reuse'",
        [userId],
      )
    ).rows[0].n as number;

  async function loggedIn(on: ServerProcess) {
    const username = `rr_${Math.random().toString(36).slice(2, 9)}`;
    const reg = await request('POST', `${on.url}/api/auth/register`, {
      body: { username, email: `${username}@example.com`, password: PASSWORD },
    });
    assert.equal(reg.status, 201, reg.text);
    const res = await request('POST', `${on.url}/api/auth/login`, { body: { username, password: PASSWORD } });
    assert.equal(res.status, 200, res.text);
    return {
      id: reg.body.data.user.id as string,
      refresh: res.body.data.refresh_token as string,
      sid: claimsOf(res.body.data.refresh_token).sid as string,
    };
  }

  it('rotation commits on A, the answer is lost, A dies; a retry on B gets a fresh pair, no theft raised', async () => {
    const user = await loggedIn(a);
    const before = await session(user.sid);
    await refreshAndLoseTheAnswer(a, user.refresh);
    const rotated = await session(user.sid);
    assert.notEqual(rotated.refresh_jti, before.refresh_jti, 'A committed the rotation');
    a.child.kill('SIGKILL');

    const retry = await request('POST', `${b.url}/api/auth/refresh`, { body: { refresh_token: user.refresh } });
    assert.equal(retry.status, 200, retry.text);
    assert.equal(claimsOf(retry.body.data.refresh_token).sid, user.sid, 'same session');
    const now = await session(user.sid);
    assert.equal(now.revoked_at, null);
    assert.equal(now.refresh_jti, claimsOf(retry.body.data.refresh_token).jti);
    const me = await request('GET', `${b.url}/api/auth/me`, { token: retry.body.data.access_token });
    assert.equal(me.status, 200);
    const next = await request('POST', `${b.url}/api/auth/refresh`, {
      body: { refresh_token: retry.body.data.refresh_token },
    });
    assert.equal(next.status, 200, 'the session carries on');
    await new Promise((resolve) => setTimeout(resolve, 500)); // security events are written in batches
    assert.equal(await reuseEvents(user.id), 0, 'no refresh_token_reuse');
  });

  it('two retries racing on B: exactly one pair; the session lives', async () => {
    const user = await loggedIn(b);
    await refreshAndLoseTheAnswer(b, user.refresh);
    const results = await Promise.all(
      [0, 1].map(() => request('POST', `${b.url}/api/auth/refresh`, { body: { refresh_token: user.refresh } })),
    );
    assert.deepEqual(results.map((r) => r.status).sort(), [200, 401]);
    assert.equal((await session(user.sid)).revoked_at, null);
  });

  it('theft side: the successor was used, then the old token: session revoked, critical event', async () => {
    const user = await loggedIn(b);
    const first = await request('POST', `${b.url}/api/auth/refresh`, { body: { refresh_token: user.refresh } });
    const second = await request('POST', `${b.url}/api/auth/refresh`, {
      body: { refresh_token: first.body.data.refresh_token },
    });
    assert.equal(second.status, 200);
    const stolen = await request('POST', `${b.url}/api/auth/refresh`, { body: { refresh_token: user.refresh } });
    assert.equal(stolen.status, 401);
    const now = await session(user.sid);
    assert.notEqual(now.revoked_at, null);
    assert.equal(now.revoked_reason, 'refresh_reuse');
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(await reuseEvents(user.id), 1);
  });
});
