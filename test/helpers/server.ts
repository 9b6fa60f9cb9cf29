/**
 * Real server processes: `node --import tsx src/server.ts` on a free loopback port, in a scratch
 * working directory (no developer .env is read), with its output kept for the test to read; ready
 * once /api/health answers 200 (over HTTPS when TLS_CERT_FILE is set). Plus a small HTTP client
 * that can choose its loopback source address (127.0.0.x), so tests can act as distinct clients.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { ResponseBody } from './response-body.js';

export const ROOT = resolve(import.meta.dirname, '../..');
const TSX_LOADER = import.meta.resolve('tsx');

/** The settings a server process starts with unless `baseEnv` replaces them. */
export const SERVER_ENV: Record<string, string> = {
  NODE_ENV: 'test',
  SECRET_KEY: 'integration-secret-key-0123456789abcdefghijklmnop',
  JWT_SECRET_KEY: 'integration-jwt-secret-0123456789abcdefghijklmno',
  BCRYPT_ROUNDS: '4',
  LOG_LEVEL: 'warn',
  DOCS_ENABLED: 'false',
};

export const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

/** Polls `check` every 50 ms until it holds; throws, naming `what`, after `timeoutMs`. */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolvePort(port));
    });
  });
}

export interface Response {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: ResponseBody;
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
  /** For https URLs: accept any certificate (readiness probes of a self-signed test server). */
  insecure?: boolean;
  timeoutMs?: number;
}

/** One request on a fresh connection (no keep-alive, so a cluster spreads them over workers). */
export function request(method: string, url: string, options: RequestOptions = {}): Promise<Response> {
  const target = new URL(url);
  const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
  const headers: Record<string, string> = { connection: 'close', ...options.headers };
  if (payload !== undefined) headers['content-type'] = 'application/json';
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  const secure = target.protocol === 'https:';
  const client = secure ? https : http;
  const tls = secure
    ? {
        ca: options.ca,
        minVersion: options.minVersion,
        maxVersion: options.maxVersion,
        servername: 'localhost',
        rejectUnauthorized: !options.insecure,
      }
    : {};
  return new Promise((resolveResponse, reject) => {
    const req = client.request(
      target,
      { method, headers, localAddress: options.from, agent: false, timeout: options.timeoutMs ?? 30_000, ...tls },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: ResponseBody = undefined;
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
  /** Resolves with the exit code once the process has ended (null if killed by a signal). */
  exited: Promise<number | null>;
  /** Sends `signal` (SIGTERM) and waits; resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface ServerOptions {
  timeoutMs?: number;
  port?: number;
  /** Working directory; a scratch one (removed on stop) by default. */
  cwd?: string;
  /** Settings under `env`; SERVER_ENV by default. */
  baseEnv?: Record<string, string>;
}

/** Starts `src/server.ts` with the given environment and waits until /api/health answers 200. */
export async function startServer(env: Record<string, string>, options: ServerOptions = {}): Promise<ServerProcess> {
  const port = options.port ?? (await freePort());
  const cwd = options.cwd ?? mkdtempSync(join(tmpdir(), 'flokie-srv-'));
  const child = spawn(process.execPath, ['--import', TSX_LOADER, join(ROOT, 'src/server.ts')], {
    cwd,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      ...(options.baseEnv ?? SERVER_ENV),
      HOST: '127.0.0.1',
      PORT: String(port),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  let exitCode: number | null | undefined;
  void exited.then((code) => (exitCode = code));

  const url = `${env.TLS_CERT_FILE ? 'https' : 'http'}://127.0.0.1:${port}`;
  const deadline = Date.now() + (options.timeoutMs ?? 120_000);
  for (;;) {
    if (exitCode !== undefined) throw new Error(`server exited with ${exitCode} before it was healthy:\n${output}`);
    try {
      const res = await request('GET', `${url}/api/health`, { insecure: true });
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
    exited,
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
