import { Migrator, type Kysely, type Migration, type MigrationResultSet } from 'kysely';
import * as m001 from './migrations/001_initial.js';
import * as m002 from './migrations/002_user_search_indexes.js';
import * as m003 from './migrations/003_account_security.js';

/** Migrations are imported statically so the built app and tsx run the same list. */
const MIGRATIONS: Record<string, Migration> = {
  '001_initial': m001,
  '002_user_search_indexes': m002,
  '003_account_security': m003,
};

export function migrator(db: Kysely<any>): Migrator {
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

export async function migrateToLatest(db: Kysely<any>): Promise<MigrationResultSet> {
  return check(await migrator(db).migrateToLatest());
}

export async function migrateDown(db: Kysely<any>): Promise<MigrationResultSet> {
  return check(await migrator(db).migrateDown());
}
