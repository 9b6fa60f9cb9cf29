/**
 * `flokie ratelimit emergency` reaching a running server: a real listening app on the same
 * database (default CACHE_SYNC_INTERVAL_MS, no Redis) must start answering 429 within 2 seconds of
 * the command finishing, and stop once it is lifted — with no restart.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.js';
import { makeTestConfig, uniqueUser } from '../helpers/app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { runCli } from './helpers.js';

const rateLimitPluginExists = existsSync(
  fileURLToPath(new URL('../../src/plugins/app/rate-limit.ts', import.meta.url)),
);

describe(
  'emergency rate limit reaches a running server',
  { skip: !rateLimitPluginExists && 'src/plugins/app/rate-limit.ts not built yet' },
  () => {
    let database: TestDatabase;
    let app: FastifyInstance;
    let base: string;

    before(async () => {
      database = await createTestDatabase({ file: true });
      app = await buildApp(
        makeTestConfig(
          {
            CACHE_SYNC_INTERVAL_MS: '1000',
            RATE_LIMIT_ENABLED: 'true',
            RATE_LIMITS: JSON.stringify({ default: '100000 per hour' }),
          },
          database.url,
        ),
      );
      await app.listen({ port: 0, host: '127.0.0.1' });
      base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    });
    after(async () => {
      await app.close();
      await database.drop();
    });

    /** Polls until a request gets `status`, returning how long that took. */
    async function msUntil(status: number, limitMs: number): Promise<number> {
      const started = Date.now();
      for (;;) {
        const res = await fetch(`${base}/api/auth/csrf-token`);
        await res.arrayBuffer();
        if (res.status === status) return Date.now() - started;
        if (Date.now() - started > limitMs) throw new Error(`no ${status} within ${limitMs} ms (last ${res.status})`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }

    it('applies "2 per minute" within 2 s and lifts it within 2 s, without a restart', async () => {
      const env = { DATABASE_URL: database.url };
      for (let i = 0; i < 5; i++) assert.equal((await fetch(`${base}/api/auth/csrf-token`)).status, 200);

      const on = await runCli(['ratelimit', 'emergency', '2 per minute'], { env });
      assert.equal(on.code, 0, on.stderr);
      const applied = await msUntil(429, 5000);
      assert.ok(applied <= 2000, `applied after ${applied} ms`);
      const limited = await fetch(`${base}/api/auth/csrf-token`);
      assert.equal(limited.status, 429);
      assert.ok(Number(limited.headers.get('retry-after')) > 0);
      assert.equal(((await limited.json()) as { error: { code: string } }).error.code, 'RATE_LIMIT_EXCEEDED');
      // Health checks stay open for the load balancer.
      assert.equal((await fetch(`${base}/api/health`)).status, 200);

      const off = await runCli(['ratelimit', 'emergency', 'off'], { env });
      assert.equal(off.code, 0, off.stderr);
      const lifted = await msUntil(200, 5000);
      assert.ok(lifted <= 2000, `lifted after ${lifted} ms`);
      console.log(`# emergency limit applied ${applied} ms and lifted ${lifted} ms after the CLI returned`);
    });

    it('users deactivate from the CLI ends a running session on the server within 2 s', async () => {
      const env = { DATABASE_URL: database.url };
      const user = uniqueUser('e2e');
      assert.equal(
        (
          await fetch(`${base}/api/auth/register`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify(user),
          })
        ).status,
        201,
      );
      const loginRes = await fetch(`${base}/api/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: user.username, password: user.password }),
      });
      const access = ((await loginRes.json()) as { data: { access_token: string } }).data.access_token;
      const me = () =>
        fetch(`${base}/api/auth/me`, { headers: { authorization: `Bearer ${access}` } }).then((r) => r.status);
      assert.equal(await me(), 200);
      assert.equal(await me(), 200); // now cached by the token guard
      const off = await runCli(['users', 'deactivate', user.username], { env });
      assert.equal(off.code, 0, off.stderr);
      const started = Date.now();
      while ((await me()) !== 401) {
        assert.ok(Date.now() - started < 2000, 'token still accepted 2 s after deactivation');
        await new Promise((r) => setTimeout(r, 50));
      }
    });
  },
);
