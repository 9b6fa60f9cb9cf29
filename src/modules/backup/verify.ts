/**
 * `flokie backup verify`: restores a backup into a scratch database made for the purpose and
 * dropped afterwards — a temporary SQLite file, or a temporary database on the configured
 * PostgreSQL/MariaDB server (the role needs CREATEDB / CREATE) — and checks that the migrations
 * and every table's row count match the backup's header. Proves the file decrypts, is whole, and
 * restores; touches no real data.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { dialectOf, openDatabase, type DialectName } from '../../db/index.js';
import { BackupError, restoreBackup, type RestoreResult } from './backup.js';

interface Scratch {
  url: string;
  dialect: DialectName;
  drop(): Promise<void>;
}

async function scratchDatabase(serverUrl: string | null, sslCaFile?: string): Promise<Scratch> {
  if (!serverUrl || dialectOf(serverUrl) === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'flokie-verify-'));
    return {
      url: `sqlite:${join(dir, 'scratch.db')}`,
      dialect: 'sqlite',
      drop: async () => rmSync(dir, { recursive: true, force: true }),
    };
  }
  const dialect = dialectOf(serverUrl);
  const name = `flokie_verify_${randomBytes(6).toString('hex')}`;
  const admin = openDatabase({ url: serverUrl, poolSize: 1, sslCaFile });
  try {
    await sql`CREATE DATABASE ${sql.id(name)}`.execute(admin.db);
  } catch (error) {
    await admin.close();
    throw new BackupError(
      `cannot create a scratch database on the server (${(error as Error).message.split('\n')[0]}); grant CREATEDB, ` +
        `or use --sqlite`,
    );
  }
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    dialect,
    async drop() {
      try {
        await sql
          .raw(
            dialect === 'postgres' ? `DROP DATABASE IF EXISTS ${name} WITH (FORCE)` : `DROP DATABASE IF EXISTS ${name}`,
          )
          .execute(admin.db);
      } finally {
        await admin.close();
      }
    },
  };
}

export interface VerifyResult extends RestoreResult {
  scratch: string;
}

/** `serverUrl` null: a temporary SQLite file. */
export async function verifyBackup(
  file: string,
  identity: string,
  serverUrl: string | null,
  sslCaFile?: string,
): Promise<VerifyResult> {
  const scratch = await scratchDatabase(serverUrl, sslCaFile);
  try {
    const handle = openDatabase({ url: scratch.url, poolSize: 2, sslCaFile });
    try {
      const result = await restoreBackup(handle.db, handle.dialect, file, identity);
      if (result.migrations.join() !== result.header.migrations.join()) {
        throw new BackupError(
          `migrations after restoring (${result.migrations.join(', ')}) differ from the backup's ` +
            `(${result.header.migrations.join(', ')})`,
        );
      }
      return {
        ...result,
        scratch: scratch.dialect === 'sqlite' ? 'a temporary SQLite file' : `temporary ${scratch.dialect} database`,
      };
    } finally {
      await handle.close();
    }
  } finally {
    await scratch.drop();
  }
}
