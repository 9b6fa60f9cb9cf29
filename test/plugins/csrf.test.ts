/** Cookie (browser) mode and CSRF at HTTP level: double-submit token required when the refresh cookie authenticates. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { loadConfig } from '../../src/config/index.js';
import { generateSecret } from '../../src/config/secret-strength.js';
import { createTestApp, json, register, STRONG_PASSWORD, type TestApp } from '../helpers/app.js';

/** name → full Set-Cookie line */
function setCookies(res: LightMyRequestResponse): Record<string, string> {
  const raw = res.headers['set-cookie'];
  const list = raw === undefined ? [] : Array.isArray(raw) ? raw : [raw];
  return Object.fromEntries(list.map((line) => [line.split('=')[0]!, line]));
}
const pair = (line: string) => line.split(';')[0]!;

async function cookieLogin(app: FastifyInstance) {
  const user = await register(app);
  const res = await app.inject({
    method: 'POST',
    url: '/api/auth/login',
    headers: { 'x-auth-mode': 'cookie' },
    payload: { username: user.username, password: STRONG_PASSWORD },
  });
  assert.equal(res.statusCode, 200, res.body);
  return { user, res, refreshCookie: setCookies(res).flokie_refresh!, access: json(res).data.access_token as string };
}

async function csrfToken(app: FastifyInstance, cookie?: string) {
  const res = await app.inject({ method: 'GET', url: '/api/auth/csrf-token', headers: cookie ? { cookie } : {} });
  assert.equal(res.statusCode, 200);
  const secretLine = setCookies(res).flokie_csrf;
  return {
    token: json(res).data.csrf_token as string,
    expiresIn: json(res).data.expires_in as number,
    secretCookie: secretLine ? pair(secretLine) : undefined,
    secretLine,
  };
}

