/**
 * What a user typed as the login name, the one place that decides how it is compared and what of
 * it may be kept. People type passwords into the username field, so the text itself is never
 * stored or logged: a failed attempt names the account (id and username) when the name matches
 * one, and otherwise only a keyed hash of the normalised name — the same for "Alice" and
 * " alice ", so lockout, rate limits and intrusion detection still count an attack on one name
 * together, and useless to read a password from without SECRET_KEY.
 */
import { createHmac } from 'node:crypto';

/** The longest typed name looked at (the login schema allows 254). */
const MAX_LOGIN_NAME = 254;

/** One spelling per typed name: compatibility forms folded (NFKC), outer spaces trimmed, lower case. */
export function normalizeLoginName(typed: string): string {
  return typed
    .slice(0, MAX_LOGIN_NAME * 2)
    .normalize('NFKC')
    .trim()
    .toLowerCase()
    .slice(0, MAX_LOGIN_NAME);
}

export class LoginNames {
  private readonly key: Buffer;

  constructor(secretKey: string) {
    // A key of its own, derived from SECRET_KEY, so these hashes say nothing about other uses of it.
    this.key = createHmac('sha256', secretKey).update('flokie:login-name').digest();
  }

  /** HMAC-SHA256 of the normalised name, truncated to 128 bits (32 hex characters). */
  tag(typed: string): string {
    return createHmac('sha256', this.key).update(normalizeLoginName(typed)).digest('hex').slice(0, 32);
  }
}
