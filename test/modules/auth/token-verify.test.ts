/**
 * TokenService.verify checks HS256 tokens with fast-jwt (synchronous HMAC, see tokens.ts). This test
 * holds it to jose's jwtVerify with the options tokens.ts used before: for generated headers and
 * claim sets — wrong or missing alg/typ/iss/aud, claims of the wrong type, times around the
 * tolerance, tampered signatures — both must accept exactly the same tokens. Where a token is
 * wrong in several ways the two may name a different first fault (expired vs invalid); both are 401.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { errors as joseErrors, jwtVerify } from 'jose';
import { TokenService, type TokenType } from '../../../src/modules/auth/tokens.js';

const SECRET = 'k'.repeat(16) + 'differential-test-secret-0123456789';
const settings = {
  secret: SECRET,
  issuer: 'flokie',
  audience: 'flokie-api',
  accessTtlSeconds: 3600,
  refreshTtlSeconds: 86400,
};
const service = new TokenService(settings);
const TYP: Record<TokenType, string> = { access: 'at+jwt', refresh: 'rt+jwt' };

const b64 = (value: unknown) =>
  Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
function signRaw(header: unknown, payload: unknown, secret = SECRET): string {
  const head = `${b64(header)}.${b64(payload)}`;
  return `${head}.${createHmac('sha256', secret).update(head).digest('base64url')}`;
}

async function joseAnswer(token: string, type: TokenType): Promise<string> {
  try {
    const { payload } = await jwtVerify(token, new TextEncoder().encode(SECRET), {
      algorithms: ['HS256'],
      typ: TYP[type],
      issuer: settings.issuer,
      audience: settings.audience,
      requiredClaims: ['sub', 'sid', 'jti', 'iat', 'nbf', 'exp'],
      clockTolerance: 5,
    });
    if (typeof payload.sid !== 'string' || typeof payload.jti !== 'string' || typeof payload.sub !== 'string')
      return 'Invalid token';
    return 'ok';
  } catch (e) {
    return e instanceof joseErrors.JWTExpired ? 'Token has expired' : 'Invalid token';
  }
}

async function ourAnswer(token: string, type: TokenType): Promise<string> {
  try {
    await service.verify(token, type);
    return 'ok';
  } catch (e) {
    return (e as Error).message;
  }
}

const now = () => Math.floor(Date.now() / 1000);
const maybe = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });
const timeOffset = fc.oneof(
  fc.constantFrom(-3600, -6, -5, -4, 0, 4, 5, 6, 3600),
  fc.integer({ min: -100_000, max: 100_000 }),
);
const odd = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.string({ maxLength: 4 }),
  fc.array(fc.string({ maxLength: 3 }), { maxLength: 2 }),
);

/** A good token's fields, then up to three of them replaced by generated values (often boundary cases). */
const fieldValues: Record<string, fc.Arbitrary<unknown>> = {
  'h.alg': fc.oneof(fc.constantFrom('HS384', 'none', 'RS256', 'hs256'), odd),
  'h.typ': fc.oneof(
    fc.constantFrom(
      'at+jwt',
      'rt+jwt',
      'AT+JWT',
      'application/at+jwt',
      'Application/AT+jwt',
      'JWT',
      'application/rt+JWT',
      'at+jwt ',
    ),
    odd,
  ),
  'p.sub': odd,
  'p.sid': odd,
  'p.jti': odd,
  'p.iss': fc.oneof(fc.constantFrom('other', 'Flokie', ['flokie']), odd),
  'p.aud': fc.oneof(fc.constant(['x', 'flokie-api']), fc.constant([]), fc.constantFrom('other', '', 'FLOKIE-API'), odd),
  'p.iat': fc.oneof(
    timeOffset.map((d) => now() + d),
    odd,
  ),
  'p.nbf': fc.oneof(
    timeOffset.map((d) => now() + d),
    odd,
  ),
  'p.exp': fc.oneof(
    timeOffset.map((d) => now() + d),
    odd,
  ),
  'p.extra': odd,
};
const UNSET = Symbol('unset');
const changesArb = fc.array(
  fc
    .constantFrom(...Object.keys(fieldValues))
    .chain((field) =>
      fc.tuple(
        fc.constant(field),
        fc.oneof({ weight: 5, arbitrary: fieldValues[field]! }, { weight: 1, arbitrary: fc.constant(UNSET) }),
      ),
    ),
  { maxLength: 3 },
);

