/**
 * "The database is unavailable" — decided here and nowhere else. An error that means the database
 * could not be reached or did not answer in time (refused, reset, timed out, pool exhausted,
 * connection terminated, SQLite busy) is answered 503 SERVICE_UNAVAILABLE with Retry-After at the
 * HTTP edge (src/plugins/app/error-handler.ts), never 500, and DatabaseOutage logs it once per outage
 * (warn, no stack) and once when it is over, instead of once per failed request.
 */
import type { Kysely } from 'kysely';
import { sql } from 'kysely';
import type { Database } from './types.js';

/** Seconds a client is told to wait (Retry-After) when the database is unavailable. */
export const DATABASE_RETRY_AFTER_SECONDS = 5;

/** Code of the error our own pool wrappers raise when no connection was free in time. */
export const POOL_TIMEOUT_CODE = 'FLOKIE_DB_POOL_TIMEOUT';

const UNAVAILABLE_CODES = new Set([
  // Sockets: refused, reset, timed out, unreachable, name not resolved.
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  // PostgreSQL: statement_timeout (query_canceled), server shutting down or starting, too many connections.
  '57014',
  '57P01',
  '57P02',
  '57P03',
  '53300',
  // mysql2: connection lost, per-query timeout, too many connections.
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'ER_CON_COUNT_ERROR',
  // Our pool wrappers (src/db/index.ts).
  POOL_TIMEOUT_CODE,
]);

/**
 * MySQL/MariaDB server error numbers: too many connections, shutdown, connection killed, max_statement_time,
 * max_execution_time.
 */
const UNAVAILABLE_ERRNOS = new Set([1040, 1053, 1927, 1969, 3024]);

/** node-postgres raises these without a code. */
const PG_CLIENT_MESSAGES = new Set([
  'Connection terminated',
  'Connection terminated unexpectedly',
  'Connection terminated due to connection timeout',
  'timeout exceeded when trying to connect',
  'timeout expired',
  'Query read timeout',
  'Client has encountered a connection error and is not queryable',
]);

/** True when `error` means the database could not be reached or did not answer in time. */
export function isDatabaseUnavailable(error: unknown, depth = 0): boolean {
  if (!error || typeof error !== 'object' || depth > 4) return false;
  const e = error as {
    code?: unknown;
    errno?: unknown;
    message?: unknown;
    fatal?: unknown;
    cause?: unknown;
    errors?: unknown;
  };
  if (typeof e.code === 'string') {
    // SQLSTATE class 08: connection exception. SQLITE_BUSY and its extended codes: another writer held the lock
    // too long.
    if (UNAVAILABLE_CODES.has(e.code) || /^08[0-9A-Z]{3}$/.test(e.code) || e.code.startsWith('SQLITE_BUSY'))
      return true;
  }
  if (typeof e.errno === 'number' && UNAVAILABLE_ERRNOS.has(e.errno)) return true;
  // mysql2 marks errors that killed the connection as fatal.
  if (e.fatal === true) return true;
  if (typeof e.message === 'string' && PG_CLIENT_MESSAGES.has(e.message)) return true;
  if (Array.isArray(e.errors) && e.errors.some((inner) => isDatabaseUnavailable(inner, depth + 1))) return true;
  return isDatabaseUnavailable(e.cause, depth + 1);
}

/** What a log line says about the error: its code and message, never a stack. */
function describe(error: unknown): { code?: string; message: string } {
  const e = error as { code?: unknown; message?: unknown };
  return {
    ...(typeof e?.code === 'string' ? { code: e.code } : {}),
    message: typeof e?.message === 'string' ? e.message.slice(0, 300) : String(error),
  };
}

interface OutageLog {
  warn(object: object, message: string): void;
}

/**
 * One outage, logged twice: when the first failure is noted, and when the database answers again
 * after `quietMs` without a new failure (requests already waiting on a dead connection when it
 * recovered may still time out; they must not start a second outage). While down it pings every
 * `probeMs`; nothing here gates requests — each one still tries the database.
 */
export class DatabaseOutage {
  private since: number | null = null;
  private failures = 0;
  private lastFailureAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly log: OutageLog | undefined,
    private readonly quietMs: number,
    private readonly probeMs = 1000,
  ) {}

  get down(): boolean {
    return this.since !== null;
  }

  /** Records `error` if it means the database is unavailable; returns whether it did. */
  note(error: unknown): boolean {
    if (!isDatabaseUnavailable(error)) return false;
    const now = Date.now();
    this.failures++;
    this.lastFailureAt = now;
    if (this.since === null && !this.closed) {
      this.since = now;
      this.log?.warn(
        { database_error: describe(error) },
        'database unavailable: answering 503 SERVICE_UNAVAILABLE until it recovers',
      );
      this.schedule();
    }
    return true;
  }

  private schedule(): void {
    if (this.closed) return;
    this.timer = setTimeout(() => void this.probe(), this.probeMs);
    this.timer.unref();
  }

  private async probe(): Promise<void> {
    if (this.since === null || this.closed) return;
    if (Date.now() - this.lastFailureAt < this.quietMs) return this.schedule();
    try {
      await sql`select 1`.execute(this.db);
    } catch (error) {
      this.note(error);
      return this.schedule();
    }
    if (Date.now() - this.lastFailureAt < this.quietMs) return this.schedule();
    const downMs = Date.now() - this.since;
    this.log?.warn({ down_ms: downMs, failed_operations: this.failures }, 'database available again');
    this.since = null;
    this.failures = 0;
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
  }
}
