/**
 * A real server process on PostgreSQL behind a TCP proxy (test/helpers/tcp-proxy.ts) that stops
 * forwarding without closing anything — a silent network partition. Login, refresh and an
 * uncached /me answer 503 SERVICE_UNAVAILABLE with Retry-After within a bound set by
 * DATABASE_*_TIMEOUT_MS (not after 45 s), the outage is logged once at warn without a stack, and
 * when the proxy forwards again the same process serves normally, with its recovery logged once.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTcpProxy, throughProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { createPgDatabase, PG_BASE } from './servers.js';
import { request, sleep, startServer, type Response, type ServerProcess } from '../helpers/server.js';

const PASSWORD = 'Velvet-Orbit-Harbor-42';
const TIMEOUT_MS = 1000;
/** Generous: three times the longest the client waits for one statement (its timeout + 1 s). */
const BOUND_MS = 3 * (TIMEOUT_MS + 1000);

describe('PostgreSQL silent behind a stalled network, a real server process', { timeout: 180_000 }, () => {
  let database: Awaited<ReturnType<typeof createPgDatabase>>;
  let proxy: TcpProxy;
  let server: ServerProcess;

  before(async () => {
    database = await createPgDatabase();
    const pgUrl = new URL(PG_BASE);
    proxy = await startTcpProxy({ host: pgUrl.hostname, port: Number(pgUrl.port || 5432) });
    server = await startServer({
      DATABASE_URL: throughProxy(database.url, proxy),
      DATABASE_POOL_SIZE: '4',
      DATABASE_CONNECT_TIMEOUT_MS: String(TIMEOUT_MS),
      DATABASE_STATEMENT_TIMEOUT_MS: String(TIMEOUT_MS),
      DATABASE_POOL_TIMEOUT_MS: String(TIMEOUT_MS),
      RATE_LIMIT_ENABLED: 'false',
      LOG_LEVEL: 'warn',
    });
  });
  after(async () => {
    proxy?.resume();
    const code = await server?.stop();
    await proxy?.close();
    await database?.drop();
    assert.equal(code, 0, 'clean shutdown after the outage');
  });

  const lines = () =>
    server
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { level: number; msg: string });

  function assertUnavailable(res: Response, what: string): void {
    assert.equal(res.status, 503, `${what}: ${res.status} ${res.text}`);
    assert.equal(res.body.error.code, 'SERVICE_UNAVAILABLE', what);
    assert.equal(res.headers['retry-after'], '5', what);
    assert.match(String(res.headers['content-type']), /^application\/json/);
  }

  it('answers 503 within the bound while the database is silent and recovers without a restart', async () => {
    const username = `outage_${Date.now()}`;
    assert.equal(
      (
        await request('POST', `${server.url}/api/auth/register`, {
          body: { username, email: `${username}@example.com`, password: PASSWORD },
        })
      ).status,
      201,
    );
    const login = () => request('POST', `${server.url}/api/auth/login`, { body: { username, password: PASSWORD } });
    const first = (await login()).body.data;
    const unused = (await login()).body.data;
    assert.equal((await request('GET', `${server.url}/api/auth/me`, { token: first.access_token })).status, 200);

    proxy.stall('drop');
    const times: Record<string, number> = {};
    const timed = async (what: string, send: () => Promise<Response>) => {
      const started = performance.now();
      const res = await send();
      times[what] = Math.round(performance.now() - started);
      assert.ok(times[what]! < BOUND_MS, `${what} answered after ${times[what]} ms (bound ${BOUND_MS} ms)`);
      return res;
    };
    assertUnavailable(await timed('login', login), 'login');
    assertUnavailable(
      await timed('refresh', () =>
        request('POST', `${server.url}/api/auth/refresh`, { body: { refresh_token: first.refresh_token } }),
      ),
      'refresh',
    );
    assertUnavailable(
      await timed('uncached /me', () => request('GET', `${server.url}/api/auth/me`, { token: unused.access_token })),
      'uncached /me',
    );
    const health = await timed('health', () => request('GET', `${server.url}/api/health`));
    assert.equal(health.status, 503);
    const burst = await Promise.all(Array.from({ length: 10 }, (_, i) => timed(`burst ${i}`, login)));
    for (const res of burst) assertUnavailable(res, 'login in a burst of 10');
    console.log(`# silent PostgreSQL (timeouts ${TIMEOUT_MS} ms): time to 503 ${JSON.stringify(times)} ms`);

    const outage = lines().filter((l) => /^database unavailable/.test(l.msg));
    assert.equal(outage.length, 1, 'one warn line for the whole outage');
    assert.equal(outage[0]!.level, 40);
    assert.doesNotMatch(server.output(), /"stack"|unhandled error/, 'no stack trace, no 500');

    proxy.resume();
    const resumed = performance.now();
    let status = 0;
    while (status !== 200 && performance.now() - resumed < 15_000) {
      status = (await login()).status;
      if (status !== 200) await sleep(100);
    }
    assert.equal(status, 200, 'login works again');
    const recoveredIn = Math.round(performance.now() - resumed);
    // Every pooled connection that lost a query was discarded: nothing answers out of step now.
    for (let i = 0; i < 10; i++) {
      const pair = (await login()).body.data;
      assert.equal(
        (await request('GET', `${server.url}/api/auth/me`, { token: pair.access_token })).body.data.user.username,
        username,
      );
      assert.equal(
        (await request('POST', `${server.url}/api/auth/refresh`, { body: { refresh_token: pair.refresh_token } }))
          .status,
        200,
      );
    }
    for (let i = 0; i < 150 && !lines().some((l) => l.msg === 'database available again'); i++) await sleep(100);
    assert.equal(lines().filter((l) => l.msg === 'database available again').length, 1, 'recovery logged once');
    assert.equal(lines().filter((l) => /^database unavailable/.test(l.msg)).length, 1);
    console.log(`# first successful login ${recoveredIn} ms after the network came back`);
  });
});
