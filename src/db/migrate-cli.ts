/** `npm run migrate [-- up|down|status]`: apply, revert the last, or list migrations. */
import { loadConfig } from '../config/index.js';
import { databaseTimeouts, openDatabase } from './index.js';
import { migrateDown, migrateToLatest, migrator } from './migrator.js';

const command = process.argv[2] ?? 'up';
try {
  const config = loadConfig();
  // Migrations run without a statement timeout (an index build may take minutes); connecting is bounded.
  const handle = openDatabase({ url: config.DATABASE_URL, poolSize: 2, sslCaFile: config.DATABASE_SSL_CA_FILE || undefined, timeouts: { ...databaseTimeouts(config), statementMs: 0 } });
  try {
    if (command === 'up') {
      const { results = [] } = await migrateToLatest(handle.db);
      console.log(results.length ? results.map((r) => `applied ${r.migrationName}`).join('\n') : 'database is up to date');
    } else if (command === 'down') {
      const { results = [] } = await migrateDown(handle.db);
      console.log(results.length ? results.map((r) => `reverted ${r.migrationName}`).join('\n') : 'nothing to revert');
    } else if (command === 'status') {
      for (const m of await migrator(handle.db).getMigrations()) console.log(`${m.executedAt ? 'applied' : 'pending'}  ${m.name}`);
    } else {
      throw new Error(`unknown command "${command}" (use up, down or status)`);
    }
  } finally {
    await handle.close();
  }
} catch (e) {
  console.error(`migrate: ${(e as Error).message}`);
  process.exit(1);
}
