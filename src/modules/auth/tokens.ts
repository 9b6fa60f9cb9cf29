/**
 * JWT issuing and checking: the one place that signs or reads a token.
 *
 * The algorithm is pinned (HS256), the token type is carried in the protected header (`typ`:
 * `at+jwt` for access tokens per RFC 9068, `rt+jwt` for refresh tokens) and checked on every
 * use, and iss, aud, sub, sid, jti, iat, nbf and exp are all required. Revocation is not decided
 * here: see token-guard.ts (access) and sessions.ts (refresh).
 *
 * Signing uses jose. Verification, the hot path of every authenticated request, is done here
 * with node:crypto's synchronous HMAC: WebCrypto (which jose uses) runs each HMAC as a job on
 * libuv's thread pool, where it queues behind password hashing, so under a login flood every
 * authenticated request waited for a bcrypt slot (and the job round-trip cost ~15 % of /me's CPU
 * even when idle). The checks are jose's jwtVerify checks for the options we used with it
 * (algorithms [HS256], typ, issuer, audience, required claims, 5 s clock tolerance), in the same
 * order, so the same tokens pass and fail with the same message; headers jose would have to
 * interpret further (crit, b64) are refused outright since we never issue them.
 */
import { createHmac, createSecretKey, randomBytes, timingSafeEqual, webcrypto, type KeyObject } from 'node:crypto';
import { SignJWT } from 'jose';
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
  private readonly verifyKey: KeyObject;

  constructor(private readonly settings: TokenSettings) {
    this.verifyKey = createSecretKey(Buffer.from(settings.secret, 'utf8'));
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
    if (token.length > MAX_TOKEN_LENGTH) throw authenticationError('Invalid token');
    const parts = token.split('.');
    if (parts.length !== 3) throw authenticationError('Invalid token');
    const [headerPart, payloadPart, signaturePart] = parts as [string, string, string];

    const header = decodeSegment(headerPart);
    if (!header || header.alg !== ALGORITHM || 'crit' in header || 'b64' in header) throw authenticationError('Invalid token');
    // Compared as canonical base64url text in constant time: one signature, one spelling.
    const expected = Buffer.from(createHmac('sha256', this.verifyKey).update(`${headerPart}.${payloadPart}`).digest('base64url'));
    const presented = Buffer.from(signaturePart);
    if (presented.length !== expected.length || !timingSafeEqual(presented, expected)) throw authenticationError('Invalid token');

    const payload = decodeSegment(payloadPart);
    if (!payload) throw authenticationError('Invalid token');
    if (typeof header.typ !== 'string' || normalizeTyp(header.typ) !== normalizeTyp(TYP[type])) throw authenticationError('Invalid token');
    for (const claim of REQUIRED_CLAIMS) if (!Object.hasOwn(payload, claim)) throw authenticationError('Invalid token');
    if (payload.iss !== this.settings.issuer) throw authenticationError('Invalid token');
    const aud = payload.aud;
    if (!(typeof aud === 'string' ? aud === this.settings.audience : Array.isArray(aud) && aud.includes(this.settings.audience))) {
      throw authenticationError('Invalid token');
    }
    const now = Math.floor(Date.now() / 1000);
    const { iat, nbf, exp } = payload;
    if (typeof iat !== 'number' || typeof nbf !== 'number' || typeof exp !== 'number') throw authenticationError('Invalid token');
    if (nbf > now + CLOCK_TOLERANCE_SECONDS) throw authenticationError('Invalid token');
    if (exp <= now - CLOCK_TOLERANCE_SECONDS) throw authenticationError('Token has expired');
    if (typeof payload.sid !== 'string' || typeof payload.jti !== 'string' || typeof payload.sub !== 'string') {
      throw authenticationError('Invalid token');
    }
    return { sub: payload.sub, sid: payload.sid, jti: payload.jti, iat, exp };
  }
}

const CLOCK_TOLERANCE_SECONDS = 5;
/** jose's presence check for our options: requiredClaims plus the aud and iss it was told to match. */
const REQUIRED_CLAIMS = ['sub', 'sid', 'jti', 'iat', 'nbf', 'exp', 'aud', 'iss'];
const BASE64URL = /^[A-Za-z0-9_-]*$/;
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** A base64url segment holding a top-level JSON object, or null. */
function decodeSegment(segment: string): Record<string, unknown> | null {
  if (!BASE64URL.test(segment)) return null;
  try {
    const value: unknown = JSON.parse(strictUtf8.decode(Buffer.from(segment, 'base64url')));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** As jose compares typ: case-insensitive, "application/" implied. */
function normalizeTyp(value: string): string {
  const lower = value.toLowerCase();
  return value.includes('/') ? lower : `application/${lower}`;
}
