/**
 * When the database misbehaves (docs/security.md, "When the database misbehaves"): every wait on
 * it is bounded, the errors that mean "unavailable" are recognised in one place
 * (src/db/availability.ts), and the HTTP answer is 503 SERVICE_UNAVAILABLE with Retry-After —
 * never 500 — logged once per outage (warn, no stack) and once when it is over.
 *
 * Runs on the database TEST_DATABASE_URL names. PostgreSQL and MariaDB: a TCP proxy
 * (test/helpers/tcp-proxy.ts) between the pool and the server stops forwarding, silently.
 * SQLite: another connection holds the write lock. test/integration/database-outage.test.ts does
 * the same to a real server process on PostgreSQL.
 */
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import SQLite from 'better-sqlite3';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { sql } from 'kysely';
import pino from 'pino';
import { buildApp } from '../../src/app.js';
import { createContainer, type Container } from '../../src/container.js';
import { CLIENT_GRACE_MS, isDatabaseUnavailable, openDatabase, type DatabaseTimeouts } from '../../src/db/index.js';
import { bearer, json, login, makeTestConfig, registerAndLogin } from '../helpers/app.js';
import { createTestDatabase, testDatabaseUrl, type TestDatabase } from '../helpers/database.js';
import { startTcpProxy, throughProxy, type TcpProxy } from '../helpers/tcp-proxy.js';

const dialect = testDatabaseUrl().startsWith('sqlite')
  ? 'sqlite'
  : testDatabaseUrl().startsWith('postgres')
    ? 'postgres'
    : 'mysql';
const networked = dialect !== 'sqlite';
const TIMEOUTS: DatabaseTimeouts = { connectMs: 1000, statementMs: 1000, poolMs: 1000, busyMs: 200 };
/** The longest a request may wait on a silent database: generous, three times the client's own bound. */
const BOUND_MS = 3 * (dialect === 'sqlite' ? 1000 : TIMEOUTS.statementMs + CLIENT_GRACE_MS);

function serverAddress(url: string): { host: string; port: number } {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port || (dialect === 'postgres' ? 5432 : 3306)) };
}

const timed = async <T>(work: () => Promise<T>): Promise<{ value: T; ms: number }> => {
  const started = performance.now();
  const value = await work();
  return { value, ms: Math.round(performance.now() - started) };
};

describe('isDatabaseUnavailable: the one list of "the database did not answer"', () => {
  const withCode = (code: string, message = 'x') => Object.assign(new Error(message), { code });
  it('recognises refusals, resets, timeouts, terminated connections, exhausted pools and SQLite busy', () => {
    const unavailable = [
      withCode('ECONNREFUSED'),
      withCode('ECONNRESET'),
      withCode('ETIMEDOUT'),
      new Error('Connection terminated unexpectedly'),
      new Error('Connection terminated due to connection timeout', { cause: new Error('timeout expired') }),
      new Error('timeout exceeded when trying to connect'),
      new Error('Query read timeout'),
      withCode('57014', 'canceling statement due to statement timeout'),
      withCode('57P01', 'terminating connection due to administrator command'),
      withCode('08006'),
      withCode('53300', 'too many clients'),
      withCode('PROTOCOL_CONNECTION_LOST'),
      withCode('PROTOCOL_SEQUENCE_TIMEOUT'),
      Object.assign(new Error('Query execution was interrupted (max_statement_time exceeded)'), { errno: 1969 }),
      Object.assign(new Error("Can't add new command when connection is in closed state"), { fatal: true }),
      withCode('SQLITE_BUSY', 'database is locked'),
      withCode('SQLITE_BUSY_SNAPSHOT'),
      withCode('FLOKIE_DB_POOL_TIMEOUT'),
      new AggregateError([withCode('ECONNREFUSED')], 'connect failed'),
    ];
    for (const error of unavailable)
      assert.equal(isDatabaseUnavailable(error), true, `${(error as { code?: string }).code ?? ''} ${error.message}`);
  });

  it('leaves every other error alone: constraint violations, syntax errors, bugs', () => {
    const other = [
      withCode('23505', 'duplicate key'),
      withCode('ER_DUP_ENTRY'),
      withCode('SQLITE_CONSTRAINT_UNIQUE'),
      withCode('42601', 'syntax error'),
      withCode('40P01', 'deadlock detected'),
      new TypeError("Cannot read properties of undefined (reading 'id')"),
      new Error('Connection terminated by a user'),
      null,
      undefined,
      'ECONNREFUSED',
    ];
    for (const error of other) assert.equal(isDatabaseUnavailable(error), false, String(error));
  });
});

