/**
 * What the integration tests share besides the server processes (test/helpers/server.ts):
 * PostgreSQL databases and Redis key prefixes made and removed per test, polling for a fact
 * within a time limit, and reading a JWT's claims.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import pg from 'pg';
import { sleep } from '../helpers/server.js';

export const PG_BASE = process.env.TEST_DATABASE_URL?.startsWith('postgres')
  ? process.env.TEST_DATABASE_URL
  : 'postgresql://postgres@127.0.0.1:5432/postgres';
export const REDIS_BASE = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/**
 * Polls `check` until it returns true or `limitMs` passes; returns the milliseconds it took
 * (measured from `since`), or throws with `what` when it never held.
 */
export async function within(
  limitMs: number,
  since: number,
  what: string,
  check: () => Promise<boolean>,
): Promise<number> {
  for (;;) {
    if (await check()) return Math.round(performance.now() - since);
    if (performance.now() - since > limitMs) throw new Error(`${what}: not seen within ${limitMs} ms`);
    await sleep(10);
  }
}

/** A fresh PostgreSQL database; `drop()` removes it (and any connections to it). */
export async function createPgDatabase(): Promise<{
  name: string;
  url: string;
  adminUrl: string;
  drop(): Promise<void>;
}> {
  const name = `flokie_it_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: PG_BASE });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(PG_BASE);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    adminUrl: PG_BASE,
    async drop() {
      const c = new pg.Client({ connectionString: PG_BASE });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

/** A unique Redis key prefix; `clear()` deletes every key under it. */
export function redisPrefix(): { prefix: string; clear(): Promise<number> } {
  const prefix = `flokie-it-${randomBytes(5).toString('hex')}:`;
  return {
    prefix,
    async clear() {
      const redis = new Redis(REDIS_BASE, { lazyConnect: true, maxRetriesPerRequest: 1 });
      await redis.connect();
      let removed = 0;
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
        cursor = next;
        if (keys.length) removed += await redis.del(...keys);
      } while (cursor !== '0');
      redis.disconnect();
      return removed;
    },
  };
}

/** The claims of a JWT (test-side inspection only; never a verification). */
export function claimsOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8'));
}
