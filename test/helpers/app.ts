/**
 * Builds a real app (in-process, no port) on a fresh test database. Each call gets its own
 * database unless one is passed in; `close()` closes the app and drops the database it made.
 */
import { Writable } from 'node:stream';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { buildApp } from '../../src/app.js';
import { loadConfig, type Config } from '../../src/config/index.js';
import { createContainer, type Container } from '../../src/container.js';
import { createLogger } from '../../src/logging.js';
import type { Purpose } from '../../src/modules/auth/one-time-tokens.js';
import { createTestDatabase, type TestDatabase } from './database.js';
import type { ResponseBody } from './response-body.js';
import { waitFor } from './server.js';

export interface TestApp {
  app: FastifyInstance;
  container: Container;
  config: Config;
  database: TestDatabase;
  /** The log lines as written (JSON text), kept when `captureLogs` is set. */
  logLines: string[];
  /** The same lines, parsed. */
  logRecords: Record<string, unknown>[];
  close(): Promise<void>;
}

export interface TestAppOptions {
  /** A SQLite file instead of memory (other engines always make a database). */
  fileDatabase?: boolean;
  /** A database shared with other apps: not dropped on close. */
  database?: TestDatabase;
  /** Keep every log line (at the configured LOG_LEVEL) in `logLines` and `logRecords`. */
  captureLogs?: boolean;
  /** Runs before the app is sealed, e.g. to add test-only routes. */
  prepare?: (app: FastifyInstance) => void;
}

export const TEST_ENV: Record<string, string> = {
  NODE_ENV: 'test',
  SECRET_KEY: 'test-secret-key-0123456789abcdefghijklmnopqrstuvwxyz',
  JWT_SECRET_KEY: 'test-jwt-secret-0123456789abcdefghijklmnopqrstuvwxyz',
  BCRYPT_ROUNDS: '4',
  LOG_LEVEL: 'silent',
  RATE_LIMIT_ENABLED: 'false',
  MAIL_OUTBOX_DIR: 'var/test-outbox',
  CACHE_SYNC_INTERVAL_MS: '100',
};

export function makeTestConfig(overrides: Record<string, string> = {}, databaseUrl = 'sqlite::memory:'): Config {
  return loadConfig({ ...TEST_ENV, DATABASE_URL: databaseUrl, ...overrides }, { dotenv: false });
}

export async function createTestApp(
  overrides: Record<string, string> = {},
  options: TestAppOptions = {},
): Promise<TestApp> {
  const database = options.database ?? (await createTestDatabase({ file: options.fileDatabase }));
  const config = makeTestConfig(overrides, database.url);
  const logLines: string[] = [];
  const logRecords: Record<string, unknown>[] = [];
  // Without captured logs the app makes (and closes) its own container, as the server does.
  const ownContainer = options.captureLogs
    ? await createContainer(config, { log: createLogger(config.LOG_LEVEL, lineSink(logLines, logRecords)) })
    : undefined;
  const app = await buildApp(config, { container: ownContainer });
  options.prepare?.(app);
  await app.ready();
  return {
    app,
    container: app.container,
    config,
    database,
    logLines,
    logRecords,
    async close() {
      await app.close();
      await ownContainer?.close();
      if (!options.database) await database.drop();
    },
  };
}

function lineSink(lines: string[], records: Record<string, unknown>[]): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) {
        lines.push(line);
        records.push(JSON.parse(line) as Record<string, unknown>);
      }
      callback();
    },
  });
}

/** An app whose log lines the test reads, parsed (for "is it logged?" assertions); LOG_LEVEL info. */
export interface LoggedApp extends TestApp {
  lines: Record<string, unknown>[];
}

export async function createLoggedApp(
  overrides: Record<string, string> = {},
  database?: TestDatabase,
  prepare?: (app: FastifyInstance) => void,
): Promise<LoggedApp> {
  const t = await createTestApp({ LOG_LEVEL: 'info', ...overrides }, { database, prepare, captureLogs: true });
  return { ...t, lines: t.logRecords };
}

export const STRONG_PASSWORD = 'Velvet-Orbit-Harbor-42';
export const OTHER_STRONG_PASSWORD = 'Quiet-Lantern-Meadow-77';

let counter = 0;
export function uniqueUser(prefix = 'user') {
  counter += 1;
  const name = `${prefix}${counter}_${Math.random().toString(36).slice(2, 7)}`;
  return { username: name, email: `${name}@example.com`, password: STRONG_PASSWORD };
}

export function json<T = ResponseBody>(res: Pick<LightMyRequestResponse, 'body'>): T {
  return JSON.parse(res.body) as T;
}

export async function register(app: FastifyInstance, user = uniqueUser()) {
  const res = await app.inject({ method: 'POST', url: '/api/auth/register', payload: user });
  if (res.statusCode !== 201) throw new Error(`register failed: ${res.statusCode} ${res.body}`);
  return { ...user, id: json(res).data.user.id as string };
}

export async function login(
  app: FastifyInstance,
  username: string,
  password = STRONG_PASSWORD,
  headers: Record<string, string> = {},
) {
  const res = await app.inject({ method: 'POST', url: '/api/auth/login', payload: { username, password }, headers });
  if (res.statusCode !== 200) throw new Error(`login failed: ${res.statusCode} ${res.body}`);
  const data = json(res).data;
  return { access: data.access_token as string, refresh: data.refresh_token as string, res };
}

/** Registers and logs in a fresh user; returns its credentials and tokens. */
export async function registerAndLogin(app: FastifyInstance, user = uniqueUser()) {
  const created = await register(app, user);
  const tokens = await login(app, created.username, created.password);
  return { ...created, ...tokens };
}

/** Makes an existing user an admin directly in the database (test set-up only). */
export async function makeAdmin(app: FastifyInstance, userId: string) {
  await app.container.users.update(userId, { is_admin: 1 });
  await app.container.changes.publish('user', userId);
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/**
 * Waits until the link a request issues after its answer (reset, verification, e-mail change) is
 * stored, so a test can issue its own without the late one revoking it; throws after 5 s.
 */
export async function waitForLink(container: Container, userId: string, purpose: Purpose): Promise<void> {
  const stored = async () =>
    (await container.db
      .selectFrom('one_time_tokens')
      .select('user_id')
      .where('user_id', '=', userId)
      .where('purpose', '=', purpose)
      .executeTakeFirst()) !== undefined;
  await waitFor(stored, 5_000, `the ${purpose} link of ${userId}`);
}
