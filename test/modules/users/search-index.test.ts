/**
 * The admin search must stay an index scan (a benchmark seeds a million users): checks the query
 * plan of the real search query, and that migration 002 is reversible.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CompiledQuery } from 'kysely';
import { createContainer, type Container } from '../../../src/container.js';
import { migrateDown, migrateToLatest } from '../../../src/db/migrator.js';
import { makeTestConfig } from '../../helpers/app.js';
import { createTestDatabase, type TestDatabase } from '../../helpers/database.js';

describe('admin search uses indexes', () => {
  let database: TestDatabase;
  let c: Container;
  before(async () => {
    database = await createTestDatabase({ file: true });
    c = await createContainer(makeTestConfig({}, database.url), { migrate: true });
    const now = Date.now();
    const rows = Array.from({ length: 500 }, (_, i) => ({
      id: `00000000-0000-0000-0000-${String(i).padStart(12, '0')}`,
      username: `seed${i}`,
      username_lower: `seed${i}`,
      email: `seed${i}@example.com`,
      password_hash: 'x',
      first_name: null,
      last_name: null,
      bio: null,
      is_active: 1,
      is_verified: 0,
      is_admin: 0,
      password_changed_at: now,
      created_at: now - i,
      updated_at: now - i,
      last_login_at: null,
    }));
    await c.db.insertInto('users').values(rows).execute();
  });
  after(async () => {
    await c.close();
    await database.drop();
  });

  it('finds by username and e-mail prefix', async () => {
    const found = await c.userQueries.search('SEED49', 50, false);
    assert.deepEqual(found.map((u) => u.username).sort(), [
      'seed49',
      'seed490',
      'seed491',
      'seed492',
      'seed493',
      'seed494',
      'seed495',
      'seed496',
      'seed497',
      'seed498',
      'seed499',
    ]);
    const byMail = await c.userQueries.search('seed7@ex', 50, false);
    assert.deepEqual(
      byMail.map((u) => u.username),
      ['seed7'],
    );
  });

  it('the search plan reads indexes, not the whole table', async () => {
    const compiled = c.userQueries.searchQuery('seed49', 10, false).compile();
    let plan: string;
    if (database.dialect === 'sqlite') {
      const result = await c.db.executeQuery<{ detail: string }>(
        CompiledQuery.raw(`EXPLAIN QUERY PLAN ${compiled.sql}`, [...compiled.parameters]),
      );
      plan = result.rows.map((r) => r.detail).join('\n');
      assert.match(plan, /INDEX/);
      assert.doesNotMatch(plan, /^SCAN users$/m);
    } else if (database.dialect === 'postgres') {
      // Real tables have statistics: with them the planner knows is_active = 1 matches nearly every row.
      await c.db.executeQuery(CompiledQuery.raw('ANALYZE users'));
      plan = await c.db.transaction().execute(async (trx) => {
        await trx.executeQuery(CompiledQuery.raw('SET LOCAL enable_seqscan = off'));
        const result = await trx.executeQuery<{ 'QUERY PLAN': string }>(
          CompiledQuery.raw(`EXPLAIN ${compiled.sql}`, [...compiled.parameters]),
        );
        return result.rows.map((r) => r['QUERY PLAN']).join('\n');
      });
      assert.match(plan, /users_username_prefix_idx/);
      assert.match(plan, /users_email_prefix_idx/);
      assert.doesNotMatch(plan, /Seq Scan/);
    } else {
      const result = await c.db.executeQuery<Record<string, unknown>>(
        CompiledQuery.raw(`EXPLAIN ${compiled.sql}`, [...compiled.parameters]),
      );
      plan = JSON.stringify(result.rows);
      assert.doesNotMatch(plan, /"type":"ALL"/);
    }
  });

  it('migration 002 is reversible', async () => {
    await migrateDown(c.db);
    await migrateToLatest(c.db);
    assert.equal((await c.userQueries.search('seed1', 1, false)).length, 1);
  });
});
