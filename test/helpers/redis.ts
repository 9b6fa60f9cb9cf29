/** An app whose log lines the test can read (for "is it logged?" assertions). */
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.js';
import { createContainer, type Container } from '../../src/container.js';
import { createLogger } from '../../src/logging.js';
import { makeTestConfig } from './app.js';
import { createTestDatabase, type TestDatabase } from './database.js';

export interface LoggedApp {
  app: FastifyInstance;
  container: Container;
  lines: Record<string, unknown>[];
  close(): Promise<void>;
}

/** `prepare` may add test-only routes before the app is sealed. */
export async function createLoggedApp(
  overrides: Record<string, string> = {},
  database?: TestDatabase,
  prepare?: (app: FastifyInstance) => void,
): Promise<LoggedApp> {
  const db = database ?? (await createTestDatabase());
  const config = makeTestConfig({ LOG_LEVEL: 'info', ...overrides }, db.url);
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      callback();
    },
  });
  const log = createLogger(config.LOG_LEVEL, sink);
  const container = await createContainer(config, { log });
  const app = await buildApp(config, { container });
  prepare?.(app);
  await app.ready();
  return {
    app,
    container,
    lines,
    async close() {
      await app.close();
      await container.close();
      if (!database) await db.drop();
    },
  };
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Whether the Redis at TEST_REDIS_URL answers; tests needing it skip when not (never in CI). */
export async function redisSkip(): Promise<string | false> {
  const { Redis } = await import('ioredis');
  const probe = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1000 });
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
