/**
 * Real server processes for the integration tests: `node --import tsx src/server.ts` on a free
 * loopback port, in a scratch working directory, with its output kept for the test to read;
 * plus a small HTTP client that can choose its loopback source address (127.0.0.x), so tests
 * can act as distinct clients, and PostgreSQL databases / Redis prefixes made and removed per test.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { freePort } from '../helpers/server.js';

export const ROOT = resolve(import.meta.dirname, '../..');
const TSX_LOADER = import.meta.resolve('tsx');

export const BASE_ENV: Record<string, string> = {
  NODE_ENV: 'test',
  SECRET_KEY: 'integration-secret-key-0123456789abcdefghijklmnop',
  JWT_SECRET_KEY: 'integration-jwt-secret-0123456789abcdefghijklmno',
  BCRYPT_ROUNDS: '4',
  LOG_LEVEL: 'warn',
  HOST: '127.0.0.1',
  DOCS_ENABLED: 'false',
};

export const PG_BASE = process.env.TEST_DATABASE_URL?.startsWith('postgres') ? process.env.TEST_DATABASE_URL : 'postgresql://postgres@127.0.0.1:5432/postgres';
export const REDIS_BASE = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

export { freePort };

export interface Response {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: any;
  text: string;
}

export interface RequestOptions {
  body?: unknown;
  headers?: Record<string, string>;
  /** Loopback source address, e.g. 127.0.0.7, to act as a distinct client. */
  from?: string;
  token?: string;
  /** For https URLs: CA to trust, TLS version bounds. */
  ca?: string;
  minVersion?: 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';
  maxVersion?: 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';
  timeoutMs?: number;
}

/** One request on a fresh connection (no keep-alive, so a cluster spreads them over workers). */
export function request(method: string, url: string, options: RequestOptions = {}): Promise<Response> {
  const target = new URL(url);
  const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
  const headers: Record<string, string> = { connection: 'close', ...options.headers };
  if (payload !== undefined) headers['content-type'] = 'application/json';
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  const client = target.protocol === 'https:' ? https : http;
  return new Promise((resolveResponse, reject) => {
    const req = client.request(
      target,
      {
        method,
        headers,
        localAddress: options.from,
        agent: false,
        timeout: options.timeoutMs ?? 30_000,
        ...(target.protocol === 'https:' ? { ca: options.ca, minVersion: options.minVersion, maxVersion: options.maxVersion, servername: 'localhost' } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: any = undefined;
          try {
            body = JSON.parse(text);
          } catch {
            body = undefined;
          }
          resolveResponse({ status: res.statusCode ?? 0, headers: res.headers, body, text });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${url} timed out`)));
    req.on('error', reject);
    req.end(payload);
  });
}

export interface ServerProcess {
  url: string;
  port: number;
  child: ChildProcess;
  cwd: string;
  output(): string;
  /** SIGTERM and wait; resolves with the exit code (null if killed by a signal). */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts `src/server.ts` with the given environment and waits until /api/health answers 200. */
export async function startServer(env: Record<string, string>, options: { timeoutMs?: number; port?: number; cwd?: string } = {}): Promise<ServerProcess> {
  const port = options.port ?? (await freePort());
  const cwd = options.cwd ?? mkdtempSync(join(tmpdir(), 'flokie-srv-'));
  const child = spawn(process.execPath, ['--import', TSX_LOADER, join(ROOT, 'src/server.ts')], {
    cwd,
    env: { PATH: process.env.PATH ?? '', ...BASE_ENV, PORT: String(port), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  let exitCode: number | null | undefined;
  void exited.then((code) => (exitCode = code));

  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + (options.timeoutMs ?? 120_000);
  for (;;) {
    if (exitCode !== undefined) throw new Error(`server exited with ${exitCode} before it was healthy:\n${output}`);
    try {
      const res = await request('GET', `${url}/api/health`);
      if (res.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`server did not become healthy:\n${output}`);
    }
    await sleep(150);
  }
  return {
    url,
    port,
    child,
    cwd,
    output: () => output,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (exitCode === undefined) child.kill(signal);
      const killer = setTimeout(() => child.kill('SIGKILL'), 25_000);
      const code = await exited;
      clearTimeout(killer);
      if (!options.cwd) rmSync(cwd, { recursive: true, force: true });
      return code;
    },
  };
}

export const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

/**
 * Polls `check` until it returns true or `limitMs` passes; returns the milliseconds it took
 * (measured from `since`), or throws with `what` when it never held.
 */
export async function within(limitMs: number, since: number, what: string, check: () => Promise<boolean>): Promise<number> {
  for (;;) {
    if (await check()) return Math.round(performance.now() - since);
    if (performance.now() - since > limitMs) throw new Error(`${what}: not seen within ${limitMs} ms`);
    await sleep(10);
  }
}

/** A fresh PostgreSQL database; `drop()` removes it (and any connections to it). */
export async function createPgDatabase(): Promise<{ name: string; url: string; adminUrl: string; drop(): Promise<void> }> {
  const name = `flokie_it_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: PG_BASE });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(PG_BASE);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    adminUrl: PG_BASE,
    async drop() {
      const c = new pg.Client({ connectionString: PG_BASE });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

/** A unique Redis key prefix; `clear()` deletes every key under it. */
export function redisPrefix(): { prefix: string; clear(): Promise<number> } {
  const prefix = `flokie-it-${randomBytes(5).toString('hex')}:`;
  return {
    prefix,
    async clear() {
      const redis = new Redis(REDIS_BASE, { lazyConnect: true, maxRetriesPerRequest: 1 });
      await redis.connect();
      let removed = 0;
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
        cursor = next;
        if (keys.length) removed += await redis.del(...keys);
      } while (cursor !== '0');
      redis.disconnect();
      return removed;
    },
  };
}

/** The claims of a JWT (test-side inspection only; never a verification). */
export function claimsOf(token: string): Record<string, any> {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8'));
}
