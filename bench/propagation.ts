/**
 * Scenario 8 of `npm run bench` (alone: `npm run bench -- --only propagation`): how long a
 * revocation takes to reach other processes when there is no Redis (or while it is down).
 *
 * - Two instances on one database: a token is checked (and cached) on B, logged out on A; B is
 *   asked again every few ms until it refuses the token. Without Redis, B learns of the change
 *   from its change_log poll, so the delay is bounded by CACHE_SYNC_INTERVAL_MS plus one poll
 *   query (docs/security.md, "Revocation").
 * - One instance with WEB_CONCURRENCY=2: the token is checked on both workers, logged out on one;
 *   the next requests, one to each worker, must both be refused (the primary relays the change
 *   over IPC, src/state/cluster-bus.ts).
 *
 * Every request goes on a fresh connection (the cluster hands each to the next worker in turn).
 */
import http from 'node:http';

export interface PropagationService {
  base: string;
  stop(): Promise<void>;
}

interface Answer {
  status: number;
  /** The parsed JSON, or the text when it is not JSON. */
  body: unknown;
}

function call(method: string, url: string, options: { token?: string; body?: unknown } = {}): Promise<Answer> {
  const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
  const headers: Record<string, string> = { connection: 'close' };
  if (payload) headers['content-type'] = 'application/json';
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown;
        try {
          body = JSON.parse(text);
        } catch {
          body = text;
        }
        resolve({ status: res.statusCode ?? 0, body });
      });
    });
    req.on('error', reject);
    req.end(payload);
  });
}

function expect(answer: Answer, status: number, what: string): Answer {
  if (answer.status !== status)
    throw new Error(`${what}: ${answer.status} ${JSON.stringify(answer.body).slice(0, 300)}`);
  return answer;
}

const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]! : NaN;
};
const round = (x: number) => Math.round(x * 10) / 10;

export interface PropagationResult {
  instances: {
    trials: number;
    syncIntervalMs: number;
    minMs: number;
    medianMs: number;
    p95Ms: number;
    maxMs: number;
    samplesMs: number[];
  };
  cluster: { trials: number; refusedOnNextRequests: number; medianMs: number; maxMs: number; samplesMs: number[] };
}

async function newUser(base: string, password: string): Promise<string> {
  const username = `prop_${Math.random().toString(36).slice(2, 10)}`;
  expect(
    await call('POST', `${base}/api/auth/register`, { body: { username, email: `${username}@example.com`, password } }),
    201,
    'register',
  );
  return username;
}

async function login(base: string, username: string, password: string): Promise<string> {
  const answer = expect(await call('POST', `${base}/api/auth/login`, { body: { username, password } }), 200, 'login');
  return (answer.body as { data: { access_token: string } }).data.access_token;
}

/**
 * `startInstance(extraEnv)` starts one service process on the scenario's shared database (no
 * Redis); `startCluster()` one with WEB_CONCURRENCY=2 on a database of its own.
 */
export async function measurePropagation(options: {
  startInstance: () => Promise<PropagationService>;
  startCluster: () => Promise<PropagationService>;
  syncIntervalMs: number;
  trials: number;
  password: string;
  log: (message: string) => void;
}): Promise<PropagationResult> {
  const { trials, password, log } = options;

  // Two instances, one database, no Redis.
  const a = await options.startInstance();
  const b = await options.startInstance();
  const samples: number[] = [];
  try {
    const username = await newUser(a.base, password);
    for (let i = 0; i < trials; i++) {
      const token = await login(a.base, username, password);
      expect(await call('GET', `${b.base}/api/auth/me`, { token }), 200, 'me on B before');
      expect(await call('POST', `${a.base}/api/auth/logout`, { token }), 200, 'logout on A');
      const since = performance.now();
      for (;;) {
        const me = await call('GET', `${b.base}/api/auth/me`, { token });
        if (me.status === 401) break;
        if (performance.now() - since > 10 * options.syncIntervalMs + 5000)
          throw new Error('B never refused the token');
        await new Promise((r) => setTimeout(r, 2));
      }
      samples.push(round(performance.now() - since));
    }
  } finally {
    await Promise.all([a.stop(), b.stop()]);
  }
  const instances = {
    trials,
    syncIntervalMs: options.syncIntervalMs,
    minMs: Math.min(...samples),
    medianMs: percentile(samples, 50),
    p95Ms: percentile(samples, 95),
    maxMs: Math.max(...samples),
    samplesMs: samples,
  };
  log(
    `propagation, two instances without Redis: logout on A refused by B ` +
      `after ${instances.minMs}–${instances.maxMs} ms (median ${instances.medianMs}, p95 ${instances.p95Ms}; ` +
      `CACHE_SYNC_INTERVAL_MS ${options.syncIntervalMs})`,
  );

  // Two workers of one instance, no Redis.
  const cluster = await options.startCluster();
  const clusterSamples: number[] = [];
  let refusedOnNext = 0;
  try {
    const username = await newUser(cluster.base, password);
    for (let i = 0; i < trials; i++) {
      const token = await login(cluster.base, username, password);
      for (let k = 0; k < 2; k++)
        expect(await call('GET', `${cluster.base}/api/auth/me`, { token }), 200, 'me on both workers');
      expect(await call('POST', `${cluster.base}/api/auth/logout`, { token }), 200, 'logout');
      const since = performance.now();
      const next = [
        (await call('GET', `${cluster.base}/api/auth/me`, { token })).status,
        (await call('GET', `${cluster.base}/api/auth/me`, { token })).status,
      ];
      clusterSamples.push(round(performance.now() - since));
      if (next.every((s) => s === 401)) refusedOnNext++;
    }
  } finally {
    await cluster.stop();
  }
  const clusterResult = {
    trials,
    refusedOnNextRequests: refusedOnNext,
    medianMs: percentile(clusterSamples, 50),
    maxMs: Math.max(...clusterSamples),
    samplesMs: clusterSamples,
  };
  log(
    `propagation, WEB_CONCURRENCY=2 without Redis: ${refusedOnNext}/${trials} logouts refused by both workers on the ` +
      `next two requests (which took ${clusterResult.medianMs} ms median, ${clusterResult.maxMs} ms max)`,
  );
  return { instances, cluster: clusterResult };
}
