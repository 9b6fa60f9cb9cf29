/**
 * `npm run bench` — measures Flokie side by side with a bare Fastify baseline and writes the
 * figures to bench/results/ (JSON + Markdown, the latest run per set-up) and docs/benchmarks.md.
 *
 * The service runs built (dist/server.js) in production mode; the baseline is bench/baseline.ts
 * transpiled and run with plain node; load comes from autocannon in a separate process
 * (bench/load.ts); raw hashing capacity from bench/hash-capacity.ts. Each figure is the median
 * of several runs. The bench reports, it never fails on a missed target (exit 0), only on a
 * broken harness.
 *
 * Options:
 *   --db sqlite|postgres   database (default sqlite; postgres uses BENCH_DATABASE_URL or
 *                          postgresql://postgres@127.0.0.1:5432/postgres to create its databases)
 *   --redis                shared state in Redis (BENCH_REDIS_URL or redis://127.0.0.1:6379)
 *   --quick                smoke run: one short run per scenario, small seeds
 *   --out DIR              results folder (default bench/results for the default SQLite run,
 *                          bench/results/<db>[-redis] otherwise, e.g. bench/results/postgres-redis)
 *   --no-docs              do not rewrite docs/benchmarks.md (only the default SQLite run does)
 *   --from-source          run the service with tsx from src/ instead of building (smoke test)
 *   --large N              users and revoked tokens in the "large" database (default 1,000,000)
 *   --runs N, --duration S override the repeat count and seconds per run
 *   --cache-dir DIR        where seeded databases are kept between runs (default var/bench)
 *   --only strength        run one scenario alone: `strength` = /api/health p99 while worst-case
 *                          registrations stream in (scenario 7). Its figures are printed and written
 *                          to the results folder as strength.{json,md}; latest.* and
 *                          docs/benchmarks.md are left as they are.
 *   --only propagation     run only scenario 8 (bench/propagation.ts: how long a revocation takes
 *                          to reach another instance without Redis, and the other cluster worker);
 *                          writes propagation.{json,md} to the results folder
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, freemem, loadavg, platform, release, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import ts from 'typescript';
import { TokenService } from '../src/modules/auth/tokens.js';
import {
  SEED_PASSWORD,
  seed,
  seedRefreshJti,
  seedSessionId,
  seedSessionUser,
  seedUserId,
  seedUsername,
} from '../scripts/seed-users.js';
import type { LoadJob, LoadResult } from './load.js';
import { measurePropagation, type PropagationResult } from './propagation.js';
import { explainAdminQueries, type PlanReport } from './query-plan.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BCRYPT_ROUNDS = 12;

// ---------------------------------------------------------------- options

const { values: args } = parseArgs({
  options: {
    db: { type: 'string', default: 'sqlite' },
    redis: { type: 'boolean', default: false },
    quick: { type: 'boolean', default: false },
    out: { type: 'string' },
    'no-docs': { type: 'boolean', default: false },
    'from-source': { type: 'boolean', default: false },
    large: { type: 'string' },
    runs: { type: 'string' },
    duration: { type: 'string' },
    'cache-dir': { type: 'string', default: join(ROOT, 'var', 'bench') },
    only: { type: 'string' },
  },
});
const SCENARIOS = ['strength', 'propagation'] as const;
if (args.only !== undefined && !(SCENARIOS as readonly string[]).includes(args.only)) {
  console.error(`bench: --only must be one of ${SCENARIOS.join(', ')}`);
  process.exit(2);
}
if (args.db !== 'sqlite' && args.db !== 'postgres') {
  console.error('bench: --db must be sqlite or postgres');
  process.exit(2);
}
// docs/benchmarks.md and bench/results/latest.* show the default run (SQLite, in-process state);
// other set-ups keep their own folder and never overwrite it.
const defaultSetup = args.db === 'sqlite' && !args.redis;
args.out ??= defaultSetup
  ? join(ROOT, 'bench', 'results')
  : join(ROOT, 'bench', 'results', `${args.db}${args.redis ? '-redis' : ''}`);
const quick = args.quick!;
const profile = {
  /**
   * Runs of the compared throughput figures (health, /me, first use, admin, refresh): the ones whose medians carry
   * the ratios.
   */
  comparedRuns: Number(args.runs ?? (quick ? 1 : 5)),
  /** Runs of the slow figures: logins against raw hashing (12 s each), start-up and peak memory. */
  runs: Number(args.runs ?? (quick ? 1 : 3)),
  duration: Number(args.duration ?? (quick ? 1 : 5)),
  loginDuration: quick ? 4 : 12,
  warmup: quick ? 0.2 : 1,
  connections: 10,
  memoryConnections: 200,
  loginConnections: 8,
  probeRate: 50,
  smallUsers: 1_000,
  smallRevoked: 1_000,
  large: Number(args.large ?? (quick ? 2_000 : 1_000_000)),
  /** Distinct tokens cycled through for the cache-miss figure: more than the guard caches (20,000). */
  coldTokens: quick ? 500 : 25_000,
  hashSeconds: quick ? 1 : 6,
};
const refreshSessionsBase = profile.coldTokens;
const seedSessions = profile.coldTokens + 200;
if ((profile.comparedRuns + 1) * profile.connections > seedSessions - refreshSessionsBase) {
  console.error('bench: too many runs for the seeded refresh sessions (at most 19)');
  process.exit(2);
}
const cacheDir = resolve(args['cache-dir']!);
mkdirSync(cacheDir, { recursive: true });
const benchStarted = performance.now();

const log = (message: string) =>
  process.stderr.write(`[bench ${((performance.now() - benchStarted) / 1000).toFixed(0).padStart(3)}s] ${message}\n`);

// ---------------------------------------------------------------- helpers

const median = (xs: number[]) => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolvePort(port));
    });
  });
}

const tsxArgs = ['--import', 'tsx'];

function runNodeScript(script: string, scriptArgs: string[]): Promise<string> {
  return new Promise((resolveOut, reject) => {
    const child = spawn(process.execPath, [...tsxArgs, script, ...scriptArgs], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolveOut(out) : reject(new Error(`${script} exited ${code}: ${err.trim().slice(-500)}`)),
    );
  });
}

let jobCounter = 0;
async function load(job: LoadJob): Promise<LoadResult> {
  const file = join(cacheDir, `job-${process.pid}-${jobCounter++}.json`);
  writeFileSync(file, JSON.stringify(job));
  try {
    const out = await runNodeScript(join(ROOT, 'bench', 'load.ts'), [file]);
    return JSON.parse(out.trim().split('\n').pop()!) as LoadResult;
  } finally {
    rmSync(file, { force: true });
  }
}

/** CPU time (user + system, all threads) a process has used so far, in ms. */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  // Fields 14 and 15 of stat (utime, stime), counted after the ") " that ends the command name; ticks of 1/100 s.
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

function peakRssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = /VmHWM:\s+(\d+) kB/.exec(status)?.[1];
  return kb ? Number(kb) * 1024 : NaN;
}

// ---------------------------------------------------------------- databases

interface DatabaseTarget {
  /** DATABASE_URL of the working copy the service runs on. */
  url: string;
  cleanup(): Promise<void>;
}

