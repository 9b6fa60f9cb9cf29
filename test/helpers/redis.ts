/** The Redis at TEST_REDIS_URL, which .ci/run starts, for the tests that need one. */
export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Whether the Redis at TEST_REDIS_URL answers; tests needing it skip when not (never in CI). */
export async function redisSkip(): Promise<string | false> {
  const { Redis } = await import('ioredis');
  const probe = new Redis(REDIS_URL, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 1000,
  });
  probe.on('error', () => {});
  let reachable = false;
  try {
    await probe.connect();
    reachable = (await probe.ping()) === 'PONG';
  } catch {
    reachable = false;
  } finally {
    probe.disconnect();
  }
  // In CI Redis is always started; a missing Redis there is a failure, not a skip.
  return !reachable && !process.env.CI ? `no Redis at ${REDIS_URL}` : false;
}
