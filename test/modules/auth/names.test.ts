/**
 * Names that display as something they are not: usernames and first/last names refuse Unicode
 * format characters (bidi controls, zero-width characters), and no username has the shape of a
 * user id, so "id or username" lookups (CLI, admin) are never ambiguous.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import {
  bearer,
  createTestApp,
  json,
  makeAdmin,
  registerAndLogin,
  STRONG_PASSWORD,
  uniqueUser,
  type TestApp,
} from '../../helpers/app.js';

const INVISIBLE = [
  '\u202E',
  '\u202A',
  '\u200B',
  '\u200D',
  '\u2066',
  '\u2067',
  '\u2068',
  '\u2069',
  '\uFEFF',
  '\u00AD',
  '\u2060',
  '\u{E0041}',
];

describe('names: invisible format characters and id-shaped usernames', () => {
  let t: TestApp;
  let admin: Awaited<ReturnType<typeof registerAndLogin>>;
  before(async () => {
    t = await createTestApp();
    admin = await registerAndLogin(t.app, uniqueUser('namesadmin'));
    await makeAdmin(t.app, admin.id);
  });
  after(() => t.close());

  const expectFieldError = (res: { statusCode: number; body: string }, field: string, pattern: RegExp) => {
    assert.equal(res.statusCode, 400, res.body);
    const body = json(res);
    assert.equal(body.success, false);
    assert.equal(body.error.code, 'VALIDATION_ERROR');
    assert.match(String(body.error.details?.[field]), pattern, res.body);
  };

  it('register, profile and admin routes refuse bidi and zero-width characters in names (400)', async () => {
    for (const ch of INVISIBLE) {
      const hex = ch.codePointAt(0)!.toString(16);
      const reg = await t.app.inject({
        method: 'POST',
        url: '/api/auth/register',
        payload: { ...uniqueUser('bidi'), first_name: `Ann${ch}e` },
      });
      expectFieldError(reg, 'first_name', /invisible format characters/);
      const last = await t.app.inject({
        method: 'POST',
        url: '/api/auth/register',
        payload: { ...uniqueUser('bidi'), last_name: `${ch}gpj.exe` },
      });
      expectFieldError(last, 'last_name', /invisible format characters/);
      const profile = await t.app.inject({
        method: 'PUT',
        url: '/api/users/profile',
        headers: bearer(admin.access),
        payload: { last_name: `Smith${ch}` },
      });
      expectFieldError(profile, 'last_name', /invisible format characters/);
      const created = await t.app.inject({
        method: 'POST',
        url: '/api/users',
        headers: bearer(admin.access),
        payload: { ...uniqueUser('bidi'), first_name: `x${ch}` },
      });
      expectFieldError(created, 'first_name', /invisible format characters/);
      const updated = await t.app.inject({
        method: 'PUT',
        url: `/api/users/${admin.id}`,
        headers: bearer(admin.access),
        payload: { first_name: `x${ch}` },
      });
      expectFieldError(updated, 'first_name', /invisible format characters/);
      const username = await t.app.inject({
        method: 'POST',
        url: '/api/auth/register',
        payload: { ...uniqueUser('bidi'), username: `adm${ch}in` },
      });
      assert.equal(username.statusCode, 400, `username with U+${hex}`);
    }
    // Letters of any script, accents and spaces stay welcome.
    const ok = await t.app.inject({
      method: 'POST',
      url: '/api/auth/register',
      payload: { ...uniqueUser('intl'), first_name: 'Zoë Ångström', last_name: 'محمد 山田' },
    });
    assert.equal(ok.statusCode, 201, ok.body);
  });

  it('register, profile and admin create store names the same way: trimmed, blank as null', async () => {
    const names = { first_name: '  Ann  ', last_name: '   ' };
    const reg = await t.app.inject({
      method: 'POST',
      url: '/api/auth/register',
      payload: { ...uniqueUser('blank'), ...names },
    });
    assert.equal(reg.statusCode, 201, reg.body);
    const created = await t.app.inject({
      method: 'POST',
      url: '/api/users',
      headers: bearer(admin.access),
      payload: { ...uniqueUser('blank'), ...names },
    });
    assert.equal(created.statusCode, 201, created.body);
    const user = await registerAndLogin(t.app, uniqueUser('blank'));
    const profile = await t.app.inject({
      method: 'PUT',
      url: '/api/users/profile',
      headers: bearer(user.access),
      payload: names,
    });
    assert.equal(profile.statusCode, 200, profile.body);
    for (const res of [reg, created, profile]) {
      const { first_name, last_name } = json(res).data.user;
      assert.deepEqual({ first_name, last_name }, { first_name: 'Ann', last_name: null }, res.body);
    }
  });

  it('a username with the shape of a user id is refused everywhere (400), in any case', async () => {
    for (const name of [randomUUID(), randomUUID().toUpperCase(), admin.id]) {
      const reg = await t.app.inject({
        method: 'POST',
        url: '/api/auth/register',
        payload: { username: name, email: `${name.slice(0, 8)}@example.com`, password: STRONG_PASSWORD },
      });
      expectFieldError(reg, 'username', /shaped like a user id/);
      const created = await t.app.inject({
        method: 'POST',
        url: '/api/users',
        headers: bearer(admin.access),
        payload: { ...uniqueUser('x'), username: name },
      });
      expectFieldError(created, 'username', /shaped like a user id/);
      const renamed = await t.app.inject({
        method: 'PUT',
        url: `/api/users/${admin.id}`,
        headers: bearer(admin.access),
        payload: { username: name },
      });
      expectFieldError(renamed, 'username', /shaped like a user id/);
    }
    // Near misses are ordinary usernames.
    const near = `${randomUUID()}x`.replace(/-/g, '_').slice(0, 40);
    assert.equal(
      (
        await t.app.inject({
          method: 'POST',
          url: '/api/auth/register',
          payload: { ...uniqueUser('n'), username: near },
        })
      ).statusCode,
      201,
    );
  });

  it('an "id or username" lookup reads an id-shaped reference only as an id, never as a username', async () => {
    const victim = await registerAndLogin(t.app, uniqueUser('victim'));
    const impostor = await registerAndLogin(t.app, uniqueUser('impostor'));
    // A row from before the rule, named like the victim's id (upper case: a different string, the same id).
    await t.app.container.db
      .updateTable('users')
      .set({ username: victim.id.toUpperCase(), username_lower: victim.id })
      .where('id', '=', impostor.id)
      .execute();
    assert.equal((await t.app.container.userQueries.find(victim.id)).id, victim.id);
    assert.equal((await t.app.container.userQueries.find(victim.id.toUpperCase())).id, victim.id);
    assert.equal((await t.app.container.userQueries.find(impostor.id)).id, impostor.id);
    assert.equal((await t.app.container.userQueries.find(victim.username)).id, victim.id);
    await assert.rejects(t.app.container.userQueries.find(randomUUID()), /No user/);
  });
});
