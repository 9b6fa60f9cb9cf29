import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  bearer,
  createTestApp,
  json,
  login,
  makeAdmin,
  register,
  registerAndLogin,
  STRONG_PASSWORD,
  uniqueUser,
  type TestApp,
} from '../../helpers/app.js';
import { DomainError } from '../../../src/core/errors.js';
import { cliContext } from '../../../src/core/request-context.js';

async function adminEvents(t: TestApp, action: string) {
  await t.app.container.events.flush();
  const rows = await t.app.container.db
    .selectFrom('security_events')
    .selectAll()
    .where('type', '=', 'admin_action')
    .execute();
  return rows.map((r) => ({ ...r, details: JSON.parse(r.details ?? '{}') })).filter((r) => r.details.action === action);
}

describe('administration API', () => {
  let t: TestApp;
  let admin: Awaited<ReturnType<typeof registerAndLogin>>;
  let user: Awaited<ReturnType<typeof registerAndLogin>>;
  const as = (token: string) => ({ ...bearer(token) });

  before(async () => {
    t = await createTestApp();
    admin = await registerAndLogin(t.app, uniqueUser('admin'));
    await makeAdmin(t.app, admin.id);
    user = await registerAndLogin(t.app, uniqueUser('plain'));
  });
  after(() => t.close());

  it('denies anonymous callers (401) and non-admins (403) on every admin route', async () => {
    const routes: [string, string, unknown?][] = [
      ['GET', '/api/users'],
      ['POST', '/api/users', { username: 'x', is_admin: true }],
      ['GET', '/api/users/search?q=ab'],
      ['GET', '/api/users/statistics'],
      ['GET', `/api/users/${user.id}`],
      ['PUT', `/api/users/${user.id}`, { is_admin: true }],
      ['DELETE', `/api/users/${user.id}`],
      ['POST', `/api/users/${user.id}/activate`],
      ['POST', `/api/users/${user.id}/deactivate`],
      ['POST', `/api/users/${user.id}/unlock`],
      ['POST', `/api/users/${user.id}/lock`, { minutes: 5 }],
      ['POST', `/api/users/${user.id}/admin`, { is_admin: true }],
      ['GET', '/api/security/events'],
      ['POST', '/api/security/tokens/revoke', { user_id: admin.id }],
      ['GET', '/api/security/emergency-rate-limit'],
      ['PUT', '/api/security/emergency-rate-limit', { limit: '1 per minute' }],
    ];
    for (const [method, url, payload] of routes) {
      const anon = await t.app.inject({ method: method as 'GET', url, payload: payload as object });
      assert.equal(anon.statusCode, 401, `${method} ${url} anonymous`);
      assert.equal(json(anon).error.code, 'AUTHENTICATION_ERROR');
      const res = await t.app.inject({
        method: method as 'GET',
        url,
        payload: payload as object,
        headers: as(user.access),
      });
      assert.equal(res.statusCode, 403, `${method} ${url} non-admin`);
      assert.equal(json(res).error.code, 'AUTHORIZATION_ERROR');
      assert.equal(json(res).success, false);
    }
    const me = await t.app.container.users.findById(user.id);
    assert.equal(me!.is_admin, 0);
    assert.equal(me!.is_active, 1);
  });

  it('a user cannot make themselves admin through profile fields', async () => {
    const res = await t.app.inject({
      method: 'PUT',
      url: '/api/users/profile',
      headers: as(user.access),
      payload: { is_admin: true },
    });
    assert.equal(res.statusCode, 400);
    assert.equal(json(res).error.code, 'VALIDATION_ERROR');
    assert.equal((await t.app.container.users.findById(user.id))!.is_admin, 0);
    // The profile route still works next to the admin routes under /api/users.
    const ok = await t.app.inject({ method: 'GET', url: '/api/users/profile', headers: as(user.access) });
    assert.equal(ok.statusCode, 200);
    assert.equal(json(ok).data.user.id, user.id);
  });

  it('update and create bodies are strict: flags cannot be mass-assigned through PUT', async () => {
    for (const extra of [{ is_admin: true }, { password_hash: 'x' }, { id: 'abc' }, { is_active: false }]) {
      const res = await t.app.inject({
        method: 'PUT',
        url: `/api/users/${user.id}`,
        headers: as(admin.access),
        payload: { first_name: 'A', ...extra },
      });
      assert.equal(res.statusCode, 400, JSON.stringify(extra));
      assert.equal(json(res).error.code, 'VALIDATION_ERROR');
    }
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/users',
      headers: as(admin.access),
      payload: { ...uniqueUser(), password_hash: 'x' },
    });
    assert.equal(res.statusCode, 400);
  });

  it('creates, reads, updates a user and records each action with the acting admin', async () => {
    const nu = uniqueUser('made');
    const created = await t.app.inject({
      method: 'POST',
      url: '/api/users',
      headers: as(admin.access),
      payload: { ...nu, first_name: 'Made', is_verified: true },
    });
    assert.equal(created.statusCode, 201, created.body);
    const body = json(created);
    assert.equal(body.success, true);
    assert.equal(body.data.user.username, nu.username);
    assert.equal(body.data.user.is_verified, true);
    assert.equal(body.data.user.is_admin, false);
    assert.equal(body.data.user.locked_until, null);
    assert.equal(body.data.user.password_hash, undefined);
    const id = body.data.user.id as string;
    await login(t.app, nu.username);

    const dup = await t.app.inject({
      method: 'POST',
      url: '/api/users',
      headers: as(admin.access),
      payload: { ...nu, username: nu.username.toUpperCase() },
    });
    assert.equal(dup.statusCode, 409);
    const weak = await t.app.inject({
      method: 'POST',
      url: '/api/users',
      headers: as(admin.access),
      payload: { ...uniqueUser(), password: 'password' },
    });
    assert.equal(weak.statusCode, 400);

    const read = await t.app.inject({ method: 'GET', url: `/api/users/${id}`, headers: as(admin.access) });
    assert.equal(read.statusCode, 200);
    assert.equal(json(read).data.user.id, id);
    const missing = await t.app.inject({
      method: 'GET',
      url: '/api/users/00000000-0000-0000-0000-000000000000',
      headers: as(admin.access),
    });
    assert.equal(missing.statusCode, 404);
    assert.equal(json(missing).error.code, 'NOT_FOUND');

    const upd = await t.app.inject({
      method: 'PUT',
      url: `/api/users/${id}`,
      headers: as(admin.access),
      payload: { last_name: 'Changed', bio: '<b>hi</b>', email: `new_${nu.email}` },
    });
    assert.equal(upd.statusCode, 200, upd.body);
    assert.equal(json(upd).data.user.last_name, 'Changed');
    assert.equal(json(upd).data.user.email, `new_${nu.email}`.toLowerCase());
    assert.ok(!upd.body.includes('<b>'));
    const clash = await t.app.inject({
      method: 'PUT',
      url: `/api/users/${id}`,
      headers: as(admin.access),
      payload: { username: user.username },
    });
    assert.equal(clash.statusCode, 409);

    const createEvents = await adminEvents(t, 'create_user');
    assert.ok(createEvents.some((e) => e.user_id === admin.id && e.details.target_user_id === id));
    const updateEvents = await adminEvents(t, 'update_user');
    assert.ok(
      updateEvents.some(
        (e) => e.user_id === admin.id && e.details.target_user_id === id && e.endpoint === 'PUT /api/users/:id',
      ),
    );
  });

  it('lists with pagination, search, sorting and the inactive filter', async () => {
    const prefix = `zq${Math.random().toString(36).slice(2, 6)}`;
    for (let i = 0; i < 5; i++)
      await register(t.app, {
        username: `${prefix}_${i}`,
        email: `${prefix}${i}@example.com`,
        password: STRONG_PASSWORD,
      });
    const page1 = await t.app.inject({
      method: 'GET',
      url: `/api/users?search=${prefix.toUpperCase()}&per_page=2&sort_by=username&sort_order=asc`,
      headers: as(admin.access),
    });
    assert.equal(page1.statusCode, 200, page1.body);
    const d = json(page1).data;
    assert.deepEqual(
      d.users.map((u: { username: string }) => u.username),
      [`${prefix}_0`, `${prefix}_1`],
    );
    assert.deepEqual(d.pagination, {
      page: 1,
      per_page: 2,
      total: 5,
      pages: 3,
      has_prev: false,
      has_next: true,
      prev_num: null,
      next_num: 2,
    });
    const page3 = json(
      await t.app.inject({
        method: 'GET',
        url: `/api/users?search=${prefix}&per_page=2&page=3&sort_by=username&sort_order=asc`,
        headers: as(admin.access),
      }),
    ).data;
    assert.deepEqual(page3.pagination, {
      page: 3,
      per_page: 2,
      total: 5,
      pages: 3,
      has_prev: true,
      has_next: false,
      prev_num: 2,
      next_num: null,
    });
    assert.equal(page3.users.length, 1);
    const desc = json(
      await t.app.inject({
        method: 'GET',
        url: `/api/users?search=${prefix}&sort_by=email&sort_order=desc`,
        headers: as(admin.access),
      }),
    ).data;
    assert.equal(desc.users[0].email, `${prefix}4@example.com`);

    // Inactive users are hidden unless asked for.
    const victim = json(
      await t.app.inject({ method: 'GET', url: `/api/users/search?q=${prefix}_3`, headers: as(admin.access) }),
    ).data.users[0];
    await t.app.inject({ method: 'POST', url: `/api/users/${victim.id}/deactivate`, headers: as(admin.access) });
    const active = json(
      await t.app.inject({ method: 'GET', url: `/api/users?search=${prefix}`, headers: as(admin.access) }),
    ).data;
    assert.equal(active.pagination.total, 4);
    const all = json(
      await t.app.inject({
        method: 'GET',
        url: `/api/users?search=${prefix}&include_inactive=true`,
        headers: as(admin.access),
      }),
    ).data;
    assert.equal(all.pagination.total, 5);

    // LIKE wildcards in the search are literal text.
    const wild = json(
      await t.app.inject({
        method: 'GET',
        url: `/api/users?search=${encodeURIComponent('%')}`,
        headers: as(admin.access),
      }),
    ).data;
    assert.equal(wild.pagination.total, 0);

    for (const bad of [
      'per_page=101',
      'per_page=0',
      'page=0',
      'sort_by=password_hash',
      'sort_order=up',
      'include_inactive=maybe',
    ]) {
      const res = await t.app.inject({ method: 'GET', url: `/api/users?${bad}`, headers: as(admin.access) });
      assert.equal(res.statusCode, 400, bad);
      assert.equal(json(res).error.code, 'VALIDATION_ERROR');
    }
  });

  it('search needs a q of 2+ characters, caps limit at 50; /search and /statistics are not taken by /:id', async () => {
    const short = await t.app.inject({ method: 'GET', url: '/api/users/search?q=a', headers: as(admin.access) });
    assert.equal(short.statusCode, 400);
    const none = await t.app.inject({ method: 'GET', url: '/api/users/search', headers: as(admin.access) });
    assert.equal(none.statusCode, 400);
    const big = await t.app.inject({
      method: 'GET',
      url: '/api/users/search?q=ab&limit=51',
      headers: as(admin.access),
    });
    assert.equal(big.statusCode, 400);
    const found = await t.app.inject({
      method: 'GET',
      url: `/api/users/search?q=${user.username.slice(0, 6)}&limit=50`,
      headers: as(admin.access),
    });
    assert.equal(found.statusCode, 200);
    assert.ok(json(found).data.users.some((u: { id: string }) => u.id === user.id));
    const byEmail = json(
      await t.app.inject({
        method: 'GET',
        url: `/api/users/search?q=${encodeURIComponent(user.email.toUpperCase())}`,
        headers: as(admin.access),
      }),
    ).data;
    assert.equal(byEmail.users[0].id, user.id);
  });

  it('statistics has every field docs/api.md lists, with correct counts', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/api/users/statistics', headers: as(admin.access) });
    assert.equal(res.statusCode, 200);
    const s = json(res).data;
    const all = await t.app.container.db.selectFrom('users').selectAll().execute();
    assert.deepEqual(Object.keys(s).sort(), [
      'active_users',
      'admin_users',
      'inactive_users',
      'locked_users',
      'total_users',
      'unverified_users',
      'users_created_this_month',
      'users_created_this_week',
      'users_created_today',
      'verified_users',
    ]);
    assert.equal(s.total_users, all.length);
    assert.equal(s.active_users, all.filter((u) => u.is_active).length);
    assert.equal(s.inactive_users, all.filter((u) => !u.is_active).length);
    assert.equal(s.verified_users, all.filter((u) => u.is_verified).length);
    assert.equal(s.unverified_users, all.filter((u) => !u.is_verified).length);
    assert.equal(s.admin_users, all.filter((u) => u.is_admin).length);
    assert.equal(s.users_created_today, all.length);
    assert.equal(s.users_created_this_week, all.length);
    assert.equal(s.users_created_this_month, all.length);
    assert.equal(typeof s.locked_users, 'number');
  });

  it('deactivation revokes existing tokens at once; activation lets the user log in again', async () => {
    const victim = await registerAndLogin(t.app, uniqueUser('victim'));
    assert.equal(
      (await t.app.inject({ method: 'GET', url: '/api/auth/me', headers: as(victim.access) })).statusCode,
      200,
    );
    const res = await t.app.inject({
      method: 'POST',
      url: `/api/users/${victim.id}/deactivate`,
      headers: as(admin.access),
    });
    assert.equal(res.statusCode, 200);
    assert.equal(json(res).data.user.is_active, false);
    assert.equal(
      (await t.app.inject({ method: 'GET', url: '/api/auth/me', headers: as(victim.access) })).statusCode,
      401,
    );
    const refresh = await t.app.inject({
      method: 'POST',
      url: '/api/auth/refresh',
      payload: { refresh_token: victim.refresh },
    });
    assert.equal(refresh.statusCode, 401);
    await assert.rejects(login(t.app, victim.username));
    const act = await t.app.inject({
      method: 'POST',
      url: `/api/users/${victim.id}/activate`,
      headers: as(admin.access),
    });
    assert.equal(act.statusCode, 200);
    assert.equal(json(act).data.user.is_active, true);
    await login(t.app, victim.username);
    const events = await adminEvents(t, 'deactivate_user');
    assert.ok(events.some((e) => e.user_id === admin.id && e.details.target_user_id === victim.id));
    assert.ok((await adminEvents(t, 'activate_user')).some((e) => e.details.target_user_id === victim.id));
  });

  it('granting and removing admin rights takes effect on existing tokens at once', async () => {
    const second = await registerAndLogin(t.app, uniqueUser('second'));
    assert.equal(
      (await t.app.inject({ method: 'GET', url: '/api/users', headers: as(second.access) })).statusCode,
      403,
    );
    const grant = await t.app.inject({
      method: 'POST',
      url: `/api/users/${second.id}/admin`,
      headers: as(admin.access),
      payload: { is_admin: true },
    });
    assert.equal(grant.statusCode, 200);
    assert.equal(json(grant).data.user.is_admin, true);
    assert.equal(
      (await t.app.inject({ method: 'GET', url: '/api/users', headers: as(second.access) })).statusCode,
      200,
    );
    const revoke = await t.app.inject({
      method: 'POST',
      url: `/api/users/${second.id}/admin`,
      headers: as(admin.access),
      payload: { is_admin: false },
    });
    assert.equal(revoke.statusCode, 200);
    assert.equal(
      (await t.app.inject({ method: 'GET', url: '/api/users', headers: as(second.access) })).statusCode,
      403,
    );
    const bad = await t.app.inject({
      method: 'POST',
      url: `/api/users/${second.id}/admin`,
      headers: as(admin.access),
      payload: { is_admin: 'yes' },
    });
    assert.equal(bad.statusCode, 400);
    const extra = await t.app.inject({
      method: 'POST',
      url: `/api/users/${second.id}/admin`,
      headers: as(admin.access),
      payload: { is_admin: true, is_active: false },
    });
    assert.equal(extra.statusCode, 400);
    assert.ok(
      (await adminEvents(t, 'grant_admin')).some(
        (e) => e.user_id === admin.id && e.details.target_user_id === second.id,
      ),
    );
    assert.ok(
      (await adminEvents(t, 'revoke_admin')).some(
        (e) => e.user_id === admin.id && e.details.target_user_id === second.id,
      ),
    );
  });

  it('an admin cannot demote themselves, nor deactivate or delete themselves as the last active admin', async () => {
    const own = await t.app.inject({
      method: 'POST',
      url: `/api/users/${admin.id}/admin`,
      headers: as(admin.access),
      payload: { is_admin: false },
    });
    assert.equal(own.statusCode, 400);
    assert.equal(json(own).error.code, 'VALIDATION_ERROR');
    for (const [method, url] of [
      ['POST', `/api/users/${admin.id}/deactivate`],
      ['DELETE', `/api/users/${admin.id}`],
      ['DELETE', `/api/users/${admin.id}?hard_delete=true`],
    ] as const) {
      const res = await t.app.inject({ method, url, headers: as(admin.access) });
      assert.equal(res.statusCode, 400, `${method} ${url}`);
    }
    const me = await t.app.container.users.findById(admin.id);
    assert.equal(me!.is_admin, 1);
    assert.equal(me!.is_active, 1);

    // With a second active admin, deactivating yourself is allowed.
    const other = await registerAndLogin(t.app, uniqueUser('otheradmin'));
    await makeAdmin(t.app, other.id);
    const selfOff = await t.app.inject({
      method: 'POST',
      url: `/api/users/${other.id}/deactivate`,
      headers: as(other.access),
    });
    assert.equal(selfOff.statusCode, 200);
  });

  it('unlock clears a lockout and admin views show locked_until', async () => {
    const locked = await registerAndLogin(t.app, uniqueUser('locked'));
    for (let i = 0; i < t.config.MAX_LOGIN_ATTEMPTS + 1; i++) {
      await t.app.inject({
        method: 'POST',
        url: '/api/auth/login',
        payload: { username: locked.username, password: 'Wrong-Password-123' },
      });
    }
    const blocked = await t.app.inject({
      method: 'POST',
      url: '/api/auth/login',
      payload: { username: locked.username, password: STRONG_PASSWORD },
    });
    assert.equal(blocked.statusCode, 423);
    const view = json(await t.app.inject({ method: 'GET', url: `/api/users/${locked.id}`, headers: as(admin.access) }))
      .data.user;
    assert.ok(view.locked_until && Date.parse(view.locked_until) > Date.now());
    const stats = json(
      await t.app.inject({ method: 'GET', url: '/api/users/statistics', headers: as(admin.access) }),
    ).data;
    assert.ok(stats.locked_users >= 1);
    const res = await t.app.inject({
      method: 'POST',
      url: `/api/users/${locked.id}/unlock`,
      headers: as(admin.access),
    });
    assert.equal(res.statusCode, 200);
    assert.equal(json(res).data.user.locked_until, null);
    await login(t.app, locked.username);
    assert.ok((await adminEvents(t, 'unlock_user')).some((e) => e.details.target_user_id === locked.id));
    await t.app.container.events.flush();
    const unlockedEvents = await t.app.container.db
      .selectFrom('security_events')
      .selectAll()
      .where('type', '=', 'account_unlocked')
      .where('user_id', '=', locked.id)
      .execute();
    assert.equal(unlockedEvents.length, 1);
  });

  it('soft delete deactivates; hard delete removes the row and its sessions', async () => {
    const soft = await registerAndLogin(t.app, uniqueUser('soft'));
    const res = await t.app.inject({ method: 'DELETE', url: `/api/users/${soft.id}`, headers: as(admin.access) });
    assert.equal(res.statusCode, 200);
    assert.equal((await t.app.container.users.findById(soft.id))!.is_active, 0);
    assert.equal(
      (await t.app.inject({ method: 'GET', url: '/api/auth/me', headers: as(soft.access) })).statusCode,
      401,
    );

    const hard = await registerAndLogin(t.app, uniqueUser('hard'));
    const res2 = await t.app.inject({
      method: 'DELETE',
      url: `/api/users/${hard.id}?hard_delete=true`,
      headers: as(admin.access),
    });
    assert.equal(res2.statusCode, 200);
    assert.equal(await t.app.container.users.findById(hard.id), undefined);
    const sessions = await t.app.container.db
      .selectFrom('sessions')
      .selectAll()
      .where('user_id', '=', hard.id)
      .execute();
    assert.equal(sessions.length, 0);
    assert.equal(
      (await t.app.inject({ method: 'GET', url: '/api/auth/me', headers: as(hard.access) })).statusCode,
      401,
    );
    const again = await t.app.inject({
      method: 'DELETE',
      url: `/api/users/${hard.id}?hard_delete=true`,
      headers: as(admin.access),
    });
    assert.equal(again.statusCode, 404);
    assert.ok(
      (await adminEvents(t, 'hard_delete_user')).some(
        (e) => e.user_id === admin.id && e.details.target_user_id === hard.id,
      ),
    );
    assert.ok((await adminEvents(t, 'soft_delete_user')).some((e) => e.details.target_user_id === soft.id));
  });

  it('a profile update racing a hard delete of its account answers 401, never a 500', async () => {
    const victim = await register(t.app, uniqueUser('gone'));
    const { container } = t.app;
    const row = (await container.users.findById(victim.id))!;
    await container.admin.remove(victim.id, true, cliContext());
    await assert.rejects(
      container.profile.update(row, { first_name: 'Late' }, undefined, cliContext()),
      (error: DomainError) => error.code === 'AUTHENTICATION_ERROR',
    );
  });
});
