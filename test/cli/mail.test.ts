/**
 * `flokie mail list` / `mail show`: the development outbox decoded with a real MIME parser, links
 * whole (a link copied from the raw quoted-printable .eml is broken by soft line breaks and =3D).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createTestApp, json, register, uniqueUser, type TestApp } from '../helpers/app.js';
import { ROOT, runCli } from './helpers.js';

const HOST = 'accounts.a-rather-long-host-name-for-links.example.com';

describe('flokie mail list / show', () => {
  const outbox = join(tmpdir(), `flokie-mail-cli-${process.pid}`);
  const empty = join(tmpdir(), `flokie-mail-cli-empty-${process.pid}`);
  let t: TestApp;
  let user: Awaited<ReturnType<typeof register>>;
  before(async () => {
    // A long PUBLIC_URL: the link is longer than a quoted-printable line, so the raw file breaks it.
    t = await createTestApp({ MAIL_OUTBOX_DIR: outbox, PUBLIC_URL: `https://${HOST}` });
    user = await register(t.app, uniqueUser('mailcli'));
    await t.app.container.mailer.flush();
    await new Promise((resolve) => setTimeout(resolve, 5)); // distinct file-name times
    const payload = { email: user.email };
    const reset = await t.app.inject({ method: 'POST', url: '/api/auth/password/reset-request', payload });
    assert.equal(reset.statusCode, 202);
    // The reset mail is queued after the answer (the lookup runs in the background).
    for (let i = 0; i < 100 && readdirSync(outbox).length < 2; i += 1) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await t.app.container.mailer.flush();
  });
  after(async () => {
    await t.close();
    rmSync(outbox, { recursive: true, force: true });
    rmSync(empty, { recursive: true, force: true });
  });
  const mail = (args: string[], dir = outbox) => runCli(['mail', ...args], { env: { MAIL_OUTBOX_DIR: dir } });

  it('the raw .eml really is encoded: the token cannot be copied from it as is (control)', () => {
    const files = readdirSync(outbox).filter((f) => f.endsWith('.eml'));
    assert.equal(files.length, 2);
    const raw = readFileSync(join(outbox, files.sort()[0]!), 'utf8');
    assert.match(raw, /Content-Transfer-Encoding: quoted-printable/i);
    assert.match(raw, /token=3D/);
  });

  it('list prints one numbered line per message, oldest first', async () => {
    const r = await mail(['list']);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.equal(lines.length, 2);
    assert.match(lines[0]!, new RegExp(`^\\s+1\\s+\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d\\s+${user.email}\\s+\\S`));
    assert.match(lines[1]!, new RegExp(`^\\s+2\\s.*${user.email}`));
    assert.match(r.stderr, /2 message\(s\)/);
  });

  it('show prints the decoded text and the whole link, whose token works', async () => {
    const r = await mail(['show', '1']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^To: +${user.email}$`, 'm'));
    assert.doesNotMatch(r.stdout, /=3D|=\n/);
    const links = r.stdout
      .split('Links:')[1]!
      .trim()
      .split('\n')
      .map((l) => l.trim());
    const verify = links.find((l) => l.includes('/verify-email?token='));
    assert.ok(verify, r.stdout);
    assert.ok(r.stdout.split('Links:')[0]!.includes(verify), 'the text carries the same link');
    const token = new URL(verify).searchParams.get('token')!;
    const res = await t.app.inject({ method: 'POST', url: '/api/auth/verify-email', payload: { token } });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(json(res).success, true);
  });

  it('show last is the newest message (the reset link)', async () => {
    const r = await mail(['show', 'last']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Message 2 of 2/);
    const link = r.stdout.split('\n').find((line) => line.startsWith(`  https://${HOST}/reset-password?token=`));
    assert.match(String(link), /\?token=[A-Za-z0-9_-]+$/);
  });

  it('refuses a bad message number with one line and a non-zero exit', async () => {
    for (const [arg, message] of [
      ['0', /expected a message number/],
      ['abc', /expected a message number/],
      ['-1', /error/],
      ['3', /no message 3: the outbox has 2/],
    ] as const) {
      const r = await mail(['show', arg]);
      assert.notEqual(r.code, 0, arg);
      assert.match(r.stderr, message, arg);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    }
  });

  it('an empty or missing outbox is said plainly', async () => {
    const list = await mail(['list'], empty);
    assert.equal(list.code, 0, list.stderr);
    assert.equal(list.stdout, '');
    assert.match(list.stderr, /No messages in/);
    const show = await mail(['show', 'last'], empty);
    assert.equal(show.code, 1);
    assert.match(show.stderr, /no messages in/);
  });

  it('prints no terminal control sequence from a message file', async () => {
    mkdirSync(empty, { recursive: true });
    const raw = [
      'From: a@example.com',
      'To: b@example.com',
      'Subject: =?UTF-8?B?' + Buffer.from('hi \u001b]0;owned\u0007 \u001b[2J').toString('base64') + '?=',
      'Content-Type: text/plain; charset=utf-8',
      '',
      'Text \u001b[31mred\u001b[0m https://example.com/x?token=abc.',
      '',
    ].join('\r\n');
    writeFileSync(join(empty, '2026-01-01T00-00-00-000Z-x.eml'), raw);
    for (const args of [['list'], ['show', '1']]) {
      const r = await mail(args, empty);
      assert.equal(r.code, 0, r.stderr);
      assert.doesNotMatch(r.stdout, /[\u001b\u0007]/);
    }
    const shown = await mail(['show', '1'], empty);
    assert.match(shown.stdout, /^ {2}https:\/\/example\.com\/x\?token=abc$/m);
  });

  it('building the command tree (what --help does) does not load the MIME parser', () => {
    const probe = [
      "import { createRequire } from 'node:module';",
      'const cache = createRequire(import.meta.url).cache;',
      'const parser = () => Object.keys(cache).filter((file) => ' +
        '/node_modules.(mailparser|libmime)./.test(file)).length;',
      "const { buildProgram } = await import('./src/cli/program.ts');",
      'buildProgram();',
      'const afterBuild = parser();',
      // Control: the probe does see the parser once a message is decoded.
      "await (await import('./src/mail/outbox.ts')).parseMessage('Subject: x\\r\\n\\r\\nhello');",
      'console.log(JSON.stringify([afterBuild, parser() > 0]));',
    ].join('\n');
    const args = ['--import', 'tsx', '--input-type=module', '-e', probe];
    const run = spawnSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stdout.trim(), '[0,true]');
  });
});
