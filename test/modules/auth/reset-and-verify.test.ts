import assert from 'node:assert/strict';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { after, before, describe, it } from 'node:test';
import {
  bearer,
  createTestApp,
  json,
  login,
  OTHER_STRONG_PASSWORD,
  register,
  STRONG_PASSWORD,
  type TestApp,
} from '../../helpers/app.js';
import { decodeMail, startSmtpServer, tokenFromMail } from '../../helpers/smtp.js';

describe('password reset and e-mail verification over SMTP', () => {
  let t: TestApp;
  let smtp: Awaited<ReturnType<typeof startSmtpServer>>;
  before(async () => {
    smtp = await startSmtpServer();
    t = await createTestApp({ SMTP_URL: smtp.url, PUBLIC_URL: 'https://app.example.com', PASSWORD_HISTORY_COUNT: '3' });
  });
  after(async () => {
    await t.close();
    await smtp.close();
  });

  const resetRequest = (email: string) =>
    t.app.inject({ method: 'POST', url: '/api/auth/password/reset-request', payload: { email } });
  const reset = (token: string, password: string) =>
    t.app.inject({
      method: 'POST',
      url: '/api/auth/password/reset',
      payload: { token, new_password: password, confirm_password: password },
    });

  it('registration sends a verification link; the token verifies once', async () => {
    const u = await register(t.app);
    const mail = await smtp.waitFor(u.email);
    assert.match(decodeMail(mail.raw), /https:\/\/app\.example\.com\/verify-email\?token=/);
    const token = tokenFromMail(mail.raw);
    const ok = await t.app.inject({ method: 'POST', url: '/api/auth/verify-email', payload: { token } });
    assert.equal(ok.statusCode, 200);
    const again = await t.app.inject({ method: 'POST', url: '/api/auth/verify-email', payload: { token } });
    assert.equal(again.statusCode, 400);
    const tokens = await login(t.app, u.username);
    const me = json(await t.app.inject({ method: 'GET', url: '/api/auth/me', headers: bearer(tokens.access) }));
    assert.equal(me.data.user.is_verified, true);
  });

  it('a session that read /me before verifying sees is_verified: true at once after it', async () => {
    const u = await register(t.app);
    const token = tokenFromMail((await smtp.waitFor(u.email)).raw);
    const tokens = await login(t.app, u.username);
    const me = () => t.app.inject({ method: 'GET', url: '/api/auth/me', headers: bearer(tokens.access) });
    assert.equal(json(await me()).data.user.is_verified, false); // now in the token cache
    assert.equal(
      (await t.app.inject({ method: 'POST', url: '/api/auth/verify-email', payload: { token } })).statusCode,
      200,
    );
    assert.equal(json(await me()).data.user.is_verified, true, 'the verification is published to the token cache');
  });

  it('registration never returns the verification token', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/auth/register',
      payload: { username: 'nosy_user', email: 'nosy@example.com', password: STRONG_PASSWORD },
    });
    const mail = await smtp.waitFor('nosy@example.com');
    assert.ok(!res.body.includes(tokenFromMail(mail.raw)));
  });

  it('resend sends a fresh link and the old one stops working', async () => {
    const u = await register(t.app);
    const first = tokenFromMail((await smtp.waitFor(u.email)).raw);
    const tokens = await login(t.app, u.username);
    const before = smtp.messages.length;
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/auth/verify-email/resend',
      headers: bearer(tokens.access),
    });
    assert.equal(res.statusCode, 202);
    while (smtp.messages.length === before) await new Promise((r) => setTimeout(r, 20));
    const second = tokenFromMail(smtp.messages.at(-1)!.raw);
    assert.notEqual(first, second);
    assert.equal(
      (await t.app.inject({ method: 'POST', url: '/api/auth/verify-email', payload: { token: first } })).statusCode,
      400,
    );
    assert.equal(
      (await t.app.inject({ method: 'POST', url: '/api/auth/verify-email', payload: { token: second } })).statusCode,
      200,
    );
  });

  it('reset-request answers 202 the same whether or not the address exists', async () => {
    const u = await register(t.app);
    const known = await resetRequest(u.email);
    const unknown = await resetRequest('nobody-' + Date.now() + '@example.com');
    assert.equal(known.statusCode, 202);
    assert.equal(unknown.statusCode, 202);
    assert.equal(json(known).message, json(unknown).message);
  });

  it('a reset token works once, revokes every session, and is stored only as a hash', async () => {
    const u = await register(t.app);
    const session = await login(t.app, u.username);
    await resetRequest(u.email);
    const mail = await smtp
      .waitFor(u.email)
      .then(() => smtp.messages.filter((m) => m.to.includes(u.email)).find((m) => m.raw.includes('reset-password')));
    let resetMail = mail;
    for (let i = 0; !resetMail && i < 50; i++) {
      await new Promise((r) => setTimeout(r, 20));
      resetMail = smtp.messages.filter((m) => m.to.includes(u.email)).find((m) => m.raw.includes('reset-password'));
    }
    assert.ok(resetMail, 'reset mail arrives');
    assert.match(decodeMail(resetMail.raw), /https:\/\/app\.example\.com\/reset-password\?token=/);
    const token = tokenFromMail(resetMail.raw);
    const stored = await t.app.container.db.selectFrom('one_time_tokens').select('token_hash').execute();
    assert.ok(stored.every((r) => r.token_hash !== token));

    const weak = await reset(token, 'short');
    assert.equal(weak.statusCode, 400, 'a weak choice is refused without spending the token');
    assert.equal((await reset(token, OTHER_STRONG_PASSWORD)).statusCode, 200);
    assert.equal((await reset(token, 'Third-Velvet-Canyon-19')).statusCode, 400, 'single use');
    assert.equal(
      (await t.app.inject({ method: 'GET', url: '/api/auth/me', headers: bearer(session.access) })).statusCode,
      401,
    );
    assert.equal(
      (await t.app.inject({ method: 'POST', url: '/api/auth/refresh', payload: { refresh_token: session.refresh } }))
        .statusCode,
      401,
    );
    await login(t.app, u.username, OTHER_STRONG_PASSWORD);
  });

  it('an expired reset token is refused', async () => {
    const u = await register(t.app);
    const token = await t.app.container.oneTimeTokens.issue(u.id, 'password_reset', -1000);
    assert.equal((await reset(token, OTHER_STRONG_PASSWORD)).statusCode, 400);
  });

  it('password history: reusing one of the last N passwords is refused on change and on reset', async () => {
    const u = await register(t.app);
    let tokens = await login(t.app, u.username);
    const change = async (current: string, next: string) =>
      t.app.inject({
        method: 'POST',
        url: '/api/auth/password/change',
        headers: bearer(tokens.access),
        payload: { current_password: current, new_password: next, confirm_password: next },
      });
    const reuseCurrent = await change(STRONG_PASSWORD, STRONG_PASSWORD);
    assert.equal(reuseCurrent.statusCode, 400);
    assert.match(json(reuseCurrent).error.details.new_password[0], /last 3 passwords/);
    const res = await change(STRONG_PASSWORD, OTHER_STRONG_PASSWORD);
    assert.equal(res.statusCode, 200);
    tokens = { ...tokens, access: json(res).data.access_token };
    assert.equal((await change(OTHER_STRONG_PASSWORD, STRONG_PASSWORD)).statusCode, 400, 'previous password refused');
    const resetToken = await t.app.container.oneTimeTokens.issue(u.id, 'password_reset', 60_000);
    assert.equal((await reset(resetToken, STRONG_PASSWORD)).statusCode, 400, 'refused on reset too');
    // Only the last N hashes are kept.
    const rows = await t.app.container.db
      .selectFrom('password_history')
      .select('id')
      .where('user_id', '=', u.id)
      .execute();
    assert.ok(rows.length <= 3);
  });

  it('change-password needs the right current password and matching confirmation', async () => {
    const u = await register(t.app);
    const tokens = await login(t.app, u.username);
    const wrong = await t.app.inject({
      method: 'POST',
      url: '/api/auth/password/change',
      headers: bearer(tokens.access),
      payload: {
        current_password: 'not-it',
        new_password: OTHER_STRONG_PASSWORD,
        confirm_password: OTHER_STRONG_PASSWORD,
      },
    });
    assert.equal(wrong.statusCode, 400);
    const mismatch = await t.app.inject({
      method: 'POST',
      url: '/api/auth/password/change',
      headers: bearer(tokens.access),
      payload: {
        current_password: STRONG_PASSWORD,
        new_password: OTHER_STRONG_PASSWORD,
        confirm_password: 'different',
      },
    });
    assert.equal(mismatch.statusCode, 400);
    assert.ok(json(mismatch).error.details.confirm_password);
  });
});

describe('without SMTP_URL mail goes to the outbox folder', () => {
  const outbox = join(tmpdir(), `flokie-outbox-${process.pid}`);
  let t: TestApp;
  before(async () => {
    t = await createTestApp({ MAIL_OUTBOX_DIR: outbox });
  });
  after(async () => {
    await t.close();
    rmSync(outbox, { recursive: true, force: true });
  });

  it('writes one .eml file per message', async () => {
    const u = await register(t.app);
    await t.app.container.mailer.flush();
    const files = readdirSync(outbox).filter((f) => f.endsWith('.eml'));
    assert.equal(files.length, 1);
    const raw = readFileSync(join(outbox, files[0]!), 'utf8');
    assert.match(raw, new RegExp(`To: ${u.email}`));
    assert.match(decodeMail(raw), /verify-email\?token=/);
  });
});
