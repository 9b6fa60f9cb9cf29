import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import SQLite from 'better-sqlite3';
import {
  Kysely,
  MysqlDialect,
  PostgresDialect,
  SqliteDialect,
  sql,
  type Dialect,
  type MysqlPool,
  type PostgresPool,
  type SqliteDatabase,
} from 'kysely';
import {
  createPool as createMysqlPool,
  type Pool as MysqlDriverPool,
  type PoolConnection as MysqlDriverConnection,
} from 'mysql2';
import pg from 'pg';
import { SETTINGS } from '../config/settings.js';
import { DatabaseOutage, POOL_TIMEOUT_CODE } from './availability.js';
import type { Database } from './types.js';

export type { Database } from './types.js';
export { DATABASE_RETRY_AFTER_SECONDS, DatabaseOutage, isDatabaseUnavailable } from './availability.js';
export type DialectName = 'sqlite' | 'postgres' | 'mysql';

export interface DatabaseHandle {
  db: Kysely<Database>;
  dialect: DialectName;
  /** Logs an outage once when it starts and once when it ends (src/db/availability.ts). */
  outage: DatabaseOutage;
  /** Pool figures for /api/health/detailed. */
  poolStats(): Record<string, number>;
  /**
   * Runs long work (migrations: an index build may take minutes) without the statement timeout:
   * on a connection of its own for PostgreSQL and MySQL; SQLite has no statement timeout.
   */
  withoutStatementTimeout<T>(work: (db: Kysely<Database>) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** Every wait on the database has a bound (docs/security.md, "When the database misbehaves"). */
export interface DatabaseTimeouts {
  /** Opening a connection (PostgreSQL, MySQL). */
  connectMs: number;
  /**
   * One statement, enforced by the server; the client gives up CLIENT_GRACE_MS later. 0: none
   * (migrations only; the setting allows 100 ms and up).
   */
  statementMs: number;
  /** Waiting for a free pooled connection (PostgreSQL, MySQL). */
  poolMs: number;
  /** SQLite: waiting for another process's write lock. */
  busyMs: number;
}

/** How much longer than the server's statement timeout the client waits for an answer. */
export const CLIENT_GRACE_MS = 1000;

export function databaseTimeouts(config: {
  DATABASE_CONNECT_TIMEOUT_MS: number;
  DATABASE_STATEMENT_TIMEOUT_MS: number;
  DATABASE_POOL_TIMEOUT_MS: number;
  DATABASE_BUSY_TIMEOUT_MS: number;
}): DatabaseTimeouts {
  return {
    connectMs: config.DATABASE_CONNECT_TIMEOUT_MS,
    statementMs: config.DATABASE_STATEMENT_TIMEOUT_MS,
    poolMs: config.DATABASE_POOL_TIMEOUT_MS,
    busyMs: config.DATABASE_BUSY_TIMEOUT_MS,
  };
}

/** The settings' defaults, for callers without a config (tests, tools). */
const DEFAULT_TIMEOUTS: DatabaseTimeouts = databaseTimeouts({
  DATABASE_CONNECT_TIMEOUT_MS: SETTINGS.DATABASE_CONNECT_TIMEOUT_MS.parse(SETTINGS.DATABASE_CONNECT_TIMEOUT_MS.default),
  DATABASE_STATEMENT_TIMEOUT_MS: SETTINGS.DATABASE_STATEMENT_TIMEOUT_MS.parse(
    SETTINGS.DATABASE_STATEMENT_TIMEOUT_MS.default,
  ),
  DATABASE_POOL_TIMEOUT_MS: SETTINGS.DATABASE_POOL_TIMEOUT_MS.parse(SETTINGS.DATABASE_POOL_TIMEOUT_MS.default),
  DATABASE_BUSY_TIMEOUT_MS: SETTINGS.DATABASE_BUSY_TIMEOUT_MS.parse(SETTINGS.DATABASE_BUSY_TIMEOUT_MS.default),
});

export interface DatabaseOptions {
  url: string;
  poolSize?: number;
  sslCaFile?: string;
  cwd?: string;
  /** Default: the settings' defaults. */
  timeouts?: DatabaseTimeouts;
  /** Where an outage is reported (warn); none: not logged. */
  log?: { warn(object: object, message: string): void };
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
  // eslint-disable-next-line security/detect-non-literal-fs-filename -- DATABASE_SSL_CA_FILE, set by the operator
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

/**
 * Creates the SQLite file readable and writable by its owner only (0600): it holds password
 * hashes. SQLite gives the -wal and -shm files it creates beside it the same mode.
 */
function createPrivateFile(file: string): void {
  try {
    // eslint-disable-next-line security/detect-non-literal-fs-filename -- database file from DATABASE_URL
    closeSync(openSync(file, 'wx', 0o600));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
}

/**
 * node-postgres with every wait bounded: the pool's wait for a client (connectionTimeoutMillis),
 * connecting, the server's statement_timeout and the client's own query_timeout, which also
 * covers a silent network where the server's answer never arrives. A client whose query failed
 * that way is discarded on release, never handed out again in an unknown state.
 */
function boundedPostgresPool(
  url: URL,
  ssl: ReturnType<typeof postgresSsl>,
  poolSize: number,
  t: DatabaseTimeouts,
  onFailure: (error: unknown) => void,
) {
  class BoundedClient extends pg.Client {
    constructor(config: pg.ClientConfig) {
      super({ ...config, connectionTimeoutMillis: t.connectMs });
    }
  }
  const pool = new pg.Pool({
    Client: BoundedClient as unknown as new () => pg.ClientBase,
    connectionString: url.toString(),
    ssl,
    max: poolSize,
    idleTimeoutMillis: 30_000,
    connectionTimeoutMillis: t.poolMs,
    ...(t.statementMs > 0 ? { statement_timeout: t.statementMs, query_timeout: t.statementMs + CLIENT_GRACE_MS } : {}),
    // Probes idle connections, so one cut while idle is noticed before it is handed out.
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
  });
  // An idle client losing its connection must not crash the process.
  pool.on('error', () => {});
  const broken = new WeakSet<pg.PoolClient>();
  const watched = new WeakSet<pg.PoolClient>();
  const kyselyPool: PostgresPool = {
    async connect() {
      let client: pg.PoolClient;
      try {
        client = await pool.connect();
      } catch (error) {
        onFailure(error);
        throw error;
      }
      if (!watched.has(client)) {
        watched.add(client);
        const query = client.query.bind(client) as (...args: unknown[]) => unknown;
        (client as { query: unknown }).query = (...args: unknown[]) => {
          const result = query(...args);
          if (result instanceof Promise) {
            result.catch((error: unknown) => {
              onFailure(error);
              // An error the server sent leaves the connection usable; anything else (a timeout, a cut) does not.
              if (!(error instanceof pg.DatabaseError)) broken.add(client);
            });
          }
          return result;
        };
      }
      // pg-pool gives each checkout a fresh release(); a truthy argument removes the client.
      const release = client.release;
      client.release = (destroy?: boolean | Error) => release(destroy || broken.has(client) ? true : undefined);
      return client as never;
    },
    end: () => pool.end(),
  };
  return { pool, kyselyPool };
}

/**
 * mysql2 with every wait bounded: connectTimeout, a client-side timeout on each query, the
 * server's max_statement_time (MariaDB; max_execution_time on MySQL), and a bound on waiting for
 * a pooled connection, which mysql2 does not have. A connection whose query failed on the client
 * side is destroyed on release.
 */
function boundedMysqlPool(pool: MysqlDriverPool, t: DatabaseTimeouts, onFailure: (error: unknown) => void): MysqlPool {
  const clientTimeout = t.statementMs > 0 ? t.statementMs + CLIENT_GRACE_MS : undefined;
  if (t.statementMs > 0) {
    pool.on('connection', (connection) => {
      // Sent before anything else on the connection; MySQL has no max_statement_time, so fall back.
      connection.query(
        { sql: `SET SESSION max_statement_time = ${t.statementMs / 1000}`, timeout: clientTimeout },
        (error: { errno?: number } | null) => {
          if (error?.errno === 1193)
            connection.query(
              { sql: `SET SESSION max_execution_time = ${t.statementMs}`, timeout: clientTimeout },
              () => {},
            );
        },
      );
    });
  }
  const broken = new WeakSet<MysqlDriverConnection>();
  const watched = new WeakSet<MysqlDriverConnection>();
  function watch(connection: MysqlDriverConnection): MysqlDriverConnection {
    if (watched.has(connection)) return connection;
    watched.add(connection);
    const query = connection.query.bind(connection) as (...args: unknown[]) => unknown;
    const release = connection.release.bind(connection);
    const failed = (error: { fatal?: boolean; code?: string }) => {
      onFailure(error);
      if (error.fatal || error.code === 'PROTOCOL_SEQUENCE_TIMEOUT') broken.add(connection);
    };
    Object.assign(connection, {
      query(sqlText: string, parameters: unknown[], callback?: (error: unknown, result: unknown) => void) {
        const options = { sql: sqlText, timeout: clientTimeout };
        if (!callback) return query(options, parameters);
        return query(options, parameters, (error: unknown, result: unknown) => {
          if (error) failed(error as { fatal?: boolean; code?: string });
          callback(error, result);
        });
      },
      release() {
        if (broken.has(connection)) connection.destroy();
        else release();
      },
    });
    return connection;
  }
  // Requests mysql2 has not answered yet (connecting, or queued for a connection).
  const inFlight = new Set<Promise<void>>();
  return {
    getConnection(callback) {
      let settled = false;
      let answered!: () => void;
      const answer = new Promise<void>((resolve) => (answered = resolve));
      inFlight.add(answer);
      void answer.then(() => inFlight.delete(answer));
      const timer = setTimeout(() => {
        settled = true;
        const error = Object.assign(new Error(`no database connection free within ${t.poolMs} ms`), {
          code: POOL_TIMEOUT_CODE,
        });
        onFailure(error);
        callback(error, undefined as never);
      }, t.poolMs);
      pool.getConnection((error, connection) => {
        clearTimeout(timer);
        answered();
        if (settled) {
          // Too late for the caller who asked; give it back.
          if (!error) connection.release();
          return;
        }
        settled = true;
        if (error) {
          onFailure(error);
          return callback(error, connection as never);
        }
        callback(null, watch(connection) as never);
      });
    },
    end(callback) {
      // A connection still being opened when the pool ends reports its failure to nobody (an
      // uncaught error in mysql2): wait for those first, at most one connect timeout.
      const bound = new Promise<void>((resolve) => setTimeout(resolve, t.connectMs + 100).unref());
      void Promise.race([Promise.all(inFlight), bound]).then(() => pool.end(callback));
    },
  };
}

export function openDatabase(options: DatabaseOptions): DatabaseHandle {
  const kind = dialectOf(options.url);
  const poolSize = options.poolSize ?? 10;
  const timeouts = options.timeouts ?? DEFAULT_TIMEOUTS;
  let dialect: Dialect;
  let poolStats: () => Record<string, number> = () => ({});
  // Every failure the pools see reaches the outage log (created below, before any query can run).
  const onFailure = (error: unknown) => void outage.note(error);

  if (kind === 'sqlite') {
    const path = options.url.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '');
    const file = path === ':memory:' || isAbsolute(path) ? path : resolve(options.cwd ?? process.cwd(), path);
    if (file !== ':memory:') {
      // eslint-disable-next-line security/detect-non-literal-fs-filename -- database folder from DATABASE_URL
      mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
      createPrivateFile(file);
    }
    const database = new SQLite(file);
    database.pragma('journal_mode = WAL');
    database.pragma('foreign_keys = ON');
    database.pragma(`busy_timeout = ${Math.floor(timeouts.busyMs)}`);
    // Acknowledged writes survive a crash of the process or the machine.
    database.pragma('synchronous = FULL');
    dialect = new SqliteDialect({ database: withStatementCache(database) });
    poolStats = () => ({ size: 1 });
  } else if (kind === 'postgres') {
    const url = new URL(options.url);
    const ssl = postgresSsl(url, options.sslCaFile);
    const { pool, kyselyPool } = boundedPostgresPool(url, ssl, poolSize, timeouts, onFailure);
    dialect = new PostgresDialect({ pool: kyselyPool });
    poolStats = () => ({ size: poolSize, total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount });
  } else {
    const url = new URL(options.url.replace(/^mariadb:/, 'mysql:'));
    const wantsTls = ['true', 'required', 'require'].includes(url.searchParams.get('ssl') ?? '');
    url.searchParams.delete('ssl');
    const pool = createMysqlPool({
      uri: url.toString(),
      connectionLimit: poolSize,
      connectTimeout: timeouts.connectMs,
      supportBigNumbers: true,
      bigNumberStrings: false,
      ssl: wantsTls
        ? {
            rejectUnauthorized: true,
            // eslint-disable-next-line security/detect-non-literal-fs-filename -- CA file named by the operator
            ca: options.sslCaFile ? readFileSync(options.sslCaFile, 'utf8') : undefined,
          }
        : undefined,
      timezone: 'Z',
    });
    dialect = new MysqlDialect({ pool: boundedMysqlPool(pool, timeouts, onFailure) });
    poolStats = () => ({ size: poolSize });
  }

  const db = new Kysely<Database>({ dialect });
  // A failure that started before recovery may time out up to this long after it.
  const quietMs =
    kind === 'sqlite'
      ? timeouts.busyMs
      : Math.max(timeouts.connectMs, timeouts.poolMs, timeouts.statementMs + CLIENT_GRACE_MS);
  const outage = new DatabaseOutage(db, options.log, quietMs);
  const handle: DatabaseHandle = {
    db,
    dialect: kind,
    outage,
    poolStats: () => poolStats(),
    async withoutStatementTimeout(work) {
      if (kind === 'sqlite' || timeouts.statementMs === 0) return work(db);
      const own = openDatabase({ ...options, poolSize: 1, timeouts: { ...timeouts, statementMs: 0 }, log: undefined });
      try {
        return await work(own.db);
      } finally {
        await own.close();
      }
    },
    close: async () => {
      outage.close();
      await db.destroy();
    },
  };
  return handle;
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
  return (
    !!e &&
    (e.code === '23505' ||
      e.code === 'ER_DUP_ENTRY' ||
      e.errno === 1062 ||
      /^SQLITE_CONSTRAINT_(UNIQUE|PRIMARYKEY)$/.test(e.code ?? ''))
  );
}

/** True when the database aborted a transaction to break a deadlock or serialization conflict. */
export function isTransientConflict(error: unknown): boolean {
  const e = error as { code?: string; errno?: number } | null;
  return (
    !!e &&
    (e.code === '40P01' ||
      e.code === '40001' ||
      e.code === 'ER_LOCK_DEADLOCK' ||
      e.errno === 1213 ||
      e.code === 'SQLITE_BUSY')
  );
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
