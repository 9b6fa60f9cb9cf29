/**
 * An e-mail verification racing an e-mail change (docs/security.md "Links"): the link confirms the
 * address it was mailed to, never the new one. Each round fires 16 requests at once (8 accounts,
 * each with its verification link and an administrator's change of its address). Run on
 * PostgreSQL and MariaDB with TEST_DATABASE_URL; SQLite serialises transactions anyway.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  bearer,
  createTestApp,
  json,
  makeAdmin,
  register,
  registerAndLogin,
  uniqueUser,
  type TestApp,
} from '../../helpers/app.js';

const ROUNDS = 8;
const ACCOUNTS = 8;

describe('e-mail verification racing an e-mail change', () => {
  let t: TestApp;
  let admin: Awaited<ReturnType<typeof registerAndLogin>>;
  before(async () => {
    t = await createTestApp();
    admin = await registerAndLogin(t.app, uniqueUser('vadmin'));
    await makeAdmin(t.app, admin.id);
  });
  after(() => t.close());

  it('never marks the new, unconfirmed address verified', async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const accounts = await Promise.all(
        Array.from({ length: ACCOUNTS }, async () => {
          const u = await register(t.app, uniqueUser('vrace'));
          const row = (await t.app.container.users.findById(u.id))!;
          // The link the registration mail carries (a fresh one: issuing replaces the mailed one).
          const token = await t.app.container.oneTimeTokens.issue(u.id, 'email_verification', 600_000, row.email);
          return { id: u.id, token, next: `moved-${round}-${u.username}@example.org` };
        }),
      );
      const requests = accounts.flatMap((a) => [
        { method: 'POST' as const, url: '/api/auth/verify-email', payload: { token: a.token } },
        {
          method: 'PUT' as const,
          url: `/api/users/${a.id}`,
          headers: bearer(admin.access),
          payload: { email: a.next },
        },
      ]);
      const answers = await Promise.all(requests.map((r) => t.app.inject(r)));
      for (const res of answers) assert.ok([200, 400].includes(res.statusCode), `${res.statusCode} ${res.body}`);
      for (const a of accounts) {
        const row = (await t.app.container.users.findById(a.id))!;
        assert.equal(row.email, a.next, 'the administrator’s change applied');
        assert.equal(row.is_verified, 0, `round ${round}: the new address ${row.email} was marked verified`);
      }
    }
  });

  it('a verification link issued for an earlier address is refused (400) and verifies nothing', async () => {
    const u = await register(t.app, uniqueUser('vold'));
    const row = (await t.app.container.users.findById(u.id))!;
    const token = await t.app.container.oneTimeTokens.issue(u.id, 'email_verification', 600_000, row.email);
    // Changed behind the link's back (as a concurrent change would), without killing the link.
    await t.app.container.db
      .updateTable('users')
      .set({ email: `other-${row.email}` })
      .where('id', '=', u.id)
      .execute();
    const res = await t.app.inject({ method: 'POST', url: '/api/auth/verify-email', payload: { token } });
    assert.equal(res.statusCode, 400);
    assert.equal(json(res).error.code, 'VALIDATION_ERROR');
    assert.equal((await t.app.container.users.findById(u.id))!.is_verified, 0);
  });
});
