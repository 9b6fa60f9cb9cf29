/**
 * Encrypted logical backups (docs/deployment.md, "Backups"; the runbook's recovery section).
 *
 * A backup is one file: age(gzip(JSON lines)), encrypted to BACKUP_RECIPIENT, so the host that
 * makes backups cannot read them. The first line is a header (format version, Flokie version,
 * dialect, the migrations applied, per-table row counts and columns), then every row of every
 * table as `["table",{row}]`, parents before children, and an end line with the total. All of it
 * is read inside one consistent snapshot: a REPEATABLE READ, READ ONLY transaction (PostgreSQL,
 * MariaDB/MySQL) or one read transaction (SQLite in WAL mode), so the counts and the rows agree.
 * Timestamps are epoch-ms numbers and flags 0/1 on every database, so a backup restores into any
 * of the three.
 *
 * Restore goes only into an empty database: it migrates it to the backup's migration level,
 * inserts every row in one transaction and checks each table's count before committing. age
 * authenticates every 64 KiB chunk and the end of the file, so a modified or truncated file fails
 * (before the commit: nothing is half-restored), as does a wrong key.
 */
import { createReadStream, createWriteStream, existsSync, renameSync, rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import { Decrypter, Encrypter } from 'age-encryption';
import { sql, type Kysely } from 'kysely';
import type { DialectName } from '../../db/index.js';
import { appliedMigrations, MIGRATION_NAMES, migrateTo } from '../../db/migrator.js';

export const BACKUP_FORMAT = 'flokie-backup';
export const BACKUP_FORMAT_VERSION = 1;

export class BackupError extends Error {}

/** Parents before children; tables added by later migrations follow in name order. */
const TABLE_ORDER = [
  'users',
  'password_history',
  'sessions',
  'one_time_tokens',
  'login_attempts',
  'revoked_tokens',
  'security_events',
  'change_log',
  'app_settings',
  'alert_outbox',
];
/** The single-column primary key of each known table: rows are read in key order, a page at a time. */
const PRIMARY_KEY: Record<string, string> = {
  users: 'id',
  password_history: 'id',
  sessions: 'id',
  one_time_tokens: 'token_hash',
  login_attempts: 'key',
  revoked_tokens: 'jti',
  security_events: 'id',
  change_log: 'id',
  app_settings: 'key',
  alert_outbox: 'id',
};
/** Tables with a generated id whose PostgreSQL sequence must continue after the restored rows. */
const SERIAL_TABLES = ['password_history', 'security_events', 'change_log', 'alert_outbox'];
const PAGE = 2000;

export interface BackupHeader {
  format: typeof BACKUP_FORMAT;
  version: number;
  flokie_version: string;
  created_at: string;
  dialect: DialectName;
  migrations: string[];
  tables: Record<string, { rows: number; columns: string[] }>;
}

/** Backups copy whatever tables the migrations made, by name: rows are plain column maps here. */
type Db = Kysely<Record<string, Record<string, unknown>>>;

/** The same connection seen that way (Kysely<Database> names its tables, so the view is a cast). */
const byTableName = <DB>(db: Kysely<DB>): Db => db as unknown as Db;

/** The application's tables in restore order (the migration bookkeeping tables excluded). */
async function tablesOf(db: Db): Promise<{ name: string; columns: string[] }[]> {
  const tables = (await db.introspection.getTables()).filter(
    (t) => !t.isView && !t.name.startsWith('flokie_migrations'),
  );
  const rank = (name: string) => (TABLE_ORDER.includes(name) ? TABLE_ORDER.indexOf(name) : TABLE_ORDER.length);
  return tables
    .sort((a, b) => rank(a.name) - rank(b.name) || a.name.localeCompare(b.name))
    .map((t) => ({ name: t.name, columns: t.columns.map((c) => c.name) }));
}

async function countRows(db: Db, table: string): Promise<number> {
  const row = await db
    .selectFrom(table)
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirst();
  return Number(row?.n ?? 0);
}

/** Every row of a table, a page at a time, in a stable order. */
async function* readTable(db: Db, table: string, columns: string[]): AsyncGenerator<Record<string, unknown>> {
  const key = PRIMARY_KEY[table];
  if (key) {
    let last: unknown = undefined;
    for (;;) {
      let query = db.selectFrom(table).selectAll().orderBy(key).limit(PAGE);
      if (last !== undefined) query = query.where(key, '>', last);
      const rows = await query.execute();
      for (const row of rows) yield row;
      if (rows.length < PAGE) return;
      last = rows[rows.length - 1]![key];
    }
  }
  // A table this version does not know: page by offset, ordered by every column (still one snapshot).
  for (let offset = 0; ; offset += PAGE) {
    let query = db.selectFrom(table).selectAll();
    for (const column of columns) query = query.orderBy(column);
    const rows = await query.limit(PAGE).offset(offset).execute();
    for (const row of rows) yield row;
    if (rows.length < PAGE) return;
  }
}

/** Runs `work` inside one consistent, read-only snapshot of the database. */
async function inSnapshot<T>(db: Db, dialect: DialectName, work: (trx: Db) => Promise<T>): Promise<T> {
  if (dialect === 'sqlite') return db.transaction().execute(work);
  return db.transaction().setIsolationLevel('repeatable read').setAccessMode('read only').execute(work);
}

export interface CreateResult {
  header: BackupHeader;
  bytes: number;
}

/**
 * Writes an encrypted backup of `db` to `file` (through `file`.partial, renamed at the end, so a
 * failed run never leaves a file that looks like a backup). Refuses to overwrite.
 */
export async function createBackup<DB>(
  database: Kysely<DB>,
  dialect: DialectName,
  file: string,
  recipient: string,
  flokieVersion: string,
): Promise<CreateResult> {
  const db = byTableName(database);
  if (!recipient)
    throw new BackupError(
      'BACKUP_RECIPIENT is not set: `flokie backup keygen` makes a key pair; keep the identity off this host',
    );
  // eslint-disable-next-line security/detect-non-literal-fs-filename -- the operator's --out path
  if (existsSync(file)) throw new BackupError(`${file} already exists; choose a new name`);
  const encrypter = new Encrypter();
  try {
    encrypter.addRecipient(recipient);
  } catch (error) {
    throw new BackupError(`BACKUP_RECIPIENT is not a usable age recipient: ${(error as Error).message}`);
  }
  const partial = `${file}.partial`;
  try {
    return await inSnapshot(db, dialect, async (trx) => {
      const tables = await tablesOf(trx);
      const header: BackupHeader = {
        format: BACKUP_FORMAT,
        version: BACKUP_FORMAT_VERSION,
        flokie_version: flokieVersion,
        created_at: new Date().toISOString(),
        dialect,
        migrations: await appliedMigrations(trx),
        tables: {},
      };
      for (const t of tables) header.tables[t.name] = { rows: await countRows(trx, t.name), columns: t.columns };

      async function* lines(): AsyncGenerator<string> {
        yield `${JSON.stringify(header)}\n`;
        let total = 0;
        for (const t of tables) {
          let count = 0;
          for await (const row of readTable(trx, t.name, t.columns)) {
            count++;
            yield `${JSON.stringify([t.name, row])}\n`;
          }
          // Cannot differ inside one snapshot; if it does, this is no backup.
          if (count !== header.tables[t.name]!.rows)
            throw new BackupError(`${t.name}: read ${count} rows, counted ${header.tables[t.name]!.rows}`);
          total += count;
        }
        yield `${JSON.stringify({ end: true, rows: total })}\n`;
      }

      // .pipe() does not pass errors on: a failed read (a lost connection, counts that disagree) must fail the
      // backup, not leave the encryption waiting forever for the end of its input.
      const source = Readable.from(lines());
      const gzip = createGzip();
      source.once('error', (error) => gzip.destroy(error));
      source.pipe(gzip);
      const encrypted = await encrypter.encrypt(Readable.toWeb(gzip) as ReadableStream<Uint8Array>);
      // eslint-disable-next-line security/detect-non-literal-fs-filename -- the operator's --out path
      const out = createWriteStream(partial, { mode: 0o600, flags: 'wx' });
      await pipeline(Readable.fromWeb(encrypted as import('node:stream/web').ReadableStream<Uint8Array>), out);
      // eslint-disable-next-line security/detect-non-literal-fs-filename -- idem
      renameSync(partial, file);
      return { header, bytes: out.bytesWritten };
    });
  } catch (error) {
    rmSync(partial, { force: true });
    throw error;
  }
}

/** The identity in an age key file (age-keygen's format: comment lines, then AGE-SECRET-KEY-1…). */
export function parseIdentity(text: string, file: string): string {
  const line = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .find((l) => l.startsWith('AGE-SECRET-KEY-'));
  if (!line) throw new BackupError(`${file} holds no age identity (a line starting AGE-SECRET-KEY-)`);
  return line;
}

/** Decrypted, decompressed lines of a backup file; errors become one clear BackupError. */
async function openBackup(
  file: string,
  identity: string,
): Promise<{ header: BackupHeader; rows: AsyncIterator<string> }> {
  // eslint-disable-next-line security/detect-non-literal-fs-filename -- the operator's backup file
  if (!existsSync(file)) throw new BackupError(`${file} does not exist`);
  const decrypter = new Decrypter();
  try {
    decrypter.addIdentity(identity);
  } catch {
    throw new BackupError('the identity file does not hold a valid age identity');
  }
  let plain: ReadableStream<Uint8Array>;
  try {
    // eslint-disable-next-line security/detect-non-literal-fs-filename -- idem
    plain = await decrypter.decrypt(Readable.toWeb(createReadStream(file)) as ReadableStream<Uint8Array>);
  } catch (error) {
    throw explain(error);
  }
  const gunzip = createGunzip();
  // Decryption and decompression errors (a modified or cut file) reject this; success never settles it.
  const failure = pipeline(
    Readable.fromWeb(plain as import('node:stream/web').ReadableStream<Uint8Array>),
    gunzip,
  ).then(
    () => new Promise<never>(() => {}),
    (error: unknown) => {
      throw explain(error);
    },
  );
  failure.catch(() => {});
  const lines = createInterface({ input: gunzip, crlfDelay: Infinity })[Symbol.asyncIterator]();
  const next = () => Promise.race([lines.next(), failure]);
  const first = await next().catch((error: unknown) => {
    throw explain(error);
  });
  let header: BackupHeader;
  try {
    header = JSON.parse(first.done ? '' : first.value) as BackupHeader;
  } catch {
    throw new BackupError('not a Flokie backup (no header)');
  }
  if (header?.format !== BACKUP_FORMAT || typeof header.tables !== 'object' || !Array.isArray(header.migrations))
    throw new BackupError('not a Flokie backup (unknown header)');
  if (header.version > BACKUP_FORMAT_VERSION)
    throw new BackupError(
      `backup format ${header.version} is newer than this Flokie understands (${BACKUP_FORMAT_VERSION})`,
    );
  return {
    header,
    rows: {
      next: () =>
        next().catch((error: unknown) => {
          throw explain(error);
        }),
    },
  };
}

/** What age, the gzip stream or the JSON parser say about a file that was cut short or modified. */
const DAMAGED = [
  /invalid tag|unexpected end|truncat|stream ended|premature|incorrect header check/i,
  /unexpected EOF|invalid (header|version|stanza)|failed to parse/i,
];

/** One line for what went wrong while reading a backup. */
function explain(error: unknown): BackupError {
  if (error instanceof BackupError) return error;
  const message = String((error as Error)?.message ?? error);
  if (/no identity matched/i.test(message))
    return new BackupError('the identity does not open this backup (it was encrypted to another recipient)');
  if (DAMAGED.some((pattern) => pattern.test(message)) || (error as { code?: string })?.code?.startsWith('Z_')) {
    return new BackupError(
      `the backup file is damaged, truncated or was modified (${message.slice(0, 80)}); nothing was restored`,
    );
  }
  return new BackupError(`cannot read the backup: ${message.slice(0, 200)}`);
}

export interface RestoreResult {
  header: BackupHeader;
  restored: Record<string, number>;
  migrations: string[];
}

/**
 * Restores a backup into the empty database `db`: refuses a database with any row, migrates it to
 * the backup's level, inserts everything in one transaction, checks the counts, then commits.
 */
export async function restoreBackup<DB>(
  database: Kysely<DB>,
  dialect: DialectName,
  file: string,
  identity: string,
): Promise<RestoreResult> {
  const db = byTableName(database);
  const { header, rows } = await openBackup(file, identity);
  const unknown = header.migrations.filter((m) => !MIGRATION_NAMES.includes(m));
  if (unknown.length)
    throw new BackupError(
      `the backup has migrations this version does not know (${unknown.join(', ')}); restore with the Flokie version ` +
        `that made it (${header.flokie_version}) or newer`,
    );
  const expected = MIGRATION_NAMES.slice(0, header.migrations.length);
  if (expected.join() !== header.migrations.join())
    throw new BackupError(
      `the backup's migrations (${header.migrations.join(', ')}) are not a prefix of this version's ` +
        `(${MIGRATION_NAMES.join(', ')})`,
    );

  for (const table of await tablesOf(db)) {
    const n = await countRows(db, table.name);
    if (n > 0)
      throw new BackupError(
        `the target database is not empty (${table.name} has ${n} row${n === 1 ? '' : 's'}); restore only into a ` +
          `new, empty database`,
      );
  }
  await migrateTo(db, header.migrations.at(-1) ?? null);
  const columnsNow = new Map((await tablesOf(db)).map((t) => [t.name, new Set(t.columns)]));
  for (const [table, info] of Object.entries(header.tables)) {
    const have = columnsNow.get(table);
    if (!have)
      throw new BackupError(
        `the backup has a table ${table} that migrations ${header.migrations.at(-1)} do not create`,
      );
    const missing = info.columns.filter((c) => !have.has(c));
    if (missing.length) throw new BackupError(`${table}: columns ${missing.join(', ')} do not exist after migrating`);
  }

  const restored: Record<string, number> = Object.fromEntries(Object.keys(header.tables).map((t) => [t, 0]));
  await db.transaction().execute(async (trx) => {
    // Order already puts parents first; this also covers tables added later in name order.
    if (dialect === 'sqlite') await sql`PRAGMA defer_foreign_keys = ON`.execute(trx);
    if (dialect === 'mysql') await sql`SET FOREIGN_KEY_CHECKS = 0`.execute(trx);
    let batch: Record<string, unknown>[] = [];
    let batchTable = '';
    const flush = async () => {
      if (batch.length) await trx.insertInto(batchTable).values(batch).execute();
      batch = [];
    };
    let end: { end: true; rows: number } | null = null;
    for (;;) {
      const next = await rows.next();
      if (next.done) break;
      if (end) throw new BackupError('the backup has data after its end line');
      let parsed: unknown;
      try {
        parsed = JSON.parse(next.value as string);
      } catch {
        throw new BackupError('the backup has a malformed line');
      }
      if (!Array.isArray(parsed)) {
        end = parsed as { end: true; rows: number };
        continue;
      }
      const [table, row] = parsed as [string, Record<string, unknown>];
      if (!(table in header.tables) || typeof row !== 'object' || row === null)
        throw new BackupError('the backup has a row of a table its header does not list');
      if (table !== batchTable || batch.length >= 200) {
        await flush();
        batchTable = table;
      }
      batch.push(row);
      restored[table]! += 1;
    }
    await flush();
    if (!end?.end) throw new BackupError('the backup ends before its end line (truncated); nothing was restored');
    for (const [table, info] of Object.entries(header.tables)) {
      const n = await countRows(trx, table);
      if (n !== info.rows)
        throw new BackupError(
          `${table}: ${n} rows after restoring, the backup says ${info.rows}; nothing was restored`,
        );
    }
    if (dialect === 'mysql') await sql`SET FOREIGN_KEY_CHECKS = 1`.execute(trx);
    if (dialect === 'postgres') {
      for (const table of SERIAL_TABLES.filter((t) => t in header.tables)) {
        const rows = sql.table(table);
        await sql`SELECT setval(pg_get_serial_sequence(${table}, 'id'),
          GREATEST((SELECT COALESCE(MAX(id), 0) FROM ${rows}), 1), (SELECT COUNT(*) > 0 FROM ${rows}))`.execute(trx);
      }
    }
  });
  return { header, restored, migrations: await appliedMigrations(db) };
}
