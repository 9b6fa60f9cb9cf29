/**
 * Indexes for the admin user list and search (a deployment may hold millions of users):
 * - updated_at, so sorting by it reads an index instead of sorting the table;
 * - (is_active, created_at), the default list (active users, newest first) and its count;
 * - on PostgreSQL, varchar_pattern_ops copies of username_lower and email, so the prefix search
 *   (`LIKE 'abc%'`) is an index range scan under any database collation. SQLite searches with an
 *   equivalent range on the existing unique indexes, MySQL uses them for LIKE 'abc%' directly.
 */
import { sql, type Kysely } from 'kysely';

const isPostgres = (db: Kysely<unknown>) => db.getExecutor().adapter.constructor.name.startsWith('Postgres');

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.createIndex('users_updated_at_idx').on('users').column('updated_at').execute();
  await db.schema.createIndex('users_active_created_idx').on('users').columns(['is_active', 'created_at']).execute();
  if (isPostgres(db)) {
    await sql`CREATE INDEX users_username_prefix_idx ON users (username_lower varchar_pattern_ops)`.execute(db);
    await sql`CREATE INDEX users_email_prefix_idx ON users (email varchar_pattern_ops)`.execute(db);
  }
}

export async function down(db: Kysely<unknown>): Promise<void> {
  if (isPostgres(db)) {
    await sql`DROP INDEX IF EXISTS users_email_prefix_idx`.execute(db);
    await sql`DROP INDEX IF EXISTS users_username_prefix_idx`.execute(db);
  }
  // MySQL needs the table named; the others refuse it.
  const mysql = db.getExecutor().adapter.constructor.name.startsWith('Mysql');
  for (const name of ['users_active_created_idx', 'users_updated_at_idx']) {
    const drop = db.schema.dropIndex(name);
    await (mysql ? drop.on('users') : drop).execute();
  }
}
