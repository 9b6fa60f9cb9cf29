/**
 * Encrypted backups (src/modules/backup/): the runbook's recovery commands
 * (docs/incident-response.md, between the recovery markers) run exactly as written, through the
 * real CLI: keygen, create, verify, restore. The restored database holds the same rows as the
 * original in every table, and a real server started on it serves logins. A modified, truncated or
 * wrongly-keyed file, or a target that is not empty, is refused with one line, a non-zero exit and
 * nothing written. SQLite by default; PostgreSQL / MariaDB with TEST_DATABASE_URL.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sql, type Kysely } from 'kysely';
import { openDatabase } from '../../../src/db/index.js';
import type { Database } from '../../../src/db/types.js';
import {
  bearer,
  createTestApp,
  login,
  makeAdmin,
  registerAndLogin,
  STRONG_PASSWORD,
  TEST_ENV,
  type TestApp,
} from '../../helpers/app.js';
import { createTestDatabase, type TestDatabase } from '../../helpers/database.js';
import { ROOT, runCli, type RunResult } from '../../cli/helpers.js';
import { request, startServer } from '../../helpers/server.js';

const TABLES_AND_KEYS: [keyof Database, string][] = [
  ['users', 'id'],
  ['password_history', 'id'],
  ['sessions', 'id'],
  ['one_time_tokens', 'token_hash'],
  ['login_attempts', 'key'],
  ['revoked_tokens', 'jti'],
  ['security_events', 'id'],
  ['change_log', 'id'],
  ['app_settings', 'key'],
  ['alert_outbox', 'id'],
];

async function snapshot(db: Kysely<Database>): Promise<Record<string, unknown[]>> {
  const out: Record<string, unknown[]> = {};
  for (const [table, key] of TABLES_AND_KEYS)
    out[table] = await db.selectFrom(table).selectAll().orderBy(sql.ref(key)).execute();
  return out;
}

async function rowCount(url: string): Promise<number> {
  const handle = openDatabase({ url, poolSize: 1 });
  try {
    const tables = (await handle.db.introspection.getTables()).filter((t) => !t.name.startsWith('flokie_migrations'));
    let total = 0;
    for (const t of tables)
      total += Number(
        (
          await handle.db
            .selectFrom(t.name as never)
            .select((eb) => eb.fn.countAll<number>().as('n'))
            .executeTakeFirst()
        )?.n ?? 0,
      );
    return total;
  } finally {
    await handle.close();
  }
}

/** The `npx flokie …` lines of the runbook's recovery block, in order. */
function runbookCommands(): { env: Record<string, string>; args: string[]; redirect?: string }[] {
  const doc = readFileSync(join(ROOT, 'docs/incident-response.md'), 'utf8');
  const block = doc.slice(doc.indexOf('<!-- recovery:start -->'), doc.indexOf('<!-- recovery:end -->'));
  assert.ok(block.length > 0, 'the runbook has a recovery block');
  const lines = block
    .split('\n')
    .map((line) => line.replace(/(^|\s+)#.*$/, '').trim())
    .filter((line) => line && !line.startsWith('<!--') && !line.startsWith('```'));
  // Every command of the block is run: nothing in it (an export, a psql line) is skipped.
  assert.deepEqual(
    lines.filter((line) => !/^(DATABASE_URL=\$RESTORED_DATABASE_URL )?npx flokie /.test(line)),
    [],
    'the recovery block holds only `npx flokie` commands (the restore one with DATABASE_URL=$RESTORED_DATABASE_URL)',
  );
  return lines.map((line) => {
    const [prefix, rest] = line.split('npx flokie ') as [string, string];
    const env = Object.fromEntries(
      prefix
        .trim()
        .split(/\s+/)
        .filter(Boolean)
        .map((pair) => pair.split('=') as [string, string]),
    );
    const [command, redirect] = rest.split(' > ');
    return { env, args: command!.trim().split(/\s+/), redirect: redirect?.trim() };
  });
}

describe('backup → verify → restore, as the runbook says', { timeout: 240_000 }, () => {
  let source: TestApp;
  let target: TestDatabase;
  let dir: string;
  let recipient = '';
  const outputs: RunResult[] = [];
  let admin: Awaited<ReturnType<typeof registerAndLogin>>;
  let alice: Awaited<ReturnType<typeof registerAndLogin>>;
  let mallory: Awaited<ReturnType<typeof registerAndLogin>>;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'flokie-backup-test-'));
    source = await createTestApp(
      { ALERT_WEBHOOK_URL: 'http://127.0.0.1:9/down', ALERT_RETRY_INITIAL_SECONDS: '3600' },
      { fileDatabase: true },
    );
    target = await createTestDatabase({ file: true });
    admin = await registerAndLogin(source.app);
    await makeAdmin(source.app, admin.id);
    alice = await registerAndLogin(source.app);
    mallory = await registerAndLogin(source.app);
    await login(source.app, alice.username); // a second session
    await source.app.inject({
      method: 'POST',
      url: '/api/auth/login',
      payload: { username: alice.username, password: 'Wrong-Password-1' },
    });
    await source.app.inject({ method: 'POST', url: '/api/auth/logout', headers: bearer(mallory.access) });
    assert.equal(
      (
        await source.app.inject({
          method: 'POST',
          url: `/api/users/${mallory.id}/deactivate`,
          headers: bearer(admin.access),
        })
      ).statusCode,
      200,
    );
    await source.app.inject({
      method: 'POST',
      url: '/api/security/tokens/revoke',
      headers: bearer(admin.access),
      payload: { user_id: alice.id },
    });
    alice = { ...alice, ...(await login(source.app, alice.username)) };
    const spare = await login(source.app, admin.username);
    const jti = JSON.parse(Buffer.from(spare.access.split('.')[1]!, 'base64url').toString()).jti as string;
    assert.equal(
      (
        await source.app.inject({
          method: 'POST',
          url: '/api/security/tokens/revoke',
          headers: bearer(admin.access),
          payload: { jti },
        })
      ).statusCode,
      200,
    );
    await source.app.container.events.flush();
    // Enough incompressible rows that the file spans several of age's 64 KiB chunks: a damaged
    // last chunk is found only after earlier rows were read, which the one transaction must undo.
    const { randomBytes } = await import('node:crypto');
    const filler = Array.from({ length: 2500 }, (_, i) => ({
      type: 'login_failure',
      severity: 'warning',
      user_id: null,
      ip: `198.51.100.${i % 250}`,
      user_agent: null,
      request_id: null,
      endpoint: null,
      details: JSON.stringify({ noise: randomBytes(48).toString('hex') }),
      created_at: Date.now() - i,
    }));
    for (let i = 0; i < filler.length; i += 250)
      await source.app.container.db
        .insertInto('security_events')
        .values(filler.slice(i, i + 250))
        .execute();
    // The database holds text that needs escaping, too.
    await source.app.container.users.update(alice.id, {
      bio: 'line one\nline "two" \\ \u2603 <tag> ; DROP TABLE users; --',
    });
  });
  after(async () => {
    await source?.close();
    await target?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs the runbook recovery commands as written', async () => {
    const commands = runbookCommands();
    assert.deepEqual(
      commands.map((c) => c.args.slice(0, 2).join(' ')),
      ['backup keygen', 'backup create', 'backup verify', 'backup restore'],
    );
    for (const command of commands) {
      const env: Record<string, string> = { DATABASE_URL: source.database.url, BACKUP_RECIPIENT: recipient };
      if (command.env.DATABASE_URL === '$RESTORED_DATABASE_URL') env.DATABASE_URL = target.url;
      const result = await runCli(command.args, { env, cwd: dir, timeoutMs: 120_000 });
      outputs.push(result);
      assert.equal(result.code, 0, `flokie ${command.args.join(' ')}: ${result.stderr}`);
      if (command.redirect) writeFileSync(join(dir, command.redirect), result.stdout, { mode: 0o600 });
      if (command.args[1] === 'keygen') recipient = /BACKUP_RECIPIENT=(age1[a-z0-9]+)/.exec(result.stderr)![1]!;
    }
    const [keygen, create, verify, restore] = outputs as [RunResult, RunResult, RunResult, RunResult];
    assert.match(keygen.stdout, /^AGE-SECRET-KEY-1[A-Z0-9]+$/m);
    assert.match(
      create.stdout,
      /^Backup written: flokie-backup\.age \(\d+ bytes, \d+ rows, (sqlite|postgres|mysql), migrations up to \d{3}_\w+/,
    );
    assert.equal(statSync(join(dir, 'flokie-backup.age')).mode & 0o777, 0o600, 'the backup file is private');
    const raw = readFileSync(join(dir, 'flokie-backup.age'));
    assert.ok(raw.subarray(0, 40).toString('latin1').startsWith('age-encryption.org/v1'), 'an age file');
    assert.ok(
      !raw.includes(Buffer.from(alice.username)) && !raw.includes(Buffer.from('$2b$04$')),
      'no plaintext user data or hashes in the file',
    );
    assert.match(verify.stdout, /^OK {2}migrations: 001_initial, /m);
    assert.match(verify.stdout, /^OK {2}\d+ rows restored into .*users=3 /m);
    assert.match(restore.stdout, /^Restored \d+ rows from flokie-backup\.age/);
  });

  it('the restored database holds every row of every table, unchanged', async () => {
    const restored = openDatabase({ url: target.url, poolSize: 1 });
    try {
      const before = await snapshot(source.app.container.db);
      const after = await snapshot(restored.db);
      for (const [table] of TABLES_AND_KEYS) assert.deepEqual(after[table], before[table], `${table} differs`);
      assert.ok(
        before.users!.length === 3 &&
          before.sessions!.length >= 4 &&
          before.security_events!.length >= 8 &&
          before.revoked_tokens!.length >= 1,
      );
      assert.ok(before.alert_outbox!.length >= 1, 'queued alerts are backed up too');
      // New rows get fresh ids after the restored ones (sequences continue on PostgreSQL).
      await restored.db
        .insertInto('security_events')
        .values({
          type: 'logout',
          severity: 'info',
          user_id: null,
          ip: null,
          user_agent: null,
          request_id: null,
          endpoint: null,
          details: null,
          created_at: Date.now(),
        })
        .execute();
    } finally {
      await restored.close();
    }
  });

  it('a real server on the restored database serves logins; revocations and deactivations held', async () => {
    // The same signing keys as the service that issued the tokens.
    const server = await startServer({
      DATABASE_URL: target.url,
      SECRET_KEY: TEST_ENV.SECRET_KEY!,
      JWT_SECRET_KEY: TEST_ENV.JWT_SECRET_KEY!,
    });
    try {
      const ok = await request('POST', `${server.url}/api/auth/login`, {
        body: { username: alice.username, password: STRONG_PASSWORD },
      });
      assert.equal(ok.status, 200, ok.text);
      const me = await request('GET', `${server.url}/api/auth/me`, { token: ok.body.data.access_token });
      assert.equal(me.status, 200);
      assert.equal(me.body.data.user.username, alice.username);
      const kept = await request('GET', `${server.url}/api/auth/me`, { token: alice.access });
      assert.equal(kept.status, 200, 'a session valid at backup time is valid after restore');
      const revoked = await request('GET', `${server.url}/api/auth/me`, { token: mallory.access });
      assert.equal(revoked.status, 401, 'a session revoked before the backup stays revoked');
      const deactivated = await request('POST', `${server.url}/api/auth/login`, {
        body: { username: mallory.username, password: STRONG_PASSWORD },
      });
      assert.equal(deactivated.status, 401, 'a deactivated account stays deactivated');
    } finally {
      await server.stop();
    }
  });

  it('refuses a non-empty target, a modified/truncated/wrong-key file, overwriting: 1 line, exit 1', async () => {
    const env = (url: string) => ({ DATABASE_URL: url });
    const restoreInto = (url: string, file: string, key = 'flokie-backup.key') =>
      runCli(['backup', 'restore', file, '--identity', key], { env: env(url), cwd: dir });

    const notEmpty = await restoreInto(target.url, 'flokie-backup.age');
    assert.equal(notEmpty.code, 1);
    assert.equal(
      notEmpty.stderr,
      'flokie: error: the target database is not empty (users has 3 rows); ' +
        'restore only into a new, empty database\n',
    );

    const good = readFileSync(join(dir, 'flokie-backup.age'));
    const modified = Buffer.from(good);
    assert.ok(good.length > 2 * 65_536, `several chunks: ${good.length} bytes`);
    modified[modified.length - 1000]! ^= 0x01; // in the last chunk
    writeFileSync(join(dir, 'modified.age'), modified);
    writeFileSync(join(dir, 'truncated.age'), good.subarray(0, good.length - 40));
    writeFileSync(join(dir, 'header-only.age'), good.subarray(0, 200));
    const other = await runCli(['backup', 'keygen'], { env: {}, cwd: dir });
    writeFileSync(join(dir, 'other.key'), other.stdout);

    const empty = await createTestDatabase({ file: true });
    try {
      for (const [file, key, pattern] of [
        ['modified.age', 'flokie-backup.key', /damaged, truncated or was modified/],
        ['truncated.age', 'flokie-backup.key', /damaged, truncated or was modified|truncated/],
        ['header-only.age', 'flokie-backup.key', /damaged, truncated or was modified|truncated/],
        ['flokie-backup.age', 'other.key', /the identity does not open this backup/],
        ['flokie-backup.age', 'flokie-backup.age', /holds no age identity/],
        ['missing.age', 'flokie-backup.key', /missing\.age does not exist/],
      ] as const) {
        for (const command of ['restore', 'verify'] as const) {
          const result =
            command === 'restore'
              ? await restoreInto(empty.url, file, key)
              : await runCli(['backup', 'verify', file, '--identity', key], { env: env(empty.url), cwd: dir });
          assert.equal(result.code, 1, `${command} ${file} with ${key}: ${result.stdout}`);
          assert.match(result.stderr, pattern, `${command} ${file}`);
          assert.equal(result.stderr.trim().split('\n').length, 1, `one line: ${result.stderr}`);
          assert.equal(result.stdout, '');
        }
        assert.equal(await rowCount(empty.url), 0, `${file}: nothing half-restored`);
      }
    } finally {
      await empty.drop();
    }

    const again = await runCli(['backup', 'create', '--out', 'flokie-backup.age'], {
      env: { ...env(source.database.url), BACKUP_RECIPIENT: recipient },
      cwd: dir,
    });
    assert.equal(again.code, 1);
    assert.match(again.stderr, /flokie-backup\.age already exists; choose a new name/);
    const noKey = await runCli(['backup', 'create', '--out', 'new.age'], { env: env(source.database.url), cwd: dir });
    assert.equal(noKey.code, 1);
    assert.match(noKey.stderr, /BACKUP_RECIPIENT is not set/);
    const badKey = await runCli(['backup', 'create', '--out', 'new.age'], {
      env: { ...env(source.database.url), BACKUP_RECIPIENT: 'age1notakey' },
      cwd: dir,
    });
    assert.equal(badKey.code, 1);
    assert.match(badKey.stderr, /BACKUP_RECIPIENT must be an age public key/);
    assert.throws(() => statSync(join(dir, 'new.age')));
    assert.throws(() => statSync(join(dir, 'new.age.partial')));
  });
});
