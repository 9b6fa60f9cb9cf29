/**
 * Every `flokie` command, run as a real process against a test database (SQLite file, or
 * PostgreSQL/MySQL when TEST_DATABASE_URL is set), checked through the database afterwards.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Command } from 'commander';
import { createContainer, type Container } from '../../src/container.js';
import { secretProblem } from '../../src/config/index.js';
import { buildProgram } from '../../src/cli/program.js';
import { EMERGENCY_LIMIT_KEY, getEmergencyLimit } from '../../src/state/emergency-limit.js';
import { makeTestConfig, STRONG_PASSWORD } from '../helpers/app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { runCli, spawnCli, waitFor } from './helpers.js';

describe('flokie CLI', () => {
  let database: TestDatabase;
  let c: Container;
  let env: Record<string, string>;

  before(async () => {
    database = await createTestDatabase({ file: true });
    env = { DATABASE_URL: database.url };
    c = await createContainer(makeTestConfig({}, database.url), { migrate: true });
  });
  after(async () => {
    await c.close();
    await database.drop();
  });

  const changes = async (kind: string, key: string) =>
    (await c.db.selectFrom('change_log').selectAll().where('kind', '=', kind).where('key', '=', key).execute()).length;

  async function makeUser(username: string) {
    const hash = await c.hasher.hash(STRONG_PASSWORD);
    const user = await c.users.insert({ username, email: `${username}@example.com`, password_hash: hash });
    const session = await c.sessions.create(user.id, '127.0.0.1', 'test');
    return { user, session };
  }

  it('has help on every command', async () => {
    const walk = (cmd: Command, path: string[]): string[][] => [
      path,
      ...cmd.commands.flatMap((sub) => walk(sub, [...path, sub.name()])),
    ];
    const all = walk(buildProgram(), []);
    assert.ok(all.length >= 16, `commands: ${all.map((p) => p.join(' ')).join(', ')}`);
    for (const path of all) {
      let cmd = buildProgram();
      for (const name of path) cmd = cmd.commands.find((s) => s.name() === name)!;
      const help = cmd.helpInformation();
      assert.match(help, /^Usage: flokie/m, path.join(' '));
      assert.ok(cmd.description().length > 5, `${path.join(' ')} has a description`);
    }
    const top = await runCli(['--help'], { env });
    assert.equal(top.code, 0);
    for (const name of ['users', 'tokens', 'sessions', 'ratelimit', 'secrets', 'check', 'events'])
      assert.ok(top.stdout.includes(`  ${name} `), name);
    const sub = await runCli(['users', 'create-admin', '--help'], { env });
    assert.equal(sub.code, 0);
    assert.match(sub.stdout, /standard input/);
  });

  it('errors are one line on stderr with a non-zero exit', async () => {
    for (const args of [
      ['bogus'],
      ['users', 'deactivate'],
      ['users', 'deactivate', 'no-such-user'],
      ['ratelimit', 'emergency', 'lots'],
      ['users', 'create-admin', 'a', 'b', 'extra-password-arg'],
    ]) {
      const r = await runCli(args, { env });
      assert.notEqual(r.code, 0, args.join(' '));
      assert.equal(r.stderr.trim().split('\n').length, 1, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /^flokie: error: /);
    }
    const badConfig = await runCli(['users', 'list'], { env: { ...env, BCRYPT_ROUNDS: 'many' } });
    assert.equal(badConfig.code, 1);
    assert.match(badConfig.stderr, /^flokie: error: configuration error: BCRYPT_ROUNDS/);
  });

  it('users create-admin reads the password from stdin and applies the password policy', async () => {
    const ok = await runCli(['users', 'create-admin', 'cliadmin', 'cliadmin@example.com'], {
      env,
      input: `${STRONG_PASSWORD}\n`,
    });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /Created administrator cliadmin/);
    const user = await c.users.findByLogin('cliadmin');
    assert.ok(user);
    assert.equal(user.is_admin, 1);
    assert.equal(user.is_verified, 1);
    assert.ok(await c.hasher.verify(STRONG_PASSWORD, user.password_hash));
    assert.ok(!ok.stdout.includes(STRONG_PASSWORD) && !ok.stderr.includes(STRONG_PASSWORD));

    const weak = await runCli(['users', 'create-admin', 'weakadmin', 'weak@example.com'], { env, input: 'password\n' });
    assert.equal(weak.code, 1);
    assert.match(weak.stderr, /Password/);
    assert.equal(await c.users.findByLogin('weakadmin'), undefined);
    const none = await runCli(['users', 'create-admin', 'nopass', 'nopass@example.com'], { env, input: '' });
    assert.equal(none.code, 1);
    const dup = await runCli(['users', 'create-admin', 'CLIADMIN', 'other@example.com'], {
      env,
      input: `${STRONG_PASSWORD}\n`,
    });
    assert.equal(dup.code, 1);
    assert.match(dup.stderr, /already/);
    const badEmail = await runCli(['users', 'create-admin', 'okname', 'not-an-email'], {
      env,
      input: `${STRONG_PASSWORD}\n`,
    });
    assert.equal(badEmail.code, 1);
  });

  it('users deactivate revokes sessions and publishes the change; activate and unlock work', async () => {
    const { user, session } = await makeUser('clivictim');
    const r = await runCli(['users', 'deactivate', 'clivictim'], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await c.users.findById(user.id))!.is_active, 0);
    const s = await c.db.selectFrom('sessions').selectAll().where('id', '=', session.id).executeTakeFirstOrThrow();
    assert.notEqual(s.revoked_at, null);
    assert.ok((await changes('user', user.id)) >= 1, "a 'user' change was published");

    assert.equal((await runCli(['users', 'activate', 'clivictim@example.com'], { env })).code, 0);
    assert.equal((await c.users.findById(user.id))!.is_active, 1);

    await c.db
      .insertInto('login_attempts')
      .values({
        key: `user:${user.id}`,
        failures: 5,
        window_started_at: Date.now(),
        locked_until: Date.now() + 600_000,
      })
      .execute();
    assert.notEqual(await c.lockout.lockedUntil(`user:${user.id}`), null);
    const list = await runCli(['users', 'list', '--search', 'clivic'], { env });
    assert.equal(list.code, 0);
    assert.match(list.stdout, /clivictim/);
    assert.match(list.stdout, /\d{4}-\d\d-\d\dT/);
    assert.equal((await runCli(['users', 'unlock', 'clivictim'], { env })).code, 0);
    assert.equal(await c.lockout.lockedUntil(`user:${user.id}`), null);

    // lock: every device, until unlocked or for --minutes; unlock clears it.
    const locked = await runCli(['users', 'lock', 'clivictim', '--minutes', '15'], { env });
    assert.equal(locked.code, 0, locked.stderr);
    assert.match(locked.stdout, /Locked clivictim .* for every device for 15 minute/);
    const lock = (await c.lockout.accountLocks([user.id])).get(user.id)!;
    assert.equal(lock.scope, 'all');
    assert.ok(Math.abs(lock.until - (Date.now() + 15 * 60_000)) < 60_000);
    assert.equal((await runCli(['users', 'lock', 'clivictim', '--minutes', 'soon'], { env })).code, 1);
    assert.equal((await runCli(['users', 'lock', 'clivictim'], { env })).code, 0);
    assert.equal(
      (await c.lockout.accountLocks([user.id])).get(user.id)!.until,
      253_402_300_799_999,
      'without --minutes: until unlocked',
    );
    assert.equal((await runCli(['users', 'unlock', 'clivictim'], { env })).code, 0);
    assert.equal((await c.lockout.accountLocks([user.id])).size, 0);

    const json = await runCli(['users', 'list', '--json', '--include-inactive'], { env });
    const rows = json.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.ok(rows.some((u) => u.username === 'clivictim' && u.password_hash === undefined));

    await c.events.flush();
    const actions = await c.db
      .selectFrom('security_events')
      .select('details')
      .where('type', '=', 'admin_action')
      .execute();
    const names = actions.map((a) => JSON.parse(a.details!).action);
    for (const a of ['create_user', 'deactivate_user', 'activate_user', 'unlock_user', 'lock_user'])
      assert.ok(names.includes(a), a);
    assert.ok(actions.every((a) => JSON.parse(a.details!).via === 'cli'));
  });

  it('tokens revoke and sessions revoke-all', async () => {
    const { user, session } = await makeUser('clitokens');
    const access = await c.tokens.sign('access', { sub: user.id, sid: session.id });
    const r = await runCli(['tokens', 'revoke', access.jti], { env });
    assert.equal(r.code, 0, r.stderr);
    const row = await c.db.selectFrom('revoked_tokens').selectAll().where('jti', '=', access.jti).executeTakeFirst();
    assert.ok(row && row.expires_at > Date.now());
    assert.ok((await changes('jti', access.jti)) >= 1);
    await assert.rejects(c.tokenGuard.authenticate(access.token), /revoked/);
    // An access token's jti is not stored: the command says it did not know it, and revoked it anyway.
    assert.match(
      r.stdout,
      new RegExp(`^Revoked token ${access.jti}: no refresh token with this id is known .*refused from now on\n$`),
    );
    assert.equal((await runCli(['tokens', 'revoke', "x' OR 1=1 --"], { env })).code, 1);
    // A jti may start with "-" (base64url): it is the argument, not an unknown option.
    const dashed = await runCli(['tokens', 'revoke', '-Zq8vN3xR7kT2mW9pL4sY6b'], { env });
    assert.equal(dashed.code, 0, dashed.stderr);
    assert.match(dashed.stdout, /^Revoked token -Zq8vN3xR7kT2mW9pL4sY6b/);

    // A refresh token's jti names its session and user, which are revoked with it.
    const refreshed = await c.sessions.create(user.id, null, null);
    const byRefresh = await runCli(['tokens', 'revoke', refreshed.refresh_jti], { env });
    assert.equal(byRefresh.code, 0, byRefresh.stderr);
    assert.equal(
      byRefresh.stdout,
      `Revoked refresh token ${refreshed.refresh_jti}: session ${refreshed.id} of clitokens (${user.id}) ` +
        `is revoked with it\n`,
    );
    assert.notEqual(
      (await c.db.selectFrom('sessions').select('revoked_at').where('id', '=', refreshed.id).executeTakeFirstOrThrow())
        .revoked_at,
      null,
    );
    const again = await runCli(['tokens', 'revoke', refreshed.refresh_jti], { env });
    assert.match(again.stdout, /\(it was already revoked\): session .* which had already ended, is revoked with it/);

    const second = await c.sessions.create(user.id, null, null);
    const all = await runCli(['sessions', 'revoke-all', 'clitokens'], { env });
    assert.equal(all.code, 0, all.stderr);
    assert.match(all.stdout, /Revoked 2 session/);
    const live = await c.db
      .selectFrom('sessions')
      .select('id')
      .where('user_id', '=', user.id)
      .where('revoked_at', 'is', null)
      .execute();
    assert.deepEqual(live, []);
    void second;
  });

  it('ratelimit emergency sets and lifts the global limit and publishes the change', async () => {
    const on = await runCli(['ratelimit', 'emergency', '1 per minute'], { env });
    assert.equal(on.code, 0, on.stderr);
    assert.deepEqual(await getEmergencyLimit(c.db), { points: 1, durationSeconds: 60, text: '1 per minute' });
    assert.ok((await changes('setting', EMERGENCY_LIMIT_KEY)) >= 1);
    const status = await runCli(['ratelimit', 'status'], { env });
    assert.match(status.stdout, /1 per minute/);
    const off = await runCli(['ratelimit', 'emergency', 'off'], { env });
    assert.equal(off.code, 0);
    assert.equal(await getEmergencyLimit(c.db), null);
    await c.events.flush();
    const emergency = await c.db
      .selectFrom('security_events')
      .selectAll()
      .where('type', '=', 'emergency_action')
      .execute();
    assert.equal(emergency.length, 2);
  });

  it('secrets generate prints three strong, distinct values', async () => {
    const r = await runCli(['secrets', 'generate'], { env });
    assert.equal(r.code, 0);
    const values = Object.fromEntries(
      r.stdout
        .trim()
        .split('\n')
        .map((l) => l.split(/=(.*)/s).slice(0, 2)),
    );
    assert.deepEqual(Object.keys(values), ['SECRET_KEY', 'JWT_SECRET_KEY', 'DB_PASSWORD']);
    assert.equal(secretProblem(values.SECRET_KEY), null);
    assert.equal(secretProblem(values.JWT_SECRET_KEY), null);
    assert.ok(values.DB_PASSWORD.length >= 24);
    assert.equal(new Set(Object.values(values)).size, 3);
    const again = await runCli(['secrets', 'generate'], { env });
    assert.notEqual(again.stdout, r.stdout);
  });

  it('events export writes JSON lines; events tail prints new events and stops cleanly on Ctrl-C', async () => {
    const exported = await runCli(['events', 'export', '--since', '1h'], { env });
    assert.equal(exported.code, 0, exported.stderr);
    const lines = exported.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.ok(lines.length >= 5);
    assert.ok(lines.every((e) => e.type && e.created_at && 'details' in e));
    assert.match(exported.stderr, /Exported \d+ event/);
    const onlyEmergency = await runCli(['events', 'export', '--type', 'emergency_action'], { env });
    assert.equal(onlyEmergency.stdout.trim().split('\n').length, 2);
    assert.equal((await runCli(['events', 'export', '--since', 'last tuesday'], { env })).code, 1);

    const tail = spawnCli(['events', 'tail', '--interval', '100'], env);
    await waitFor(() => tail.output.stderr.includes('Watching'), 60_000, 'tail to start');
    assert.ok(!tail.output.stdout.includes('emergency_action'), 'old events are not replayed without --since');
    c.events.emit({
      type: 'brute_force_detected',
      ip: '192.0.2.77',
      message: 'Potential brute force attack',
      details: { attempts: 11 },
    });
    await c.events.flush();
    await waitFor(() => tail.output.stdout.includes('brute_force_detected'), 10_000, 'the new event to be printed');
    assert.match(tail.output.stdout, /CRITICAL\s+brute_force_detected\s+ip=192\.0\.2\.77/);
    tail.child.kill('SIGINT');
    const code = await new Promise((resolve) => tail.child.once('exit', resolve));
    assert.equal(code, 0);
    assert.match(tail.output.stderr, /Stopped/);

    const history = spawnCli(
      ['events', 'tail', '--since', '1h', '--type', 'emergency_action', '--json', '--interval', '100'],
      env,
    );
    await waitFor(() => history.output.stdout.trim().split('\n').filter(Boolean).length >= 2, 60_000, 'history');
    history.child.kill('SIGINT');
    assert.equal(await new Promise((resolve) => history.child.once('exit', resolve)), 0);
  });
});
