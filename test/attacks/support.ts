/**
 * Shared tooling for the attack suite: the route list read from the live OpenAPI document (so a
 * new endpoint is attacked without editing a test), valid base values for every field, the
 * envelope check, database snapshots, and the settings of real server processes on loopback.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { sql, type Kysely } from 'kysely';
import pg from 'pg';
import type { Database } from '../../src/db/types.js';
import { STRONG_PASSWORD, TEST_ENV } from '../helpers/app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import type { ServerOptions } from '../helpers/server.js';
import type { ResponseBody } from '../helpers/response-body.js';

// ---------------------------------------------------------------------------------------------
// Routes from the OpenAPI document
// ---------------------------------------------------------------------------------------------

export interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  enum?: unknown[];
  const?: unknown;
  format?: string;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  nullable?: boolean;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
  additionalProperties?: boolean | JsonSchema;
  default?: unknown;
}

export interface Parameter {
  in: 'path' | 'query' | 'header' | 'cookie';
  name: string;
  required?: boolean;
  schema: JsonSchema;
}

export interface Operation {
  method: string;
  /** OpenAPI path, e.g. /api/users/{id} */
  path: string;
  parameters: Parameter[];
  body: JsonSchema | null;
  /** Declares bearer security (needs a token). */
  secured: boolean;
}

/** The parts of an OpenAPI operation object the attack suite reads. */
interface OperationDoc {
  parameters?: Parameter[];
  requestBody?: { content?: Record<string, { schema?: JsonSchema }> };
  security?: unknown[];
}

export async function readOperations(app: FastifyInstance): Promise<Operation[]> {
  const res = await app.inject({ method: 'GET', url: '/api/openapi.json' });
  assert.equal(res.statusCode, 200, 'the OpenAPI document must be served for the attack suite to find the routes');
  const doc = JSON.parse(res.body) as { paths: Record<string, Record<string, OperationDoc>> };
  const ops: Operation[] = [];
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      if (!['get', 'post', 'put', 'patch', 'delete'].includes(method)) continue;
      ops.push({
        method: method.toUpperCase(),
        path,
        parameters: op.parameters ?? [],
        body: op.requestBody?.content?.['application/json']?.schema ?? null,
        secured: Array.isArray(op.security) && op.security.length > 0,
      });
    }
  }
  return ops;
}

/** The schema's own alternatives (anyOf/oneOf/nullable) reduced to the first non-null one. */
export function mainSchema(schema: JsonSchema): JsonSchema {
  const alternatives = schema.anyOf ?? schema.oneOf;
  if (alternatives) return mainSchema(alternatives.find((s) => s.type !== 'null') ?? alternatives[0]!);
  return schema;
}

export function isStringSchema(schema: JsonSchema): boolean {
  const s = mainSchema(schema);
  return s.type === 'string' || (Array.isArray(s.type) && s.type.includes('string'));
}

let baseCounter = 0;
/**
 * A valid value for a field, chosen from its name and schema, so that an attack on one field is
 * not refused because a neighbouring field was wrong. `ids` supplies real ids and names.
 */
export function baseValue(name: string, schema: JsonSchema, ids: BaseIds): unknown {
  const s = mainSchema(schema);
  if (s.const !== undefined) return s.const;
  if (s.enum?.length) return s.enum[0];
  if (s.default !== undefined) return s.default;
  const type = Array.isArray(s.type) ? s.type[0] : s.type;
  switch (type) {
    case 'integer':
    case 'number':
      return Math.max(s.minimum ?? 1, Math.min(1, s.maximum ?? 1));
    case 'boolean':
      return false;
    case 'array':
      return [];
    case 'object':
      return baseObject(s, ids);
    default:
      break;
  }
  baseCounter += 1;
  const unique = `sec${baseCounter}${Math.random().toString(36).slice(2, 6)}`;
  if (s.format === 'email' || name.includes('email')) return `${unique}@example.com`;
  if (s.format === 'date-time' || name === 'since' || name === 'until') return new Date().toISOString();
  if (name === 'current_password') return ids.actorPassword;
  if (name.includes('password')) return 'Quiet-Lantern-Meadow-77';
  if (name === 'username') return ids.loginName ?? unique;
  if (name === 'id' || name === 'user_id') return ids.targetId;
  if (name === 'limit') return null;
  if (name === 'q' || name === 'search') return 'sec';
  if (name.endsWith('name')) return 'Ada';
  if (s.pattern) return unique.replace(/[^A-Za-z0-9_-]/g, '');
  return unique;
}

