import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SignJWT, decodeJwt, jwtVerify } from 'jose';
import {
  bearer,
  createTestApp,
  json,
  login,
  OTHER_STRONG_PASSWORD,
  register,
  registerAndLogin,
  TEST_ENV,
  type TestApp,
} from '../../helpers/app.js';

const me = (token: string) => ({ method: 'GET' as const, url: '/api/auth/me', headers: bearer(token) });
const refreshWith = (token: string) => ({
  method: 'POST' as const,
  url: '/api/auth/refresh',
  payload: { refresh_token: token },
});

describe('tokens and sessions', () => {
  let t: TestApp;
  before(async () => {
    t = await createTestApp();
  });
  after(() => t.close());

  it('access tokens carry iss, aud, exp, iat, nbf, jti, sid and a type header', async () => {
    const u = await registerAndLogin(t.app);
    const claims = decodeJwt(u.access);
    assert.equal(claims.iss, 'flokie');
    assert.equal(claims.aud, 'flokie-api');
    assert.equal(claims.sub, u.id);
    for (const k of ['exp', 'iat', 'nbf', 'jti', 'sid']) assert.ok(claims[k], k);
    assert.equal((claims.exp as number) - (claims.iat as number), 3600);
    const header = JSON.parse(Buffer.from(u.access.split('.')[0]!, 'base64url').toString());
    assert.deepEqual(header, { alg: 'HS256', typ: 'at+jwt' });
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/auth/login',
      payload: { username: u.username, password: u.password },
    });
    assert.equal(json(res).data.token_type, 'Bearer');
    assert.equal(json(res).data.expires_in, 3600);
  });

  it('jose (an independent implementation) accepts our tokens with their type, issuer and audience', async () => {
    const u = await registerAndLogin(t.app);
    const key = new TextEncoder().encode(TEST_ENV.JWT_SECRET_KEY);
    const access = await jwtVerify(u.access, key, {
      algorithms: ['HS256'],
      typ: 'at+jwt',
      issuer: 'flokie',
      audience: 'flokie-api',
      requiredClaims: ['sub', 'sid', 'jti', 'iat', 'nbf', 'exp'],
    });
    assert.equal(access.payload.sub, u.id);
    const refresh = await jwtVerify(u.refresh, key, {
      algorithms: ['HS256'],
      typ: 'rt+jwt',
      issuer: 'flokie',
      audience: 'flokie-api',
      requiredClaims: ['sub', 'sid', 'jti', 'iat', 'nbf', 'exp'],
    });
    assert.equal(refresh.payload.sid, access.payload.sid);
    assert.notEqual(refresh.payload.jti, access.payload.jti);
    await assert.rejects(
      jwtVerify(u.access, new TextEncoder().encode('another-secret-0123456789abcdefghijklmnop'), {
        algorithms: ['HS256'],
      }),
    );
  });

  it('refresh rotates: a new pair is returned and the presented token is spent', async () => {
    const u = await registerAndLogin(t.app);
    const first = await t.app.inject(refreshWith(u.refresh));
    assert.equal(first.statusCode, 200);
    const pair = json(first).data;
    assert.ok(pair.access_token && pair.refresh_token);
    assert.notEqual(pair.refresh_token, u.refresh);
    assert.equal((await t.app.inject(me(pair.access_token))).statusCode, 200);
    // The refresh token also works as "Authorization: Bearer".
    const second = await t.app.inject({
      method: 'POST',
      url: '/api/auth/refresh',
      headers: bearer(pair.refresh_token),
    });
    assert.equal(second.statusCode, 200);
  });

  it('presenting a spent refresh token revokes the whole session and is logged', async () => {
    const u = await registerAndLogin(t.app);
    const rotated = json(await t.app.inject(refreshWith(u.refresh))).data;
    // Its successor has been used, so this is no retry after a lost answer (refresh-retry.test.ts).
    const newest = json(await t.app.inject(refreshWith(rotated.refresh_token))).data;
    const reuse = await t.app.inject(refreshWith(u.refresh));
    assert.equal(reuse.statusCode, 401);
    // Every token descended from that login is dead: the newest refresh token and every access token.
    assert.equal((await t.app.inject(refreshWith(newest.refresh_token))).statusCode, 401);
    assert.equal((await t.app.inject(me(newest.access_token))).statusCode, 401);
    assert.equal((await t.app.inject(me(rotated.access_token))).statusCode, 401);
    assert.equal((await t.app.inject(me(u.access))).statusCode, 401);
    await t.app.container.events.flush();
    const events = await t.app.container.db
      .selectFrom('security_events')
      .select(['type', 'severity'])
      .where('user_id', '=', u.id)
      .where('type', '=', 'refresh_token_reuse')
      .execute();
    assert.deepEqual(events, [{ type: 'refresh_token_reuse', severity: 'critical' }]);
  });

  it('of concurrent uses of one refresh token exactly one rotates it (one more may be served as a retry)', async () => {
    for (let round = 0; round < 5; round++) {
      const u = await registerAndLogin(t.app);
      const results = await Promise.all(Array.from({ length: 8 }, () => t.app.inject(refreshWith(u.refresh))));
      const ok = results.filter((r) => r.statusCode === 200).length;
      assert.ok(ok === 1 || ok === 2, results.map((r) => r.statusCode).join(','));
    }
  });

  it('tokens are accepted only as their own type', async () => {
    const u = await registerAndLogin(t.app);
    assert.equal((await t.app.inject(me(u.refresh))).statusCode, 401);
    assert.equal((await t.app.inject(refreshWith(u.access))).statusCode, 401);
  });

  it('rejects tokens with a wrong signature, issuer, audience, algorithm or that have expired', async () => {
    const u = await registerAndLogin(t.app);
    const claims = decodeJwt(u.access);
    const key = new TextEncoder().encode(TEST_ENV.JWT_SECRET_KEY);
    const forge = (over: Record<string, unknown>, secret = key, alg = 'HS256') =>
      new SignJWT({ ...claims, ...over }).setProtectedHeader({ alg, typ: 'at+jwt' }).sign(secret);
    assert.equal((await t.app.inject(me(await forge({})))).statusCode, 200, 'control: a faithful copy is accepted');
    assert.equal((await t.app.inject(me(await forge({}, new TextEncoder().encode('x'.repeat(40)))))).statusCode, 401);
    assert.equal((await t.app.inject(me(await forge({ iss: 'evil' })))).statusCode, 401);
    assert.equal((await t.app.inject(me(await forge({ aud: 'other' })))).statusCode, 401);
    assert.equal((await t.app.inject(me(await forge({ exp: Math.floor(Date.now() / 1000) - 60 })))).statusCode, 401);
    assert.equal((await t.app.inject(me(await forge({ nbf: Math.floor(Date.now() / 1000) + 600 })))).statusCode, 401);
    assert.equal((await t.app.inject(me(await forge({}, key, 'HS512')))).statusCode, 401);
    const noneHeader = Buffer.from(JSON.stringify({ alg: 'none', typ: 'at+jwt' })).toString('base64url');
    const none = `${noneHeader}.${u.access.split('.')[1]}.`;
    assert.equal((await t.app.inject(me(none))).statusCode, 401);
    assert.equal((await t.app.inject(me('a'.repeat(5000)))).statusCode, 401);
  });

  it('logout revokes this access token and its refresh token, not other sessions', async () => {
    const u = await registerAndLogin(t.app);
    const other = await login(t.app, u.username, u.password);
    const res = await t.app.inject({ method: 'POST', url: '/api/auth/logout', headers: bearer(u.access) });
    assert.equal(res.statusCode, 200);
    assert.equal((await t.app.inject(me(u.access))).statusCode, 401);
    assert.equal((await t.app.inject(refreshWith(u.refresh))).statusCode, 401);
    assert.equal((await t.app.inject(me(other.access))).statusCode, 200);
  });

  it('logout-all revokes every session', async () => {
    const u = await registerAndLogin(t.app);
    const other = await login(t.app, u.username, u.password);
    const res = await t.app.inject({ method: 'POST', url: '/api/auth/logout-all', headers: bearer(u.access) });
    assert.equal(json(res).data.revoked_sessions, 2);
    assert.equal((await t.app.inject(me(u.access))).statusCode, 401);
    assert.equal((await t.app.inject(me(other.access))).statusCode, 401);
    assert.equal((await t.app.inject(refreshWith(other.refresh))).statusCode, 401);
  });

  it('lists own sessions and revokes one by id; other users cannot touch it', async () => {
    const u = await registerAndLogin(t.app);
    const second = await login(t.app, u.username, u.password, { 'user-agent': 'second-device' });
    const list = json(await t.app.inject({ method: 'GET', url: '/api/auth/sessions', headers: bearer(u.access) })).data
      .sessions;
    assert.equal(list.length, 2);
    assert.equal(list.filter((s: { current: boolean }) => s.current).length, 1);
    const target = list.find((s: { user_agent: string }) => s.user_agent === 'second-device');
    const stranger = await registerAndLogin(t.app);
    assert.equal(
      (
        await t.app.inject({
          method: 'DELETE',
          url: `/api/auth/sessions/${target.id}`,
          headers: bearer(stranger.access),
        })
      ).statusCode,
      404,
    );
    assert.equal(
      (await t.app.inject({ method: 'DELETE', url: `/api/auth/sessions/${target.id}`, headers: bearer(u.access) }))
        .statusCode,
      200,
    );
    assert.equal((await t.app.inject(me(second.access))).statusCode, 401);
    assert.equal((await t.app.inject(me(u.access))).statusCode, 200);
  });

  it('password change revokes every earlier token and returns a fresh pair', async () => {
    const u = await registerAndLogin(t.app);
    const other = await login(t.app, u.username, u.password);
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/auth/password/change',
      headers: bearer(u.access),
      payload: {
        current_password: u.password,
        new_password: OTHER_STRONG_PASSWORD,
        confirm_password: OTHER_STRONG_PASSWORD,
      },
    });
    assert.equal(res.statusCode, 200, res.body);
    const fresh = json(res).data;
    assert.equal((await t.app.inject(me(u.access))).statusCode, 401);
    assert.equal((await t.app.inject(me(other.access))).statusCode, 401);
    assert.equal((await t.app.inject(refreshWith(other.refresh))).statusCode, 401);
    assert.equal((await t.app.inject(me(fresh.access_token))).statusCode, 200);
    assert.equal(
      (
        await t.app.inject({
          method: 'POST',
          url: '/api/auth/login',
          payload: { username: u.username, password: OTHER_STRONG_PASSWORD },
        })
      ).statusCode,
      200,
    );
  });

  it('a deactivated user’s tokens fail at once', async () => {
    const u = await registerAndLogin(t.app);
    assert.equal((await t.app.inject(me(u.access))).statusCode, 200);
    await t.app.container.users.update(u.id, { is_active: 0 });
    await t.app.container.sessions.revokeAllForUser(u.id, 'deactivated');
    assert.equal((await t.app.inject(me(u.access))).statusCode, 401);
    assert.equal((await t.app.inject(refreshWith(u.refresh))).statusCode, 401);
    assert.equal(
      (
        await t.app.inject({
          method: 'POST',
          url: '/api/auth/login',
          payload: { username: u.username, password: u.password },
        })
      ).statusCode,
      401,
    );
  });

  it('a jti on the revocation list is rejected at once, even after it was cached as good', async () => {
    const u = await registerAndLogin(t.app);
    assert.equal((await t.app.inject(me(u.access))).statusCode, 200);
    const { jti, exp } = decodeJwt(u.access);
    await t.app.container.db
      .insertInto('revoked_tokens')
      .values({ jti: jti!, user_id: u.id, expires_at: exp! * 1000, revoked_at: Date.now() })
      .execute();
    await t.app.container.changes.publish('jti', jti!);
    assert.equal((await t.app.inject(me(u.access))).statusCode, 401);
  });

  it('a cached token vouches only for its exact string: a tampered copy is verified and refused', async () => {
    const u = await registerAndLogin(t.app);
    assert.equal((await t.app.inject(me(u.access))).statusCode, 200, 'first use: verified and cached');
    const [header, payload, signature] = u.access.split('.') as [string, string, string];
    const flipped = `${signature.slice(0, -2)}${signature.at(-2) === 'A' ? 'B' : 'A'}${signature.at(-1)}`;
    const otherUser = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>;
    const relabelled = Buffer.from(JSON.stringify({ ...otherUser, sub: 'someone-else' })).toString('base64url');
    for (const tampered of [
      `${header}.${payload}.${flipped}`,
      `${header}.${relabelled}.${signature}`,
      `${u.access}x`,
    ]) {
      assert.equal((await t.app.inject(me(tampered))).statusCode, 401, tampered);
    }
    assert.equal((await t.app.inject(me(u.access))).statusCode, 200, 'the original still works');
  });
});

