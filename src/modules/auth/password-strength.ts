/**
 * Password strength estimates (zxcvbn) off the event loop: a small pool of worker threads of its
 * own (piscina), PASSWORD_STRENGTH_WORKERS threads with at most 32 checks per thread waiting.
 * Past that the check is refused with 429 and Retry-After, so a stream of worst-case
 * registrations queues in the pool, never in front of other requests (docs/security.md,
 * `npm run bench -- --only strength`). password-policy.ts bounds what it sends here to the
 * characters the hasher uses. Threads start on first use and stop after a minute idle.
 */
import { Piscina } from 'piscina';
import { rateLimited, serviceUnavailable } from '../../core/errors.js';
import type { StrengthTask } from './password-strength-worker.js';

export const QUEUE_PER_THREAD = 32;
/**
 * A check that has not finished by then (a worker that cannot start, say) fails with 503 instead of hanging the
 * request.
 */
export const TASK_TIMEOUT_MS = 30_000;

/**
 * Node options for the workers. From the TypeScript sources the workers need tsx's loader: the
 * server and the tests get it through `--import tsx`, which workers inherit; the CLI
 * (bin/flokie.js) registers it in its main thread only, so it is added here.
 */
function workerExecArgv(extension: string): string[] {
  const inherited = process.execArgv;
  if (extension !== 'ts' || inherited.some((arg) => arg.includes('tsx'))) return inherited;
  return [...inherited, '--import', import.meta.resolve('tsx')];
}

export interface StrengthEstimator {
  /** zxcvbn score 0–4 of `password`, given the user's own words. */
  score(password: string, userInputs: string[]): Promise<number>;
  close(): Promise<void>;
}

export class WorkerStrengthEstimator implements StrengthEstimator {
  private readonly pool: Piscina<StrengthTask, number>;
  /**
   * Checks running or waiting, and the most allowed. Counted here: piscina's own maxQueue does not
   * apply to tasks with an abort signal (they wait in another queue of its own).
   */
  private inFlight = 0;
  private readonly capacity: number;
  private readonly timeoutMs: number;

  /** `worker` and `timeoutMs` exist for tests (a worker that cannot start, a short timeout). */
  constructor(
    threads: number,
    onError: (error: unknown) => void = () => {},
    options: { worker?: URL; timeoutMs?: number } = {},
  ) {
    this.capacity = threads * (1 + QUEUE_PER_THREAD);
    this.timeoutMs = options.timeoutMs ?? TASK_TIMEOUT_MS;
    // The worker is a .ts file under tsx (development, tests) and .js once built.
    const extension = import.meta.url.endsWith('.ts') ? 'ts' : 'js';
    this.pool = new Piscina({
      filename: (options.worker ?? new URL(`./password-strength-worker.${extension}`, import.meta.url)).href,
      execArgv: workerExecArgv(extension),
      minThreads: 0,
      maxThreads: threads,
      idleTimeout: 60_000,
    });
    this.pool.on('error', onError);
  }

  async score(password: string, userInputs: string[]): Promise<number> {
    if (this.inFlight >= this.capacity) throw rateLimited(1, 'Too many password checks in progress; try again shortly');
    this.inFlight++;
    // A timer of our own, not AbortSignal.timeout's: that one is unref'd, and a process with
    // nothing else to do (the CLI) would exit under a pending check instead of answering 503.
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), this.timeoutMs);
    try {
      return await this.pool.run({ password, userInputs }, { signal: abort.signal });
    } catch (error) {
      if (abort.signal.aborted) throw serviceUnavailable('The password strength check is unavailable; try again later');
      throw error;
    } finally {
      clearTimeout(timer);
      this.inFlight--;
    }
  }

  close(): Promise<void> {
    return this.pool.destroy();
  }
}
