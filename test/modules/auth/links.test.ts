/**
 * Reset, verification and e-mail change links die with what they were for (docs/security.md
 * "Links"): every flow that changes the account under them kills every outstanding link of the
 * user in its own transaction. Runs on the database of TEST_DATABASE_URL.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  bearer,
  createTestApp,
  json,
  makeAdmin,
  OTHER_STRONG_PASSWORD,
  register,
  registerAndLogin,
  STRONG_PASSWORD,
  uniqueUser,
  type TestApp,
  waitForLink,
} from '../../helpers/app.js';

describe('outstanding links die when the account changes under them', () => {
  let t: TestApp;
  let admin: Awaited<ReturnType<typeof registerAndLogin>>;
  before(async () => {
    t = await createTestApp();
    admin = await registerAndLogin(t.app, uniqueUser('linkadmin'));
    await makeAdmin(t.app, admin.id);
  });
  after(() => t.close());

  /** One link of each kind, issued before the change. */
  async function outstanding(userId: string) {
    const tokens = t.app.container.oneTimeTokens;
    return {
      reset: await tokens.issue(userId, 'password_reset', 600_000),
      verify: await tokens.issue(userId, 'email_verification', 600_000),
      change: await tokens.issue(userId, 'email_change', 600_000, `pending-${userId.slice(0, 8)}@example.org`),
    };
  }
  /** Whether each link could still be spent (peek does not spend it). */
  async function alive(links: Awaited<ReturnType<typeof outstanding>>) {
    const tokens = t.app.container.oneTimeTokens;
    return {
      reset: (await tokens.peek(links.reset, 'password_reset')) !== null,
      verify: (await tokens.peek(links.verify, 'email_verification')) !== null,
      change: (await tokens.peek(links.change, 'email_change')) !== null,
    };
  }
  const dead = { reset: false, verify: false, change: false };
  const resetWith = (token: string, password = 'Third-Velvet-Canyon-19') =>
    t.app.inject({
      method: 'POST',
      url: '/api/auth/password/reset',
      payload: { token, new_password: password, confirm_password: password },
    });

  it('the test can see a live link (control)', async () => {
    const u = await register(t.app, uniqueUser('linkctl'));
    assert.deepEqual(await alive(await outstanding(u.id)), { reset: true, verify: true, change: true });
  });

  it('password change: a reset link issued before it cannot be used after it', async () => {
    const u = await registerAndLogin(t.app, uniqueUser('linkchg'));
    const links = await outstanding(u.id);
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/auth/password/change',
      headers: bearer(u.access),
      payload: {
        current_password: STRONG_PASSWORD,
        new_password: OTHER_STRONG_PASSWORD,
        confirm_password: OTHER_STRONG_PASSWORD,
      },
    });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(await alive(links), dead);
    assert.equal((await resetWith(links.reset)).statusCode, 400);
    assert.equal(
      (await t.app.inject({ method: 'POST', url: '/api/auth/verify-email', payload: { token: links.verify } }))
        .statusCode,
      400,
    );
  });

  it('password reset: the other links die with the one spent', async () => {
    const u = await register(t.app, uniqueUser('linkreset'));
    const links = await outstanding(u.id);
    const spent = await t.app.container.oneTimeTokens.issue(u.id, 'password_reset', 600_000);
    assert.equal((await resetWith(spent)).statusCode, 200);
    assert.deepEqual({ ...(await alive(links)), reset: false }, dead);
  });

  it('e-mail change requested: every earlier link dies', async () => {
    const u = await registerAndLogin(t.app, uniqueUser('linkreq'));
    const links = await outstanding(u.id);
    const res = await t.app.inject({
      method: 'PUT',
      url: '/api/users/profile',
      headers: bearer(u.access),
      payload: { email: `req-${u.id.slice(0, 8)}@example.org`, current_password: STRONG_PASSWORD },
    });
    assert.equal(res.statusCode, 202);
    assert.deepEqual(await alive(links), dead);
  });

  it('e-mail change confirmed: links issued after the request die too', async () => {
    const u = await registerAndLogin(t.app, uniqueUser('linkconf'));
    const to = `conf-${u.id.slice(0, 8)}@example.org`;
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
    await t.app.container.mailer.flush();
    // Wait for the confirmation link (issued after the answer), then issue our own with the same target.
    await waitForLink(t.app.container, u.id, 'email_change');
    const confirmToken = await t.app.container.oneTimeTokens.issue(u.id, 'email_change', 600_000, to);
    const reset = await t.app.container.oneTimeTokens.issue(u.id, 'password_reset', 600_000);
    const verify = await t.app.container.oneTimeTokens.issue(u.id, 'email_verification', 600_000);
    assert.equal(
      (await t.app.inject({ method: 'POST', url: '/api/auth/email/confirm', payload: { token: confirmToken } }))
        .statusCode,
      200,
    );
    assert.equal(await t.app.container.oneTimeTokens.peek(reset, 'password_reset'), null);
    assert.equal(await t.app.container.oneTimeTokens.peek(verify, 'email_verification'), null);
  });

  for (const [label, run] of [
    [
      'deactivation',
      (id: string) =>
        t.app.inject({ method: 'POST', url: `/api/users/${id}/deactivate`, headers: bearer(admin.access) }),
    ],
    [
      'soft deletion',
      (id: string) => t.app.inject({ method: 'DELETE', url: `/api/users/${id}`, headers: bearer(admin.access) }),
    ],
  ] as const) {
    it(`${label}: links die, and stay dead when the account is activated again`, async () => {
      const u = await register(t.app, uniqueUser('linkoff'));
      const links = await outstanding(u.id);
      assert.equal((await run(u.id)).statusCode, 200);
      assert.deepEqual(await alive(links), dead);
      assert.equal(
        (await t.app.inject({ method: 'POST', url: `/api/users/${u.id}/activate`, headers: bearer(admin.access) }))
          .statusCode,
        200,
      );
      assert.equal((await resetWith(links.reset)).statusCode, 400);
    });
  }

  it('hard deletion: the links go with the account', async () => {
    const u = await register(t.app, uniqueUser('linkhard'));
    const links = await outstanding(u.id);
    assert.equal(
      (
        await t.app.inject({
          method: 'DELETE',
          url: `/api/users/${u.id}?hard_delete=true`,
          headers: bearer(admin.access),
        })
      ).statusCode,
      200,
    );
    assert.deepEqual(await alive(links), dead);
    const rows = await t.app.container.db
      .selectFrom('one_time_tokens')
      .select('token_hash')
      .where('user_id', '=', u.id)
      .execute();
    assert.equal(rows.length, 0);
  });

  it('a reset for a deactivated account does nothing and answers like any other', async () => {
    const u = await register(t.app, uniqueUser('linkinactive'));
    const hashBefore = (await t.app.container.users.findById(u.id))!.password_hash;
    assert.equal(
      (await t.app.inject({ method: 'POST', url: `/api/users/${u.id}/deactivate`, headers: bearer(admin.access) }))
        .statusCode,
      200,
    );
    const inactive = await t.app.inject({
      method: 'POST',
      url: '/api/auth/password/reset-request',
      payload: { email: u.email },
    });
    const unknown = await t.app.inject({
      method: 'POST',
      url: '/api/auth/password/reset-request',
      payload: { email: 'nobody-linkinactive@example.com' },
    });
    assert.equal(inactive.statusCode, 202);
    assert.equal(json(inactive).message, json(unknown).message);
    await new Promise((r) => setTimeout(r, 100));
    const issued = await t.app.container.db
      .selectFrom('one_time_tokens')
      .select('token_hash')
      .where('user_id', '=', u.id)
      .where('used_at', 'is', null)
      .execute();
    assert.equal(issued.length, 0, 'no reset link was issued');
    // A link that somehow exists for a deactivated account is refused as well.
    await t.app.container.db
      .insertInto('one_time_tokens')
      .values({
        token_hash: (await import('../../../src/modules/auth/one-time-tokens.js')).hashToken('x'.repeat(43)),
        user_id: u.id,
        purpose: 'password_reset',
        expires_at: Date.now() + 60_000,
        used_at: null,
        created_at: Date.now(),
        target_email: null,
      })
      .execute();
    assert.equal((await resetWith('x'.repeat(43))).statusCode, 400);
    assert.equal((await t.app.container.users.findById(u.id))!.password_hash, hashBefore, 'the password is unchanged');
  });
});
