/**
 * WEB_CONCURRENCY (src/cluster.ts): N worker processes share one port and serve requests; a
 * worker that dies is replaced; SIGTERM to the primary stops every worker gracefully (exit 0);
 * without Redis, a revocation on one worker reaches the other through the primary at once.
 * WEB_CONCURRENCY=1 serves in the process itself. Runs on an SQLite file so it needs no service.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request, sleep, startServer, type ServerProcess } from '../helpers/server.js';

const HEALTH_TOKEN = 'cluster-test-health-token-0123456789';

function env(workers: number, dir: string) {
  return {
    WEB_CONCURRENCY: String(workers),
    DATABASE_URL: `sqlite:${join(dir, 'flokie.db')}`,
    HEALTH_TOKEN,
    LOG_LEVEL: 'info',
  };
}

async function servingPids(server: ServerProcess, requests: number): Promise<number[]> {
  const pids: number[] = [];
  for (let i = 0; i < requests; i++) {
    const res = await request('GET', `${server.url}/api/health/detailed`, {
      headers: { 'x-health-token': HEALTH_TOKEN },
    });
    assert.equal(res.status, 200, res.text);
    pids.push(res.body.application.pid);
  }
  return pids;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('WEB_CONCURRENCY', { timeout: 400_000 }, () => {
  it('2: two workers share one port, a killed worker is replaced, SIGTERM stops all cleanly', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'flokie-cluster-'));
    const server = await startServer(env(2, dir), { cwd: dir });
    try {
      // Both workers must be listening before round-robin can show them both.
      for (let i = 0; i < 1200 && (server.output().match(/worker listening/g) ?? []).length < 2; i++) await sleep(100);
      const pids = new Set(await servingPids(server, 8));
      assert.equal(pids.size, 2, `two workers served: ${[...pids].join(', ')}`);
      assert.ok(!pids.has(server.child.pid!), 'the primary serves nothing itself');

      const [victim] = [...pids];
      process.kill(victim!, 'SIGKILL');
      // A connection handed to a worker at the instant it dies is lost with it (as with any crash);
      // once the primary has seen the death, the survivor serves everything while it is replaced.
      for (let i = 0; i < 300 && !/worker died; restarting/.test(server.output()); i++) await sleep(50);
      const during = await servingPids(server, 3);
      assert.ok(during.every((pid) => pid !== victim));
      // Wait for the replacement by its log line, not by polling: every poll is a request the survivor
      // counts against the default per-address limit (100 per hour), and a slow start would use it up.
      for (let i = 0; i < 1200 && (server.output().match(/worker listening/g) ?? []).length < 3; i++) await sleep(100);
      let replaced: Set<number> = new Set();
      for (let i = 0; i < 20; i++) {
        replaced = new Set(await servingPids(server, 4));
        if (replaced.size === 2 && !replaced.has(victim!)) break;
        await sleep(200);
      }
      assert.equal(replaced.size, 2, 'back to two workers');
      assert.ok(!replaced.has(victim!), 'with a new process');

      const workers = [...replaced];
      const code = await server.stop('SIGTERM');
      assert.equal(code, 0, server.output().slice(-2000));
      assert.ok(
        workers.every((pid) => !alive(pid)),
        'no worker outlives the primary',
      );
      assert.equal(
        (server.output().match(/shutting down: finishing in-flight requests/g) ?? []).length,
        2,
        'each worker shut down gracefully',
      );
    } finally {
      if (server.child.exitCode === null) server.child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('2 without Redis: a token revoked on one worker is refused by the other on the next request (IPC)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'flokie-cluster-'));
    // A poll every 60 s: only the primary's relay (src/state/cluster-bus.ts) can deliver in time.
    const server = await startServer(
      { ...env(2, dir), CACHE_SYNC_INTERVAL_MS: '60000', LOG_LEVEL: 'warn', RATE_LIMIT_ENABLED: 'false' },
      { cwd: dir },
    );
    try {
      for (let i = 0; i < 1200 && new Set(await servingPids(server, 4)).size < 2; i++) await sleep(100);
      const username = `cl_${Date.now()}`;
      const password = 'Velvet-Orbit-Harbor-42';
      const registered = await request('POST', `${server.url}/api/auth/register`, {
        body: { username, email: `${username}@example.com`, password },
      });
      assert.equal(registered.status, 201, registered.text);
      const delays: number[] = [];
      for (let round = 0; round < 5; round++) {
        const login = await request('POST', `${server.url}/api/auth/login`, { body: { username, password } });
        assert.equal(login.status, 200, login.text);
        const token = login.body.data.access_token as string;
        // Fresh connections go to the workers in turn (round robin): both check the token and cache it.
        for (let i = 0; i < 4; i++)
          assert.equal((await request('GET', `${server.url}/api/auth/me`, { token })).status, 200);
        const logout = await request('POST', `${server.url}/api/auth/logout`, { token });
        assert.equal(logout.status, 200, logout.text);
        const since = performance.now();
        const after = [];
        for (let i = 0; i < 4; i++) after.push((await request('GET', `${server.url}/api/auth/me`, { token })).status);
        delays.push(Math.round(performance.now() - since));
        assert.deepEqual(after, [401, 401, 401, 401], `round ${round}: every worker refuses the token at once`);
      }
      assert.equal(new Set(await servingPids(server, 4)).size, 2, 'both workers were serving in turn');
      console.log(
        `# cluster without Redis: 4 requests right after each logout all refused; ` +
          `4 requests took ${delays.join(', ')} ms`,
      );
      assert.equal(await server.stop('SIGTERM'), 0, server.output().slice(-2000));
    } finally {
      if (server.child.exitCode === null) server.child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('1: serves in-process, no cluster', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'flokie-cluster-'));
    const server = await startServer(env(1, dir), { cwd: dir });
    try {
      assert.deepEqual(new Set(await servingPids(server, 3)), new Set([server.child.pid]));
      assert.doesNotMatch(server.output(), /cluster primary/);
      assert.equal(await server.stop('SIGINT'), 0);
    } finally {
      if (server.child.exitCode === null) server.child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