function build(type: TokenType, changes: [string, unknown][]) {
  const header: Record<string, unknown> = { alg: 'HS256', typ: TYP[type] };
  const payload: Record<string, unknown> = {
    sid: 'session-1',
    iss: 'flokie',
    aud: 'flokie-api',
    sub: 'user-1',
    jti: 'jti-1',
    iat: now(),
    nbf: now(),
    exp: now() + 3600,
  };
  for (const [field, value] of changes) {
    const target = field.startsWith('h.') ? header : payload;
    const key = field.slice(2);
    if (value === UNSET) delete target[key];
    else target[key] = value;
  }
  return { header, payload };
}

describe('TokenService.verify agrees with jose', () => {
  it('on generated headers and claim sets, for both token types', async () => {
    await fc.assert(
      fc.asyncProperty(
        changesArb,
        fc.constantFrom<TokenType>('access', 'refresh'),
        maybe(fc.constantFrom('tamper', 'wrong-key')),
        async (changes, type, damage) => {
          const { header, payload } = build(type, changes);
          let token = signRaw(header, payload, damage === 'wrong-key' ? `${SECRET}x` : SECRET);
          // Tamper with the signature's first character: it carries no unused bits, so the bytes really
          // change (the last one differs only in unused bits from some spellings, which jose accepts).
          if (damage === 'tamper') {
            const at = token.lastIndexOf('.') + 1;
            token = `${token.slice(0, at)}${token[at] === 'A' ? 'B' : 'A'}${token.slice(at + 1)}`;
          }
          const [ours, theirs] = [await ourAnswer(token, type), await joseAnswer(token, type)];
          const verdict = (answer: string) => (answer === 'ok' ? 'accepted' : 'rejected');
          assert.equal(
            verdict(ours),
            verdict(theirs),
            `header ${JSON.stringify(header)} payload ${JSON.stringify(payload)} ${type} ${damage ?? ''}`,
          );
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('on every time boundary of the 5 s clock tolerance', async () => {
    for (const claim of ['exp', 'nbf', 'iat'] as const) {
      for (let offset = -7; offset <= 7; offset++) {
        const { header, payload } = build('access', [[`p.${claim}`, now() + offset]]);
        const token = signRaw(header, payload);
        assert.equal(
          await ourAnswer(token, 'access'),
          await joseAnswer(token, 'access'),
          `${claim} = now ${offset >= 0 ? '+' : ''}${offset}`,
        );
      }
    }
  });

  it('accepts the tokens it signs, as their own type only', async () => {
    const { token } = await service.sign('access', { sub: 'u', sid: 's' });
    assert.equal(await ourAnswer(token, 'access'), 'ok');
    assert.equal(await ourAnswer(token, 'refresh'), 'Invalid token');
    assert.equal(await joseAnswer(token, 'access'), 'ok');
  });

  it('refuses unknown crit extensions, malformed segments and oversize tokens', async () => {
    const good = {
      sub: 'u',
      sid: 's',
      jti: 'j',
      iss: 'flokie',
      aud: 'flokie-api',
      iat: now(),
      nbf: now(),
      exp: now() + 60,
    };
    assert.equal(await ourAnswer(signRaw({ alg: 'HS256', typ: 'at+jwt' }, good), 'access'), 'ok');
    assert.equal(
      await ourAnswer(signRaw({ alg: 'HS256', typ: 'at+jwt', crit: ['b64'], b64: true }, good), 'access'),
      'Invalid token',
    );
    assert.equal(await ourAnswer(signRaw({ alg: 'HS256', typ: 'at+jwt' }, [good]), 'access'), 'Invalid token');
    assert.equal(await ourAnswer(signRaw({ alg: 'HS256', typ: 'at+jwt' }, 'not json'), 'access'), 'Invalid token');
    const [h, p, s] = signRaw({ alg: 'HS256', typ: 'at+jwt' }, good).split('.');
    assert.equal(await ourAnswer(`${h}.${p}.${s}=`, 'access'), 'Invalid token');
    assert.equal(await ourAnswer(`${h}.${p}.`, 'access'), 'Invalid token');
    assert.equal(await ourAnswer(`${h}.${p}`, 'access'), 'Invalid token');
    assert.equal(await ourAnswer(`${h}.${p}.${s}.x`, 'access'), 'Invalid token');
    assert.equal(await ourAnswer(`${h}.${p}.${'A'.repeat(2100)}`, 'access'), 'Invalid token');
  });
});
