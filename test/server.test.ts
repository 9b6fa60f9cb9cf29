import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { startServer, type ServerProcess } from './helpers/server.js';
import { STRONG_PASSWORD } from './helpers/app.js';

describe('server process', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flokie-server-'));
  let server: ServerProcess;
  before(async () => {
    server = await startServer(
      {
        NODE_ENV: 'development',
        DATABASE_URL: `sqlite:${join(dir, 'flokie.db')}`,
        MAIL_OUTBOX_DIR: join(dir, 'outbox'),
        BCRYPT_ROUNDS: '12',
        RATE_LIMIT_ENABLED: 'false',
      },
      { baseEnv: { LOG_LEVEL: 'warn' } },
    );
  });
  after(async () => {
    await server.stop('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves the API with no settings but a database path', async () => {
    const res = await fetch(`${server.url}/api/health`);
    const body = (await res.json()) as { status: string; database: { status: string } };
    assert.equal(body.status, 'healthy');
    assert.equal(body.database.status, 'connected');
  });

  it('on SIGTERM finishes the in-flight request, flushes events, closes the database and exits 0', async () => {
    const reg = await fetch(`${server.url}/api/auth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'shutdown_user', email: 'shutdown@example.com', password: STRONG_PASSWORD }),
    });
    assert.equal(reg.status, 201);
    // A login at bcrypt cost 12 takes a few hundred milliseconds: signal while it is in flight.
    const inFlight = fetch(`${server.url}/api/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'shutdown_user', password: STRONG_PASSWORD }),
    });
    await new Promise((r) => setTimeout(r, 50));
    server.child.kill('SIGTERM');
    const res = await inFlight;
    assert.equal(res.status, 200);
    assert.equal(await server.exited, 0, server.output());
    // The database was closed cleanly and the login's security event was written before exit.
    const db = new Database(join(dir, 'flokie.db'), { readonly: true });
    try {
      assert.equal((db.pragma('integrity_check') as { integrity_check: string }[])[0]!.integrity_check, 'ok');
      const row = db.prepare("select count(*) as n from security_events where type = 'login_success'").get() as {
        n: number;
      };
      assert.equal(row.n, 1);
    } finally {
      db.close();
    }
  });
});