const pgAdminUrl = process.env.BENCH_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
function pgUrlFor(name: string) {
  const url = new URL(pgAdminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}
async function pgAdmin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: pgAdminUrl });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** A seeded database, built once and cached (seeding time is not scenario time). */
async function seededDatabase(users: number, revoked: number): Promise<DatabaseTarget> {
  const key = `seed_v1_u${users}_r${revoked}_s${seedSessions}`;
  const freshEnough = Date.now() - 30 * 86_400_000;
  if (args.db === 'sqlite') {
    const pristine = join(cacheDir, `${key}.db`);
    if (!existsSync(pristine) || statSync(pristine).mtimeMs < freshEnough) {
      const building = `${pristine}.building`;
      for (const f of [building, `${building}-wal`, `${building}-shm`]) rmSync(f, { force: true });
      log(
        `seeding ${users.toLocaleString('en')} users, ${revoked.toLocaleString('en')} revoked tokens, ` +
          `${seedSessions.toLocaleString('en')} sessions (cached in ${pristine})`,
      );
      const { seconds } = await seed({
        url: `sqlite:${building}`,
        users,
        revoked,
        sessions: seedSessions,
        bcryptRounds: BCRYPT_ROUNDS,
      });
      log(`seeded in ${seconds.toFixed(1)} s`);
      copyFileSync(building, pristine);
      for (const f of [building, `${building}-wal`, `${building}-shm`]) rmSync(f, { force: true });
    }
    const working = join(cacheDir, `run_${process.pid}_${key}.db`);
    copyFileSync(pristine, working);
    return {
      url: `sqlite:${working}`,
      cleanup: async () => [working, `${working}-wal`, `${working}-shm`].forEach((f) => rmSync(f, { force: true })),
    };
  }
  const pristine = `flokie_bench_${key}`;
  const exists = await pgAdmin(
    async (c) => (await c.query('select 1 from pg_database where datname = $1', [pristine])).rowCount === 1,
  );
  if (!exists) {
    const building = `${pristine}_building`;
    await pgAdmin(async (c) => {
      await c.query(`drop database if exists ${building} with (force)`);
      await c.query(`create database ${building}`);
    });
    log(
      `seeding ${users.toLocaleString('en')} users, ${revoked.toLocaleString('en')} revoked tokens ` +
        `into PostgreSQL ${pristine}`,
    );
    const { seconds } = await seed({
      url: pgUrlFor(building),
      users,
      revoked,
      sessions: seedSessions,
      bcryptRounds: BCRYPT_ROUNDS,
    });
    log(`seeded in ${seconds.toFixed(1)} s`);
    await pgAdmin((c) => c.query(`alter database ${building} rename to ${pristine}`));
  }
  // One working copy per seed: the small and the large database are both in use at once.
  const working = `flokie_bench_run_${process.pid}_${key}`;
  await pgAdmin(async (c) => {
    await c.query(`drop database if exists ${working} with (force)`);
    await c.query(`create database ${working} template ${pristine}`);
  });
  return {
    url: pgUrlFor(working),
    cleanup: () => pgAdmin((c) => c.query(`drop database if exists ${working} with (force)`)).then(() => {}),
  };
}

// ---------------------------------------------------------------- processes

interface Running {
  name: string;
  child: ChildProcess;
  port: number;
  base: string;
  startupMs: number;
  stop(): Promise<void>;
}

const secrets = { SECRET_KEY: randomBytes(32).toString('hex'), JWT_SECRET_KEY: randomBytes(32).toString('hex') };
const redisUrl = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const redisPrefix = `flokie-bench-${randomBytes(4).toString('hex')}:`;

function serviceEnv(databaseUrl: string, port: number): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    PORT: String(port),
    DATABASE_URL: databaseUrl,
    ...secrets,
    BCRYPT_ROUNDS: String(BCRYPT_ROUNDS),
    // Limits stay on (production refuses RATE_LIMIT_ENABLED=false) but far above the load.
    RATE_LIMITS: JSON.stringify({
      default: '100000000 per minute',
      'auth.login': '100000000 per minute',
      'auth.register': '100000000 per minute',
      'password.reset': '100000000 per minute',
    }),
    MAIL_OUTBOX_DIR: join(cacheDir, 'outbox'),
    ...(args.redis ? { REDIS_URL: redisUrl, REDIS_KEY_PREFIX: redisPrefix } : {}),
  };
}

