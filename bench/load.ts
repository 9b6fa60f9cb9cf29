/**
 * Load generator process: runs one autocannon job and prints its figures as one JSON line.
 * bench/run.ts starts it as a child process so the load never shares an event loop (or a core
 * scheduler slot) with the server it measures.
 *
 * Usage: tsx bench/load.ts <job.json>   (see LoadJob)
 */
import { readFileSync } from 'node:fs';
import autocannon from 'autocannon';

export interface LoadJob {
  url: string;
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
  connections: number;
  durationSeconds: number;
  /** Requests per second across all connections (a steady probe); unset = as fast as possible. */
  overallRate?: number;
  /** Each request takes the next variant in turn (distinct tokens or logins). */
  variants?: { headers?: Record<string, string>; body?: string }[];
  /**
   * Refresh chaining: start with these refresh tokens (one per connection); every refresh
   * token a response returns is presented, once, by a later request.
   */
  refreshTokens?: string[];
}

export interface LoadResult {
  requests: number;
  rps: number;
  ok2xx: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  statuses: Record<string, number>;
  latencyMs: { mean: number; p50: number; p95: number; p99: number; max: number };
  /** Filled in by bench/run.ts, which can see the server process. */
  serverCpuMsPerRequest?: number;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  const index = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return sorted[Math.max(0, index)]!;
}

/** One entry of autocannon's `requests` option, as far as this file uses it. */
interface CannonRequest {
  setupRequest: (req: Record<string, unknown>) => Record<string, unknown>;
  onResponse?: (status: number, body: string) => void;
}

export async function runLoad(job: LoadJob): Promise<LoadResult> {
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  const baseHeaders = {
    ...(job.body || job.variants || job.refreshTokens ? { 'content-type': 'application/json' } : {}),
    ...job.headers,
  };
  let next = 0;
  const pool = [...(job.refreshTokens ?? [])];

  let requests: CannonRequest[] | undefined;
  if (job.variants) {
    const variants = job.variants;
    requests = [
      {
        setupRequest: (req: Record<string, unknown>) => {
          const variant = variants[next++ % variants.length]!;
          return { ...req, headers: { ...baseHeaders, ...variant.headers }, body: variant.body ?? job.body };
        },
      },
    ];
  } else if (job.refreshTokens) {
    // autocannon resets a connection's context after every pass over `requests`, so the chain
    // lives in one shared pool instead: each answer adds the refresh token it issued, each
    // request spends one. With one request in flight per connection the pool never runs dry
    // unless a refresh fails (then that chain ends and shows up as non-2xx).
    requests = [
      {
        setupRequest: (req: Record<string, unknown>) => {
          const token = pool.shift() ?? 'exhausted';
          return { ...req, headers: { ...baseHeaders, authorization: `Bearer ${token}` }, body: '{}' };
        },
        onResponse: (status: number, body: string) => {
          if (status !== 200) return;
          try {
            pool.push((JSON.parse(body) as { data: { refresh_token: string } }).data.refresh_token);
          } catch {
            // A body that is not the expected envelope leaves the chain short; counted as non-2xx later.
          }
        },
      },
    ];
  }

  const instance = autocannon({
    url: job.url,
    method: job.method ?? 'GET',
    headers: baseHeaders,
    body: job.body,
    connections: job.connections,
    duration: job.durationSeconds,
    overallRate: job.overallRate,
    pipelining: 1,
    timeout: 30,
    requests,
  });
  instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
    latencies.push(responseTime);
    statuses[statusCode] = (statuses[statusCode] ?? 0) + 1;
  });
  const result = await instance;
  const sorted = Float64Array.from(latencies).sort();
  const total = sorted.reduce((a, b) => a + b, 0);
  const ok2xx = Object.entries(statuses).reduce((n, [code, count]) => (code.startsWith('2') ? n + count : n), 0);
  return {
    requests: latencies.length,
    // Only successful answers count towards throughput; failures are reported beside it.
    rps: ok2xx / job.durationSeconds,
    ok2xx,
    non2xx: latencies.length - ok2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    statuses,
    latencyMs: {
      mean: sorted.length ? total / sorted.length : 0,
      p50: percentile(sorted, 50),
      p95: percentile(sorted, 95),
      p99: percentile(sorted, 99),
      max: sorted.length ? sorted[sorted.length - 1]! : 0,
    },
  };
}

const jobFile = process.argv[2];
if (jobFile && process.argv[1]?.endsWith('load.ts')) {
  const job = JSON.parse(readFileSync(jobFile, 'utf8')) as LoadJob;
  runLoad(job)
    .then((result) => {
      process.stdout.write(`${JSON.stringify(result)}\n`);
      process.exit(0);
    })
    .catch((error: unknown) => {
      process.stderr.write(`load failed: ${(error as Error).message}\n`);
      process.exit(1);
    });
}
