/**
 * `flokie backup create` takes a consistent snapshot while the service keeps writing
 * (src/modules/backup/backup.ts, inSnapshot): another connection inserts security events the whole
 * time the backup reads, and the backup still holds exactly the rows its header counts — no row
 * written after the snapshot began, none missing — and restores with those counts. Without the
 * snapshot (one read transaction on SQLite, REPEATABLE READ on PostgreSQL/MariaDB) the header's
 * counts and the rows read later disagree and createBackup refuses to write the file. A read that
 * fails half-way (a lost connection) fails the backup with that error and leaves no file behind.
 * SQLite by default; PostgreSQL / MariaDB with TEST_DATABASE_URL.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { generateIdentity, identityToRecipient } from 'age-encryption';
import type { KyselyPlugin, RootOperationNode } from 'kysely';
import { openDatabase, type DatabaseHandle } from '../../../src/db/index.js';
import { migrateToLatest } from '../../../src/db/migrator.js';
import { BackupError, createBackup } from '../../../src/modules/backup/backup.js';
import { verifyBackup } from '../../../src/modules/backup/verify.js';
import { createTestDatabase, type TestDatabase } from '../../helpers/database.js';

const event = (i: number, tag: string) => ({
  type: 'login_failure',
  severity: 'warning',
  user_id: null,
  ip: `198.51.100.${i % 250}`,
  user_agent: null,
  request_id: null,
  endpoint: null,
  details: JSON.stringify({ tag, i }),
  created_at: Date.now(),
});

const countEvents = async (handle: DatabaseHandle) =>
  Number(
    (
      await handle.db
        .selectFrom('security_events')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirst()
    )?.n ?? 0,
  );

describe('backup create is one consistent snapshot while another connection writes', { timeout: 180_000 }, () => {
  let database: TestDatabase;
  let reader: DatabaseHandle;
  let writer: DatabaseHandle;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'flokie-backup-consistency-'));
    database = await createTestDatabase({ file: true });
    reader = openDatabase({ url: database.url, poolSize: 2 });
    await migrateToLatest(reader.db);
    writer = openDatabase({ url: database.url, poolSize: 2 });
    // Several pages (the backup reads 2,000 rows at a time), so the writer gets in between them.
    for (let i = 0; i < 7000; i += 500)
      await writer.db
        .insertInto('security_events')
        .values(Array.from({ length: 500 }, (_, j) => event(i + j, 'before')))
        .execute();
  });
  after(async () => {
    await writer?.close();
    await reader?.close();
    await database?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('holds exactly the rows its header counts, though rows were added throughout; restores them', async () => {
    const identity = await generateIdentity();
    const file = join(dir, 'during-writes.age');
    let writing = true;
    let writtenDuring = 0;
    const writes = (async () => {
      for (let i = 0; writing; i++) {
        await writer.db
          .insertInto('security_events')
          .values(Array.from({ length: 20 }, (_, j) => event(i * 20 + j, 'during')))
          .execute();
        writtenDuring += 20;
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    })();
    let result;
    try {
      // Let the writer start first, so rows land between the header's counts and every page read.
      await new Promise((resolve) => setTimeout(resolve, 20));
      result = await createBackup(reader.db, reader.dialect, file, await identityToRecipient(identity), 'test');
    } finally {
      writing = false;
      await writes;
    }
    const inBackup = result.header.tables.security_events!.rows;
    const total = await countEvents(reader);
    assert.ok(writtenDuring >= 40, `the writer was busy during the backup (${writtenDuring} rows)`);
    assert.ok(inBackup >= 7000 && inBackup < total, `snapshot ${inBackup} rows, ${total} now`);

    const verified = await verifyBackup(file, identity, reader.dialect === 'sqlite' ? null : database.url);
    assert.equal(verified.restored.security_events, inBackup, 'the restore holds the rows the header counts');
  });

  it('a read failing half-way rejects with its error and leaves neither the file nor FILE.partial', async () => {
    // The second page of security_events fails, as a dropped connection would, after rows went out.
    const failSecondPage: KyselyPlugin = {
      transformQuery({ node }) {
        const text = JSON.stringify(node as RootOperationNode);
        if (node.kind === 'SelectQueryNode' && node.where && text.includes('"security_events"'))
          throw new Error('connection lost (simulated)');
        return node;
      },
      transformResult: async ({ result }) => result,
    };
    const file = join(dir, 'failed.age');
    const identity = await generateIdentity();
    const attempt = createBackup(
      reader.db.withPlugin(failSecondPage),
      reader.dialect,
      file,
      await identityToRecipient(identity),
      'test',
    );
    const outcome = await Promise.race([
      attempt.then(
        () => 'completed',
        (error: unknown) => error,
      ),
      new Promise((resolve) => setTimeout(() => resolve('still running after 30 s'), 30_000).unref()),
    ]);
    assert.ok(outcome instanceof Error && !(outcome instanceof BackupError), String(outcome));
    assert.match(outcome.message, /connection lost \(simulated\)/);
    assert.ok(!existsSync(file) && !existsSync(`${file}.partial`), String(readdirSync(dir)));
  });
});