async function waitForHealth(
  base: string,
  child: ChildProcess,
  started: number,
  stderr: () => string,
): Promise<number> {
  const deadline = started + 180_000; // a loaded CI host can take a minute to start a cluster from source
  while (performance.now() < deadline) {
    if (child.exitCode !== null)
      throw new Error(`process exited (${child.exitCode}) before answering: ${stderr().slice(-800)}`);
    try {
      const res = await fetch(`${base}/api/health`);
      await res.arrayBuffer();
      if (res.status === 200) return performance.now() - started;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`no 200 from ${base}/api/health within 180 s: ${stderr().slice(-800)}`);
}

async function startProcess(name: string, argv: string[], env: NodeJS.ProcessEnv, port: number): Promise<Running> {
  const started = performance.now();
  const child = spawn(process.execPath, argv, { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const base = `http://127.0.0.1:${port}`;
  const startupMs = await waitForHealth(base, child, started, () => stderr);
  return {
    name,
    child,
    port,
    base,
    startupMs,
    stop: () =>
      new Promise<void>((resolveStop) => {
        if (child.exitCode !== null) return resolveStop();
        const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
        child.once('exit', () => {
          clearTimeout(timer);
          resolveStop();
        });
        child.kill('SIGTERM');
      }),
  };
}

async function startService(databaseUrl: string, extraEnv: Record<string, string> = {}): Promise<Running> {
  const port = await freePort();
  const entry = args['from-source'] ? [...tsxArgs, join(ROOT, 'src', 'server.ts')] : [join(ROOT, 'dist', 'server.js')];
  return startProcess('flokie', entry, { ...serviceEnv(databaseUrl, port), ...extraEnv }, port);
}

// Inside the project so its imports resolve from node_modules, whatever --cache-dir says.
const baselineFile = join(ROOT, 'var', 'bench', `baseline-${process.pid}.mjs`);
async function startBaseline(headers?: Record<string, string>): Promise<Running> {
  const port = await freePort();
  const env = {
    PATH: process.env.PATH,
    NODE_ENV: 'production',
    PORT: String(port),
    ...(headers ? { BASELINE_HEADERS: JSON.stringify(headers) } : {}),
  };
  return startProcess(headers ? 'baseline+headers' : 'baseline', [baselineFile], env, port);
}

/** Headers Node writes itself or that describe the body: the baseline sends its own. */
const OWN_HEADERS = new Set([
  'content-length',
  'content-type',
  'date',
  'connection',
  'keep-alive',
  'transfer-encoding',
]);

/** The response headers Flokie sends on an answer, for the baseline that sends the same. */
async function responseHeaders(url: string, init: RequestInit): Promise<Record<string, string>> {
  const res = await fetch(url, init);
  await res.arrayBuffer();
  if (res.status !== 200) throw new Error(`${url} answered ${res.status}`);
  return Object.fromEntries([...res.headers].filter(([name]) => !OWN_HEADERS.has(name)));
}

// ---------------------------------------------------------------- measuring

interface Figure {
  runs: LoadResult[];
  rps: number;
  /** Server CPU time per answered request (all its threads): a cost that other load on the machine barely moves. */
  cpuMsPerRequest: number;
  p50: number;
  p95: number;
  p99: number;
  non2xx: number;
  errors: number;
}

function summarise(runs: LoadResult[]): Figure {
  return {
    runs,
    rps: median(runs.map((r) => r.rps)),
    cpuMsPerRequest: median(runs.map((r) => r.serverCpuMsPerRequest ?? NaN)),
    p50: median(runs.map((r) => r.latencyMs.p50)),
    p95: median(runs.map((r) => r.latencyMs.p95)),
    p99: median(runs.map((r) => r.latencyMs.p99)),
    non2xx: runs.reduce((n, r) => n + r.non2xx, 0),
    errors: runs.reduce((n, r) => n + r.errors + r.timeouts, 0),
  };
}

const tokens = new TokenService({
  secret: secrets.JWT_SECRET_KEY,
  issuer: 'flokie',
  audience: 'flokie-api',
  accessTtlSeconds: 3600,
  refreshTtlSeconds: 30 * 86400,
});
const accessFor = async (session: number, users: number) =>
  (await tokens.sign('access', { sub: seedUserId(seedSessionUser(session, users)), sid: seedSessionId(session) }))
    .token;
const refreshFor = async (session: number, users: number) =>
  (
    await tokens.sign('refresh', {
      sub: seedUserId(seedSessionUser(session, users)),
      sid: seedSessionId(session),
      jti: seedRefreshJti(session),
    })
  ).token;

const ADMIN_SEARCH = 'user000042';

/**
 * Scenario 7: /api/health p99 while worst-case registrations stream in. The password is the
 * review's `'p@$$w0rd' * 16` (128 characters), which costs zxcvbn the most per character; every
 * registration is refused as too easy to guess, after the estimate. The estimate runs in worker
 * threads on at most the bytes the hasher uses (src/modules/auth/password-policy.ts), so the
 * probe's latency is the event loop's, not the estimator's. Target: p99 under 50 ms.
 */
const STRENGTH_PASSWORD = 'p@$$w0rd'.repeat(16);
async function strengthScenario(service: Running): Promise<{ idle: Figure; flood: Figure; registrations: Figure }> {
  const probe = (): LoadJob => ({
    url: `${service.base}/api/health`,
    connections: 1,
    overallRate: profile.probeRate,
    durationSeconds: profile.loginDuration,
  });
  const tag = randomBytes(3).toString('hex');
  const registrations = (run: number): LoadJob => ({
    url: `${service.base}/api/auth/register`,
    method: 'POST',
    variants: Array.from({ length: 20_000 }, (_, i) => ({
      body: JSON.stringify({
        username: `strength_${tag}_${run}_${i}`,
        email: `strength_${tag}_${run}_${i}@example.com`,
        password: STRENGTH_PASSWORD,
      }),
    })),
    connections: profile.loginConnections,
    durationSeconds: profile.loginDuration,
  });
  await load({ ...registrations(-1), durationSeconds: Math.max(profile.warmup, 2) });
  const idleRuns: LoadResult[] = [];
  const floodRuns: LoadResult[] = [];
  const registrationRuns: LoadResult[] = [];
  for (let i = 0; i < profile.runs; i++) {
    idleRuns.push(await load(probe()));
    const [r, p] = await Promise.all([load(registrations(i)), load(probe())]);
    registrationRuns.push(r);
    floodRuns.push(p);
    log(
      `strength run ${i + 1}: ${r.requests} worst-case registrations ` +
        `(${(r.requests / profile.loginDuration).toFixed(1)}/s, ${JSON.stringify(r.statuses)}); health p99 idle ` +
        `${idleRuns[i]!.latencyMs.p99.toFixed(2)} ms, during ${p.latencyMs.p99.toFixed(2)} ms (max ` +
        `${p.latencyMs.max.toFixed(2)} ms)`,
    );
  }
  return { idle: summarise(idleRuns), flood: summarise(floodRuns), registrations: summarise(registrationRuns) };
}

/** The rows of scenario 7 (shared by the full run and `--only strength`). */
function strengthRows(m: { idle: Figure; flood: Figure; registrations: Figure }): Row[] {
  const answered = m.registrations.runs.reduce((n, r) => n + r.requests, 0);
  const statuses: Record<string, number> = {};
  for (const r of m.registrations.runs)
    for (const [code, n] of Object.entries(r.statuses)) statuses[code] = (statuses[code] ?? 0) + n;
  return [
    {
      id: 'strength.health_p99',
      scenario: '7. GET /api/health p99 while worst-case registrations stream in',
      flokie: m.flood.p99,
      reference: m.idle.p99,
      referenceLabel: 'same probe, idle',
      unit: 'ms',
      target: '< 50 ms',
      ratio: m.idle.p99 > 0 ? m.flood.p99 / m.idle.p99 : null,
      pass: Number.isFinite(m.flood.p99) ? m.flood.p99 < 50 : null,
    },
    {
      id: 'strength.registrations',
      scenario: `7. worst-case registrations answered ('p@$$w0rd' x 16, ${profile.loginConnections} connections)`,
      flokie: answered / (m.registrations.runs.length * profile.loginDuration),
      reference: null,
      referenceLabel: '',
      unit: 'req/s',
      target: '',
      ratio: null,
      pass: null,
      note: `statuses ${JSON.stringify(statuses)}`,
    },
  ];
}

// ---------------------------------------------------------------- the run

/**
 * Runs the jobs of one scenario on several targets in turn, `runs` times (after one warm-up
 * each): A1 B1 A2 B2 … Interleaving means a slow patch on a shared machine hits both sides, and
 * ratios are taken run by run (median of the per-run ratios).
 */
async function interleaved<K extends string>(
  label: string,
  jobs: Record<K, (run: number) => LoadJob>,
  servers: Record<K, Running>,
): Promise<Record<K, Figure>> {
  const keys = Object.keys(jobs) as K[];
  for (const key of keys) await load({ ...jobs[key](-1), durationSeconds: profile.warmup });
  const runs = Object.fromEntries(keys.map((k) => [k, [] as LoadResult[]])) as Record<K, LoadResult[]>;
  for (let i = 0; i < profile.comparedRuns; i++) {
    for (const key of keys) {
      const pid = servers[key].child.pid!;
      const before = cpuMs(pid);
      const result = await load(jobs[key](i));
      result.serverCpuMsPerRequest = result.requests ? (cpuMs(pid) - before) / result.requests : NaN;
      runs[key].push(result);
    }
  }
  const out = {} as Record<K, Figure>;
  for (const key of keys) {
    out[key] = summarise(runs[key]);
    const f = out[key];
    log(
      `${label} [${key}]: ${f.rps.toFixed(1)} req/s, server CPU ${(f.cpuMsPerRequest * 1000).toFixed(0)} µs/req, ` +
        `p50 ${f.p50.toFixed(2)} ms, p95 ${f.p95.toFixed(2)} ms, p99 ${f.p99.toFixed(2)} ms` +
        `${f.non2xx ? `, ${f.non2xx} non-2xx ${JSON.stringify(runs[key].map((r) => r.statuses))}` : ''}`,
    );
  }
  return out;
}

/** Median of run-by-run ratios of a figure (rps by default). */
function pairedRatio(
  a: Figure | null | undefined,
  b: Figure | null | undefined,
  pick: (r: LoadResult) => number = (r) => r.rps,
): number | null {
  if (!a || !b) return null;
  const ratios = a.runs
    .map((r, i) => (b.runs[i] && pick(b.runs[i]!) > 0 ? pick(r) / pick(b.runs[i]!) : NaN))
    .filter(Number.isFinite);
  return ratios.length ? median(ratios) : null;
}

/** An empty database of its own (the scenario needs no seed). */
async function freshDatabase(name: string): Promise<DatabaseTarget> {
  if (args.db === 'sqlite') {
    const file = join(cacheDir, `propagation_${process.pid}_${name}.db`);
    const files = [file, `${file}-wal`, `${file}-shm`];
    files.forEach((f) => rmSync(f, { force: true }));
    return { url: `sqlite:${file}`, cleanup: async () => files.forEach((f) => rmSync(f, { force: true })) };
  }
  const database = `flokie_bench_prop_${process.pid}_${name}`;
  await pgAdmin((c) => c.query(`create database ${database}`));
  return {
    url: pgUrlFor(database),
    cleanup: () => pgAdmin((c) => c.query(`drop database if exists ${database} with (force)`)).then(() => {}),
  };
}

/** Scenario 8 (bench/propagation.ts), never with Redis: it measures what holds without it. */
async function runPropagation(): Promise<PropagationResult> {
  const shared = await freshDatabase('instances');
  const own = await freshDatabase('cluster');
  const noRedis = { REDIS_URL: '' };
  try {
    return await measurePropagation({
      startInstance: () => startService(shared.url, noRedis),
      startCluster: () => startService(own.url, { ...noRedis, WEB_CONCURRENCY: '2' }),
      // serviceEnv leaves CACHE_SYNC_INTERVAL_MS at its default.
      syncIntervalMs: 1000,
      trials: quick ? 3 : 20,
      password: SEED_PASSWORD,
      log,
    });
  } finally {
    await shared.cleanup();
    await own.cleanup();
  }
}

function propagationRows(p: PropagationResult): Row[] {
  const allowanceMs = 50;
  return [
    {
      id: 'propagation.instances',
      scenario: `7. revocation reaching another instance without Redis (slowest of ${p.instances.trials})`,
      flokie: p.instances.maxMs,
      reference: p.instances.syncIntervalMs,
      referenceLabel: 'CACHE_SYNC_INTERVAL_MS',
      unit: 'ms',
      ratio: null,
      target: `≤ interval + one poll (${allowanceMs} ms)`,
      pass: p.instances.maxMs <= p.instances.syncIntervalMs + allowanceMs,
      note: `median ${p.instances.medianMs} ms, p95 ${p.instances.p95Ms} ms, fastest ${p.instances.minMs} ms`,
    },
    {
      id: 'propagation.cluster',
      scenario: '7. logouts refused by both workers on the next two requests (WEB_CONCURRENCY=2, no Redis)',
      flokie: p.cluster.refusedOnNextRequests,
      reference: p.cluster.trials,
      referenceLabel: 'logouts',
      unit: '',
      ratio: p.cluster.trials ? p.cluster.refusedOnNextRequests / p.cluster.trials : null,
      target: 'all',
      pass: p.cluster.refusedOnNextRequests === p.cluster.trials,
      note: `the two requests took ${p.cluster.medianMs} ms median, ${p.cluster.maxMs} ms max`,
    },
  ];
}

async function main() {
  const machine = {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    freeMemoryGiB: Math.round((freemem() / 2 ** 30) * 10) / 10,
    node: process.version,
    os: `${platform()} ${release()}`,
    /** Other work on the machine skews every figure; recorded so a noisy run can be recognised. */
    loadAverageAtStart: loadavg().map((x) => Math.round(x * 100) / 100),
  };
  const commit =
    spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).stdout.trim() || 'unknown';
  log(
    `machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, node ${machine.node}, load ` +
      `${machine.loadAverageAtStart.join(' ')}; db ${args.db}${args.redis ? ' + redis' : ''}${quick ? ' (quick)' : ''}`,
  );

  if (!args['from-source']) {
    log('building (npm run build)');
    const build = spawnSync('npm', ['run', 'build'], { cwd: ROOT, encoding: 'utf8' });
    if (build.status !== 0) throw new Error(`build failed:\n${build.stdout}${build.stderr}`);
  }
  if (args.only === 'propagation') {
    const propagation = await runPropagation();
    const out = resolve(args.out!);
    mkdirSync(out, { recursive: true });
    const rows = propagationRows(propagation);
    const md = [
      `Run ${new Date().toISOString()} at commit ${commit} — ${machine.cpu}, ${machine.cores} cores, Node ` +
        `${machine.node}; database ${args.db}, no Redis${quick ? ' — QUICK SMOKE RUN' : ''}.`,
      '',
      '| Scenario | Flokie | Reference | Target | Result |',
      '| --- | ---: | ---: | --- | --- |',
      ...rows.map(
        (r) =>
          `| ${r.scenario} | ${fmt(r.flokie, r.unit)} | ${fmt(r.reference, r.unit)} (${r.referenceLabel}) | ` +
          `${r.target} | ${r.pass ? 'met' : 'MISSED'} (${r.note}) |`,
      ),
    ].join('\n');
    writeFileSync(
      join(out, 'propagation.json'),
      `${JSON.stringify(
        { date: new Date().toISOString(), commit, machine, options: { db: args.db, quick }, rows, raw: propagation },
        null,
        2,
      )}\n`,
    );
    writeFileSync(join(out, 'propagation.md'), `${md}\n`);
    process.stdout.write(`\n${md}\n\nwritten: ${join(out, 'propagation.json')}, ${join(out, 'propagation.md')}\n`);
    return;
  }
  const baselineSource = readFileSync(join(ROOT, 'bench', 'baseline.ts'), 'utf8');
  mkdirSync(dirname(baselineFile), { recursive: true });
  writeFileSync(
    baselineFile,
    ts.transpileModule(baselineSource, {
      compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 },
    }).outputText,
  );

  if (args.only === 'strength') {
    const db = await seededDatabase(profile.smallUsers, profile.smallRevoked);
    const service = await startService(db.url);
    try {
      const rows = strengthRows(await strengthScenario(service));
      writeScenarioOutputs('strength', {
        date: new Date().toISOString(),
        commit,
        machine: { ...machine, loadAverageAtEnd: loadavg().map((x) => Math.round(x * 100) / 100) },
        rows,
      });
    } finally {
      await service.stop();
      await db.cleanup();
      rmSync(baselineFile, { force: true });
      if (args.redis) await clearRedisKeys().catch(() => {});
    }
    return;
  }
  const small = await seededDatabase(profile.smallUsers, profile.smallRevoked);
  const large = await seededDatabase(profile.large, profile.large);
  const cleanups: (() => Promise<unknown>)[] = [
    () => small.cleanup(),
    () => large.cleanup(),
    async () => rmSync(baselineFile, { force: true }),
  ];
  const running: Running[] = [];
  try {
    const meToken = await accessFor(2, profile.smallUsers);

    // --- start-up and peak memory: fresh processes (Flokie and baseline in turn), straight into 200 connections on /me
    const startups = { flokie: [] as number[], baseline: [] as number[] };
    const peaks = { flokie: [] as number[], baseline: [] as number[] };
    for (let i = 0; i < profile.runs; i++) {
      for (const [key, start] of [
        ['flokie', () => startService(small.url)],
        ['baseline', () => startBaseline()],
      ] as const) {
        const proc = await start();
        try {
          startups[key].push(proc.startupMs);
          await load({
            url: `${proc.base}/api/auth/me`,
            headers: { authorization: `Bearer ${meToken}` },
            connections: profile.memoryConnections,
            durationSeconds: profile.duration,
          });
          peaks[key].push(peakRssBytes(proc.child.pid!));
        } finally {
          await proc.stop();
        }
      }
    }
    const serviceMemory = {
      startupMs: median(startups.flokie),
      peakRssBytes: median(peaks.flokie),
      startups: startups.flokie,
      peaks: peaks.flokie,
    };
    const baselineMemory = {
      startupMs: median(startups.baseline),
      peakRssBytes: median(peaks.baseline),
      startups: startups.baseline,
      peaks: peaks.baseline,
    };
    const startupRatio = median(startups.flokie.map((x, i) => x / startups.baseline[i]!));
    log(
      `start-up: flokie ${serviceMemory.startupMs.toFixed(0)} ms, ` +
        `baseline ${baselineMemory.startupMs.toFixed(0)} ms; ` +
        `peak RSS flokie ${(serviceMemory.peakRssBytes / 2 ** 20).toFixed(1)} MiB, baseline ` +
        `${(baselineMemory.peakRssBytes / 2 ** 20).toFixed(1)} MiB`,
    );

    // --- everything else with the baseline, Flokie on the small and Flokie on the large database all up
    const baseline = await startBaseline();
    running.push(baseline);
    const service = await startService(small.url);
    running.push(service);
    const largeService = await startService(large.url);
    running.push(largeService);

    const job = (base: string, path: string, extra: Partial<LoadJob> = {}): LoadJob => ({
      url: `${base}${path}`,
      connections: profile.connections,
      durationSeconds: profile.duration,
      ...extra,
    });
    const auth = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });
    const baselineWithHeaders = await startBaseline(
      await responseHeaders(`${service.base}/api/auth/me`, auth(meToken)),
    );
    running.push(baselineWithHeaders);

    const health = await interleaved(
      'GET /api/health',
      { baseline: () => job(baseline.base, '/api/health'), flokie: () => job(service.base, '/api/health') },
      { baseline, flokie: service },
    );
    const meTokenLarge = await accessFor(2, profile.large);
    const me = await interleaved(
      'GET /api/auth/me',
      {
        baseline: () => job(baseline.base, '/api/auth/me'),
        baselineHeaders: () => job(baselineWithHeaders.base, '/api/auth/me'),
        flokie: () => job(service.base, '/api/auth/me', auth(meToken)),
        flokieLarge: () => job(largeService.base, '/api/auth/me', auth(meTokenLarge)),
      },
      { baseline, baselineHeaders: baselineWithHeaders, flokie: service, flokieLarge: largeService },
    );
    await baselineWithHeaders.stop();
    const coldSmall = await Promise.all(
      Array.from({ length: profile.coldTokens }, (_, i) => accessFor(i + 1, profile.smallUsers)),
    );
    const coldLarge = await Promise.all(
      Array.from({ length: profile.coldTokens }, (_, i) => accessFor(i + 1, profile.large)),
    );
    const meCold = await interleaved(
      'GET /api/auth/me, first use of each token',
      {
        flokie: () => job(service.base, '/api/auth/me', { variants: coldSmall.map((t) => auth(t)) }),
        flokieLarge: () => job(largeService.base, '/api/auth/me', { variants: coldLarge.map((t) => auth(t)) }),
      },
      { flokie: service, flokieLarge: largeService },
    );

    const admin: Record<'list' | 'search', { flokie: Figure; flokieLarge: Figure } | null> = {
      list: null,
      search: null,
    };
    const adminSmallToken = await accessFor(1, profile.smallUsers);
    const adminLargeToken = await accessFor(1, profile.large);
    for (const [key, path] of [
      ['list', `/api/users?search=${ADMIN_SEARCH}`],
      ['search', `/api/users/search?q=${ADMIN_SEARCH}`],
    ] as const) {
      const probe = await fetch(`${service.base}${path}`, auth(adminSmallToken));
      await probe.arrayBuffer();
      if (probe.status === 404) {
        log(`admin ${key} (${path}): endpoint missing (404), reported as n/a`);
        continue;
      }
      if (probe.status !== 200) log(`admin ${key} (${path}) answered ${probe.status}; measuring anyway`);
      admin[key] = await interleaved(
        `admin ${key}`,
        {
          flokie: () => job(service.base, path, auth(adminSmallToken)),
          flokieLarge: () => job(largeService.base, path, auth(adminLargeToken)),
        },
        { flokie: service, flokieLarge: largeService },
      );
    }

    // Each run (and the warm-up) spends its own sessions: a refresh token is single-use.
    const refreshPools = await Promise.all(
      Array.from({ length: profile.comparedRuns + 1 }, (_, run) => {
        const first = refreshSessionsBase + 1 + run * profile.connections;
        return Promise.all(
          Array.from({ length: profile.connections }, (_, i) => refreshFor(first + i, profile.smallUsers)),
        );
      }),
    );
    const refresh = (
      await interleaved(
        'POST /api/auth/refresh',
        {
          flokie: (run) =>
            job(service.base, '/api/auth/refresh', { method: 'POST', refreshTokens: refreshPools[run + 1] }),
        },
        { flokie: service },
      )
    ).flokie;

    // Only Flokie on the small database stays up for the hashing figures.
    await baseline.stop();
    await largeService.stop();

    const probe = (): LoadJob => ({
      url: `${service.base}/api/health`,
      connections: 1,
      overallRate: profile.probeRate,
      durationSeconds: profile.loginDuration,
    });
    // Logins with correct passwords (a success clears the account's failure counter) spread over many accounts.
    const loginUsers = Math.min(profile.smallUsers, 500);
    const loginJob = (): LoadJob => ({
      url: `${service.base}/api/auth/login`,
      method: 'POST',
      variants: Array.from({ length: loginUsers - 1 }, (_, i) => ({
        body: JSON.stringify({ username: seedUsername(i + 2), password: SEED_PASSWORD }),
      })),
      connections: profile.loginConnections,
      durationSeconds: profile.loginDuration,
    });
    await load({ ...loginJob(), durationSeconds: Math.max(profile.warmup, 2) });
    const hashRuns: number[] = [];
    const hashCpuRuns: number[] = [];
    const probeIdleRuns: LoadResult[] = [];
    const loginRuns: LoadResult[] = [];
    const floodProbeRuns: LoadResult[] = [];
    for (let i = 0; i < profile.runs; i++) {
      // Raw capacity right before each login run, with the service idle, so both see the same machine.
      const capacity = JSON.parse(
        (
          await runNodeScript(join(ROOT, 'bench', 'hash-capacity.ts'), [
            String(BCRYPT_ROUNDS),
            String(profile.hashSeconds),
          ])
        ).trim(),
      ) as { perSecond: number; cpuMsPerVerify: number };
      hashRuns.push(capacity.perSecond);
      hashCpuRuns.push(capacity.cpuMsPerVerify);
      probeIdleRuns.push(await load(probe()));
      const cpuBefore = cpuMs(service.child.pid!);
      const [l, p] = await Promise.all([load(loginJob()), load(probe())]);
      // The probe's own requests cost next to nothing beside a bcrypt verification; all CPU is charged to the logins.
      l.serverCpuMsPerRequest = l.ok2xx ? (cpuMs(service.child.pid!) - cpuBefore) / l.ok2xx : NaN;
      loginRuns.push(l);
      floodProbeRuns.push(p);
      log(
        `run ${i + 1}: raw bcrypt(${BCRYPT_ROUNDS}) ${capacity.perSecond.toFixed(2)}/s ` +
          `(${capacity.cpuMsPerVerify.toFixed(0)} ms CPU each), logins ${l.rps.toFixed(2)}/s ` +
          `(${(l.serverCpuMsPerRequest ?? NaN).toFixed(0)} ms server CPU each)` +
          `${l.non2xx ? ` (non-2xx ${JSON.stringify(l.statuses)})` : ''}; health p99 idle ` +
          `${probeIdleRuns[i]!.latencyMs.p99.toFixed(2)} ms, under flood ${p.latencyMs.p99.toFixed(2)} ms`,
      );
    }
    const hashCapacity = median(hashRuns);
    const login = summarise(loginRuns);
    const probeIdle = summarise(probeIdleRuns);
    const probeFlood = summarise(floodProbeRuns);
    const loginRatio = median(loginRuns.map((r, i) => r.rps / hashRuns[i]!));
    const strength = await strengthScenario(service);
    await service.stop();

    let plans: PlanReport[] = [];
    if (args.db === 'sqlite') {
      plans = await explainAdminQueries(large.url.slice('sqlite:'.length), secrets, adminLargeToken, ADMIN_SEARCH);
      for (const plan of plans) log(`query plan ${plan.request}: ${plan.indexed ? 'indexed' : 'NOT INDEXED'}`);
    }

    const propagation = await runPropagation();
    const results = buildResults({
      machine: { ...machine, loadAverageAtEnd: loadavg().map((x) => Math.round(x * 100) / 100) },
      commit,
      hashCapacity,
      hashRuns,
      hashCpuMs: median(hashCpuRuns),
      loginRatio,
      startupRatio,
      serviceMemory,
      baselineMemory,
      health,
      me,
      meCold,
      refresh,
      login,
      probeIdle,
      probeFlood,
      strength,
      admin,
      plans,
    });
    results.rows.push(...propagationRows(propagation));
    Object.assign(results.raw, { propagation });
    writeOutputs(results);
  } finally {
    for (const proc of running) await proc.stop().catch(() => {});
    for (const cleanup of cleanups) await cleanup().catch(() => {});
    if (args.redis) await clearRedisKeys().catch(() => {});
  }
}

