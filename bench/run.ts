/**
 * `npm run bench` — measures Flokie side by side with a bare Fastify baseline and writes the
 * figures to bench/results/ (JSON + Markdown, latest and timestamped) and docs/benchmarks.md.
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
 *   --out DIR              results folder (default bench/results)
 *   --no-docs              do not rewrite docs/benchmarks.md
 *   --from-source          run the service with tsx from src/ instead of building (smoke test)
 *   --large N              users and revoked tokens in the "large" database (default 1,000,000)
 *   --runs N, --duration S override the repeat count and seconds per run
 *   --cache-dir DIR        where seeded databases are kept between runs (default var/bench)
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
import { SEED_PASSWORD, seed, seedRefreshJti, seedSessionId, seedSessionUser, seedUserId, seedUsername } from '../scripts/seed-users.js';
import type { LoadJob, LoadResult } from './load.js';
import { explainAdminQueries, type PlanReport } from './query-plan.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BCRYPT_ROUNDS = 12;

// ---------------------------------------------------------------- options

const { values: args } = parseArgs({
  options: {
    db: { type: 'string', default: 'sqlite' },
    redis: { type: 'boolean', default: false },
    quick: { type: 'boolean', default: false },
    out: { type: 'string', default: join(ROOT, 'bench', 'results') },
    'no-docs': { type: 'boolean', default: false },
    'from-source': { type: 'boolean', default: false },
    large: { type: 'string' },
    runs: { type: 'string' },
    duration: { type: 'string' },
    'cache-dir': { type: 'string', default: join(ROOT, 'var', 'bench') },
  },
});
if (args.db !== 'sqlite' && args.db !== 'postgres') {
  console.error('bench: --db must be sqlite or postgres');
  process.exit(2);
}
const quick = args.quick!;
const profile = {
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
const cacheDir = resolve(args['cache-dir']!);
mkdirSync(cacheDir, { recursive: true });
const benchStarted = performance.now();

const log = (message: string) => process.stderr.write(`[bench ${((performance.now() - benchStarted) / 1000).toFixed(0).padStart(3)}s] ${message}\n`);

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
    const child = spawn(process.execPath, [...tsxArgs, script, ...scriptArgs], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolveOut(out) : reject(new Error(`${script} exited ${code}: ${err.trim().slice(-500)}`))));
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
      log(`seeding ${users.toLocaleString('en')} users, ${revoked.toLocaleString('en')} revoked tokens, ${seedSessions.toLocaleString('en')} sessions (cached in ${pristine})`);
      const { seconds } = await seed({ url: `sqlite:${building}`, users, revoked, sessions: seedSessions, bcryptRounds: BCRYPT_ROUNDS });
      log(`seeded in ${seconds.toFixed(1)} s`);
      copyFileSync(building, pristine);
      for (const f of [building, `${building}-wal`, `${building}-shm`]) rmSync(f, { force: true });
    }
    const working = join(cacheDir, `run_${process.pid}_${key}.db`);
    copyFileSync(pristine, working);
    return { url: `sqlite:${working}`, cleanup: async () => [working, `${working}-wal`, `${working}-shm`].forEach((f) => rmSync(f, { force: true })) };
  }
  const pristine = `flokie_bench_${key}`;
  const exists = await pgAdmin(async (c) => (await c.query('select 1 from pg_database where datname = $1', [pristine])).rowCount === 1);
  if (!exists) {
    const building = `${pristine}_building`;
    await pgAdmin(async (c) => {
      await c.query(`drop database if exists ${building} with (force)`);
      await c.query(`create database ${building}`);
    });
    log(`seeding ${users.toLocaleString('en')} users, ${revoked.toLocaleString('en')} revoked tokens into PostgreSQL ${pristine}`);
    const { seconds } = await seed({ url: pgUrlFor(building), users, revoked, sessions: seedSessions, bcryptRounds: BCRYPT_ROUNDS });
    log(`seeded in ${seconds.toFixed(1)} s`);
    await pgAdmin((c) => c.query(`alter database ${building} rename to ${pristine}`));
  }
  const working = `flokie_bench_run_${process.pid}`;
  await pgAdmin(async (c) => {
    await c.query(`drop database if exists ${working} with (force)`);
    await c.query(`create database ${working} template ${pristine}`);
  });
  return { url: pgUrlFor(working), cleanup: () => pgAdmin((c) => c.query(`drop database if exists ${working} with (force)`)).then(() => {}) };
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
    RATE_LIMITS: JSON.stringify({ default: '100000000 per minute', 'auth.login': '100000000 per minute', 'auth.register': '100000000 per minute', 'password.reset': '100000000 per minute' }),
    MAIL_OUTBOX_DIR: join(cacheDir, 'outbox'),
    ...(args.redis ? { REDIS_URL: redisUrl, REDIS_KEY_PREFIX: redisPrefix } : {}),
  };
}

async function waitForHealth(base: string, child: ChildProcess, started: number, stderr: () => string): Promise<number> {
  const deadline = started + 60_000;
  while (performance.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`process exited (${child.exitCode}) before answering: ${stderr().slice(-800)}`);
    try {
      const res = await fetch(`${base}/api/health`);
      await res.arrayBuffer();
      if (res.status === 200) return performance.now() - started;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`no 200 from ${base}/api/health within 60 s: ${stderr().slice(-800)}`);
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

async function startService(databaseUrl: string): Promise<Running> {
  const port = await freePort();
  const entry = args['from-source'] ? [...tsxArgs, join(ROOT, 'src', 'server.ts')] : [join(ROOT, 'dist', 'server.js')];
  return startProcess('flokie', entry, serviceEnv(databaseUrl, port), port);
}

// Inside the project so its imports resolve from node_modules, whatever --cache-dir says.
const baselineFile = join(ROOT, 'var', 'bench', `baseline-${process.pid}.mjs`);
async function startBaseline(): Promise<Running> {
  const port = await freePort();
  return startProcess('baseline', [baselineFile], { PATH: process.env.PATH, NODE_ENV: 'production', PORT: String(port) }, port);
}

// ---------------------------------------------------------------- measuring

interface Figure {
  runs: LoadResult[];
  rps: number;
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
    p50: median(runs.map((r) => r.latencyMs.p50)),
    p95: median(runs.map((r) => r.latencyMs.p95)),
    p99: median(runs.map((r) => r.latencyMs.p99)),
    non2xx: runs.reduce((n, r) => n + r.non2xx, 0),
    errors: runs.reduce((n, r) => n + r.errors + r.timeouts, 0),
  };
}

/** Warm-up, then `runs` measured runs; `jobFor(i)` may give each run fresh inputs. */
async function measure(label: string, jobFor: (run: number) => LoadJob): Promise<Figure> {
  const warm = jobFor(-1);
  await load({ ...warm, durationSeconds: profile.warmup });
  const runs: LoadResult[] = [];
  for (let i = 0; i < profile.runs; i++) runs.push(await load(jobFor(i)));
  const figure = summarise(runs);
  log(`${label}: ${figure.rps.toFixed(1)} req/s, p50 ${figure.p50.toFixed(2)} ms, p99 ${figure.p99.toFixed(2)} ms${figure.non2xx ? `, ${figure.non2xx} non-2xx ${JSON.stringify(runs.map((r) => r.statuses))}` : ''}`);
  return figure;
}