export interface BaseIds {
  targetId: string;
  actorPassword: string;
  /** Username to use in `username` fields (login); a fresh one when unset (register). */
  loginName?: string;
}

export function baseObject(schema: JsonSchema, ids: BaseIds): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, prop] of Object.entries(schema.properties ?? {})) {
    if (!(schema.required ?? []).includes(name)) continue;
    out[name] = baseValue(name, prop, ids);
  }
  return out;
}

/** Fills {param} placeholders; values are URL-encoded. */
export function fillPath(path: string, values: Record<string, string>): string {
  return path.replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(values[name] ?? 'x'));
}

export function queryString(values: Record<string, unknown>): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(values)) if (v !== undefined && v !== null) params.append(k, String(v));
  const s = params.toString();
  return s ? `?${s}` : '';
}

// ---------------------------------------------------------------------------------------------
// Response checks
// ---------------------------------------------------------------------------------------------

/** Text that would mean a database error or internals leaked into a response. */
export const LEAK_PATTERNS: RegExp[] = [
  /SQLITE_[A-Z]/,
  /SqliteError/i,
  /syntax error/i,
  /unterminated quoted/i,
  /unrecognized token/i,
  /no such (table|column)/i,
  /relation "[^"]*" does not exist/i,
  /column "[^"]*" does not exist/i,
  /SQLSTATE/i,
  /ER_[A-Z_]{4,}/,
  /You have an error in your SQL/i,
  /invalid input syntax for/i,
  /\bpg_[a-z_]+\(/i,
  /DatabaseError/,
  /kysely/i,
  /node_modules/,
  /\/work\/|\/src\/[\w/-]+\.ts/,
  /\bat [\w.<>]+ \(/,
];

/** `echoed`: the attack text itself, which a response may legitimately repeat back (escaped as JSON). */
export function assertNoLeak(res: { body: string }, context: string, echoed?: string): void {
  let body = res.body;
  if (echoed) {
    const asJson = JSON.stringify(echoed)
      .slice(1, -1)
      .replace(/[<>&]/g, (c) => `\\u00${c.charCodeAt(0).toString(16)}`);
    body = body.split(asJson).join('');
  }
  for (const pattern of LEAK_PATTERNS)
    assert.doesNotMatch(body, pattern, `${context}: response leaks internals (${pattern}): ${res.body.slice(0, 300)}`);
}

/**
 * Every response is in docs/api.md's envelope: success with message/data, or error with code/message,
 * timestamp and request_id.
 */
export function assertEnvelope(
  res: LightMyRequestResponse | { statusCode: number; body: string; headers: Record<string, unknown> },
  context: string,
): ResponseBody {
  let body: ResponseBody;
  try {
    body = JSON.parse(res.body);
  } catch {
    assert.fail(`${context}: body is not JSON (${res.statusCode}): ${res.body.slice(0, 200)}`);
  }
  assert.equal(typeof body, 'object', `${context}: body is not an object`);
  assert.ok(body !== null, `${context}: null body`);
  if (res.statusCode < 400) {
    // /api/health answers its own documented shape (status, timestamp, …), everything else the success envelope.
    if ('status' in body && !('success' in body)) return body;
    assert.equal(body.success, true, `${context}: 2xx without success:true: ${res.body.slice(0, 200)}`);
    assert.equal(typeof body.message, 'string', `${context}: success envelope without message`);
  } else if (!(res.statusCode === 503 && 'status' in body && !('success' in body))) {
    assert.equal(body.success, false, `${context}: error without success:false: ${res.body.slice(0, 200)}`);
    assert.equal(typeof body.error?.code, 'string', `${context}: error without code`);
    assert.equal(typeof body.error?.message, 'string', `${context}: error without message`);
    assert.equal(typeof body.timestamp, 'string', `${context}: error without timestamp`);
    assert.equal(body.request_id, res.headers['x-request-id'], `${context}: request_id differs from X-Request-ID`);
  }
  assert.doesNotMatch(res.body, /[<>]/, `${context}: raw < or > in a JSON body`);
  return body;
}

// ---------------------------------------------------------------------------------------------
// Database snapshots
// ---------------------------------------------------------------------------------------------

export interface Snapshot {
  counts: Record<string, number>;
  /** Hash of the rows of the stable tables that belong to the watched (bystander) users. */
  digest: string;
}

const STABLE_TABLES: Array<{ table: keyof Database; userColumn: string; order: string }> = [
  { table: 'users', userColumn: 'id', order: 'id' },
  { table: 'password_history', userColumn: 'user_id', order: 'id' },
];

export async function snapshot(db: Kysely<Database>, watchedUserIds: string[]): Promise<Snapshot> {
  const counts: Record<string, number> = {};
  // The other tables hold logs, counters and sessions that any request may add to.
  const tables = ['users', 'password_history'];
  for (const table of tables) {
    const row = await sql<{ n: number | string }>`select count(*) as n from ${sql.table(table)}`.execute(db);
    counts[table] = Number(row.rows[0]!.n);
  }
  const hash = createHash('sha256');
  for (const { table, userColumn, order } of STABLE_TABLES) {
    if (!watchedUserIds.length) continue;
    const rows = await db
      .selectFrom(table as 'users')
      .selectAll()
      .where(userColumn as 'id', 'in', watchedUserIds)
      .orderBy(order as 'id')
      .execute();
    for (const row of rows) hash.update(JSON.stringify(row));
  }
  return { counts, digest: hash.digest('hex') };
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL availability and database URLs
// ---------------------------------------------------------------------------------------------

export const POSTGRES_URL = process.env.TEST_DATABASE_URL?.startsWith('postgres')
  ? process.env.TEST_DATABASE_URL
  : 'postgresql://postgres@127.0.0.1:5432/postgres';

export async function postgresReachable(url = POSTGRES_URL): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.query('select 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

/** A fresh database on the given engine, whatever TEST_DATABASE_URL says. */
export async function freshDatabase(engine: 'sqlite' | 'sqlite-file' | 'postgres'): Promise<TestDatabase> {
  const saved = process.env.TEST_DATABASE_URL;
  try {
    if (engine === 'postgres') process.env.TEST_DATABASE_URL = POSTGRES_URL;
    else delete process.env.TEST_DATABASE_URL;
    return await createTestDatabase({ file: engine === 'sqlite-file' });
  } finally {
    if (saved === undefined) delete process.env.TEST_DATABASE_URL;
    else process.env.TEST_DATABASE_URL = saved;
  }
}

// ---------------------------------------------------------------------------------------------
// Real server processes (test/helpers/server.ts), with the settings of the in-process test apps
// ---------------------------------------------------------------------------------------------

export const ATTACK_SERVER: ServerOptions = { baseEnv: { ...TEST_ENV, LOG_LEVEL: 'info' } };

export interface HttpResult {
  statusCode: number;
  body: string;
  headers: Record<string, string>;
}

export async function http(
  base: string,
  method: string,
  path: string,
  options: { body?: unknown; headers?: Record<string, string> } = {},
): Promise<HttpResult> {
  const res = await fetch(base + path, {
    method,
    headers: { ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}), ...options.headers },
    body: options.body !== undefined ? JSON.stringify(options.body) : undefined,
  });
  const headers: Record<string, string> = {};
  res.headers.forEach((v, k) => (headers[k] = v));
  return { statusCode: res.status, body: await res.text(), headers };
}

export const SECURITY_STRONG_PASSWORD = STRONG_PASSWORD;
