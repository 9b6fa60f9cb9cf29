/**
 * Prometheus metrics (src/modules/metrics/): behind METRICS_TOKEN at /api/metrics and on their own
 * loopback port (METRICS_PORT); the figures move with real traffic (requests by route pattern,
 * logins by outcome, lockouts, rate-limit refusals, token-cache hits, hash queue, pool, alerts);
 * and label values never come from what a client sends: 1,000 random paths add no series.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { bearer, createTestApp, registerAndLogin, type TestApp } from '../../helpers/app.js';
import { freePort } from '../../helpers/server.js';

const TOKEN = 'metrics-token-0123456789-abcdefghijklmnopqrstuvwxyz';

/** The value of one series in the exposition text, or undefined. */
function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}
const seriesOf = (text: string, name: string) =>
  text.split('\n').filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));

describe('metrics behind METRICS_TOKEN', () => {
  let t: TestApp;
  const scrape = async () => {
    const res = await t.app.inject({ method: 'GET', url: '/api/metrics', headers: bearer(TOKEN) });
    assert.equal(res.statusCode, 200, res.body);
    return res.body;
  };
  before(async () => {
    t = await createTestApp({
      METRICS_TOKEN: TOKEN,
      RATE_LIMIT_ENABLED: 'true',
      RATE_LIMITS: JSON.stringify({ 'auth.login': '4 per minute', default: '100000 per hour' }),
      MAX_LOGIN_ATTEMPTS: '2',
    });
  });
  after(() => t.close());

  it('refuses without the token, with a wrong one, or with another spelling of it', async () => {
    for (const headers of [
      {},
      bearer('wrong'),
      bearer(`${TOKEN}x`),
      bearer(TOKEN.slice(0, -1)),
      { authorization: `bearer ${TOKEN}` },
      { authorization: TOKEN },
      { 'x-metrics-token': TOKEN },
    ]) {
      const res = await t.app.inject({ method: 'GET', url: '/api/metrics', headers });
      assert.equal(res.statusCode, 401, JSON.stringify(headers));
      assert.equal(JSON.parse(res.body).error.code, 'AUTHENTICATION_ERROR');
    }
    const ok = await t.app.inject({ method: 'GET', url: '/api/metrics', headers: bearer(TOKEN) });
    assert.equal(ok.statusCode, 200);
    assert.match(String(ok.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  });

  it('counts requests by route pattern, logins by outcome, lockouts, refusals and token-cache lookups', async () => {
    const user = await registerAndLogin(t.app);
    for (let i = 0; i < 3; i++)
      assert.equal(
        (await t.app.inject({ method: 'GET', url: '/api/auth/me', headers: bearer(user.access) })).statusCode,
        200,
      );
    const victim = await registerAndLogin(t.app);
    for (let i = 0; i < 3; i++)
      await t.app.inject({
        method: 'POST',
        url: '/api/auth/login',
        payload: { username: victim.username, password: 'Wrong-Password-1' },
        remoteAddress: `10.9.0.${i}`,
      });
    for (let i = 0; i < 5; i++)
      await t.app.inject({
        method: 'POST',
        url: '/api/auth/login',
        payload: { username: `x${i}`, password: 'Wrong-Password-1' },
        remoteAddress: '10.9.9.9',
      });
    await t.app.container.events.flush();

    const text = await scrape();
    assert.ok(value(text, 'flokie_http_requests_total{method="GET",route="/api/auth/me",status="200"}')! >= 3);
    const meCount = value(
      text,
      'flokie_http_request_duration_seconds_count{method="GET",route="/api/auth/me",status="200"}',
    )!;
    assert.ok(meCount >= 3);
    assert.equal(
      value(
        text,
        'flokie_http_request_duration_seconds_bucket{method="GET",route="/api/auth/me",status="200",le="+Inf"}',
      ),
      meCount,
      'the +Inf bucket holds every response',
    );
    assert.ok(
      value(text, 'flokie_http_request_duration_seconds_sum{method="GET",route="/api/auth/me",status="200"}')! > 0,
    );
    assert.match(text, /# TYPE flokie_http_request_duration_seconds histogram/);
    assert.ok(value(text, 'flokie_http_requests_total{method="POST",route="/api/auth/login",status="429"}')! >= 1);
    assert.equal(value(text, 'flokie_logins_total{outcome="success"}'), 2);
    assert.ok(value(text, 'flokie_logins_total{outcome="bad_credentials"}')! >= 2);
    assert.ok(value(text, 'flokie_logins_total{outcome="locked"}')! >= 1);
    assert.equal(value(text, 'flokie_account_lockouts_total'), 1);
    assert.ok(value(text, 'flokie_rate_limit_refusals_total{limit="auth.login"}')! >= 1);
    assert.ok(value(text, 'flokie_token_cache_lookups_total{result="hit"}')! >= 2);
    assert.ok(value(text, 'flokie_token_cache_lookups_total{result="miss"}')! >= 1);
    assert.ok(value(text, 'flokie_security_events_total{type="login_success",severity="info"}')! >= 2);
    assert.equal(value(text, 'flokie_password_hash_queue{state="waiting"}'), 0);
    assert.ok(value(text, 'flokie_db_pool_connections{state="size"}')! >= 1);
    assert.equal(value(text, 'flokie_alerts_pending'), 0);
    assert.ok(value(text, 'flokie_process_resident_memory_bytes')! > 0, 'default process metrics');
    assert.ok(!text.includes(user.access) && !text.includes(victim.username), 'no token or username in metrics');

    const again = await scrape();
    assert.equal(value(again, 'flokie_logins_total{outcome="success"}'), 2, 'a second scrape does not count twice');
    assert.equal(
      value(again, 'flokie_rate_limit_refusals_total{limit="auth.login"}'),
      value(text, 'flokie_rate_limit_refusals_total{limit="auth.login"}'),
    );
  });

  it('1,000 random paths, methods and headers add no series: unknown routes are "unmatched"', async () => {
    const before = seriesOf(await scrape(), 'flokie_http_requests_total').length;
    for (let i = 0; i < 1000; i++) {
      const path = `/${randomBytes(6).toString('hex')}/${i % 7 ? randomBytes(3).toString('hex') : '%2e%2e'}?q=${i}`;
      const url = i % 3 ? `/api${path}` : path;
      await t.app.inject({
        method: (['GET', 'POST', 'DELETE', 'PATCH'] as const)[i % 4],
        url,
        headers: { 'x-forwarded-for': `10.0.${i % 256}.1`, 'user-agent': randomBytes(4).toString('hex') },
      });
    }
    const text = await scrape();
    const after = seriesOf(text, 'flokie_http_requests_total');
    assert.ok(after.length - before <= 8, `series grew from ${before} to ${after.length}`);
    assert.ok(after.some((l) => l.includes('route="unmatched"')));
    assert.ok(!/route="\/(api\/)?[0-9a-f]{12}/.test(text), 'no raw path became a label');
    const histogram = text
      .split('\n')
      .filter((l) => l.startsWith('flokie_http_request_duration_seconds_bucket')).length;
    assert.ok(histogram < 1000, `histogram series ${histogram}`);
  });
});

describe('metrics on METRICS_PORT', () => {
  let t: TestApp;
  let port: number;
  before(async () => {
    port = await freePort();
    t = await createTestApp({ METRICS_PORT: String(port) });
  });
  after(() => t.close());

  it('serves /metrics on loopback only, nothing else; /api/metrics does not exist without a token', async () => {
    await t.app.inject({ method: 'GET', url: '/api/health' });
    const res = await fetch(`http://127.0.0.1:${port}/metrics`);
    assert.equal(res.status, 200);
    const text = await res.text();
    assert.match(text, /flokie_http_requests_total\{method="GET",route="\/api\/health\/?",status="200"\} 1/);
    assert.equal((await fetch(`http://127.0.0.1:${port}/`)).status, 404);
    assert.equal((await fetch(`http://127.0.0.1:${port}/metrics`, { method: 'POST' })).status, 404);
    assert.equal((await t.app.inject({ method: 'GET', url: '/api/metrics' })).statusCode, 404);
    const { networkInterfaces } = await import('node:os');
    const external = Object.values(networkInterfaces())
      .flat()
      .find((a) => a && a.family === 'IPv4' && !a.internal);
    if (external)
      await assert.rejects(fetch(`http://${external.address}:${port}/metrics`), 'not reachable on another interface');
  });

  it('stops listening when the app closes', async () => {
    const other = await createTestApp({ METRICS_PORT: String(await freePort()) });
    const metricsPort = other.config.METRICS_PORT;
    assert.equal((await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).status, 200);
    await other.close();
    await assert.rejects(fetch(`http://127.0.0.1:${metricsPort}/metrics`));
  });
});