describe('the token cache never outlives the token', () => {
  let t: TestApp;
  before(async () => {
    // 36 s: shorter than the cache's own 60 s lifetime, so only the cap at exp can end the entry.
    t = await createTestApp({ JWT_ACCESS_TOKEN_EXPIRES_HOURS: '0.01' });
  });
  after(() => t.close());

  it('a cached token is refused once it expires', async (ctx) => {
    const u = await registerAndLogin(t.app);
    assert.equal((await t.app.inject(me(u.access))).statusCode, 200, 'cached');
    const { exp } = decodeJwt(u.access);
    ctx.mock.timers.enable({ apis: ['Date'], now: Date.now() });
    ctx.mock.timers.tick(exp! * 1000 - Date.now() + 6000); // past exp and the 5 s clock tolerance
    const res = await t.app.inject(me(u.access));
    assert.equal(res.statusCode, 401);
    assert.equal(json(res).error.message, 'Token has expired');
  });
});

describe('revocation made by another process reaches this one through the change log', () => {
  let t: TestApp;
  before(async () => {
    t = await createTestApp({}, { fileDatabase: true });
  });
  after(() => t.close());

  it('a session revoked directly in the database stops working within the sync interval', async () => {
    const u = await registerAndLogin(t.app);
    assert.equal((await t.app.inject(me(u.access))).statusCode, 200);
    const { sid } = decodeJwt(u.access) as { sid: string };
    // As the CLI would: write the revocation and the change row, without touching this process's cache.
    await t.app.container.db
      .updateTable('sessions')
      .set({ revoked_at: Date.now(), revoked_reason: 'admin' })
      .where('id', '=', sid)
      .execute();
    await t.app.container.db
      .insertInto('change_log')
      .values({ kind: 'session', key: sid, created_at: Date.now() })
      .execute();
    let status = 200;
    for (let i = 0; i < 40 && status === 200; i++) {
      await new Promise((r) => setTimeout(r, 50));
      status = (await t.app.inject(me(u.access))).statusCode;
    }
    assert.equal(status, 401);
  });
});

