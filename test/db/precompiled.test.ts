/** precompile(): one compiled query, each call's values bound to the right parameters (every dialect). */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Kysely } from 'kysely';
import { openDatabase, type DatabaseHandle } from '../../src/db/index.js';
import { precompile } from '../../src/db/precompiled.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

interface ProbeDb {
  probe: { id: string; owner: string; kind: string };
}

describe('precompiled queries', () => {
  let database: TestDatabase;
  let handle: DatabaseHandle;
  let db: Kysely<ProbeDb>;

  before(async () => {
    database = await createTestDatabase();
    handle = openDatabase({ url: database.url });
    db = handle.db as unknown as Kysely<ProbeDb>;
    await db.schema
      .createTable('probe')
      .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
      .addColumn('owner', 'varchar(64)', (c) => c.notNull())
      .addColumn('kind', 'varchar(16)', (c) => c.notNull())
      .execute();
    await db
      .insertInto('probe')
      .values([
        { id: 'a1', owner: 'alice', kind: 'key' },
        { id: 'a2', owner: 'alice', kind: 'note' },
        { id: 'b1', owner: 'bob', kind: 'key' },
        { id: "x' OR '1'='1", owner: 'mallory', kind: 'key' },
      ])
      .execute();
  });
  after(async () => {
    await db.schema.dropTable('probe').ifExists().execute();
    await handle.close();
    await database.drop();
  });

  // Names listed in another order than the query uses them, and a constant between them.
  const build = () =>
    precompile(db, ['owner', 'id'], (p) =>
      db
        .selectFrom('probe')
        .select(['id', 'owner'])
        .where('id', '=', p.id)
        .where('kind', '=', 'key')
        .where('owner', '=', p.owner),
    );

  it('binds each call’s values to their own parameters and keeps the query’s constants', async () => {
    const find = build();
    assert.deepEqual(await find({ owner: 'alice', id: 'a1' }), [{ id: 'a1', owner: 'alice' }]);
    assert.deepEqual(await find({ owner: 'bob', id: 'b1' }), [{ id: 'b1', owner: 'bob' }]);
    // Swapped values match nothing: each name has its own slot.
    assert.deepEqual(await find({ owner: 'b1', id: 'bob' }), []);
    // The constant kind = 'key' still applies.
    assert.deepEqual(await find({ owner: 'alice', id: 'a2' }), []);
  });

  it('values stay values: an injection attempt matches only the row with that literal id', async () => {
    const find = build();
    assert.deepEqual(await find({ owner: 'alice', id: "x' OR '1'='1" }), []);
    assert.deepEqual(await find({ owner: 'mallory', id: "x' OR '1'='1" }), [{ id: "x' OR '1'='1", owner: 'mallory' }]);
  });

  it('refuses a name the query never uses', () => {
    assert.throws(
      () => precompile(db, ['id', 'unused'], (p) => db.selectFrom('probe').select('id').where('id', '=', p.id)),
      /"unused" is not a parameter/,
    );
  });
});