async function clearRedisKeys() {
  const { Redis } = await import('ioredis');
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${redisPrefix}*`, 'COUNT', 1000);
    if (keys.length) await redis.del(...keys);
    cursor = next;
  } while (cursor !== '0');
  redis.disconnect();
}

// ---------------------------------------------------------------- results

interface Row {
  id: string;
  scenario: string;
  flokie: number | null;
  reference: number | null;
  referenceLabel: string;
  unit: string;
  /**
   * Flokie / reference. Throughput ratios are the median of run-by-run ratios (the two sides
   * were measured in turn), so they can differ a little from the ratio of the two medians.
   */
  ratio: number | null;
  target: string;
  /** true / false against the target; null when there is no target or no figure. */
  pass: boolean | null;
  note?: string;
}

function buildResults(m: {
  machine: Record<string, unknown>;
  commit: string;
  hashCapacity: number;
  hashRuns: number[];
  hashCpuMs: number;
  loginRatio: number;
  startupRatio: number;
  serviceMemory: { startupMs: number; peakRssBytes: number };
  baselineMemory: { startupMs: number; peakRssBytes: number };
  health: Record<'baseline' | 'flokie', Figure>;
  me: Record<'baseline' | 'baselineHeaders' | 'flokie' | 'flokieLarge', Figure>;
  meCold: Record<'flokie' | 'flokieLarge', Figure>;
  refresh: Figure;
  login: Figure;
  probeIdle: Figure;
  probeFlood: Figure;
  strength: { idle: Figure; flood: Figure; registrations: Figure };
  admin: Record<'list' | 'search', { flokie: Figure; flokieLarge: Figure } | null>;
  plans: PlanReport[];
}) {
  const plain = (a: number | null | undefined, b: number | null | undefined) =>
    a == null || b == null || !Number.isFinite(a) || !Number.isFinite(b) || b === 0 ? null : a / b;
  const MiB = (b: number) => b / 2 ** 20;
  const small = profile.smallUsers.toLocaleString('en');
  const big = profile.large.toLocaleString('en');
  const rows: Row[] = [];
  const add = (row: Omit<Row, 'ratio' | 'pass'> & { ratio?: number | null; check?: (r: number) => boolean }) => {
    const r = row.ratio !== undefined ? row.ratio : plain(row.flokie, row.reference);
    const { check, ...rest } = row;
    rows.push({ ...rest, ratio: r, pass: check && r !== null ? check(r) : null });
  };
  const p99 = (r: LoadResult) => r.latencyMs.p99;
  const p95 = (r: LoadResult) => r.latencyMs.p95;

  add({
    id: 'health.rps',
    scenario: '1. GET /api/health',
    flokie: m.health.flokie.rps,
    reference: m.health.baseline.rps,
    referenceLabel: 'bare Fastify',
    unit: 'req/s',
    target: '',
    ratio: pairedRatio(m.health.flokie, m.health.baseline),
  });
  add({
    id: 'health.cpu',
    scenario: '1. GET /api/health server CPU per request',
    flokie: m.health.flokie.cpuMsPerRequest * 1000,
    reference: m.health.baseline.cpuMsPerRequest * 1000,
    referenceLabel: 'bare Fastify',
    unit: 'µs',
    target: '',
  });
  add({
    id: 'health.p99',
    scenario: '1. GET /api/health p99',
    flokie: m.health.flokie.p99,
    reference: m.health.baseline.p99,
    referenceLabel: 'bare Fastify',
    unit: 'ms',
    target: '',
    ratio: pairedRatio(m.health.flokie, m.health.baseline, p99),
  });
  add({
    id: 'me.rps',
    scenario: '2. GET /api/auth/me',
    flokie: m.me.flokie.rps,
    reference: m.me.baseline.rps,
    referenceLabel: 'bare Fastify',
    unit: 'req/s',
    target: '≥ 50 %',
    ratio: pairedRatio(m.me.flokie, m.me.baseline),
    check: (r) => r >= 0.5,
  });
  add({
    id: 'me.p99',
    scenario: '2. GET /api/auth/me p99',
    flokie: m.me.flokie.p99,
    reference: m.me.baseline.p99,
    referenceLabel: 'bare Fastify',
    unit: 'ms',
    target: '',
    ratio: pairedRatio(m.me.flokie, m.me.baseline, p99),
  });
  add({
    id: 'me.cpu',
    scenario: '2. GET /api/auth/me server CPU per request',
    flokie: m.me.flokie.cpuMsPerRequest * 1000,
    reference: m.me.baseline.cpuMsPerRequest * 1000,
    referenceLabel: 'bare Fastify',
    unit: 'µs',
    target: '',
    note: 'reference / Flokie = capacity share on an idle machine',
  });
  add({
    id: 'me.headers_only.rps',
    scenario: "2. bare Fastify sending Flokie's response headers",
    flokie: m.me.baselineHeaders.rps,
    reference: m.me.baseline.rps,
    referenceLabel: 'bare Fastify',
    unit: 'req/s',
    target: '',
    ratio: pairedRatio(m.me.baselineHeaders, m.me.baseline),
    note: 'the cost of the headers alone, on both ends of the wire',
  });
  add({
    id: 'me.vs_headers.rps',
    scenario: '2. GET /api/auth/me against the same headers',
    flokie: m.me.flokie.rps,
    reference: m.me.baselineHeaders.rps,
    referenceLabel: 'bare Fastify + the same headers',
    unit: 'req/s',
    target: '',
    ratio: pairedRatio(m.me.flokie, m.me.baselineHeaders),
    note: 'the cost of the work behind the headers',
  });
  add({
    id: 'me_cold.rps',
    scenario: '2. GET /api/auth/me, first use of each token',
    flokie: m.meCold.flokie.rps,
    reference: m.me.baseline.rps,
    referenceLabel: 'bare Fastify',
    unit: 'req/s',
    target: '',
    note: 'each request misses the token cache: one indexed query',
  });
  add({
    id: 'login.rps',
    scenario: `3. POST /api/auth/login (bcrypt ${BCRYPT_ROUNDS})`,
    flokie: m.login.rps,
    reference: m.hashCapacity,
    referenceLabel: 'raw bcrypt verify, all cores',
    unit: 'logins/s',
    target: '≥ 90 %',
    ratio: m.loginRatio,
    check: (r) => r >= 0.9,
  });
  add({
    id: 'login.cpu',
    scenario: '3. CPU per login (server, all threads)',
    flokie: m.login.cpuMsPerRequest,
    reference: m.hashCpuMs,
    referenceLabel: 'one raw bcrypt verify',
    unit: 'ms CPU',
    target: '',
    note: 'reference / Flokie = capacity share on an idle machine',
  });
  add({
    id: 'health.p99_flood',
    scenario: '3. GET /api/health p99 while logins flood',
    flokie: m.probeFlood.p99,
    reference: m.probeIdle.p99,
    referenceLabel: 'same probe, idle',
    unit: 'ms',
    target: '',
  });
  add({
    id: 'refresh.rps',
    scenario: '4. POST /api/auth/refresh (rotation)',
    flokie: m.refresh.rps,
    reference: null,
    referenceLabel: '',
    unit: 'req/s',
    target: '',
  });
  add({
    id: 'refresh.cpu',
    scenario: '4. POST /api/auth/refresh server CPU per request',
    flokie: m.refresh.cpuMsPerRequest * 1000,
    reference: null,
    referenceLabel: '',
    unit: 'µs',
    target: '',
  });
  add({
    id: 'refresh.p99',
    scenario: '4. POST /api/auth/refresh p99',
    flokie: m.refresh.p99,
    reference: null,
    referenceLabel: '',
    unit: 'ms',
    target: '',
  });
  add({
    id: 'growth.me',
    scenario: `5. /me with ${big} users + ${big} revoked tokens`,
    flokie: m.me.flokieLarge.rps,
    reference: m.me.flokie.rps,
    referenceLabel: `${small} users`,
    unit: 'req/s',
    target: '≥ 90 %',
    ratio: pairedRatio(m.me.flokieLarge, m.me.flokie),
    check: (r) => r >= 0.9,
  });
  add({
    id: 'growth.me_cpu',
    scenario: `5. /me server CPU per request, ${big} users`,
    flokie: m.me.flokieLarge.cpuMsPerRequest * 1000,
    reference: m.me.flokie.cpuMsPerRequest * 1000,
    referenceLabel: `${small} users`,
    unit: 'µs',
    target: '',
  });
  add({
    id: 'growth.me_cold',
    scenario: `5. /me first use of each token, ${big} users`,
    flokie: m.meCold.flokieLarge.rps,
    reference: m.meCold.flokie.rps,
    referenceLabel: `${small} users`,
    unit: 'req/s',
    target: '≥ 90 %',
    ratio: pairedRatio(m.meCold.flokieLarge, m.meCold.flokie),
    check: (r) => r >= 0.9,
  });
  for (const key of ['list', 'search'] as const) {
    const path = key === 'list' ? 'GET /api/users?search=…' : 'GET /api/users/search?q=…';
    const f = m.admin[key];
    const note = f ? undefined : 'n/a (endpoint missing)';
    add({
      id: `growth.admin_${key}.rps`,
      scenario: `5. ${path}, ${big} users`,
      flokie: f?.flokieLarge.rps ?? null,
      reference: f?.flokie.rps ?? null,
      referenceLabel: `${small} users`,
      unit: 'req/s',
      target: '',
      ratio: pairedRatio(f?.flokieLarge, f?.flokie),
      note,
    });
    add({
      id: `growth.admin_${key}.p95`,
      scenario: `5. ${path} p95, ${big} users`,
      flokie: f?.flokieLarge.p95 ?? null,
      reference: f?.flokie.p95 ?? null,
      referenceLabel: `${small} users`,
      unit: 'ms',
      target: '',
      ratio: pairedRatio(f?.flokieLarge, f?.flokie, p95),
      note,
    });
  }
  if (m.plans.length) {
    const indexed = m.plans.every((p) => p.indexed);
    add({
      id: 'growth.admin_indexed',
      scenario: '5. admin list/search query plans use an index',
      flokie: null,
      reference: null,
      referenceLabel: '',
      unit: '',
      target: 'indexed',
      ratio: null,
      note: indexed ? 'yes' : 'NO: see plans',
    });
    rows[rows.length - 1]!.pass = indexed;
  }
  add({
    id: 'memory.peak_rss',
    scenario: `6. peak RSS, ${profile.memoryConnections} connections on /me`,
    flokie: MiB(m.serviceMemory.peakRssBytes),
    reference: MiB(m.baselineMemory.peakRssBytes),
    referenceLabel: 'bare Fastify',
    unit: 'MiB',
    target: '',
  });
  add({
    id: 'startup',
    scenario: '6. start-up to first 200 on /api/health',
    flokie: m.serviceMemory.startupMs,
    reference: m.baselineMemory.startupMs,
    referenceLabel: 'bare Fastify',
    unit: 'ms',
    target: '',
    ratio: m.startupRatio,
  });
  rows.push(...strengthRows(m.strength));

  return {
    date: new Date().toISOString(),
    commit: m.commit,
    machine: m.machine,
    options: {
      db: args.db,
      redis: args.redis,
      quick,
      ...profile,
      benchSeconds: Math.round((performance.now() - benchStarted) / 1000),
    },
    rows,
    raw: {
      hashRuns: m.hashRuns,
      figures: {
        health: m.health,
        me: m.me,
        meCold: m.meCold,
        refresh: m.refresh,
        login: m.login,
        probeIdle: m.probeIdle,
        probeFlood: m.probeFlood,
        strength: m.strength,
        admin: m.admin,
      },
      memory: { service: m.serviceMemory, baseline: m.baselineMemory },
      plans: m.plans,
    },
  };
}

type Results = ReturnType<typeof buildResults>;

function fmt(n: number | null, unit: string): string {
  if (n === null || !Number.isFinite(n)) return 'n/a';
  const digits = unit === 'ms' || unit === 'logins/s' ? 2 : unit === 'MiB' ? 1 : 0;
  return `${n.toLocaleString('en', { minimumFractionDigits: digits, maximumFractionDigits: digits })} ${unit}`;
}

function toMarkdown(results: Results): string {
  const m = results.machine as Record<string, string | number>;
  const o = results.options;
  const loadAtStart = m.loadAverageAtStart as unknown as number[];
  const loadAtEnd = m.loadAverageAtEnd as unknown as number[];
  const lines = [
    `Run ${results.date} at commit ${results.commit} — ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB RAM, Node ` +
      `${m.node}, ${m.os}.`,
    `Load average (1/5/15 min) at start ${loadAtStart.join(' / ')}, at end ${loadAtEnd.join(' / ')}` +
      (loadAtStart[0]! > Number(m.cores) * 0.5
        ? ' — the machine was busy with other work; treat the figures with care'
        : '') +
      '.',
    `Database ${o.db}${o.redis ? ' + Redis' : ''}${o.quick ? ' — QUICK SMOKE RUN, figures not meaningful' : ''}; ` +
      `median of ${o.comparedRuns} run(s) of ${o.duration} s (logins, start-up and memory: ${o.runs} runs, logins ` +
      `${o.loginDuration} s each), ${o.connections} connections (logins ${o.loginConnections}), the compared sides ` +
      `measured in turn and ratios taken run by run; whole bench ${o.benchSeconds} s.`,
    '',
    '| Scenario | Flokie | Reference | Ratio | Target | Result |',
    '| --- | ---: | ---: | ---: | --- | --- |',
  ];
  for (const r of results.rows) {
    const ref =
      r.reference === null ? (r.referenceLabel ? 'n/a' : '—') : `${fmt(r.reference, r.unit)} (${r.referenceLabel})`;
    const ratio =
      r.ratio === null
        ? '—'
        : r.unit === 'req/s' || r.unit === 'logins/s'
          ? `${(r.ratio * 100).toFixed(0)} %`
          : `×${r.ratio.toFixed(2)}`;
    const result = r.pass === null ? (r.note ?? '') : `${r.pass ? 'met' : 'MISSED'}${r.note ? ` (${r.note})` : ''}`;
    lines.push(
      `| ${r.scenario} | ${r.flokie === null && r.note && r.unit === '' ? r.note : fmt(r.flokie, r.unit)} | ${ref} | ` +
        `${ratio} | ${r.target} | ${result} |`,
    );
  }
  if (results.raw.plans.length) {
    lines.push('', 'SQLite query plans of the admin list/search requests on the large database:', '');
    for (const p of results.raw.plans) {
      lines.push(`- \`${p.request}\` — ${p.indexed ? 'indexed' : '**not indexed**'}`);
      for (const q of p.queries)
        lines.push(`  - \`${q.sql.replace(/\s+/g, ' ').slice(0, 200)}\`: ${q.plan.join('; ')}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

function writeOutputs(results: Results) {
  const out = resolve(args.out!);
  mkdirSync(out, { recursive: true });
  // One run per set-up is kept (its date and commit are inside); earlier runs live in git history.
  const md = toMarkdown(results);
  writeFileSync(join(out, 'latest.json'), `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(join(out, 'latest.md'), md);
  process.stdout.write(`\n${md}\nwritten: ${join(out, 'latest.json')}, ${join(out, 'latest.md')}\n`);

  const docs = join(ROOT, 'docs', 'benchmarks.md');
  if (!args['no-docs'] && !quick && defaultSetup && existsSync(docs)) {
    const text = readFileSync(docs, 'utf8');
    const start = '<!-- bench:latest:start -->';
    const end = '<!-- bench:latest:end -->';
    const a = text.indexOf(start);
    const b = text.indexOf(end);
    if (a !== -1 && b > a) {
      writeFileSync(docs, `${text.slice(0, a + start.length)}\n${md}${text.slice(b)}`);
      process.stdout.write(`updated: ${docs}\n`);
    }
  }
}

