/**
 * WEB_CONCURRENCY > 1: this process becomes a node:cluster primary that forks that many workers
 * sharing the listening port (the primary accepts connections and hands them to the workers
 * round-robin). The primary serves no request itself. It:
 *   - applies pending migrations once, before any worker starts (workers get AUTO_MIGRATE=false,
 *     so N processes never race on the schema);
 *   - restarts a worker that dies, after a delay that doubles on each quick crash of that slot
 *     (BACKOFF_INITIAL_MS … BACKOFF_MAX_MS) and resets once a worker has stayed up STABLE_MS;
 *   - gives up (exit 1) when workers keep dying before they ever listen, so a broken deployment
 *     fails loudly instead of spinning;
 *   - passes cache invalidations (ChangeFeed) from each worker to the others over IPC
 *     (src/state/cluster-bus.ts), so a revocation on one worker holds on all at once;
 *   - forwards SIGTERM/SIGINT to every worker (each finishes its in-flight requests, see
 *     server.ts) and exits when all are gone, killing stragglers after SHUTDOWN_TIMEOUT_MS.
 * WEB_CONCURRENCY=1 (the default) never comes here: server.ts serves in-process.
 */
import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import type { Config } from './config/index.js';
import { createLogger } from './logging.js';
import { databaseTimeouts, openDatabase } from './db/index.js';
import { migrateToLatest } from './db/migrator.js';
import { relayChanges } from './state/cluster-bus.js';

export const BACKOFF_INITIAL_MS = 500;
export const BACKOFF_MAX_MS = 30_000;
const STABLE_MS = 30_000;
const SHUTDOWN_TIMEOUT_MS = 20_000;
/** Consecutive workers that died before listening, with none listening in between. */
const MAX_FAILED_STARTS = 6;

/** True when this process should act as the cluster primary instead of serving. */
export function shouldRunPrimary(config: Config): boolean {
  return config.WEB_CONCURRENCY > 1 && cluster.isPrimary;
}

/** Delay before restarting a slot whose worker has crashed `crashes` times in a row. */
export function restartDelay(crashes: number): number {
  return Math.min(BACKOFF_MAX_MS, BACKOFF_INITIAL_MS * 2 ** Math.max(0, crashes - 1));
}

interface Slot {
  worker?: Worker;
  startedAt: number;
  crashes: number;
  timer?: NodeJS.Timeout;
}

export async function runPrimary(
  config: Config,
  log: Logger = createLogger(config.LOG_LEVEL, { bufferBytes: config.LOG_BUFFER_BYTES }),
): Promise<void> {
  if (config.AUTO_MIGRATE) {
    // Migrations run without a statement timeout (an index build may take minutes); connecting is bounded.
    const handle = openDatabase({
      url: config.DATABASE_URL,
      poolSize: 1,
      sslCaFile: config.DATABASE_SSL_CA_FILE || undefined,
      timeouts: { ...databaseTimeouts(config), statementMs: 0 },
    });
    try {
      await migrateToLatest(handle.db);
    } finally {
      await handle.close();
    }
  }
  if (!config.REDIS_URL) {
    log.warn(
      { workers: config.WEB_CONCURRENCY },
      'WEB_CONCURRENCY > 1 without REDIS_URL: rate-limit counters are kept per worker; set REDIS_URL to share them',
    );
  }

  const slots: Slot[] = Array.from({ length: config.WEB_CONCURRENCY }, () => ({ startedAt: 0, crashes: 0 }));
  let stopping = false;
  let failedStarts = 0;
  let exitCode = 0;

  function fork(index: number): void {
    const slot = slots[index]!;
    slot.timer = undefined;
    slot.startedAt = Date.now();
    const worker = cluster.fork({ AUTO_MIGRATE: 'false', FLOKIE_WORKER_SLOT: String(index) });
    slot.worker = worker;
    relayChanges(worker, () => slots.map((s) => s.worker));
    let listening = false;
    worker.on('listening', (address) => {
      listening = true;
      failedStarts = 0;
      log.info({ worker: worker.id, pid: worker.process.pid, slot: index, port: address.port }, 'worker listening');
    });
    worker.on('exit', (code, signal) => {
      slot.worker = undefined;
      if (stopping) {
        if (code !== 0) exitCode = 1;
        if (slots.every((s) => !s.worker)) finish();
        return;
      }
      const upMs = Date.now() - slot.startedAt;
      slot.crashes = upMs >= STABLE_MS ? 1 : slot.crashes + 1;
      if (!listening && ++failedStarts >= MAX_FAILED_STARTS) {
        log.fatal({ failedStarts }, 'workers keep exiting before they listen; giving up');
        exitCode = 1;
        void shutdown('worker start failures');
        return;
      }
      const delay = restartDelay(slot.crashes);
      log.error(
        { worker: worker.id, pid: worker.process.pid, slot: index, code, signal, up_ms: upMs, restart_in_ms: delay },
        'worker died; restarting',
      );
      slot.timer = setTimeout(() => fork(index), delay);
    });
  }

  function finish(): void {
    log.info({ code: exitCode }, 'all workers stopped');
    process.exit(exitCode);
  }

  async function shutdown(reason: string): Promise<void> {
    if (stopping) return;
    stopping = true;
    log.info({ reason }, 'shutting down workers');
    for (const slot of slots) if (slot.timer) clearTimeout(slot.timer);
    const running = slots.filter((s) => s.worker);
    if (running.length === 0) return finish();
    // A signal, not worker.disconnect(): each worker runs its own graceful shutdown (server.ts).
    for (const slot of running) slot.worker!.process.kill('SIGTERM');
    setTimeout(() => {
      log.error('workers did not stop in time; killing them');
      for (const slot of slots) slot.worker?.process.kill('SIGKILL');
      exitCode = 1;
    }, SHUTDOWN_TIMEOUT_MS).unref();
  }

  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));

  log.info({ workers: config.WEB_CONCURRENCY, pid: process.pid }, 'cluster primary starting workers');
  slots.forEach((_, index) => fork(index));
}