describe('CSRF in cookie mode', () => {
  let t: TestApp;
  const events: { type: string; details: Record<string, unknown> | null }[] = [];
  before(async () => {
    t = await createTestApp();
    t.app.container.events.onEvent((e) => events.push(e));
  });
  after(() => t.close());

  it('cookie-mode login: HttpOnly, Secure, SameSite=Lax cookie on /api/auth, no token in the body', async () => {
    const { res, refreshCookie } = await cookieLogin(t.app);
    assert.equal(json(res).data.refresh_token, undefined);
    assert.match(refreshCookie, /HttpOnly/);
    assert.match(refreshCookie, /Secure/);
    assert.match(refreshCookie, /SameSite=Lax/);
    assert.match(refreshCookie, /Path=\/api\/auth/);
  });

  it('GET /api/auth/csrf-token hands out a token and a signed HttpOnly secret cookie', async () => {
    const { token, expiresIn, secretLine } = await csrfToken(t.app);
    assert.ok(token.length > 20);
    assert.equal(expiresIn, 3600);
    assert.match(secretLine!, /HttpOnly/);
    assert.match(secretLine!, /Secure/);
    assert.match(secretLine!, /Path=\/api\/auth/);
    assert.match(pair(secretLine!), /\./, 'signed value');
  });

  it('cookie refresh without X-CSRF-Token: 403 AUTHORIZATION_ERROR, csrf_failure event, cookie not spent', async () => {
    const { refreshCookie } = await cookieLogin(t.app);
    const { secretCookie } = await csrfToken(t.app, pair(refreshCookie));
    const before = events.filter((e) => e.type === 'csrf_failure').length;
    const refused = await t.app.inject({
      method: 'POST',
      url: '/api/auth/refresh',
      headers: { cookie: `${pair(refreshCookie)}; ${secretCookie}` },
    });
    assert.equal(refused.statusCode, 403);
    assert.equal(json(refused).error.code, 'AUTHORIZATION_ERROR');
    assert.equal(events.filter((e) => e.type === 'csrf_failure').length, before + 1);
    // No cookies at all but the refresh cookie (what a forged cross-site form sends): refused too.
    const bare = await t.app.inject({
      method: 'POST',
      url: '/api/auth/refresh',
      headers: { cookie: pair(refreshCookie) },
    });
    assert.equal(bare.statusCode, 403);
    // The refused attempts did not spend the refresh token: the legitimate client can still use it.
    const { token, secretCookie: secret2 } = await csrfToken(t.app, pair(refreshCookie));
    const ok = await t.app.inject({
      method: 'POST',
      url: '/api/auth/refresh',
      headers: { cookie: `${pair(refreshCookie)}; ${secret2}`, 'x-csrf-token': token },
    });
    assert.equal(ok.statusCode, 200, ok.body);
  });

  it('refresh by cookie with a valid token: 200, a new cookie, no token in the body', async () => {
    const { refreshCookie } = await cookieLogin(t.app);
    const { token, secretCookie } = await csrfToken(t.app, pair(refreshCookie));
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/auth/refresh',
      headers: { cookie: `${pair(refreshCookie)}; ${secretCookie}`, 'x-csrf-token': token },
    });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(json(res).data.refresh_token, undefined);
    const next = setCookies(res).flokie_refresh!;
    assert.notEqual(pair(next), pair(refreshCookie));
  });

  it('a wrong, foreign, duplicated or tampered token is refused', async () => {
    const { refreshCookie } = await cookieLogin(t.app);
    const mine = await csrfToken(t.app, pair(refreshCookie));
    const theirs = await csrfToken(t.app, pair(refreshCookie)); // another browser: other secret
    const cookie = `${pair(refreshCookie)}; ${mine.secretCookie}`;
    for (const header of ['nonsense', theirs.token, `${mine.token}x`, `${mine.token}, ${mine.token}`]) {
      const res = await t.app.inject({
        method: 'POST',
        url: '/api/auth/refresh',
        headers: { cookie, 'x-csrf-token': header },
      });
      assert.equal(res.statusCode, 403, header);
    }
    // A secret cookie forged without SECRET_KEY's signature does not count.
    const unsigned = `flokie_csrf=${mine.secretCookie!.split('=')[1]!.split('.')[0]}`;
    const forged = await t.app.inject({
      method: 'POST',
      url: '/api/auth/refresh',
      headers: { cookie: `${pair(refreshCookie)}; ${unsigned}`, 'x-csrf-token': mine.token },
    });
    assert.equal(forged.statusCode, 403);
  });

  it('a token older than WTF_CSRF_TIME_LIMIT is refused', async () => {
    const { refreshCookie } = await cookieLogin(t.app);
    const { token, secretCookie } = await csrfToken(t.app, pair(refreshCookie));
    const realNow = Date.now;
    Date.now = () => realNow() + 3601 * 1000;
    try {
      const res = await t.app.inject({
        method: 'POST',
        url: '/api/auth/refresh',
        headers: { cookie: `${pair(refreshCookie)}; ${secretCookie}`, 'x-csrf-token': token },
      });
      assert.equal(res.statusCode, 403);
    } finally {
      Date.now = realNow;
    }
  });

  it("a token is bound to its refresh session: another session's valid pair is refused (cookie tossing)", async () => {
    const victim = await cookieLogin(t.app);
    const attacker = await cookieLogin(t.app);
    // The attacker's own, server-issued, valid pair: it works with the attacker's own cookie...
    const own = await csrfToken(t.app, pair(attacker.refreshCookie));
    // ...but not beside the victim's refresh cookie, with the attacker's secret cookie tossed in.
    const tossed = await t.app.inject({
      method: 'POST',
      url: '/api/auth/refresh',
      headers: { cookie: `${pair(victim.refreshCookie)}; ${own.secretCookie}`, 'x-csrf-token': own.token },
    });
    assert.equal(tossed.statusCode, 403, tossed.body);
    assert.equal(json(tossed).error.code, 'AUTHORIZATION_ERROR');
    // A pair fetched with no refresh cookie (or a forged one) binds to no session: refused as well.
    const anonymous = await csrfToken(t.app);
    const forgedCookie = `flokie_refresh=${pair(victim.refreshCookie).split('=')[1]!.slice(0, -2)}xx`;
    const withForged = await csrfToken(t.app, forgedCookie);
    for (const pairUsed of [anonymous, withForged]) {
      const res = await t.app.inject({
        method: 'POST',
        url: '/api/auth/refresh',
        headers: { cookie: `${pair(victim.refreshCookie)}; ${pairUsed.secretCookie}`, 'x-csrf-token': pairUsed.token },
      });
      assert.equal(res.statusCode, 403, res.body);
    }
    // None of that spent the victim's refresh token; the victim's own pair works, and keeps working
    // after the rotation (the session id, which the token is bound to, survives refresh).
    const mine = await csrfToken(t.app, pair(victim.refreshCookie));
    const first = await t.app.inject({
      method: 'POST',
      url: '/api/auth/refresh',
      headers: { cookie: `${pair(victim.refreshCookie)}; ${mine.secretCookie}`, 'x-csrf-token': mine.token },
    });
    assert.equal(first.statusCode, 200, first.body);
    const rotated = pair(setCookies(first).flokie_refresh!);
    const second = await t.app.inject({
      method: 'POST',
      url: '/api/auth/refresh',
      headers: { cookie: `${rotated}; ${mine.secretCookie}`, 'x-csrf-token': mine.token },
    });
    assert.equal(second.statusCode, 200, second.body);
    // And the attacker's pair still works for the attacker alone.
    const attackers = await t.app.inject({
      method: 'POST',
      url: '/api/auth/refresh',
      headers: { cookie: `${pair(attacker.refreshCookie)}; ${own.secretCookie}`, 'x-csrf-token': own.token },
    });
    assert.equal(attackers.statusCode, 200, attackers.body);
  });

  it('bearer and body refresh tokens need no CSRF token; a password change by cookie alone is refused', async () => {
    const user = await register(t.app);
    const login = await t.app.inject({
      method: 'POST',
      url: '/api/auth/login',
      payload: { username: user.username, password: STRONG_PASSWORD },
    });
    const refreshToken = json(login).data.refresh_token as string;
    const byBody = await t.app.inject({
      method: 'POST',
      url: '/api/auth/refresh',
      payload: { refresh_token: refreshToken },
    });
    assert.equal(byBody.statusCode, 200);
    const byHeader = await t.app.inject({
      method: 'POST',
      url: '/api/auth/refresh',
      headers: { authorization: `Bearer ${json(byBody).data.refresh_token}` },
    });
    assert.equal(byHeader.statusCode, 200);

    const { refreshCookie } = await cookieLogin(t.app);
    const change = await t.app.inject({
      method: 'POST',
      url: '/api/auth/password/change',
      headers: { cookie: pair(refreshCookie) },
      payload: {
        current_password: STRONG_PASSWORD,
        new_password: 'Quiet-Lantern-Meadow-77',
        confirm_password: 'Quiet-Lantern-Meadow-77',
      },
    });
    assert.equal(change.statusCode, 401);
  });
});

describe('WTF_CSRF_ENABLED', () => {
  it('false (outside production) lets a cookie refresh through without a token; production refuses false', async () => {
    const t = await createTestApp({ WTF_CSRF_ENABLED: 'false' });
    try {
      const { refreshCookie } = await cookieLogin(t.app);
      const res = await t.app.inject({
        method: 'POST',
        url: '/api/auth/refresh',
        headers: { cookie: pair(refreshCookie) },
      });
      assert.equal(res.statusCode, 200);
    } finally {
      await t.close();
    }
    assert.throws(
      () =>
        loadConfig(
          {
            NODE_ENV: 'production',
            SECRET_KEY: generateSecret(),
            JWT_SECRET_KEY: generateSecret(),
            WTF_CSRF_ENABLED: 'false',
          },
          { dotenv: false },
        ),
      /WTF_CSRF_ENABLED/,
    );
  });
});
