/** `flokie migrate` as a real process: up on an empty database, status, down, up again, a bad action. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MIGRATION_NAMES } from '../../src/db/migrator.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { runCli } from './helpers.js';

describe('flokie migrate', () => {
  let database: TestDatabase;
  let env: Record<string, string>;
  const last = MIGRATION_NAMES[MIGRATION_NAMES.length - 1]!;

  before(async () => {
    database = await createTestDatabase({ file: true });
    env = { DATABASE_URL: database.url, AUTO_MIGRATE: 'false' };
  });
  after(() => database.drop());

  it('applies every migration, lists them, reverts the last and re-applies it', async () => {
    const up = await runCli(['migrate'], { env });
    assert.equal(up.code, 0, up.stderr);
    assert.deepEqual(
      up.stdout.trim().split('\n'),
      MIGRATION_NAMES.map((name) => `applied ${name}`),
    );

    const again = await runCli(['migrate', 'up'], { env });
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stdout, '');
    assert.match(again.stderr, /database is up to date/);

    const status = await runCli(['migrate', 'status'], { env });
    assert.deepEqual(
      status.stdout.trim().split('\n'),
      MIGRATION_NAMES.map((name) => `applied  ${name}`),
    );

    const down = await runCli(['migrate', 'down'], { env });
    assert.equal(down.code, 0, down.stderr);
    assert.equal(down.stdout.trim(), `reverted ${last}`);
    const pending = await runCli(['migrate', 'status'], { env });
    assert.match(pending.stdout, new RegExp(`pending  ${last}`));

    const reapplied = await runCli(['migrate'], { env });
    assert.equal(reapplied.stdout.trim(), `applied ${last}`);
  });

  it('refuses an unknown action in one line, changing nothing', async () => {
    const r = await runCli(['migrate', 'sideways'], { env });
    assert.notEqual(r.code, 0);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /sideways/);
  });
});
