/** `users create-admin` on a terminal: prompts twice, never echoes the password. Needs python3 (its pty module). */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { createContainer, type Container } from '../../src/container.js';
import { makeTestConfig, STRONG_PASSWORD } from '../helpers/app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { BIN, cliEnv, ROOT } from './helpers.js';

const python = spawnSync('python3', ['--version']).status === 0;
const SCRIPT = fileURLToPath(new URL('./fixtures/pty-run.py', import.meta.url));

describe('password prompt on a terminal', { skip: !python && 'python3 not installed' }, () => {
  let database: TestDatabase;
  let c: Container;
  before(async () => {
    database = await createTestDatabase({ file: true });
    c = await createContainer(makeTestConfig({}, database.url), { migrate: true });
  });
  after(async () => {
    await c.close();
    await database.drop();
  });

  it('asks twice without echo and creates the admin', () => {
    const run = spawnSync(
      'python3',
      [SCRIPT, process.execPath, BIN, 'users', 'create-admin', 'ttyadmin', 'tty@example.com'],
      {
        cwd: ROOT,
        env: { ...cliEnv({ DATABASE_URL: database.url }), PTY_PASSWORD: STRONG_PASSWORD },
        encoding: 'utf8',
        timeout: 120_000,
      },
    );
    assert.match(run.stdout, /Password: /);
    assert.match(run.stdout, /Repeat password: /);
    assert.match(run.stdout, /Created administrator ttyadmin/);
    assert.match(run.stdout, /EXIT=0/);
    assert.ok(!run.stdout.includes(STRONG_PASSWORD), 'the password was echoed');
  });

  it('the account exists with that password', async () => {
    const user = await c.users.findByLogin('ttyadmin');
    assert.ok(user && user.is_admin === 1);
    assert.ok(await c.hasher.verify(STRONG_PASSWORD, user.password_hash));
  });
});
