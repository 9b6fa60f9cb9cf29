/**
 * Changing one's e-mail address (docs/security.md "E-mail change"): the current password in the
 * same request, a pending address confirmed from a link mailed to it, notices to the old address,
 * no enumeration, sessions and links revoked on confirmation, and an administrator's direct
 * change told to both addresses. Runs on the database of TEST_DATABASE_URL.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadConfig, SettingError } from '../../../src/config/index.js';
import {
  bearer,
  createTestApp,
  json,
  login,
  makeAdmin,
  register,
  registerAndLogin,
  STRONG_PASSWORD,
  TEST_ENV,
  uniqueUser,
  type TestApp,
} from '../../helpers/app.js';
import { decodeMail, startSmtpServer, tokenFromMail } from '../../helpers/smtp.js';

type Smtp = Awaited<ReturnType<typeof startSmtpServer>>;

/** Waits for a message to `address` whose text matches `pattern`. */
async function mail(smtp: Smtp, address: string, pattern: RegExp, timeoutMs = 3000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = smtp.messages.find((m) => m.to.includes(address) && pattern.test(decodeMail(m.raw)));
    if (found) return decodeMail(found.raw);
    if (Date.now() > deadline) throw new Error(`no mail to ${address} matching ${pattern}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
const mailsTo = (smtp: Smtp, address: string) =>
  smtp.messages.filter((m) => m.to.includes(address)).map((m) => decodeMail(m.raw));

describe('e-mail change', () => {
  let t: TestApp;
  let smtp: Smtp;
  before(async () => {
    smtp = await startSmtpServer();
    t = await createTestApp({ SMTP_URL: smtp.url, PUBLIC_URL: 'https://app.example.com', MAX_LOGIN_ATTEMPTS: '5' });
  });
  after(async () => {
    await t.close();
    await smtp.close();
  });

  const put = (access: string, payload: unknown, headers: Record<string, string> = {}) =>
    t.app.inject({
      method: 'PUT',
      url: '/api/users/profile',
      headers: { ...bearer(access), ...headers },
      payload: payload as object,
    });
  const confirm = (payload: unknown, headers: Record<string, string> = {}) =>
    t.app.inject({ method: 'POST', url: '/api/auth/email/confirm', headers, payload: payload as object });
  const me = async (access: string) => t.app.inject({ method: 'GET', url: '/api/auth/me', headers: bearer(access) });
  const newAddress = (tag: string) => `${tag}-${Math.random().toString(36).slice(2, 8)}@example.org`;
  /** Requests a change and returns the token mailed to the new address. */
  async function requestChange(u: { access: string }, to: string): Promise<string> {
    const res = await put(u.access, { email: to, current_password: STRONG_PASSWORD });
    assert.equal(res.statusCode, 202, res.body);
    return tokenFromMail(await mail(smtp, to, /confirm-email-change\?token=/));
  }

  it('needs the current password: missing or wrong is a 400 on current_password and nothing changes', async () => {
    const u = await registerAndLogin(t.app, uniqueUser('ecpw'));
    const to = newAddress('nopw');
    const missing = await put(u.access, { email: to, first_name: 'Changed' });
    assert.equal(missing.statusCode, 400);
    assert.equal(json(missing).error.code, 'VALIDATION_ERROR');
    assert.ok(json(missing).error.details.current_password);
    const wrong = await put(u.access, { email: to, current_password: 'Not-The-Password-1', first_name: 'Changed' });
    assert.equal(wrong.statusCode, 400);
    assert.deepEqual(json(wrong).error.details.current_password, ['Current password is incorrect']);
    const row = (await t.app.container.users.findById(u.id))!;
    assert.equal(row.email, u.email);
    assert.equal(row.pending_email, null);
    assert.equal(row.first_name, null, 'the other fields of the refused request are not written either');
    await t.app.container.mailer.flush();
    assert.equal(mailsTo(smtp, to).length, 0);
  });

  it('a wrong current password is a failed login: MAX_LOGIN_ATTEMPTS of them lock (423), also at login', async () => {
    const u = await registerAndLogin(t.app, uniqueUser('ecguess'));
    const codes = [];
    for (let i = 0; i < 7; i++)
      codes.push(
        (await put(u.access, { email: newAddress('guess'), current_password: `Wrong-Guess-${i}-x` })).statusCode,
      );
    assert.deepEqual(codes, [400, 400, 400, 400, 400, 423, 423]);
    const right = await put(u.access, { email: newAddress('guess'), current_password: STRONG_PASSWORD });
    assert.equal(right.statusCode, 423, 'the right password is refused while locked');
    assert.ok(Number(right.headers['retry-after']) > 0);
    const loginRes = await t.app.inject({
      method: 'POST',
      url: '/api/auth/login',
      payload: { username: u.username, password: STRONG_PASSWORD },
    });
    assert.equal(loginRes.statusCode, 423, 'the same counter as logins without a device credential');
    await t.app.container.events.flush();
    const failures = await t.app.container.db
      .selectFrom('security_events')
      .select('details')
      .where('user_id', '=', u.id)
      .where('type', '=', 'login_failure')
      .execute();
    assert.equal(
      failures.filter(
        (f) => JSON.parse(f.details!).flow === 'email_change' && JSON.parse(f.details!).reason === 'bad_credentials',
      ).length,
      5,
    );
  });

  it('202 with the pending address; nothing moves until confirmed; the old address is told at once', async () => {
    const u = await registerAndLogin(t.app, uniqueUser('ecpend'));
    const to = newAddress('pend');
    const res = await put(u.access, { email: to.toUpperCase(), current_password: STRONG_PASSWORD, first_name: 'Pat' });
    assert.equal(res.statusCode, 202, res.body);
    const view = json(res).data.user;
    assert.equal(view.email, u.email);
    assert.equal(view.pending_email, to);
    assert.equal(view.first_name, 'Pat');
    const mine = json(await me(u.access)).data.user;
    assert.equal(mine.email, u.email);
    assert.equal(mine.pending_email, to);

    const notice = await mail(smtp, u.email, /being changed/);
    assert.match(notice, new RegExp(to.replace(/[.]/g, '\\.')));
    assert.match(notice, /From IP address: 127\.0\.0\.1/);
    assert.match(notice, /\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC/);
    assert.match(notice, /reset your password/i);
    const link = await mail(smtp, to, /confirm-email-change/);
    assert.match(link, /https:\/\/app\.example\.com\/confirm-email-change\?token=/);

    // Login by the new address does not work; by the old one it does. Resets go to the old address only.
    assert.equal(
      (
        await t.app.inject({
          method: 'POST',
          url: '/api/auth/login',
          payload: { username: to, password: STRONG_PASSWORD },
        })
      ).statusCode,
      401,
    );
    await login(t.app, u.email);
    const before = smtp.messages.length;
    assert.equal(
      (await t.app.inject({ method: 'POST', url: '/api/auth/password/reset-request', payload: { email: to } }))
        .statusCode,
      202,
    );
    assert.equal(
      (await t.app.inject({ method: 'POST', url: '/api/auth/password/reset-request', payload: { email: u.email } }))
        .statusCode,
      202,
    );
    await mail(smtp, u.email, /reset-password\?token=/);
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(
      smtp.messages.slice(before).every((m) => !m.to.includes(to)),
      'no reset mail to the pending address',
    );
  });

  it('confirming applies and verifies the address, keeps only this session, tells the old address', async () => {
    const u = await registerAndLogin(t.app, uniqueUser('ecok'));
    const other = await login(t.app, u.username);
    const to = newAddress('ok');
    const token = await requestChange(u, to);
    const stored = await t.app.container.db
      .selectFrom('one_time_tokens')
      .selectAll()
      .where('user_id', '=', u.id)
      .where('purpose', '=', 'email_change')
      .execute();
    assert.equal(stored.length, 1);
    assert.notEqual(stored[0]!.token_hash, token, 'stored hashed');
    assert.equal(stored[0]!.target_email, to);
    assert.ok(
      stored[0]!.expires_at - Date.now() > 23 * 3_600_000 && stored[0]!.expires_at - Date.now() <= 24 * 3_600_000,
      'EMAIL_CHANGE_EXPIRES_HOURS (24)',
    );

    const res = await confirm({ token }, bearer(u.access));
    assert.equal(res.statusCode, 200, res.body);
    const view = json(await me(u.access)).data.user;
    assert.equal(view.email, to);
    assert.equal(view.pending_email, null);
    assert.equal(view.is_verified, true);
    assert.equal((await me(other.access)).statusCode, 401, 'every other session is revoked');
    assert.equal(
      (await t.app.inject({ method: 'POST', url: '/api/auth/refresh', payload: { refresh_token: other.refresh } }))
        .statusCode,
      401,
    );
    await login(t.app, to);
    assert.equal(
      (
        await t.app.inject({
          method: 'POST',
          url: '/api/auth/login',
          payload: { username: u.email, password: STRONG_PASSWORD },
        })
      ).statusCode,
      401,
    );
    const notice = await mail(smtp, u.email, /was changed/);
    assert.match(notice, new RegExp(`is now ${to.replace(/[.]/g, '\\.')}`));
    assert.match(notice, /IP address: 127\.0\.0\.1/);

    // Replayed: refused, and nothing changes.
    const again = await confirm({ token });
    assert.equal(again.statusCode, 400);
    assert.ok(json(again).error.details.token);

    await t.app.container.events.flush();
    const types = (
      await t.app.container.db
        .selectFrom('security_events')
        .select(['type', 'details'])
        .where('user_id', '=', u.id)
        .execute()
    ).map((r) => r.type);
    assert.ok(types.includes('email_change_requested') && types.includes('email_changed'), types.join(','));
    const rows = await t.app.container.db
      .selectFrom('security_events')
      .select('details')
      .where('user_id', '=', u.id)
      .execute();
    assert.ok(
      rows.every((r) => !String(r.details).includes(token)),
      'no token in any event',
    );
  });

  it("confirming without an access token (or with another user's) revokes every session of the user", async () => {
    const u = await registerAndLogin(t.app, uniqueUser('ecall'));
    const stranger = await registerAndLogin(t.app, uniqueUser('ecstranger'));
    const to = newAddress('all');
    const token = await requestChange(u, to);
    assert.equal((await confirm({ token }, bearer(stranger.access))).statusCode, 200);
    assert.equal((await me(u.access)).statusCode, 401);
    assert.equal((await me(stranger.access)).statusCode, 200, "the other user's session is not touched");
    const u2 = await registerAndLogin(t.app, uniqueUser('ecall2'));
    const token2 = await requestChange(u2, newAddress('all2'));
    assert.equal(
      (await confirm({ token: token2 }, { authorization: 'Bearer not.a.token' })).statusCode,
      200,
      'a bad bearer is ignored, not a 401',
    );
    assert.equal((await me(u2.access)).statusCode, 401);
  });

  it("another account's address: the same 202 and view, no working link, a mail saying it is in use", async () => {
    const owner = await register(t.app, uniqueUser('ecowner'));
    const u = await registerAndLogin(t.app, uniqueUser('ectaken'));
    const v = await registerAndLogin(t.app, uniqueUser('ecfree'));
    const freeAddress = newAddress('free');
    const taken = await put(u.access, { email: owner.email, current_password: STRONG_PASSWORD });
    const free = await put(v.access, { email: freeAddress, current_password: STRONG_PASSWORD });
    assert.equal(taken.statusCode, 202);
    assert.equal(free.statusCode, 202);
    assert.equal(json(taken).message, json(free).message);
    assert.equal(json(taken).data.user.pending_email, owner.email);
    assert.deepEqual(Object.keys(taken.headers).sort(), Object.keys(free.headers).sort());
    assert.equal(json(await me(u.access)).data.user.pending_email, owner.email);

    const inUse = await mail(smtp, owner.email, /already belongs to an account/);
    assert.doesNotMatch(inUse, /token=/);
    await mail(smtp, u.email, /being changed/);
    const tokens = await t.app.container.db
      .selectFrom('one_time_tokens')
      .select('purpose')
      .where('user_id', '=', u.id)
      .where('purpose', '=', 'email_change')
      .execute();
    assert.equal(tokens.length, 0, 'no confirmation token exists');
    assert.equal((await t.app.container.users.findByEmail(owner.email))!.id, owner.id);
  });

  it('an address registered by someone else meanwhile: 409 on confirmation, nothing half-written', async () => {
    const u = await registerAndLogin(t.app, uniqueUser('ecrace'));
    const to = newAddress('meanwhile');
    const token = await requestChange(u, to);
    await register(t.app, { ...uniqueUser('ecsnatch'), email: to });
    const res = await confirm({ token }, bearer(u.access));
    assert.equal(res.statusCode, 409, res.body);
    assert.equal(json(res).error.code, 'CONFLICT');
    const row = (await t.app.container.users.findById(u.id))!;
    assert.equal(row.email, u.email);
    assert.equal(row.pending_email, to);
    assert.equal((await me(u.access)).statusCode, 200, 'no session was revoked');
  });

  it('two confirmations racing: exactly one applies', async () => {
    const u = await registerAndLogin(t.app, uniqueUser('ecduel'));
    const to = newAddress('duel');
    const token = await requestChange(u, to);
    const results = await Promise.all(Array.from({ length: 6 }, () => confirm({ token })));
    const codes = results.map((r) => r.statusCode).sort();
    assert.deepEqual(codes, [200, 400, 400, 400, 400, 400]);
    assert.equal((await t.app.container.users.findById(u.id))!.email, to);
  });

  it('two accounts confirming one new address at once: one gets it, the other is refused', async () => {
    const to = newAddress('contested');
    const [a, b] = await Promise.all(
      [uniqueUser('eccontest'), uniqueUser('eccontest')].map((u) => registerAndLogin(t.app, u)),
    );
    const tokens = [await requestChange(a!, to), await requestChange(b!, to)];
    const results = await Promise.all(tokens.map((token) => confirm({ token })));
    // The loser's link is either refused outright (400: the winner's confirmation already took the address) or
    // reaches the write and meets the unique address (409); never a second 200, never a 500.
    const [first, second] = results.map((r) => r.statusCode).sort();
    assert.equal(first, 200, results.map((r) => r.body).join('\n'));
    assert.ok(second === 400 || second === 409, results.map((r) => r.body).join('\n'));
    const rows = await Promise.all([a!, b!].map(async (u) => (await t.app.container.users.findById(u.id))!));
    assert.equal(rows.filter((row) => row.email === to).length, 1, 'exactly one account has the address');
    const loser = rows.find((row) => row.email !== to)!;
    assert.equal(loser.email, [a!, b!].find((u) => u.id === loser.id)!.email, 'the other keeps its own');
  });

  it('a newer request, or a password change, makes the earlier link worthless', async () => {
    const u = await registerAndLogin(t.app, uniqueUser('ecstale'));
    const first = await requestChange(u, newAddress('first'));
    const secondAddress = newAddress('second');
    const second = await requestChange(u, secondAddress);
    assert.equal((await confirm({ token: first })).statusCode, 400);
    const change = await t.app.inject({
      method: 'POST',
      url: '/api/auth/password/change',
      headers: bearer(u.access),
      payload: {
        current_password: STRONG_PASSWORD,
        new_password: 'Quiet-Lantern-Meadow-77',
        confirm_password: 'Quiet-Lantern-Meadow-77',
      },
    });
    assert.equal(change.statusCode, 200);
    assert.equal((await confirm({ token: second })).statusCode, 400, 'the password change killed the link');
    assert.equal((await t.app.container.users.findById(u.id))!.pending_email, null, 'and dropped the pending address');
  });

  it('bad input: empty body, wrong types, unknown fields, a second spelling of the token, a 100 KB field', async () => {
    const u = await registerAndLogin(t.app, uniqueUser('ecbad'));
    const token = await requestChange(u, newAddress('bad'));
    for (const payload of [
      {},
      { token: 123 },
      { token: null },
      { token: [token] },
      { token, extra: 1 },
      { token: '' },
      { token: 'x'.repeat(5000) },
    ]) {
      const res = await confirm(payload);
      assert.equal(res.statusCode, 400, JSON.stringify(payload).slice(0, 80));
      assert.equal(json(res).success, false);
    }
    const empty = await t.app.inject({ method: 'POST', url: '/api/auth/email/confirm' });
    assert.equal(empty.statusCode, 400);
    const spellings = new Set([
      token.toUpperCase(),
      token.replace(/-/g, '%2D').replace(/_/g, '%5F'),
      ` ${token}`,
      `${token}=`,
      token.slice(0, -1),
    ]);
    spellings.delete(token);
    for (const spelling of spellings) {
      assert.equal((await confirm({ token: spelling })).statusCode, 400, spelling);
    }
    for (const payload of [
      { email: 42, current_password: STRONG_PASSWORD },
      { email: 'not-an-address', current_password: STRONG_PASSWORD },
      { email: 'a@b.example', current_password: 7 },
      { email: 'a@b.example', current_password: 'x'.repeat(100_000) },
    ]) {
      const res = await put(u.access, payload);
      assert.ok(res.statusCode === 400 || res.statusCode === 413, `${res.statusCode}`);
    }
    assert.equal((await confirm({ token })).statusCode, 200, 'the real token still works after all that');
  });

  it('resubmitting the current address changes nothing and needs no password', async () => {
    const u = await registerAndLogin(t.app, uniqueUser('ecsame'));
    const res = await put(u.access, { email: u.email.toUpperCase(), bio: 'same' });
    assert.equal(res.statusCode, 200);
    assert.equal(json(res).data.user.pending_email, null);
  });

  it("an administrator's change applies at once, tells both addresses, and kills the user's links", async () => {
    const admin = await registerAndLogin(t.app, uniqueUser('ecadmin'));
    await makeAdmin(t.app, admin.id);
    const u = await register(t.app, uniqueUser('ecbyadmin'));
    const reset = await t.app.container.oneTimeTokens.issue(u.id, 'password_reset', 600_000);
    const to = newAddress('admin');
    const res = await t.app.inject({
      method: 'PUT',
      url: `/api/users/${u.id}`,
      headers: bearer(admin.access),
      payload: { email: to },
    });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(json(res).data.user.email, to);
    assert.match(await mail(smtp, u.email, /changed by an administrator/), new RegExp(to.replace(/[.]/g, '\\.')));
    await mail(smtp, to, /made this the e-mail address/);
    const resetRes = await t.app.inject({
      method: 'POST',
      url: '/api/auth/password/reset',
      payload: { token: reset, new_password: 'Quiet-Lantern-Meadow-77', confirm_password: 'Quiet-Lantern-Meadow-77' },
    });
    assert.equal(resetRes.statusCode, 400, 'the reset link mailed to the old address is dead');
  });

  it("an administrator's own address: not by /api/users/{id} (no password there), only by the profile", async () => {
    const admin = await registerAndLogin(t.app, uniqueUser('ecselfadmin'));
    await makeAdmin(t.app, admin.id);
    const to = newAddress('selfadmin');
    const res = await t.app.inject({
      method: 'PUT',
      url: `/api/users/${admin.id}`,
      headers: bearer(admin.access),
      payload: { email: to, first_name: 'Changed' },
    });
    assert.equal(res.statusCode, 400, res.body);
    assert.equal(json(res).error.code, 'VALIDATION_ERROR');
    assert.ok(json(res).error.details.email);
    const row = (await t.app.container.users.findById(admin.id))!;
    assert.equal(row.email, admin.email, 'the address did not change');
    assert.equal(row.first_name, null, 'nor did anything else of the refused request');
    const other = await t.app.inject({
      method: 'PUT',
      url: `/api/users/${admin.id}`,
      headers: bearer(admin.access),
      payload: { email: admin.email.toUpperCase(), first_name: 'Same' },
    });
    assert.equal(other.statusCode, 200, 'the same address, and other fields, still change there');
    await requestChange(admin, to);
    assert.equal((await t.app.container.users.findById(admin.id))!.pending_email, to);
  });
});

describe('e-mailed links come from one place and honour their settings', () => {
  let t: TestApp;
  let smtp: Smtp;
  before(async () => {
    smtp = await startSmtpServer();
    t = await createTestApp({
      SMTP_URL: smtp.url,
      EMAIL_VERIFY_URL: 'https://web.example.com/#/verify/{token}',
      PASSWORD_RESET_URL: 'https://web.example.com/reset?t={token}&from=mail',
      EMAIL_CHANGE_CONFIRM_URL: 'http://localhost:3000/email/{token}',
    });
  });
  after(async () => {
    await t.close();
    await smtp.close();
  });

  it('verification, reset and e-mail change mails use the configured templates', async () => {
    const u = await registerAndLogin(t.app, uniqueUser('links'));
    assert.match(await mail(smtp, u.email, /verify/), /https:\/\/web\.example\.com\/#\/verify\/[A-Za-z0-9_-]{43}\b/);
    await t.app.inject({ method: 'POST', url: '/api/auth/password/reset-request', payload: { email: u.email } });
    assert.match(
      await mail(smtp, u.email, /reset\?t=/),
      /https:\/\/web\.example\.com\/reset\?t=[A-Za-z0-9_-]{43}&from=mail/,
    );
    const to = `links-new-${Date.now()}@example.org`;
    assert.equal(
      (
        await t.app.inject({
          method: 'PUT',
          url: '/api/users/profile',
          headers: bearer(u.access),
          payload: { email: to, current_password: STRONG_PASSWORD },
        })
      ).statusCode,
      202,
    );
    const text = await mail(smtp, to, /email\//);
    const token = /http:\/\/localhost:3000\/email\/([A-Za-z0-9_-]{43})/.exec(text)?.[1];
    assert.ok(token, text);
    assert.equal(
      (await t.app.inject({ method: 'POST', url: '/api/auth/email/confirm', payload: { token } })).statusCode,
      200,
    );
  });

  it('a template without {token}, or not an http(s) URL, stops the start with the setting named', () => {
    for (const [name, value] of [
      ['EMAIL_VERIFY_URL', 'https://web.example.com/verify'],
      ['PASSWORD_RESET_URL', 'javascript:alert({token})'],
      ['EMAIL_CHANGE_CONFIRM_URL', 'not a url {token}'],
      ['EMAIL_CHANGE_CONFIRM_URL', 'ftp://files.example.com/{token}'],
    ]) {
      assert.throws(
        () => loadConfig({ ...TEST_ENV, [name!]: value! }, { dotenv: false }),
        (e: unknown) => e instanceof SettingError && e.message.startsWith(name!),
        `${name}=${value}`,
      );
    }
    assert.equal(
      loadConfig({ ...TEST_ENV, EMAIL_VERIFY_URL: ' https://x.example/v/{token} ' }, { dotenv: false })
        .EMAIL_VERIFY_URL,
      'https://x.example/v/{token}',
    );
  });
});
