/**
 * Device credentials (OWASP "Slow Down Online Guessing Attacks with Device Cookies"): the proof
 * that a client once logged in as a user, which lets lockout.ts count that client's failures on
 * their own instead of against the account. Owned by the lockout; nothing else reads them.
 *
 * A credential is `d1.<user id>.<nonce>.<expiry>.<mac>`: a random 128-bit nonce, the expiry in
 * epoch seconds, and HMAC-SHA256 over everything before the MAC with a key derived (HKDF) from
 * SECRET_KEY for this use alone. Checking recomputes the MAC and compares it with
 * timingSafeEqual, as text, so only the exact string we issued verifies (no second spelling of
 * the same bytes). It grants nothing by itself: it is not a session and never replaces the
 * password.
 *
 * Browsers get it as the cookie `flokie_device` (HttpOnly, Secure, SameSite=Strict, Path=/api/auth);
 * other clients get it as `device_token` in the login answer and send it back as `X-Device-Token`
 * (read at the HTTP edge: src/http/device-credential.ts).
 */
import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';

export const DEVICE_CREDENTIAL_LIFETIME_SECONDS = 365 * 86_400;

const VERSION = 'd1';
const FORMAT = /^d1\.([A-Za-z0-9-]{1,36})\.([A-Za-z0-9_-]{22})\.(\d{1,12})\.([A-Za-z0-9_-]{43})$/;

/** A credential that verified: the user it was issued to and its own nonce. */
export interface DeviceIdentity {
  userId: string;
  nonce: string;
}

export class DeviceCredentials {
  private readonly key: Buffer;

  constructor(secretKey: string) {
    this.key = Buffer.from(hkdfSync('sha256', secretKey, 'flokie', 'flokie device credential v1', 32));
  }

  private mac(body: string): string {
    return createHmac('sha256', this.key).update(body).digest('base64url');
  }

  issue(userId: string, now = Date.now()): { value: string; maxAgeSeconds: number } {
    const expires = Math.floor(now / 1000) + DEVICE_CREDENTIAL_LIFETIME_SECONDS;
    const body = `${VERSION}.${userId}.${randomBytes(16).toString('base64url')}.${expires}`;
    return { value: `${body}.${this.mac(body)}`, maxAgeSeconds: DEVICE_CREDENTIAL_LIFETIME_SECONDS };
  }

  /** The identity in a credential when it is ours, untampered and unexpired; otherwise null. */
  verify(value: string | undefined, now = Date.now()): DeviceIdentity | null {
    if (typeof value !== 'string' || value.length > 200) return null;
    const parts = FORMAT.exec(value);
    if (!parts) return null;
    const body = value.slice(0, value.lastIndexOf('.'));
    const expected = Buffer.from(this.mac(body));
    const given = Buffer.from(parts[4]!);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
    if (Number(parts[3]) * 1000 <= now) return null;
    return { userId: parts[1]!, nonce: parts[2]! };
  }
}