const tokens = new TokenService({ secret: secrets.JWT_SECRET_KEY, issuer: 'flokie', audience: 'flokie-api', accessTtlSeconds: 3600, refreshTtlSeconds: 30 * 86400 });
const accessFor = async (session: number, users: number) =>
  (await tokens.sign('access', { sub: seedUserId(seedSessionUser(session, users)), sid: seedSessionId(session) })).token;
const refreshFor = async (session: number, users: number) =>
  (await tokens.sign('refresh', { sub: seedUserId(seedSessionUser(session, users)), sid: seedSessionId(session), jti: seedRefreshJti(session) })).token;

const ADMIN_SEARCH = 'user000042';
interface AdminFigures {
  list: Figure | null;
  search: Figure | null;
}

async function adminFigures(service: Running, users: number, tag: string): Promise<AdminFigures> {
  const admin = await accessFor(1, users);
  const headers = { authorization: `Bearer ${admin}` };
  const out: AdminFigures = { list: null, search: null };
  for (const [key, path] of [
    ['list', `/api/users?search=${ADMIN_SEARCH}`],
    ['search', `/api/users/search?q=${ADMIN_SEARCH}`],
  ] as const) {
    const probe = await fetch(`${service.base}${path}`, { headers });
    await probe.arrayBuffer();
    if (probe.status === 404) {
      log(`admin ${key} (${path}): endpoint missing (404), reported as n/a`);
      continue;
    }
    if (probe.status !== 200) log(`admin ${key} (${path}) answered ${probe.status}; measuring anyway`);
    out[key] = await measure(`${tag} admin ${key}`, () => ({ url: `${service.base}${path}`, headers, connections: profile.connections, durationSeconds: profile.duration }));
  }
  return out;
}