// A bound that is missing would make these tests wait forever: the timeouts turn that into a failure.
describe(
  `database time limits (${dialect})`,
  { skip: !networked && 'PostgreSQL/MariaDB only (SQLite below)', timeout: 60_000 },
  () => {
    let database: TestDatabase;
    let proxy: TcpProxy;
    before(async () => {
      database = await createTestDatabase();
      proxy = await startTcpProxy(serverAddress(database.url));
    });
    after(async () => {
      await proxy?.close();
      await database?.drop();
    });

    const sleepQuery = (seconds: number) =>
      dialect === 'postgres' ? sql`select pg_sleep(${seconds})` : sql`select sleep(${seconds})`;

    it('the server cancels a statement after DATABASE_STATEMENT_TIMEOUT_MS; the connection stays usable', async () => {
      const handle = openDatabase({ url: database.url, poolSize: 1, timeouts: { ...TIMEOUTS, statementMs: 300 } });
      try {
        const { value: error, ms } = await timed(() =>
          sleepQuery(5)
            .execute(handle.db)
            .then(
              () => null,
              (e: unknown) => e,
            ),
        );
        assert.ok(isDatabaseUnavailable(error), String(error));
        assert.ok(
          dialect === 'postgres'
            ? (error as { code: string }).code === '57014'
            : (error as { errno: number }).errno === 1969,
          String(error),
        );
        assert.ok(ms < 300 + CLIENT_GRACE_MS, `cancelled by the server (${ms} ms), not by the client's own timeout`);
        const { rows } = await sql<{ n: number }>`select 7 as n`.execute(handle.db);
        assert.equal(Number(rows[0]!.n), 7, 'the one pooled connection still works');
      } finally {
        await handle.close();
      }
    });

    it('silent network: queries, connects, pool queue give up within bounds; nothing reused out of step', async () => {
      const handle = openDatabase({ url: throughProxy(database.url, proxy), poolSize: 2, timeouts: TIMEOUTS });
      try {
        // Two pooled connections, open and idle.
        await Promise.all([sql`select 1`.execute(handle.db), sql`select 2`.execute(handle.db)]);
        proxy.stall('drop');
        const started = performance.now();
        // Two queries take the two connections and wait for answers that never come; the others wait for the pool.
        const outcomes = await Promise.all(
          Array.from({ length: 5 }, (_, i) =>
            sql`select ${i} as n`.execute(handle.db).then(
              () => ({ error: null as unknown, ms: performance.now() - started }),
              (error: unknown) => ({ error, ms: performance.now() - started }),
            ),
          ),
        );
        for (const { error, ms } of outcomes) {
          assert.ok(error, 'no answer through a silent network');
          assert.ok(isDatabaseUnavailable(error), String(error));
          assert.ok(ms < BOUND_MS, `gave up after ${Math.round(ms)} ms (bound ${BOUND_MS})`);
        }
        console.log(
          `# silent ${dialect}: 5 queries on a pool of 2 gave up after ` +
            `${outcomes.map((o) => Math.round(o.ms)).join(', ')} ms`,
        );

        // A connection opened during the silence cannot finish its handshake: bounded too.
        const fresh = openDatabase({ url: throughProxy(database.url, proxy), poolSize: 1, timeouts: TIMEOUTS });
        const { value: connectError, ms } = await timed(() =>
          sql`select 1`.execute(fresh.db).then(
            () => null,
            (e: unknown) => e,
          ),
        );
        await fresh.close();
        assert.ok(isDatabaseUnavailable(connectError), String(connectError));
        assert.ok(ms < BOUND_MS, `connecting gave up after ${ms} ms`);

        proxy.resume();
        // The connections whose queries were lost were discarded: each answer now belongs to its own question.
        for (let i = 0; i < 12; i++) {
          const { rows } = await sql<{ n: number }>`select ${i} as n`.execute(handle.db);
          assert.equal(Number(rows[0]!.n), i);
        }
      } finally {
        proxy.resume();
        await handle.close();
      }
    });
  },
);

