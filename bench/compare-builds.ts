/**
 * Two builds of Flokie side by side on this machine: `GET /api/auth/me` (cached token) and
 * `GET /api/health`, measured in turn, each run reporting requests per second and the server's CPU
 * per request. It answers "did this change make the hot path slower?" on a host whose speed differs
 * from the one in bench/results (the ratio to bare Fastify moves with the host; this does not).
 *
 * Usage: npm run bench:compare -- <other-checkout> [this-checkout] [--runs N]
 *   Each checkout must be built (`npm run build`) and have node_modules. An older commit:
 *   git worktree add /tmp/old <commit> && ln -s "$PWD/node_modules" /tmp/old/node_modules
 *   && (cd /tmp/old && npx tsc -p tsconfig.build.json)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import autocannon from 'autocannon';

interface Flags {
  roots: string[];
  runs: number;
}

function parseFlags(argv: string[]): Flags {
  const roots: string[] = [];
  let runs = 3;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--runs') runs = Number(argv[++i]);
    else roots.push(resolve(argv[i]!));
  }
  if (roots.length === 1) roots.push(process.cwd());
  if (roots.length !== 2 || !Number.isInteger(runs) || runs < 1) {
    console.error('usage: npm run bench:compare -- <other-checkout> [this-checkout] [--runs N]');
    process.exit(2);
  }
  return { roots, runs };
}

interface Running {
  child: ChildProcess;
  base: string;
  token: string;
  dir: string;
}

const PASSWORD = 'Velvet-Orbit-Harbor-42';

async function start(root: string, port: number): Promise<Running> {
  const dir = mkdtempSync(join(tmpdir(), 'flokie-compare-'));
  const env = {
    PATH: process.env.PATH,
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    PORT: String(port),
    DATABASE_URL: `sqlite:${dir}/flokie.db`,
    SECRET_KEY: randomBytes(32).toString('hex'),
    JWT_SECRET_KEY: randomBytes(32).toString('hex'),
    BCRYPT_ROUNDS: '10',
    // Limits stay on (production requires them) but far above the load, as in bench/run.ts.
    RATE_LIMITS: JSON.stringify({ default: '100000000 per minute', 'auth.login': '100000000 per minute' }),
    MAIL_OUTBOX_DIR: join(dir, 'outbox'),
  };
  const child = spawn(process.execPath, [join(root, 'dist', 'server.js')], { cwd: root, env, stdio: 'ignore' });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${base}/api/health`)).ok) break;
    } catch {
      if (i > 600) throw new Error(`${root} did not start`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const post = (path: string, body: unknown) =>
    fetch(base + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  await post('/api/auth/register', { username: 'compare', email: 'compare@example.com', password: PASSWORD });
  const login = (await (await post('/api/auth/login', { username: 'compare', password: PASSWORD })).json()) as {
    data?: { access_token?: string; tokens?: { access_token?: string } };
  };
  const token = login.data?.access_token ?? login.data?.tokens?.access_token;
  if (!token) throw new Error(`${root}: login failed`);
  return { child, base, token, dir };
}

/** User + system CPU time of a process so far, in ms (Linux /proc; clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

async function measure(server: Running, path: string, seconds: number) {
  const before = cpuMs(server.child.pid!);
  const result = await autocannon({
    url: server.base + path,
    connections: 10,
    duration: seconds,
    headers: { authorization: `Bearer ${server.token}` },
  });
  const cpu = cpuMs(server.child.pid!) - before;
  if (result.non2xx > 0) throw new Error(`${path}: ${result.non2xx} answers were not 2xx`);
  return { rps: result.requests.average as number, cpuUs: (cpu * 1000) / (result.requests.total as number) };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

const { roots, runs } = parseFlags(process.argv.slice(2));
const servers = [await start(roots[0]!, 39_301), await start(roots[1]!, 39_302)];
try {
  for (const path of ['/api/auth/me', '/api/health']) {
    for (const server of servers) await measure(server, path, 2); // warm-up
    const figures = servers.map(() => ({ rps: [] as number[], cpuUs: [] as number[] }));
    for (let run = 0; run < runs; run++) {
      for (const [i, server] of servers.entries()) {
        const { rps, cpuUs } = await measure(server, path, 5);
        figures[i]!.rps.push(rps);
        figures[i]!.cpuUs.push(cpuUs);
      }
    }
    for (const [i, root] of roots.entries()) {
      const f = figures[i]!;
      console.log(
        `${path.padEnd(14)} ${root}: median ${Math.round(median(f.rps))} req/s, ${median(f.cpuUs).toFixed(1)} µs CPU ` +
          `per request (runs: ${f.rps.map(Math.round).join(', ')} req/s)`,
      );
    }
  }
} finally {
  for (const server of servers) {
    server.child.kill('SIGTERM');
    rmSync(server.dir, { recursive: true, force: true });
  }
}