// ---------------------------------------------------------------- the run

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
  const commit = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).stdout.trim() || 'unknown';
  log(`machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, node ${machine.node}; db ${args.db}${args.redis ? ' + redis' : ''}${quick ? ' (quick)' : ''}`);

  if (!args['from-source']) {
    log('building (npm run build)');
    const build = spawnSync('npm', ['run', 'build'], { cwd: ROOT, encoding: 'utf8' });
    if (build.status !== 0) throw new Error(`build failed:\n${build.stdout}${build.stderr}`);
  }
  const baselineSource = readFileSync(join(ROOT, 'bench', 'baseline.ts'), 'utf8');
  mkdirSync(dirname(baselineFile), { recursive: true });
  writeFileSync(baselineFile, ts.transpileModule(baselineSource, { compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 } }).outputText);

  const small = await seededDatabase(profile.smallUsers, profile.smallRevoked);
  const large = await seededDatabase(profile.large, profile.large);
  const targets = [small, large];
  const cleanups: (() => Promise<unknown>)[] = [...targets.map((t) => () => t.cleanup()), async () => rmSync(baselineFile, { force: true })];
  try {
    // --- raw hashing capacity (nothing else running)
    const hashRuns: number[] = [];
    for (let i = 0; i < profile.runs; i++) {
      const out = JSON.parse((await runNodeScript(join(ROOT, 'bench', 'hash-capacity.ts'), [String(BCRYPT_ROUNDS), String(profile.hashSeconds)])).trim()) as { perSecond: number };
      hashRuns.push(out.perSecond);
    }
    const hashCapacity = median(hashRuns);
    log(`raw bcrypt(${BCRYPT_ROUNDS}) verify capacity: ${hashCapacity.toFixed(2)}/s (${hashRuns.map((x) => x.toFixed(2)).join(', ')})`);

    const meToken = await accessFor(2, profile.smallUsers);

    // --- start-up and peak memory: a fresh process each run, straight into 200 connections on /me
    async function memoryRuns(start: () => Promise<Running>, token: string) {
      const startups: number[] = [];
      const peaks: number[] = [];
      for (let i = 0; i < profile.runs; i++) {
        const proc = await start();
        try {
          startups.push(proc.startupMs);
          await load({ url: `${proc.base}/api/auth/me`, headers: { authorization: `Bearer ${token}` }, connections: profile.memoryConnections, durationSeconds: profile.duration });
          peaks.push(peakRssBytes(proc.child.pid!));
        } finally {
          await proc.stop();
        }
      }
      return { startupMs: median(startups), peakRssBytes: median(peaks), startups, peaks };
    }
    const serviceMemory = await memoryRuns(() => startService(small.url), meToken);
    log(`flokie start-up ${serviceMemory.startupMs.toFixed(0)} ms, peak RSS ${(serviceMemory.peakRssBytes / 2 ** 20).toFixed(1)} MiB`);
    const baselineMemory = await memoryRuns(startBaseline, meToken);
    log(`baseline start-up ${baselineMemory.startupMs.toFixed(0)} ms, peak RSS ${(baselineMemory.peakRssBytes / 2 ** 20).toFixed(1)} MiB`);

    // --- baseline throughput
    const baseline = await startBaseline();
    let baseHealth: Figure;
    let baseMe: Figure;
    try {
      baseHealth = await measure('baseline health', () => ({ url: `${baseline.base}/api/health`, connections: profile.connections, durationSeconds: profile.duration }));
      baseMe = await measure('baseline me', () => ({ url: `${baseline.base}/api/auth/me`, connections: profile.connections, durationSeconds: profile.duration }));
    } finally {
      await baseline.stop();
    }

    // --- Flokie on the small database
    const coldTokensSmall = await Promise.all(Array.from({ length: profile.coldTokens }, (_, i) => accessFor(i + 1, profile.smallUsers)));
    const service = await startService(small.url);
    let health: Figure, me: Figure, meCold: Figure, refresh: Figure, login: Figure, probeIdle: Figure, probeFlood: Figure, adminSmall: AdminFigures;
    try {
      health = await measure('health', () => ({ url: `${service.base}/api/health`, connections: profile.connections, durationSeconds: profile.duration }));
      me = await measure('me (cached token)', () => ({ url: `${service.base}/api/auth/me`, headers: { authorization: `Bearer ${meToken}` }, connections: profile.connections, durationSeconds: profile.duration }));
      meCold = await measure('me (first use of each token)', () => ({
        url: `${service.base}/api/auth/me`,
        variants: coldTokensSmall.map((t) => ({ headers: { authorization: `Bearer ${t}` } })),
        connections: profile.connections,
        durationSeconds: profile.duration,
      }));
      // Each run (and the warm-up) spends its own sessions: a refresh token is single-use.
      let refreshRun = 0;
      const refreshTokens = async () => {
        const first = refreshSessionsBase + 1 + refreshRun++ * profile.connections;
        return Promise.all(Array.from({ length: profile.connections }, (_, i) => refreshFor(first + i, profile.smallUsers)));
      };
      const refreshPools = await Promise.all(Array.from({ length: profile.runs + 1 }, refreshTokens));
      refresh = await measure('refresh', (run) => ({ url: `${service.base}/api/auth/refresh`, method: 'POST', refreshTokens: refreshPools[run + 1], connections: profile.connections, durationSeconds: profile.duration }));
      adminSmall = await adminFigures(service, profile.smallUsers, `${profile.smallUsers} users`);

      const probe = (): LoadJob => ({ url: `${service.base}/api/health`, connections: 1, overallRate: profile.probeRate, durationSeconds: profile.loginDuration });
      const probeIdleRuns: LoadResult[] = [];
      for (let i = 0; i < profile.runs; i++) probeIdleRuns.push(await load(probe()));
      probeIdle = summarise(probeIdleRuns);
      log(`health p99 idle: ${probeIdle.p99.toFixed(2)} ms`);

      // Logins with correct passwords (a success clears the account's failure counter) spread over many accounts.
      const loginUsers = Math.min(profile.smallUsers, 500);
      const loginJob = (): LoadJob => ({
        url: `${service.base}/api/auth/login`,
        method: 'POST',
        variants: Array.from({ length: loginUsers - 1 }, (_, i) => ({ body: JSON.stringify({ username: seedUsername(i + 2), password: SEED_PASSWORD }) })),
        connections: profile.loginConnections,
        durationSeconds: profile.loginDuration,
      });
      await load({ ...loginJob(), durationSeconds: Math.max(profile.warmup, 2) });
      const loginRuns: LoadResult[] = [];
      const floodProbeRuns: LoadResult[] = [];
      for (let i = 0; i < profile.runs; i++) {
        const [l, p] = await Promise.all([load(loginJob()), load(probe())]);
        loginRuns.push(l);
        floodProbeRuns.push(p);
      }
      login = summarise(loginRuns);
      probeFlood = summarise(floodProbeRuns);
      log(`login: ${login.rps.toFixed(2)}/s (${loginRuns.map((r) => r.rps.toFixed(2)).join(', ')}); health p99 under flood ${probeFlood.p99.toFixed(2)} ms${login.non2xx ? `; non-2xx ${JSON.stringify(loginRuns.map((r) => r.statuses))}` : ''}`);
    } finally {
      await service.stop();
    }

    // --- growth: the same figures on the large database
    const largeService = await startService(large.url);
    let meLarge: Figure, meColdLarge: Figure, adminLarge: AdminFigures;
    try {
      const meTokenLarge = await accessFor(2, profile.large);
      const coldTokensLarge = await Promise.all(Array.from({ length: profile.coldTokens }, (_, i) => accessFor(i + 1, profile.large)));
      meLarge = await measure(`${profile.large} users: me (cached token)`, () => ({
        url: `${largeService.base}/api/auth/me`,
        headers: { authorization: `Bearer ${meTokenLarge}` },
        connections: profile.connections,
        durationSeconds: profile.duration,
      }));
      meColdLarge = await measure(`${profile.large} users: me (first use of each token)`, () => ({
        url: `${largeService.base}/api/auth/me`,
        variants: coldTokensLarge.map((t) => ({ headers: { authorization: `Bearer ${t}` } })),
        connections: profile.connections,
        durationSeconds: profile.duration,
      }));
      adminLarge = await adminFigures(largeService, profile.large, `${profile.large} users`);
    } finally {
      await largeService.stop();
    }

    let plans: PlanReport[] = [];
    if (args.db === 'sqlite') {
      plans = await explainAdminQueries(large.url.slice('sqlite:'.length), secrets, await accessFor(1, profile.large), ADMIN_SEARCH);
      for (const plan of plans) log(`query plan ${plan.request}: ${plan.indexed ? 'indexed' : 'NOT INDEXED'}`);
    }

    const results = buildResults({
      machine: { ...machine, loadAverageAtEnd: loadavg().map((x) => Math.round(x * 100) / 100) },
      commit,
      hashCapacity,
      hashRuns,
      serviceMemory,
      baselineMemory,
      baseHealth,
      baseMe,
      health,
      me,
      meCold,
      refresh,
      login,
      probeIdle,
      probeFlood,
      adminSmall,
      meLarge,
      meColdLarge,
      adminLarge,
      plans,
    });
    writeOutputs(results);
  } finally {
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
  /** flokie / reference (for latency and memory: how many times the reference). */
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
  serviceMemory: { startupMs: number; peakRssBytes: number };
  baselineMemory: { startupMs: number; peakRssBytes: number };
  baseHealth: Figure;
  baseMe: Figure;
  health: Figure;
  me: Figure;
  meCold: Figure;
  refresh: Figure;
  login: Figure;
  probeIdle: Figure;
  probeFlood: Figure;
  adminSmall: AdminFigures;
  meLarge: Figure;
  meColdLarge: Figure;
  adminLarge: AdminFigures;
  plans: PlanReport[];
}) {
  const ratio = (a: number | null | undefined, b: number | null | undefined) => (a == null || b == null || !Number.isFinite(a) || !Number.isFinite(b) || b === 0 ? null : a / b);
  const MiB = (b: number) => b / 2 ** 20;
  const small = profile.smallUsers.toLocaleString('en');
  const big = profile.large.toLocaleString('en');
  const rows: Row[] = [];
  const add = (row: Omit<Row, 'ratio' | 'pass'> & { ratio?: number | null; check?: (r: number) => boolean }) => {
    const r = row.ratio !== undefined ? row.ratio : ratio(row.flokie, row.reference);
    const { check, ...rest } = row;
    rows.push({ ...rest, ratio: r, pass: check && r !== null ? check(r) : null });
  };

  add({ id: 'health.rps', scenario: '1. GET /api/health', flokie: m.health.rps, reference: m.baseHealth.rps, referenceLabel: 'bare Fastify', unit: 'req/s', target: '' });
  add({ id: 'health.p99', scenario: '1. GET /api/health p99', flokie: m.health.p99, reference: m.baseHealth.p99, referenceLabel: 'bare Fastify', unit: 'ms', target: '' });
  add({ id: 'me.rps', scenario: '2. GET /api/auth/me', flokie: m.me.rps, reference: m.baseMe.rps, referenceLabel: 'bare Fastify', unit: 'req/s', target: '≥ 50 %', check: (r) => r >= 0.5 });
  add({ id: 'me.p99', scenario: '2. GET /api/auth/me p99', flokie: m.me.p99, reference: m.baseMe.p99, referenceLabel: 'bare Fastify', unit: 'ms', target: '' });
  add({ id: 'me_cold.rps', scenario: '2. GET /api/auth/me, first use of each token', flokie: m.meCold.rps, reference: m.baseMe.rps, referenceLabel: 'bare Fastify', unit: 'req/s', target: '', note: 'every request misses the token cache: one indexed query' });
  add({ id: 'login.rps', scenario: `3. POST /api/auth/login (bcrypt ${BCRYPT_ROUNDS})`, flokie: m.login.rps, reference: m.hashCapacity, referenceLabel: 'raw bcrypt verify, all cores', unit: 'logins/s', target: '≥ 90 %', check: (r) => r >= 0.9 });
  add({ id: 'health.p99_flood', scenario: '3. GET /api/health p99 while logins flood', flokie: m.probeFlood.p99, reference: m.probeIdle.p99, referenceLabel: 'same probe, idle', unit: 'ms', target: '' });
  add({ id: 'refresh.rps', scenario: '4. POST /api/auth/refresh (rotation)', flokie: m.refresh.rps, reference: null, referenceLabel: '', unit: 'req/s', target: '' });
  add({ id: 'refresh.p99', scenario: '4. POST /api/auth/refresh p99', flokie: m.refresh.p99, reference: null, referenceLabel: '', unit: 'ms', target: '' });
  add({ id: 'growth.me', scenario: `5. /me with ${big} users + ${big} revoked tokens`, flokie: m.meLarge.rps, reference: m.me.rps, referenceLabel: `${small} users`, unit: 'req/s', target: '≥ 90 %', check: (r) => r >= 0.9 });
  add({ id: 'growth.me_cold', scenario: `5. /me first use of each token, ${big} users`, flokie: m.meColdLarge.rps, reference: m.meCold.rps, referenceLabel: `${small} users`, unit: 'req/s', target: '≥ 90 %', check: (r) => r >= 0.9 });
  for (const key of ['list', 'search'] as const) {
    const path = key === 'list' ? 'GET /api/users?search=…' : 'GET /api/users/search?q=…';
    const s = m.adminSmall[key];
    const l = m.adminLarge[key];
    const note = s && l ? undefined : 'n/a (endpoint missing)';
    add({ id: `growth.admin_${key}.rps`, scenario: `5. ${path}, ${big} users`, flokie: l?.rps ?? null, reference: s?.rps ?? null, referenceLabel: `${small} users`, unit: 'req/s', target: '', note });
    add({ id: `growth.admin_${key}.p95`, scenario: `5. ${path} p95, ${big} users`, flokie: l?.p95 ?? null, reference: s?.p95 ?? null, referenceLabel: `${small} users`, unit: 'ms', target: '', note });
  }
  if (m.plans.length) {
    const indexed = m.plans.every((p) => p.indexed);
    add({ id: 'growth.admin_indexed', scenario: '5. admin list/search query plans use an index', flokie: null, reference: null, referenceLabel: '', unit: '', target: 'indexed', ratio: null, note: indexed ? 'yes' : 'NO: see plans' });
    rows[rows.length - 1]!.pass = indexed;
  }
  add({ id: 'memory.peak_rss', scenario: `6. peak RSS, ${profile.memoryConnections} connections on /me`, flokie: MiB(m.serviceMemory.peakRssBytes), reference: MiB(m.baselineMemory.peakRssBytes), referenceLabel: 'bare Fastify', unit: 'MiB', target: '' });
  add({ id: 'startup', scenario: '6. start-up to first 200 on /api/health', flokie: m.serviceMemory.startupMs, reference: m.baselineMemory.startupMs, referenceLabel: 'bare Fastify', unit: 'ms', target: '' });

  return {
    date: new Date().toISOString(),
    commit: m.commit,
    machine: m.machine,
    options: { db: args.db, redis: args.redis, quick, ...profile, benchSeconds: Math.round((performance.now() - benchStarted) / 1000) },
    rows,
    raw: {
      hashRuns: m.hashRuns,
      figures: {
        baseHealth: m.baseHealth,
        baseMe: m.baseMe,
        health: m.health,
        me: m.me,
        meCold: m.meCold,
        refresh: m.refresh,
        login: m.login,
        probeIdle: m.probeIdle,
        probeFlood: m.probeFlood,
        adminSmall: m.adminSmall,
        meLarge: m.meLarge,
        meColdLarge: m.meColdLarge,
        adminLarge: m.adminLarge,
      },
      memory: { service: m.serviceMemory, baseline: m.baselineMemory },
      plans: m.plans,
    },
  };
}

