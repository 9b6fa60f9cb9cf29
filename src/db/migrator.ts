import { Migrator, NO_MIGRATIONS, type Kysely, type Migration, type MigrationResultSet } from 'kysely';
import * as m001 from './migrations/001_initial.js';
import * as m002 from './migrations/002_user_search_indexes.js';
import * as m003 from './migrations/003_account_security.js';
import * as m004 from './migrations/004_operations.js';

/** Migrations are imported statically so the built app and tsx run the same list. */
const MIGRATIONS: Record<string, Migration> = {
  '001_initial': m001,
  '002_user_search_indexes': m002,
  '003_account_security': m003,
  '004_operations': m004,
};

/** Migrations see any schema: each one adds to whatever the ones before it left. */
export function migrator<DB>(db: Kysely<DB>): Migrator {
  return new Migrator({
    db,
    provider: { getMigrations: async () => MIGRATIONS },
    migrationTableName: 'flokie_migrations',
    migrationLockTableName: 'flokie_migrations_lock',
  });
}

function check(result: MigrationResultSet): MigrationResultSet {
  if (result.error) {
    const failed = result.results?.find((r) => r.status === 'Error');
    const message = result.error instanceof Error ? result.error.message : String(result.error);
    throw new Error(`${failed ? `migration ${failed.migrationName}` : 'migrations'} failed: ${message}`);
  }
  return result;
}

export async function migrateToLatest<DB>(db: Kysely<DB>): Promise<MigrationResultSet> {
  return check(await migrator(db).migrateToLatest());
}

export async function migrateDown<DB>(db: Kysely<DB>): Promise<MigrationResultSet> {
  return check(await migrator(db).migrateDown());
}

/** Every migration this version knows, in order (backups record and check them). */
export const MIGRATION_NAMES = Object.keys(MIGRATIONS).sort();

/** Applies or reverts migrations until exactly `name` is the last applied (null: none). */
export async function migrateTo<DB>(db: Kysely<DB>, name: string | null): Promise<MigrationResultSet> {
  return check(await migrator(db).migrateTo(name ?? NO_MIGRATIONS));
}

/** The migrations applied to this database, oldest first ([] for a database without our table). */
export async function appliedMigrations<DB>(db: Kysely<DB>): Promise<string[]> {
  return (await migrator(db).getMigrations()).filter((m) => m.executedAt).map((m) => m.name);
}
