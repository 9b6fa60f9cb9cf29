/**
 * Operations commands (docs/deployment.md; the runbook docs/incident-response.md uses them):
 *   flokie alerts test                      queue and deliver a test alert, report each channel
 *   flokie backup keygen | create | restore | verify
 *   flokie purge                            apply the retention table now, print rows deleted
 */
import { readFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Command } from 'commander';
import { CliError, config, note, withContainer } from './context.js';
import { VERSION } from '../core/version.js';

// Loaded when a command runs, not when the CLI starts: `flokie --help` stays fast (test/cli/startup.test.ts).
const backupModule = () => import('../modules/backup/backup.js');
const databaseModule = () => import('../db/index.js');

async function readIdentity(file: string): Promise<string> {
  let text: string;
  try {
    // eslint-disable-next-line security/detect-non-literal-fs-filename -- the operator's --identity file
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new CliError(`cannot read the identity file ${file}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  const { parseIdentity } = await backupModule();
  try {
    return parseIdentity(text, file);
  } catch (error) {
    throw new CliError((error as Error).message);
  }
}

/** Backup failures are one line; anything else keeps its own message. */
async function backupStep<T>(work: () => Promise<T>): Promise<T> {
  const { BackupError } = await backupModule();
  try {
    return await work();
  } catch (error) {
    if (error instanceof BackupError) throw new CliError(error.message);
    throw error;
  }
}

const tableCounts = (counts: Record<string, number>) =>
  Object.entries(counts)
    .map(([table, n]) => `${table}=${n}`)
    .join(' ');

export function registerOperationsCommands(program: Command): void {
  // alerts
  program
    .command('alerts')
    .description('Alert delivery (ALERT_WEBHOOK_URL, ALERT_EMAIL_TO)')
    .command('test')
    .description(
      'Queue a test alert and deliver it now to every configured channel; prints each outcome, exits non-zero if ' +
        'one failed (the running service then retries it)',
    )
    .action(async () => {
      await withContainer(async (c) => {
        if (!c.alerts.configured)
          throw new CliError('no alert channel: set ALERT_WEBHOOK_URL (and ALERT_WEBHOOK_SECRET) or ALERT_EMAIL_TO');
        const id = await c.alerts.enqueueTest('cli');
        const report = await c.alerts.deliverNow(id);
        if (!report)
          throw new CliError(`test alert ${id} was queued but a running service took it first; watch the receiver`);
        for (const channel of report.channels)
          console.log(`${channel.ok ? 'SENT' : 'FAIL'}  ${channel.name}: ${channel.detail}`);
        if (report.delivered) {
          note(`test alert ${id} delivered`);
        } else {
          note(`test alert ${id} not delivered everywhere; it stays queued and the running service retries it`);
          process.exitCode = 1;
        }
      });
    });

  // backup
  const backup = program.command('backup').description('Encrypted backups (age) and restores');
  backup
    .command('keygen')
    .description(
      'Print a new age identity (secret: keep it off the database host, e.g. in your password manager) and its ' +
        'public key for BACKUP_RECIPIENT',
    )
    .action(async () => {
      const { generateIdentity, identityToRecipient } = await import('age-encryption');
      const identity = await generateIdentity();
      const recipient = await identityToRecipient(identity);
      console.log(`# created: ${new Date().toISOString()}`);
      console.log(`# public key: ${recipient}`);
      console.log(identity);
      note(
        `Save the lines above as the identity file (mode 600) away from this host; set ` +
          `BACKUP_RECIPIENT=${recipient} where backups are made.`,
      );
    });

  backup
    .command('create')
    .description('Write a consistent snapshot of the database, gzipped and encrypted to BACKUP_RECIPIENT')
    .requiredOption('-o, --out <file>', 'the backup file to write (refuses to overwrite)')
    .option('--recipient <age1…>', 'encrypt to this age public key instead of BACKUP_RECIPIENT')
    .action(async (options: { out: string; recipient?: string }) => {
      const [{ openDatabase }, { createBackup }] = await Promise.all([databaseModule(), backupModule()]);
      const cfg = config();
      const handle = openDatabase({
        url: cfg.DATABASE_URL,
        poolSize: 2,
        sslCaFile: cfg.DATABASE_SSL_CA_FILE || undefined,
      });
      try {
        const started = Date.now();
        const { header, bytes } = await backupStep(() =>
          createBackup(handle.db, handle.dialect, options.out, options.recipient ?? cfg.BACKUP_RECIPIENT, VERSION),
        );
        const rows = Object.values(header.tables).reduce((sum, t) => sum + t.rows, 0);
        console.log(
          `Backup written: ${options.out} (${bytes} bytes, ${rows} rows, ${header.dialect}, migrations up to ` +
            `${header.migrations.at(-1) ?? 'none'}, ${Date.now() - started} ms)`,
        );
        note(`tables: ${tableCounts(Object.fromEntries(Object.entries(header.tables).map(([t, i]) => [t, i.rows])))}`);
      } finally {
        await handle.close();
      }
    });

  backup
    .command('restore')
    .description(
      "Restore a backup into the (empty) database of DATABASE_URL: migrates it to the backup's level, inserts " +
        'every row in one transaction, checks the counts',
    )
    .argument('<file>', 'the backup file')
    .requiredOption('-i, --identity <keyfile>', 'the age identity file (from `flokie backup keygen`)')
    .action(async (file: string, options: { identity: string }) => {
      const identity = await readIdentity(options.identity);
      const [{ openDatabase }, { restoreBackup }] = await Promise.all([databaseModule(), backupModule()]);
      const cfg = config();
      const handle = openDatabase({
        url: cfg.DATABASE_URL,
        poolSize: 2,
        sslCaFile: cfg.DATABASE_SSL_CA_FILE || undefined,
      });
      try {
        const result = await backupStep(() => restoreBackup(handle.db, handle.dialect, file, identity));
        const rows = Object.values(result.restored).reduce((a, b) => a + b, 0);
        console.log(
          `Restored ${rows} rows from ${file} (made ${result.header.created_at} on ${result.header.dialect}) into ` +
            `${handle.dialect}; migrations: ${result.migrations.join(', ')}`,
        );
        note(`tables: ${tableCounts(result.restored)}`);
      } finally {
        await handle.close();
      }
    });

  backup
    .command('verify')
    .description(
      'Restore a backup into a scratch database (created and dropped; on the DATABASE_URL server, or a temporary ' +
        'SQLite file) and check its migrations and row counts',
    )
    .argument('<file>', 'the backup file')
    .requiredOption('-i, --identity <keyfile>', 'the age identity file')
    .option('--sqlite', 'use a temporary SQLite file even when DATABASE_URL names a server', false)
    .action(async (file: string, options: { identity: string; sqlite: boolean }) => {
      const identity = await readIdentity(options.identity);
      const [{ dialectOf }, { verifyBackup }] = await Promise.all([
        databaseModule(),
        import('../modules/backup/verify.js'),
      ]);
      const cfg = config();
      const server = options.sqlite || dialectOf(cfg.DATABASE_URL) === 'sqlite' ? null : cfg.DATABASE_URL;
      // eslint-disable-next-line security/detect-non-literal-fs-filename -- the operator's backup file
      const size = (await stat(file).catch(() => null))?.size;
      const result = await backupStep(() =>
        verifyBackup(file, identity, server, cfg.DATABASE_SSL_CA_FILE || undefined),
      );
      const rows = Object.values(result.restored).reduce((a, b) => a + b, 0);
      console.log(
        `OK  ${file}${size ? ` (${size} bytes)` : ''}: made ${result.header.created_at} by Flokie ` +
          `${result.header.flokie_version} on ${result.header.dialect}`,
      );
      console.log(`OK  migrations: ${result.migrations.join(', ')}`);
      console.log(
        `OK  ${rows} rows restored into ${result.scratch}, every table's count as in the header: ` +
          `${tableCounts(result.restored)}`,
      );
    });

  // retention
  program
    .command('purge')
    .description(
      'Delete now what the retention settings no longer keep (the service does this every 10 minutes); prints rows ' +
        'deleted per table',
    )
    .action(async () => {
      const { RETENTION } = await import('../modules/retention/retention.js');
      await withContainer(async (c) => {
        const deleted = await c.purgeStale();
        for (const policy of RETENTION)
          console.log(
            `${policy.table.padEnd(22)} ${String(deleted[policy.table] ?? 'failed').padStart(8)}  kept: ` +
              `${policy.describe(c.config)}`,
          );
      });
    });
}

/** `flokie check --url`: the same PASS/WARN/FAIL lines, for a deployment probed from outside. */
export async function printRemoteChecks(options: {
  url?: string;
  httpUrl?: string;
  insecure: boolean;
  ca?: string;
  burst: number;
  json: boolean;
}): Promise<void> {
  const [{ runRemoteChecks }, { formatResult }] = await Promise.all([
    import('./remote-check.js'),
    import('./check.js'),
  ]);
  let results;
  try {
    results = await runRemoteChecks({
      url: options.url!,
      httpUrl: options.httpUrl,
      insecure: options.insecure,
      caFile: options.ca,
      burst: options.burst,
    });
  } catch (error) {
    throw new CliError((error as Error).message);
  }
  for (const r of results) console.log(options.json ? JSON.stringify(r) : formatResult(r));
  const failed = results.filter((r) => r.status === 'fail').length;
  const warned = results.filter((r) => r.status === 'warn').length;
  note(
    `${options.url}: ${results.length} checks: ` +
      `${results.length - failed - warned} pass, ${warned} warn, ${failed} fail`,
  );
  if (failed) process.exitCode = 1;
}
