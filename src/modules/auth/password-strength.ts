/**
 * Password strength estimates (zxcvbn) off the event loop: a small pool of worker threads of its
 * own (piscina), PASSWORD_STRENGTH_WORKERS threads with at most 32 checks per thread waiting.
 * Past that the check is refused with 429 and Retry-After, so a stream of worst-case
 * registrations queues in the pool, never in front of other requests (docs/security.md,
 * `npm run bench -- --only strength`). password-policy.ts bounds what it sends here to the
 * characters the hasher uses. Threads start on first use and stop after a minute idle.
 */
import { Piscina } from 'piscina';
import { rateLimited } from '../../http/errors.js';
import type { StrengthTask } from './password-strength-worker.js';

export const QUEUE_PER_THREAD = 32;

export interface StrengthEstimator {
  /** zxcvbn score 0–4 of `password`, given the user's own words. */
  score(password: string, userInputs: string[]): Promise<number>;
  close(): Promise<void>;
}

export class WorkerStrengthEstimator implements StrengthEstimator {
  private readonly pool: Piscina<StrengthTask, number>;

  constructor(threads: number, onError: (error: unknown) => void = () => {}) {
    // The worker is a .ts file under tsx (development, tests) and .js once built.
    const extension = import.meta.url.endsWith('.ts') ? 'ts' : 'js';
    this.pool = new Piscina({
      filename: new URL(`./password-strength-worker.${extension}`, import.meta.url).href,
      minThreads: 0,
      maxThreads: threads,
      maxQueue: threads * QUEUE_PER_THREAD,
      idleTimeout: 60_000,
    });
    this.pool.on('error', onError);
  }

  async score(password: string, userInputs: string[]): Promise<number> {
    try {
      return await this.pool.run({ password, userInputs });
    } catch (error) {
      if (error instanceof Error && /queue is at limit/i.test(error.message)) throw rateLimited(1, 'Too many password checks in progress; try again shortly');
      throw error;
    }
  }

  close(): Promise<void> {
    return this.pool.destroy();
  }
}
