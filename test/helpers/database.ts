/**
 * A fresh, empty database for one test app. SQLite: in memory (or a temp file). With
 * TEST_DATABASE_URL pointing at PostgreSQL or MySQL/MariaDB, a new database named
 * flokie_t_<random> is created there and dropped by `drop()`, so runs never share state.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { createConnection } from 'mysql2/promise';
import { dialectOf } from '../../src/db/index.js';

export interface TestDatabase {
  url: string;
  dialect: 'sqlite' | 'postgres' | 'mysql';
  drop(): Promise<void>;
}

export const testDatabaseUrl = () => process.env.TEST_DATABASE_URL ?? 'sqlite::memory:';

export async function createTestDatabase(options: { file?: boolean } = {}): Promise<TestDatabase> {
  const base = testDatabaseUrl();
  const dialect = dialectOf(base);
  const name = `flokie_t_${randomBytes(6).toString('hex')}`;
  if (dialect === 'sqlite') {
    if (!options.file) return { url: 'sqlite::memory:', dialect, drop: async () => {} };
    const dir = mkdtempSync(join(tmpdir(), 'flokie-test-'));
    return {
      url: `sqlite:${join(dir, 'test.db')}`,
      dialect,
      drop: async () => rmSync(dir, { recursive: true, force: true }),
    };
  }
  if (dialect === 'postgres') {
    const admin = new pg.Client({ connectionString: base });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
    await admin.end();
    const url = new URL(base);
    url.pathname = `/${name}`;
    return {
      url: url.toString(),
      dialect,
      drop: async () => {
        const c = new pg.Client({ connectionString: base });
        await c.connect();
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        await c.end();
      },
    };
  }
  const conn = await createConnection({ uri: base });
  await conn.query(`CREATE DATABASE ${name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
  await conn.end();
  const url = new URL(base);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    dialect,
    drop: async () => {
      const c = await createConnection({ uri: base });
      await c.query(`DROP DATABASE IF EXISTS ${name}`);
      await c.end();
    },
  };
}
