/**
 * JWT issuing and checking: the one place that signs or reads a token.
 *
 * The algorithm is pinned (HS256), the token type is carried in the protected header (`typ`:
 * `at+jwt` for access tokens per RFC 9068, `rt+jwt` for refresh tokens) and checked on every
 * use, and iss, aud, sub, sid, jti, iat, nbf and exp are all required. Revocation is not decided
 * here: see token-guard.ts (access) and sessions.ts (refresh).
 */
import { randomBytes, webcrypto } from 'node:crypto';
import { SignJWT, errors as joseErrors, jwtVerify } from 'jose';
import { authenticationError } from '../../http/errors.js';

export type TokenType = 'access' | 'refresh';
const TYP: Record<TokenType, string> = { access: 'at+jwt', refresh: 'rt+jwt' };
const ALGORITHM = 'HS256';
/** Anything longer is not one of ours; refuse before doing any work on it. */
export const MAX_TOKEN_LENGTH = 2048;

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

export class TokenService {
  private readonly key: Promise<webcrypto.CryptoKey>;

  constructor(private readonly settings: TokenSettings) {
    this.key = webcrypto.subtle.importKey('raw', new TextEncoder().encode(settings.secret), { name: 'HMAC', hash: 'SHA-256' }, false, [
      'sign',
      'verify',
    ]);
  }

  /** Signs a token; its lifetime never runs past `notAfter` (the session's absolute end, epoch seconds). */
  async sign(type: TokenType, claims: { sub: string; sid: string; jti?: string }, notAfter?: number): Promise<{ token: string; jti: string; exp: number }> {
    const now = Math.floor(Date.now() / 1000);
    const ttl = type === 'access' ? this.settings.accessTtlSeconds : this.settings.refreshTtlSeconds;
    const exp = Math.min(now + ttl, notAfter ?? Number.MAX_SAFE_INTEGER);
    const jti = claims.jti ?? newJti();
    const token = await new SignJWT({ sid: claims.sid })
      .setProtectedHeader({ alg: ALGORITHM, typ: TYP[type] })
      .setIssuer(this.settings.issuer)
      .setAudience(this.settings.audience)
      .setSubject(claims.sub)
      .setJti(jti)
      .setIssuedAt(now)
      .setNotBefore(now)
      .setExpirationTime(exp)
      .sign(await this.key);
    return { token, jti, exp };
  }

  /** Verifies signature, algorithm, type and claims; any failure is a 401 that says no more than needed. */
  async verify(token: string, type: TokenType): Promise<TokenClaims> {
    if (token.length > MAX_TOKEN_LENGTH || token.split('.').length !== 3) throw authenticationError('Invalid token');
    try {
      const { payload } = await jwtVerify(token, await this.key, {
        algorithms: [ALGORITHM],
        typ: TYP[type],
        issuer: this.settings.issuer,
        audience: this.settings.audience,
        requiredClaims: ['sub', 'sid', 'jti', 'iat', 'nbf', 'exp'],
        clockTolerance: 5,
      });
      if (typeof payload.sid !== 'string' || typeof payload.jti !== 'string' || typeof payload.sub !== 'string') {
        throw authenticationError('Invalid token');
      }
      return { sub: payload.sub, sid: payload.sid, jti: payload.jti, iat: payload.iat!, exp: payload.exp! };
    } catch (e) {
      if (e instanceof joseErrors.JWTExpired) throw authenticationError('Token has expired');
      throw authenticationError('Invalid token');
    }
  }
}
