import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, MysqlDialect, PostgresDialect, SqliteDialect, sql, type Dialect, type SqliteDatabase } from 'kysely';
import { createPool as createMysqlPool } from 'mysql2';
import pg from 'pg';
import type { Database } from './types.js';

export type { Database } from './types.js';
export type DialectName = 'sqlite' | 'postgres' | 'mysql';

export interface DatabaseHandle {
  db: Kysely<Database>;
  dialect: DialectName;
  /** Pool figures for /api/health/detailed. */
  poolStats(): Record<string, number>;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  url: string;
  poolSize?: number;
  sslCaFile?: string;
  cwd?: string;
}

// BIGINT (epoch-ms timestamps, COUNT(*)) as numbers: all our values fit in 2^53.
pg.types.setTypeParser(20, (v) => Number(v));

export function dialectOf(url: string): DialectName {
  if (url.startsWith('sqlite:')) return 'sqlite';
  if (/^postgres(ql)?:/.test(url)) return 'postgres';
  return 'mysql';
}

/** pg treats sslmode=require as verify-full; we honour libpq's meaning of each mode. */
export function postgresSsl(url: URL, caFile?: string): false | { rejectUnauthorized: boolean; ca?: string } {
  const mode = url.searchParams.get('sslmode') ?? 'disable';
  url.searchParams.delete('sslmode');
  // eslint-disable-next-line security/detect-non-literal-fs-filename -- CA file named by the operator (DATABASE_SSL_CA_FILE)
  const ca = caFile ? readFileSync(caFile, 'utf8') : undefined;
  switch (mode) {
    case 'disable':
    case 'allow':
    case 'prefer':
      return false;
    case 'require':
      // libpq: encrypt, but verify the certificate only when a CA was given.
      return ca ? { rejectUnauthorized: true, ca } : { rejectUnauthorized: false };
    case 'verify-ca':
    case 'verify-full':
      return ca ? { rejectUnauthorized: true, ca } : { rejectUnauthorized: true };
    default:
      throw new Error(`DATABASE_URL sslmode "${mode}" is not one of disable, require, verify-ca, verify-full`);
  }
}

const STATEMENT_CACHE_SIZE = 500;

/**
 * better-sqlite3 for Kysely, with prepared statements reused by their SQL text: Kysely's SQLite
 * driver prepares every query anew, which costs more than running a simple indexed one. A
 * statement still being iterated (a streamed query) is busy, so a second user gets a fresh one.
 */
function withStatementCache(database: SQLite.Database): SqliteDatabase {
  const statements = new Map<string, SQLite.Statement>();
  return {
    close: () => database.close(),
    prepare(sqlText: string) {
      const cached = statements.get(sqlText);
      if (cached && !cached.busy) return cached;
      const statement = database.prepare(sqlText);
      if (statements.size >= STATEMENT_CACHE_SIZE) statements.delete(statements.keys().next().value!);
      statements.set(sqlText, statement);
      return statement;
    },
  };
}

export function openDatabase(options: DatabaseOptions): DatabaseHandle {
  const kind = dialectOf(options.url);
  const poolSize = options.poolSize ?? 10;
  let dialect: Dialect;
  let poolStats: () => Record<string, number> = () => ({});

  if (kind === 'sqlite') {
    const path = options.url.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '');
    const file = path === ':memory:' || isAbsolute(path) ? path : resolve(options.cwd ?? process.cwd(), path);
    // eslint-disable-next-line security/detect-non-literal-fs-filename -- database folder from DATABASE_URL
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
    const database = new SQLite(file);
    database.pragma('journal_mode = WAL');
    database.pragma('foreign_keys = ON');
    database.pragma('busy_timeout = 5000');
    // Acknowledged writes survive a crash of the process or the machine.
    database.pragma('synchronous = FULL');
    dialect = new SqliteDialect({ database: withStatementCache(database) });
    poolStats = () => ({ size: 1 });
  } else if (kind === 'postgres') {
    const url = new URL(options.url);
    const ssl = postgresSsl(url, options.sslCaFile);
    const pool = new pg.Pool({ connectionString: url.toString(), ssl, max: poolSize, idleTimeoutMillis: 30_000 });
    // An idle client losing its connection must not crash the process.
    pool.on('error', () => {});
    dialect = new PostgresDialect({ pool });
    poolStats = () => ({ size: poolSize, total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount });
  } else {
    const url = new URL(options.url.replace(/^mariadb:/, 'mysql:'));
    const wantsTls = ['true', 'required', 'require'].includes(url.searchParams.get('ssl') ?? '');
    url.searchParams.delete('ssl');
    const pool = createMysqlPool({
      uri: url.toString(),
      connectionLimit: poolSize,
      supportBigNumbers: true,
      bigNumberStrings: false,
      // eslint-disable-next-line security/detect-non-literal-fs-filename -- CA file named by the operator
      ssl: wantsTls ? { rejectUnauthorized: true, ca: options.sslCaFile ? readFileSync(options.sslCaFile, 'utf8') : undefined } : undefined,
      timezone: 'Z',
    });
    dialect = new MysqlDialect({ pool });
    poolStats = () => ({ size: poolSize });
  }

  const db = new Kysely<Database>({ dialect });
  return { db, dialect: kind, poolStats: () => poolStats(), close: () => db.destroy() };
}

/** Round-trip time of a trivial query, for health checks. */
export async function pingDatabase(db: Kysely<Database>): Promise<number> {
  const started = performance.now();
  await sql`select 1`.execute(db);
  return Math.round((performance.now() - started) * 100) / 100;
}

/** True when a write failed on a UNIQUE or PRIMARY KEY constraint, on any dialect. */
export function isUniqueViolation(error: unknown): boolean {
  const e = error as { code?: string; errno?: number } | null;
  return !!e && (e.code === '23505' || e.code === 'ER_DUP_ENTRY' || e.errno === 1062 || /^SQLITE_CONSTRAINT_(UNIQUE|PRIMARYKEY)$/.test(e.code ?? ''));
}

/** True when the database aborted a transaction to break a deadlock or serialization conflict. */
export function isTransientConflict(error: unknown): boolean {
  const e = error as { code?: string; errno?: number } | null;
  return !!e && (e.code === '40P01' || e.code === '40001' || e.code === 'ER_LOCK_DEADLOCK' || e.errno === 1213 || e.code === 'SQLITE_BUSY');
}

/** Runs a short transaction, retrying it a few times when the database aborts it as a deadlock victim. */
export async function withConflictRetry<T>(work: () => Promise<T>, attempts = 4): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      if (attempt >= attempts || !isTransientConflict(error)) throw error;
      await new Promise((resolve) => setTimeout(resolve, 10 * attempt + Math.random() * 20));
    }
  }
}