type Results = ReturnType<typeof buildResults>;

function fmt(n: number | null, unit: string): string {
  if (n === null || !Number.isFinite(n)) return 'n/a';
  const digits = unit === 'ms' ? 2 : unit === 'logins/s' ? 2 : unit === 'MiB' ? 1 : 0;
  return `${n.toLocaleString('en', { minimumFractionDigits: digits, maximumFractionDigits: digits })} ${unit}`;
}

function toMarkdown(results: Results): string {
  const m = results.machine as Record<string, string | number>;
  const o = results.options;
  const lines = [
    `Run ${results.date} at commit ${results.commit} — ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB RAM, Node ${m.node}, ${m.os}.`,
    `Load average (1/5/15 min) at start ${(m.loadAverageAtStart as unknown as number[]).join(' / ')}, at end ${(m.loadAverageAtEnd as unknown as number[]).join(' / ')}${(m.loadAverageAtStart as unknown as number[])[0]! > Number(m.cores) * 0.5 ? ' — the machine was busy with other work; treat the figures with care' : ''}.`,
    `Database ${o.db}${o.redis ? ' + Redis' : ''}${o.quick ? ' — QUICK SMOKE RUN, figures not meaningful' : ''}; median of ${o.runs} run(s) of ${o.duration} s (logins ${o.loginDuration} s), ${o.connections} connections (logins ${o.loginConnections}); whole bench ${o.benchSeconds} s.`,
    '',
    '| Scenario | Flokie | Reference | Ratio | Target | Result |',
    '| --- | ---: | ---: | ---: | --- | --- |',
  ];
  for (const r of results.rows) {
    const ref = r.reference === null ? (r.referenceLabel ? 'n/a' : '—') : `${fmt(r.reference, r.unit)} (${r.referenceLabel})`;
    const ratio = r.ratio === null ? '—' : r.unit === 'req/s' || r.unit === 'logins/s' ? `${(r.ratio * 100).toFixed(0)} %` : `×${r.ratio.toFixed(2)}`;
    const result = r.pass === null ? (r.note ?? '') : `${r.pass ? 'met' : 'MISSED'}${r.note ? ` (${r.note})` : ''}`;
    lines.push(`| ${r.scenario} | ${r.flokie === null && r.note && r.unit === '' ? r.note : fmt(r.flokie, r.unit)} | ${ref} | ${ratio} | ${r.target} | ${result} |`);
  }
  if (results.raw.plans.length) {
    lines.push('', 'SQLite query plans of the admin list/search requests on the large database:', '');
    for (const p of results.raw.plans) {
      lines.push(`- \`${p.request}\` — ${p.indexed ? 'indexed' : '**not indexed**'}`);
      for (const q of p.queries) lines.push(`  - \`${q.sql.replace(/\s+/g, ' ').slice(0, 200)}\`: ${q.plan.join('; ')}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

function writeOutputs(results: Results) {
  const out = resolve(args.out!);
  mkdirSync(out, { recursive: true });
  const stamp = results.date.replace(/[:.]/g, '-');
  const md = toMarkdown(results);
  const json = `${JSON.stringify(results, null, 2)}\n`;
  const suffix = `${args.db}${args.redis ? '-redis' : ''}`;
  writeFileSync(join(out, 'latest.json'), json);
  writeFileSync(join(out, 'latest.md'), md);
  writeFileSync(join(out, `${stamp}-${suffix}.json`), json);
  writeFileSync(join(out, `${stamp}-${suffix}.md`), md);
  process.stdout.write(`\n${md}\nwritten: ${join(out, 'latest.json')}, ${join(out, 'latest.md')}\n`);

  const docs = join(ROOT, 'docs', 'benchmarks.md');
  if (!args['no-docs'] && !quick && existsSync(docs)) {
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

main().catch((error: unknown) => {
  console.error(`bench failed: ${(error as Error).stack ?? error}`);
  process.exit(1);
});
