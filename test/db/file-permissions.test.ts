/**
 * The embedded database holds password hashes: the service creates it readable and writable by its
 * owner only (0600), and SQLite gives its -wal and -shm files the same mode; the var/ folder it
 * creates is 0700. Checked on the default path, as `npm start` (tsx src/server.ts) in a fresh
 * folder with no DATABASE_URL creates it. test/db/outage.test.ts checks openDatabase itself.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { request, startServer } from '../helpers/server.js';

const mode = (path: string) => (statSync(path).mode & 0o777).toString(8);

it(
  'npm start on the default DATABASE_URL (sqlite:var/flokie.db): the database, -wal and -shm are 0600, var/ is 0700',
  { timeout: 120_000 },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'flokie-perm-'));
    const server = await startServer({ RATE_LIMIT_ENABLED: 'false' }, { cwd: dir });
    try {
      // A write, so the WAL holds something and the shared-memory index exists.
      const res = await request('POST', `${server.url}/api/auth/register`, {
        body: { username: 'perm_user', email: 'perm@example.com', password: 'Velvet-Orbit-Harbor-42' },
      });
      assert.equal(res.status, 201, res.text);
      const db = join(dir, 'var', 'flokie.db');
      assert.deepEqual(
        [db, `${db}-wal`, `${db}-shm`].map((path) => [path.slice(dir.length + 1), mode(path)]),
        [
          ['var/flokie.db', '600'],
          ['var/flokie.db-wal', '600'],
          ['var/flokie.db-shm', '600'],
        ],
      );
      assert.equal(mode(join(dir, 'var')), '700');
    } finally {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
