/**
 * src/cluster.ts decisions that need no processes: when the cluster primary takes over, and the
 * restart back-off (test/integration/cluster.test.ts runs real workers).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BACKOFF_INITIAL_MS, BACKOFF_MAX_MS, restartDelay, shouldRunPrimary } from '../src/cluster.js';
import { loadConfig } from '../src/config/index.js';

const config = (workers: string) =>
  loadConfig(
    {
      NODE_ENV: 'test',
      WEB_CONCURRENCY: workers,
      SECRET_KEY: 's'.repeat(20) + 'abcdefghijklmnop',
      JWT_SECRET_KEY: 'j'.repeat(20) + 'abcdefghijklmnop',
    },
    { dotenv: false },
  );

describe('cluster policy', () => {
  it('WEB_CONCURRENCY=1 serves in-process; more makes this (primary) process the cluster primary', () => {
    assert.equal(shouldRunPrimary(config('1')), false);
    assert.equal(shouldRunPrimary(config('2')), true);
    assert.throws(() => config('0'), /WEB_CONCURRENCY must be between 1 and 64/);
  });

  it('restart delay doubles per consecutive crash and is capped', () => {
    assert.deepEqual([1, 2, 3, 4].map(restartDelay), [
      BACKOFF_INITIAL_MS,
      BACKOFF_INITIAL_MS * 2,
      BACKOFF_INITIAL_MS * 4,
      BACKOFF_INITIAL_MS * 8,
    ]);
    assert.equal(restartDelay(50), BACKOFF_MAX_MS);
    assert.equal(restartDelay(0), BACKOFF_INITIAL_MS);
  });
});
