/**
 * JWT attacks: every forged, altered, misused or stale token is refused with 401 on an
 * authenticated route. Forged tokens are signed with the test secret (TEST_ENV.JWT_SECRET_KEY), and
 * a positive control proves such a forgery with correct claims IS accepted, so each refusal below
 * is caused by the one thing the case changes.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SignJWT, base64url, decodeJwt, exportJWK, exportSPKI, generateKeyPair, type JWTPayload } from 'jose';
import {
  OTHER_STRONG_PASSWORD,
  STRONG_PASSWORD,
  TEST_ENV,
  bearer,
  createTestApp,
  json,
  login,
  makeAdmin,
  registerAndLogin,
  type TestApp,
} from '../helpers/app.js';
import { assertEnvelope, baseObject, readOperations, type Operation } from './support.js';

const SECRET = new TextEncoder().encode(TEST_ENV.JWT_SECRET_KEY);
const ISSUER = 'flokie';
const AUDIENCE = 'flokie-api';

describe('JWT attacks', () => {
  let t: TestApp;
  let victim: Awaited<ReturnType<typeof registerAndLogin>>;
  let admin: Awaited<ReturnType<typeof registerAndLogin>>;
  let ops: Operation[];
  let claims: JWTPayload;

  before(async () => {
    t = await createTestApp();
    ops = await readOperations(t.app);
    victim = await registerAndLogin(t.app);
    admin = await registerAndLogin(t.app);
    await makeAdmin(t.app, admin.id);
    claims = decodeJwt(victim.access);
  });
  after(() => t.close());

  const me = (token: string) => t.app.inject({ method: 'GET', url: '/api/auth/me', headers: bearer(token) });
  const has = (method: string, path: string) => ops.some((o) => o.method === method && o.path === path);

  async function assertRejected(token: string, what: string) {
    const res = await me(token);
    assert.equal(res.statusCode, 401, `${what}: expected 401, got ${res.statusCode} ${res.body.slice(0, 200)}`);
    const body = assertEnvelope(res, what);
    assert.equal(body.error.code, 'AUTHENTICATION_ERROR', what);
  }

  /** Signs with the real test secret; every claim of the victim's genuine token unless overridden. */
  async function forge(
    overrides: JWTPayload = {},
    header: Record<string, unknown> = {},
    key: Parameters<SignJWT['sign']>[0] = SECRET,
  ) {
    const now = Math.floor(Date.now() / 1000);
    const payload: JWTPayload = { ...claims, iat: now, nbf: now, exp: now + 600, ...overrides };
    for (const [k, v] of Object.entries(payload)) if (v === undefined) delete payload[k];
    return new SignJWT(payload).setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', ...header } as never).sign(key);
  }

  const b64 = (value: unknown) => base64url.encode(typeof value === 'string' ? value : JSON.stringify(value));

  it('positive control: a forged token with the real secret and correct claims is accepted', async () => {
    const res = await me(await forge());
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(json(res).data.user.id, victim.id);
  });

  it('alg "none" (unsigned) in every spelling', async () => {
    const payload = b64({ ...claims, exp: Math.floor(Date.now() / 1000) + 600 });
    for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
      await assertRejected(`${b64({ alg, typ: 'at+jwt' })}.${payload}.`, `alg ${alg}`);
      await assertRejected(
        `${b64({ alg, typ: 'at+jwt' })}.${payload}.${victim.access.split('.')[2]}`,
        `alg ${alg} with a stale signature`,
      );
    }
  });

  it('HS/RS confusion: HMAC keyed with an RSA public key, and a genuine RS256 token', async () => {
    const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
    const pem = await exportSPKI(publicKey);
    await assertRejected(await forge({}, {}, new TextEncoder().encode(pem)), 'HS256 keyed with the PEM public key');
    const rs = await new SignJWT({ ...claims, exp: Math.floor(Date.now() / 1000) + 600 })
      .setProtectedHeader({ alg: 'RS256', typ: 'at+jwt' })
      .sign(privateKey);
    await assertRejected(rs, 'RS256 token');
    const jwk = await exportJWK(publicKey);
    const embedded = await new SignJWT({ ...claims, exp: Math.floor(Date.now() / 1000) + 600 })
      .setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', jwk })
      .sign(privateKey);
    await assertRejected(embedded, 'RS256 with the attacker key embedded as jwk');
    await assertRejected(await forge({}, { alg: 'HS512' }, SECRET), 'HS512 with the real secret');
    await assertRejected(
      await forge(
        {},
        { jku: 'https://attacker.example/jwks.json', kid: '../../etc/passwd' },
        new TextEncoder().encode('attacker-secret-attacker-secret-00'),
      ),
      'jku/kid pointing elsewhere',
    );
  });

  it('tampered signature and tampered payload', async () => {
    const [h, p, s] = victim.access.split('.') as [string, string, string];
    const flipped = (s[0] === 'A' ? 'B' : 'A') + s.slice(1);
    await assertRejected(`${h}.${p}.${flipped}`, 'one signature character changed');
    await assertRejected(`${h}.${p}.${s.slice(0, -4)}`, 'truncated signature');
    await assertRejected(`${h}.${p}.`, 'signature removed');
    const elevated = b64({ ...decodeJwt(victim.access), sub: admin.id });
    await assertRejected(`${h}.${elevated}.${s}`, 'sub changed to the admin');
    const longer = b64({ ...decodeJwt(victim.access), exp: Math.floor(Date.now() / 1000) + 10 * 365 * 86400 });
    await assertRejected(`${h}.${longer}.${s}`, 'exp extended');
    await assertRejected(
      await forge({}, {}, new TextEncoder().encode('another-secret-another-secret-0123456789')),
      'signed with another secret',
    );
  });

  it('expired and not-yet-valid tokens', async () => {
    const now = Math.floor(Date.now() / 1000);
    await assertRejected(await forge({ iat: now - 7200, nbf: now - 7200, exp: now - 60 }), 'expired a minute ago');
    await assertRejected(await forge({ nbf: now + 3600 }), 'nbf an hour ahead');
    await assertRejected(
      await forge({ iat: now - 60, nbf: now - 60, exp: now - 6 }),
      'expired just past the clock tolerance',
    );
  });

  it('wrong issuer, audience, and missing required claims', async () => {
    await assertRejected(await forge({ iss: 'someone-else' }), 'wrong iss');
    await assertRejected(await forge({ aud: 'another-api' }), 'wrong aud');
    await assertRejected(await forge({ aud: ['another-api', 'yet-another'] }), 'aud list without ours');
    for (const claim of ['iss', 'aud', 'sub', 'sid', 'jti', 'exp', 'nbf', 'iat']) {
      await assertRejected(await forge({ [claim]: undefined }), `missing ${claim}`);
    }
    await assertRejected(await forge({ sid: 12345 as never }), 'non-string sid');
    await assertRejected(await forge({ sid: 'no-such-session' }), 'unknown session id');
    await assertRejected(await forge({ sub: admin.id }), 'sub of another user on my session');
  });

  it('wrong token type: refresh token as access token, access token at /refresh, typ altered', async () => {
    await assertRejected(victim.refresh, 'refresh token at /me');
    const res = await t.app.inject({ method: 'POST', url: '/api/auth/refresh', headers: bearer(victim.access) });
    assert.equal(res.statusCode, 401, res.body);
    const inBody = await t.app.inject({
      method: 'POST',
      url: '/api/auth/refresh',
      payload: { refresh_token: victim.access },
    });
    assert.equal(inBody.statusCode, 401, inBody.body);
    await assertRejected(await forge({}, { typ: 'rt+jwt' }), 'typ rt+jwt at /me');
    await assertRejected(await forge({}, { typ: 'JWT' }), 'generic typ JWT');
    await assertRejected(await forge({}, { typ: undefined }), 'no typ');
  });

  it('revoked by logout, by logout-all, and by the admin revocation endpoint', async () => {
    const u = await registerAndLogin(t.app);
    const second = await login(t.app, u.username);
    assert.equal(
      (await t.app.inject({ method: 'POST', url: '/api/auth/logout', headers: bearer(u.access) })).statusCode,
      200,
    );
    await assertRejected(u.access, 'after logout');
    const refreshed = await t.app.inject({
      method: 'POST',
      url: '/api/auth/refresh',
      payload: { refresh_token: u.refresh },
    });
    assert.equal(refreshed.statusCode, 401, 'refresh token of a logged-out session');
    assert.equal((await me(second.access)).statusCode, 200, 'logout of one session leaves the other');
    assert.equal(
      (await t.app.inject({ method: 'POST', url: '/api/auth/logout-all', headers: bearer(second.access) })).statusCode,
      200,
    );
    await assertRejected(second.access, 'after logout-all');

    if (!has('POST', '/api/security/tokens/revoke')) {
      console.log('# POST /api/security/tokens/revoke not present yet: that case is not run');
      return;
    }
    const fresh = await login(t.app, u.username);
    const jti = decodeJwt(fresh.access).jti!;
    const revoke = await t.app.inject({
      method: 'POST',
      url: '/api/security/tokens/revoke',
      headers: bearer(admin.access),
      payload: { jti },
    });
    assert.equal(revoke.statusCode, 200, revoke.body);
    await assertRejected(fresh.access, 'after admin revocation by jti');
    const another = await login(t.app, u.username);
    const byUser = await t.app.inject({
      method: 'POST',
      url: '/api/security/tokens/revoke',
      headers: bearer(admin.access),
      payload: { user_id: u.id },
    });
    assert.equal(byUser.statusCode, 200, byUser.body);
    await assertRejected(another.access, 'after admin revocation of every token of the user');
  });

  it('a deactivated user: access token refused, refresh refused', async () => {
    const u = await registerAndLogin(t.app);
    assert.equal((await me(u.access)).statusCode, 200);
    if (has('POST', '/api/users/{id}/deactivate')) {
      const res = await t.app.inject({
        method: 'POST',
        url: `/api/users/${u.id}/deactivate`,
        headers: bearer(admin.access),
      });
      assert.equal(res.statusCode, 200, res.body);
    } else {
      // Admin API not there yet: deactivate the way it will (row + change feed).
      await t.app.container.users.update(u.id, { is_active: 0 });
      await t.app.container.changes.publish('user', u.id);
    }
    await assertRejected(u.access, 'deactivated user');
    const refreshed = await t.app.inject({
      method: 'POST',
      url: '/api/auth/refresh',
      payload: { refresh_token: u.refresh },
    });
    assert.equal(refreshed.statusCode, 401, refreshed.body);
  });

  it('tokens issued before a password change', async () => {
    const u = await registerAndLogin(t.app);
    const other = await login(t.app, u.username);
    const forgedOld = decodeJwt(other.access);
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
    assert.equal(res.statusCode, 200, res.body);
    await assertRejected(u.access, 'the token that changed the password');
    await assertRejected(other.access, 'another session of the same user');
    const stale = await t.app.inject({
      method: 'POST',
      url: '/api/auth/refresh',
      payload: { refresh_token: other.refresh },
    });
    assert.equal(stale.statusCode, 401, 'refresh token from before the change');
    // Even re-signed with the real secret and a fresh exp, the old session stays dead.
    const now = Math.floor(Date.now() / 1000);
    const reforged = await new SignJWT({ ...forgedOld, iat: now, nbf: now, exp: now + 600 })
      .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt' })
      .sign(SECRET);
    await assertRejected(reforged, 'an old session re-signed');
    assert.equal((await me(json(res).data.access_token)).statusCode, 200, 'the new token works');
  });

  it('malformed and oversized tokens', async () => {
    const [h, p, s] = victim.access.split('.') as [string, string, string];
    const cases: Record<string, string> = {
      'two parts': `${h}.${p}`,
      'one part': h,
      'four parts': `${h}.${p}.${s}.${s}`,
      'empty parts': '..',
      'bad base64 header': `!!!.${p}.${s}`,
      'bad base64 payload': `${h}.%%%.${s}`,
      'non-JSON header': `${b64('not json')}.${p}.${s}`,
      'header is a JSON array': `${b64([1, 2])}.${p}.${s}`,
      'header is JSON null': `${b64('null')}.${p}.${s}`,
      'non-JSON payload': `${h}.${b64('not json')}.${s}`,
      'payload is a JSON string': `${h}.${b64('"x"')}.${s}`,
      'oversized (3 KB)': `${h}.${'A'.repeat(3000)}.${s}`,
      'oversized (16 KB)': `${h}.${'A'.repeat(16000)}.${s}`,
      unicode: `${h}.${p}.${s}\u00e9`,
      'whitespace inside': `${h}. ${p}.${s}`,
    };
    for (const [what, token] of Object.entries(cases)) await assertRejected(token, what);
    const headers: Record<string, string> = {
      'no scheme': victim.access,
      'Basic scheme': `Basic ${Buffer.from('a:b').toString('base64')}`,
      'Bearer without token': 'Bearer ',
      'Bearer twice': `Bearer ${victim.access} Bearer ${victim.access}`,
      'token then junk': `Bearer ${victim.access} junk`,
    };
    for (const [what, authorization] of Object.entries(headers)) {
      const res = await t.app.inject({ method: 'GET', url: '/api/auth/me', headers: { authorization } });
      assert.equal(res.statusCode, 401, `${what}: ${res.statusCode} ${res.body.slice(0, 200)}`);
      assertEnvelope(res, what);
    }
  });

  it('every secured route refuses the forged and misused tokens, not only /me', async () => {
    const now = Math.floor(Date.now() / 1000);
    const bad = [
      `${b64({ alg: 'none', typ: 'at+jwt' })}.${b64({ ...claims, exp: now + 600 })}.`,
      await forge({ exp: now - 60, iat: now - 120, nbf: now - 120 }),
      await forge({ iss: 'x' }),
      victim.refresh,
    ];
    const secured = ops.filter((o) => o.secured);
    assert.ok(secured.length >= 8, `expected the secured routes in the OpenAPI document, found ${secured.length}`);
    for (const op of secured) {
      for (const token of bad) {
        const url = op.path.replace(/\{\w+\}/g, victim.id);
        const payload = op.body
          ? baseObject(op.body, { targetId: victim.id, actorPassword: STRONG_PASSWORD })
          : undefined;
        const res = await t.app.inject({
          method: op.method as 'GET',
          url,
          headers: bearer(token),
          ...(payload ? { payload } : {}),
        });
        assert.equal(res.statusCode, 401, `${op.method} ${op.path}: ${res.statusCode} ${res.body.slice(0, 200)}`);
      }
    }
  });

  /**
   * Every other spelling of the same signed bytes: the last character of a segment with other
   * values in its unused low bits, padding, and the standard base64 alphabet. Each decodes to the
   * very bytes of the original, so a lenient decoder accepts them all.
   */
  function otherSpellings(token: string): string[] {
    const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const segments = token.split('.');
    const out = new Set<string>();
    const respell = (index: number, segment: string) =>
      out.add(segments.map((s, i) => (i === index ? segment : s)).join('.'));
    segments.forEach((segment, index) => {
      const unusedBits = (segment.length * 6) % 8;
      const last = ALPHABET.indexOf(segment.at(-1)!);
      for (let low = 1; low < 1 << unusedBits; low++) respell(index, segment.slice(0, -1) + ALPHABET[last ^ low]);
      if (segment.length % 4) respell(index, segment + '='.repeat(4 - (segment.length % 4)));
      if (/[-_]/.test(segment)) respell(index, segment.replace(/-/g, '+').replace(/_/g, '/'));
    });
    out.delete(token);
    for (const spelling of out) {
      const same = spelling
        .split('.')
        .every((s, i) => Buffer.from(s, 'base64').equals(Buffer.from(segments[i]!, 'base64url')));
      assert.ok(same, `${spelling} decodes to the original bytes`);
    }
    return [...out];
  }

  it('a token has exactly one accepted spelling: unused bits, padding and other alphabets are refused', async () => {
    const u = await login(t.app, victim.username);
    const spellings = otherSpellings(u.access);
    const signature = u.access.split('.')[2]!;
    assert.equal((signature.length * 6) % 8, 2, 'an HS256 signature ends in a character with 2 unused bits');
    assert.ok(spellings.length >= 4, `${spellings.length} spellings`);
    assert.equal((await me(u.access)).statusCode, 200);
    for (const spelling of spellings) await assertRejected(spelling, `other spelling ${spelling.slice(-12)}`);
    // Refresh tokens are JWTs too: another spelling is refused and does not spend the real one.
    for (const spelling of otherSpellings(u.refresh)) {
      const res = await t.app.inject({
        method: 'POST',
        url: '/api/auth/refresh',
        payload: { refresh_token: spelling },
      });
      assert.equal(res.statusCode, 401, `refresh spelling ${spelling.slice(-12)}: ${res.statusCode}`);
    }
    const refreshed = await t.app.inject({
      method: 'POST',
      url: '/api/auth/refresh',
      payload: { refresh_token: u.refresh },
    });
    assert.equal(refreshed.statusCode, 200, refreshed.body);
  });

  it('revoking a jti refuses the token at once, however it is spelled (no cached second spelling)', async () => {
    const u = await login(t.app, victim.username);
    const signature = u.access.split('.')[2]!;
    const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const flipped = `${u.access.slice(0, -1)}${ALPHABET[ALPHABET.indexOf(signature.at(-1)!) ^ 1]}`;
    // Both spellings used before the revocation (each would be cached if it were accepted).
    assert.equal((await me(u.access)).statusCode, 200);
    await assertRejected(flipped, 'flipped unused bit before revocation');
    const revoke = await t.app.inject({
      method: 'POST',
      url: '/api/security/tokens/revoke',
      headers: bearer(admin.access),
      payload: { jti: decodeJwt(u.access).jti },
    });
    assert.equal(revoke.statusCode, 200, revoke.body);
    for (const spelling of [u.access, flipped, ...otherSpellings(u.access)])
      await assertRejected(spelling, `after revocation: ${spelling.slice(-12)}`);
  });

  it('claims are what this suite assumes (iss/aud of the test config)', () => {
    assert.equal(claims.iss, ISSUER);
    assert.equal(claims.aud, AUDIENCE);
  });
});
