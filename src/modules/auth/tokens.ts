/**
 * JWT issuing and checking: the one place that signs or reads a token.
 *
 * The algorithm is pinned (HS256), the token type is carried in the protected header (`typ`:
 * `at+jwt` for access tokens per RFC 9068, `rt+jwt` for refresh tokens) and checked on every
 * use, and iss, aud, sub, sid, jti, iat, nbf and exp are all required. A token has exactly one
 * accepted spelling (canonical base64url segments, checked before the signature). Revocation is not decided
 * here: see token-guard.ts (access) and sessions.ts (refresh).
 *
 * Signing and verification use fast-jwt (Nearform's library behind @fastify/jwt), which computes
 * HMACs synchronously with node:crypto. jose, used before, runs each HMAC through WebCrypto as a
 * job on libuv's thread pool, where it queued behind password hashing: under a login flood every
 * authenticated request and every refresh waited for a bcrypt slot (docs/benchmarks.md).
 * test/modules/auth/token-verify.test.ts holds the verifier to jose's jwtVerify with generated tokens, and
 * test/modules/auth/tokens.test.ts checks that jose, as an independent implementation, accepts what we sign.
 */
import { randomBytes } from 'node:crypto';
import { createSigner, createVerifier, TokenError } from 'fast-jwt';
import { authenticationError } from '../../core/errors.js';

export type TokenType = 'access' | 'refresh';
const TYP: Record<TokenType, string> = { access: 'at+jwt', refresh: 'rt+jwt' };
const ALGORITHM = 'HS256';
/** Anything longer is not one of ours; refuse before doing any work on it. */
export const MAX_TOKEN_LENGTH = 2048;
const CLOCK_TOLERANCE_SECONDS = 5;
const REQUIRED_CLAIMS = ['sub', 'sid', 'jti', 'iat', 'nbf', 'exp', 'aud', 'iss'];

export interface TokenClaims {
  sub: string;
  sid: string;
  jti: string;
  iat: number;
  exp: number;
}

export interface TokenSettings {
  secret: string;
  issuer: string;
  audience: string;
  accessTtlSeconds: number;
  refreshTtlSeconds: number;
}

export const newJti = () => randomBytes(18).toString('base64url');

const BASE64URL = /^[A-Za-z0-9_-]+$/;

/**
 * True when the token is three segments, each in the one spelling base64url allows: no padding,
 * no other alphabet, and no bits set past the data in the last character (decoding and encoding
 * again gives the same text). fast-jwt decodes leniently, so without this one signed token has
 * several accepted spellings, and a check keyed by the string (revocation, cache) sees strangers.
 */
export function isCanonicalToken(token: string): boolean {
  const segments = token.split('.');
  return (
    segments.length === 3 &&
    segments.every(
      (segment) => BASE64URL.test(segment) && Buffer.from(segment, 'base64url').toString('base64url') === segment,
    )
  );
}

export class TokenService {
  private readonly signers: Record<TokenType, (payload: Record<string, unknown>) => string>;
  private readonly verifiers: Record<TokenType, (token: string) => Record<string, unknown>>;

  constructor(private readonly settings: TokenSettings) {
    const verifier = (type: TokenType) =>
      createVerifier({
        key: settings.secret,
        algorithms: [ALGORITHM],
        checkTyp: TYP[type],
        allowedIss: settings.issuer,
        allowedAud: settings.audience,
        requiredClaims: [...REQUIRED_CLAIMS],
        clockTolerance: CLOCK_TOLERANCE_SECONDS * 1000,
        // No result cache: revocation is decided per request by token-guard.ts.
        cache: false,
      });
    this.verifiers = { access: verifier('access'), refresh: verifier('refresh') };
    // iat, nbf and exp come in each payload (sign() decides them), so no clock of fast-jwt's own.
    const signer = (type: TokenType) =>
      createSigner({
        key: settings.secret,
        algorithm: ALGORITHM,
        header: { alg: ALGORITHM, typ: TYP[type] },
        iss: settings.issuer,
        aud: settings.audience,
      });
    this.signers = { access: signer('access'), refresh: signer('refresh') };
  }

  /** Signs a token; its lifetime never runs past `notAfter` (the session's absolute end, epoch seconds). */
  async sign(
    type: TokenType,
    claims: { sub: string; sid: string; jti?: string },
    notAfter?: number,
  ): Promise<{ token: string; jti: string; exp: number }> {
    const now = Math.floor(Date.now() / 1000);
    const ttl = type === 'access' ? this.settings.accessTtlSeconds : this.settings.refreshTtlSeconds;
    const exp = Math.min(now + ttl, notAfter ?? Number.MAX_SAFE_INTEGER);
    const jti = claims.jti ?? newJti();
    const token = this.signers[type]({ sub: claims.sub, sid: claims.sid, jti, iat: now, nbf: now, exp });
    return { token, jti, exp };
  }

  /** Verifies signature, algorithm, type and claims; any failure is a 401 that says no more than needed. */
  async verify(token: string, type: TokenType): Promise<TokenClaims> {
    if (token.length > MAX_TOKEN_LENGTH || !isCanonicalToken(token)) throw authenticationError('Invalid token');
    let payload: Record<string, unknown>;
    try {
      payload = this.verifiers[type](token);
    } catch (e) {
      if (e instanceof TokenError && e.code === TokenError.codes.expired)
        throw authenticationError('Token has expired');
      throw authenticationError('Invalid token');
    }
    const { sub, sid, jti, iat, nbf, exp } = payload;
    if (typeof sub !== 'string' || typeof sid !== 'string' || typeof jti !== 'string')
      throw authenticationError('Invalid token');
    if (typeof iat !== 'number' || typeof nbf !== 'number' || typeof exp !== 'number')
      throw authenticationError('Invalid token');
    return { sub, sid, jti, iat, exp };
  }
}