/** `--only <scenario>`: its rows as a table, and <scenario>.{json,md} in the results folder (the latest run). */
function writeScenarioOutputs(
  scenario: string,
  results: { date: string; commit: string; machine: Record<string, unknown>; rows: Row[] },
) {
  const out = resolve(args.out!);
  mkdirSync(out, { recursive: true });
  const m = results.machine as Record<string, string | number>;
  const lines = [
    `Scenario "${scenario}" alone, ${results.date} at commit ${results.commit} — ${m.cpu}, ${m.cores} cores, Node ` +
      `${m.node}; database ${args.db}${args.redis ? ' + Redis' : ''}${quick ? ' — QUICK SMOKE RUN' : ''}; ` +
      `${profile.runs} run(s) of ${profile.loginDuration} s, median; load average at start ` +
      `${(m.loadAverageAtStart as unknown as number[]).join(' / ')}.`,
    '',
    '| Scenario | Flokie | Reference | Target | Result |',
    '| --- | ---: | ---: | --- | --- |',
    ...results.rows.map(
      (r) =>
        `| ${r.scenario} | ${fmt(r.flokie, r.unit)} | ` +
        `${r.reference === null ? '—' : `${fmt(r.reference, r.unit)} (${r.referenceLabel})`} | ${r.target} | ` +
        `${r.pass === null ? (r.note ?? '') : r.pass ? 'met' : 'MISSED'} |`,
    ),
  ];
  const md = `${lines.join('\n')}\n`;
  const name = scenario;
  writeFileSync(join(out, `${name}.json`), `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(join(out, `${name}.md`), md);
  process.stdout.write(`\n${md}\nwritten: ${join(out, `${name}.md`)}\n`);
}

main().catch((error: unknown) => {
  console.error(`bench failed: ${(error as Error).stack ?? error}`);
  process.exit(1);
});
