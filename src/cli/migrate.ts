/**
 * `flokie migrate [up|down|status]`: apply pending migrations, revert the last one, or list them.
 * The service applies pending migrations at start unless AUTO_MIGRATE=false; a deployment with a
 * separate migration role runs this instead (docs/deployment.md).
 */
import { Argument, type Command } from 'commander';
import { config, note } from './context.js';

export function registerMigrateCommand(program: Command): void {
  program
    .command('migrate')
    .description(
      'Apply pending database migrations (up, the default), revert the last one (down) or list them (status)',
    )
    .addArgument(new Argument('[action]', 'what to do').choices(['up', 'down', 'status']).default('up'))
    .action(async (action: 'up' | 'down' | 'status') => {
      const settings = config();
      const [{ databaseTimeouts, openDatabase }, { migrateDown, migrateToLatest, migrator }] = await Promise.all([
        import('../db/index.js'),
        import('../db/migrator.js'),
      ]);
      // No statement timeout here: an index build may take minutes. Connecting stays bounded.
      const handle = openDatabase({
        url: settings.DATABASE_URL,
        poolSize: 2,
        sslCaFile: settings.DATABASE_SSL_CA_FILE || undefined,
        timeouts: { ...databaseTimeouts(settings), statementMs: 0 },
      });
      try {
        if (action === 'up') {
          const { results = [] } = await migrateToLatest(handle.db);
          for (const r of results) console.log(`applied ${r.migrationName}`);
          if (results.length === 0) note('database is up to date');
        } else if (action === 'down') {
          const { results = [] } = await migrateDown(handle.db);
          for (const r of results) console.log(`reverted ${r.migrationName}`);
          if (results.length === 0) note('nothing to revert');
        } else {
          for (const m of await migrator(handle.db).getMigrations())
            console.log(`${m.executedAt ? 'applied' : 'pending'}  ${m.name}`);
        }
      } finally {
        await handle.close();
      }
    });
}