describe('session lifetime and refresh grace', () => {
  let t: TestApp;
  before(async () => {
    t = await createTestApp({ REFRESH_REUSE_GRACE_SECONDS: '30' });
  });
  after(() => t.close());

  it('within the grace period a second use is a retry: a fresh pair, and the unused successor is dead', async () => {
    const u = await registerAndLogin(t.app);
    const rotated = json(await t.app.inject(refreshWith(u.refresh))).data;
    const retried = await t.app.inject(refreshWith(u.refresh));
    assert.equal(retried.statusCode, 200);
    assert.equal((await t.app.inject(refreshWith(json(retried).data.refresh_token))).statusCode, 200);
    assert.equal((await t.app.inject(refreshWith(rotated.refresh_token))).statusCode, 401);
  });

  it('refreshing cannot extend a session past its absolute end', async () => {
    const u = await registerAndLogin(t.app);
    const { sid } = decodeJwt(u.refresh) as { sid: string };
    await t.app.container.db
      .updateTable('sessions')
      .set({ expires_at: Date.now() - 1 })
      .where('id', '=', sid)
      .execute();
    await t.app.container.changes.publish('session', sid);
    assert.equal((await t.app.inject(refreshWith(u.refresh))).statusCode, 401);
    assert.equal((await t.app.inject(me(u.access))).statusCode, 401);
  });

  it('token lifetimes never run past the session end', async () => {
    const short = await createTestApp({ SESSION_MAX_LIFETIME_DAYS: '0.01' });
    try {
      const u = await register(short.app);
      const tokens = await login(short.app, u.username, u.password);
      const access = decodeJwt(tokens.access);
      const refresh = decodeJwt(tokens.refresh);
      assert.ok((refresh.exp as number) - (refresh.iat as number) <= 0.01 * 86400 + 1);
      assert.ok((access.exp as number) <= (refresh.exp as number));
    } finally {
      await short.close();
    }
  });
});
