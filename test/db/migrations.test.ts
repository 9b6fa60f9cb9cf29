import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { openDatabase } from '../../src/db/index.js';
import { migrateDown, migrateToLatest, migrator } from '../../src/db/migrator.js';
import { dialectOf, postgresSsl } from '../../src/db/index.js';
import { createTestDatabase, testDatabaseUrl } from '../helpers/database.js';

describe('migrations', () => {
  it('apply, revert completely, and apply again', async () => {
    const database = await createTestDatabase({ file: true });
    const handle = openDatabase({ url: database.url });
    try {
      await migrateToLatest(handle.db);
      const all = await migrator(handle.db).getMigrations();
      assert.ok(all.length >= 1 && all.every((m) => m.executedAt));
      const tables = async () =>
        (await handle.db.introspection.getTables())
          .map((t) => t.name)
          .filter((n) => !n.startsWith('flokie_migrations'));
      assert.ok((await tables()).includes('users'));
      for (let i = 0; i < all.length; i++) await migrateDown(handle.db);
      assert.deepEqual(await tables(), []);
      await migrateToLatest(handle.db);
      assert.ok((await tables()).includes('sessions'));
    } finally {
      await handle.close();
      await database.drop();
    }
  });

  it('SQLite runs with WAL and foreign keys on', async () => {
    // Decided before creating a database: returning after would leave one behind on PostgreSQL and MariaDB.
    if (dialectOf(testDatabaseUrl()) !== 'sqlite') return;
    const database = await createTestDatabase({ file: true });
    const handle = openDatabase({ url: database.url });
    try {
      const { sql } = await import('kysely');
      const wal = await sql<{ journal_mode: string }>`pragma journal_mode`.execute(handle.db);
      const fk = await sql<{ foreign_keys: number }>`pragma foreign_keys`.execute(handle.db);
      assert.equal(wal.rows[0]!.journal_mode, 'wal');
      assert.equal(fk.rows[0]!.foreign_keys, 1);
    } finally {
      await handle.close();
      await database.drop();
    }
  });

  it('sslmode keeps its libpq meaning', () => {
    assert.equal(postgresSsl(new URL('postgresql://u@h/db')), false);
    assert.deepEqual(postgresSsl(new URL('postgresql://u@h/db?sslmode=require')), { rejectUnauthorized: false });
    assert.deepEqual(postgresSsl(new URL('postgresql://u@h/db?sslmode=verify-full')), { rejectUnauthorized: true });
    assert.throws(() => postgresSsl(new URL('postgresql://u@h/db?sslmode=bogus')), /sslmode/);
  });
});