describe(
  'SQLite: another process holding the write lock (DATABASE_BUSY_TIMEOUT_MS)',
  { skip: networked && 'SQLite only' },
  () => {
    let database: TestDatabase;
    before(async () => {
      database = await createTestDatabase({ file: true });
    });
    after(() => database?.drop());

    it('a write gives up after the busy timeout with SQLITE_BUSY, recognised as unavailable', async () => {
      const handle = openDatabase({ url: database.url, timeouts: TIMEOUTS });
      const file = database.url.slice('sqlite:'.length);
      await sql`create table if not exists t (n integer)`.execute(handle.db);
      const locker = new SQLite(file);
      try {
        locker.exec('BEGIN IMMEDIATE');
        const { value: error, ms } = await timed(() =>
          sql`insert into t values (1)`.execute(handle.db).then(
            () => null,
            (e: unknown) => e,
          ),
        );
        assert.match(String((error as { code?: string })?.code), /^SQLITE_BUSY/);
        assert.ok(isDatabaseUnavailable(error));
        assert.ok(ms >= 150 && ms < 2000, `waited ${ms} ms for a 200 ms busy timeout`);
      } finally {
        locker.exec('ROLLBACK');
        locker.close();
        await handle.close();
      }
    });

    it('the database file and its -wal and -shm files are created readable by the owner only (0600)', async () => {
      const file = database.url.slice('sqlite:'.length).replace(/test\.db$/, 'fresh/private.db');
      const handle = openDatabase({ url: `sqlite:${file}` });
      try {
        await sql`create table t (n integer)`.execute(handle.db);
        await sql`insert into t values (1)`.execute(handle.db);
        for (const path of [file, `${file}-wal`, `${file}-shm`])
          assert.equal((statSync(path).mode & 0o777).toString(8), '600', path);
        assert.equal(
          (statSync(file.replace(/private\.db$/, '')).mode & 0o777).toString(8),
          '700',
          'a folder it creates is private too',
        );
      } finally {
        await handle.close();
      }
    });
  },
);

describe(`HTTP answers while the database is unavailable (${dialect})`, { timeout: 60_000 }, () => {
  let database: TestDatabase;
  let proxy: TcpProxy | undefined;
  let container: Container;
  let app: FastifyInstance;
  const logs: { level: number; msg: string; [key: string]: unknown }[] = [];
  let locker: SQLite.Database | undefined;

  before(async () => {
    database = await createTestDatabase({ file: true });
    if (networked) proxy = await startTcpProxy(serverAddress(database.url));
    const url = proxy ? throughProxy(database.url, proxy) : database.url;
    const config = makeTestConfig(
      {
        DATABASE_CONNECT_TIMEOUT_MS: String(TIMEOUTS.connectMs),
        DATABASE_STATEMENT_TIMEOUT_MS: String(TIMEOUTS.statementMs),
        DATABASE_POOL_TIMEOUT_MS: String(TIMEOUTS.poolMs),
        DATABASE_BUSY_TIMEOUT_MS: String(TIMEOUTS.busyMs),
        DATABASE_POOL_SIZE: '3',
        LOG_LEVEL: 'warn',
      },
      url,
    );
    const log = pino({ level: 'warn' }, { write: (line: string) => void logs.push(JSON.parse(line)) });
    container = await createContainer(config, { log });
    app = await buildApp(config, { container });
    await app.ready();
  });
  after(async () => {
    // The proxy goes first: should a bound be missing, queries still waiting on it end here, and the pool can close.
    await proxy?.close();
    locker?.close();
    await app?.close();
    await container?.close();
    await database?.drop();
  });

  const outageLines = () => logs.filter((l) => /^database unavailable/.test(l.msg));
  const recoveryLines = () => logs.filter((l) => l.msg === 'database available again');

  function makeUnavailable(): void {
    if (proxy) return proxy.stall('drop');
    locker = new SQLite(database.url.slice('sqlite:'.length));
    locker.exec('BEGIN IMMEDIATE');
  }
  function makeAvailable(): void {
    if (proxy) return proxy.resume();
    locker!.exec('ROLLBACK');
    locker!.close();
    locker = undefined;
  }

  function assertUnavailable(
    res: { statusCode: number; headers: Record<string, unknown>; body: string },
    what: string,
  ): void {
    assert.equal(res.statusCode, 503, `${what}: ${res.statusCode} ${res.body}`);
    assert.match(String(res.headers['content-type']), /^application\/json/);
    assert.equal(res.headers['retry-after'], '5', what);
    const body = json(res);
    assert.equal(body.success, false);
    assert.equal(body.error.code, 'SERVICE_UNAVAILABLE');
    assert.ok(body.request_id && body.timestamp);
  }

  it('login, refresh, register: 503 + Retry-After in bound; uncached /me too (SQLite reads still work)', async () => {
    const user = await registerAndLogin(app);
    const unused = await login(app, user.username);
    assert.equal(
      (await app.inject({ method: 'GET', url: '/api/auth/me', headers: bearer(user.access) })).statusCode,
      200,
      'cached from here on',
    );

    makeUnavailable();
    const answers: Record<string, number> = {};
    const ask = async (what: string, request: InjectOptions) => {
      const { value, ms } = await timed(() => app.inject(request));
      answers[what] = ms;
      assert.ok(ms < BOUND_MS, `${what} answered after ${ms} ms (bound ${BOUND_MS})`);
      return value;
    };
    assertUnavailable(
      await ask('login', {
        method: 'POST',
        url: '/api/auth/login',
        payload: { username: user.username, password: user.password },
      }),
      'login',
    );
    assertUnavailable(
      await ask('refresh', { method: 'POST', url: '/api/auth/refresh', payload: { refresh_token: user.refresh } }),
      'refresh',
    );
    assertUnavailable(
      await ask('register', {
        method: 'POST',
        url: '/api/auth/register',
        payload: { username: `outage_${Date.now()}`, email: `o${Date.now()}@example.com`, password: user.password },
      }),
      'register',
    );
    const uncached = await ask('uncached /me', { method: 'GET', url: '/api/auth/me', headers: bearer(unused.access) });
    if (networked) assertUnavailable(uncached, 'uncached /me');
    else assert.equal(uncached.statusCode, 200, 'SQLite in WAL mode reads while another process writes');
    const cached = await app.inject({ method: 'GET', url: '/api/auth/me', headers: bearer(user.access) });
    assert.equal(cached.statusCode, 200, 'a token checked before the outage is served from the cache');

    // Many at once: the pool runs out, the queue is bounded too.
    const burst = await Promise.all(
      Array.from({ length: 8 }, () =>
        timed(() => app.inject({ method: 'POST', url: '/api/auth/refresh', payload: { refresh_token: user.refresh } })),
      ),
    );
    for (const { value, ms } of burst) {
      assertUnavailable(value, 'refresh in a burst');
      assert.ok(ms < BOUND_MS, `burst answer after ${ms} ms`);
    }
    console.log(
      `# ${dialect} unavailable: time to 503 ${JSON.stringify(answers)} ms; ` +
        `burst of 8 refreshes: max ${Math.max(...burst.map((b) => b.ms))} ms`,
    );

    assert.equal(outageLines().length, 1, 'logged once for the whole outage');
    assert.equal(outageLines()[0]!.level, 40, 'at warn level');
    assert.equal(JSON.stringify(outageLines()[0]).includes('    at '), false, 'without a stack');
    assert.equal(
      logs.filter((l) => l.level >= 50).length,
      0,
      `no error lines: ${JSON.stringify(logs.filter((l) => l.level >= 50))}`,
    );

    makeAvailable();
    let status = 0;
    for (let i = 0; i < 100 && status !== 200; i++) {
      status = (
        await app.inject({
          method: 'POST',
          url: '/api/auth/login',
          payload: { username: user.username, password: user.password },
        })
      ).statusCode;
      if (status !== 200) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.equal(status, 200, 'login works again without a restart');
    const fresh = await login(app, user.username);
    for (let i = 0; i < 6; i++) {
      const me = await app.inject({ method: 'GET', url: '/api/auth/me', headers: bearer(fresh.access) });
      assert.equal(me.statusCode, 200);
      assert.equal(json(me).data.user.id, user.id);
    }
    const refreshed = await app.inject({
      method: 'POST',
      url: '/api/auth/refresh',
      payload: { refresh_token: fresh.refresh },
    });
    assert.equal(refreshed.statusCode, 200, refreshed.body);
    for (let i = 0; i < 100 && recoveryLines().length === 0; i++)
      await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(recoveryLines().length, 1, 'the end of the outage is logged once');
    assert.equal(outageLines().length, 1, 'and no second outage was reported on the way back');
  });
});
