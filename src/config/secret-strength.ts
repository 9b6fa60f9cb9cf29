/**
 * The one rule for "is this secret strong enough" (SECRET_KEY, JWT_SECRET_KEY, the alert webhook
 * secret, the metrics and health tokens). A secret must be long, look random (an entropy estimate
 * of at least 128 bits, no short repeating pattern) and must not appear anywhere in this
 * repository: every value written in its tests, docs and examples is public.
 */
import { createHash, randomBytes } from 'node:crypto';
import { KNOWN_SECRET_SHA256 } from './known-secrets.js';

export const MIN_SECRET_BYTES = 32;
export const MIN_SECRET_ENTROPY_BITS = 128;

/** Placeholders that are too short to be in the repository's list but must still be named as examples. */
const KNOWN_WEAK_SECRETS = new Set(['change-me', 'changeme', 'secret', 'dev', 'development']);
const KNOWN_SECRET_HASHES = new Set<string>(KNOWN_SECRET_SHA256);

export function sha256Hex(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('hex');
}

/** True when the value (or the value without surrounding blanks) is written somewhere in the repository. */
export function isKnownSecret(value: string): boolean {
  return KNOWN_SECRET_HASHES.has(sha256Hex(value)) || KNOWN_SECRET_HASHES.has(sha256Hex(value.trim()));
}

/** Empirical Shannon entropy, in bits per symbol, of a sequence. */
function bitsPerSymbol(symbols: readonly (string | number)[]): number {
  const counts = new Map<string | number, number>();
  for (const s of symbols) counts.set(s, (counts.get(s) ?? 0) + 1);
  let bits = 0;
  for (const count of counts.values()) {
    const p = count / symbols.length;
    bits -= p * Math.log2(p);
  }
  return bits;
}

/**
 * A conservative estimate of a secret's entropy in bits: its length times the lower of the
 * Shannon entropy of its characters and of the steps between neighbouring characters (the second
 * catches runs like `abcdef…` or `0123…`, whose characters all differ but whose steps do not).
 */
export function estimateSecretEntropyBits(value: string): number {
  const chars = [...value];
  if (chars.length < 2) return 0;
  const codes = chars.map((c) => c.codePointAt(0) ?? 0);
  const steps = codes.slice(1).map((code, i) => code - (codes[i] ?? 0));
  return chars.length * Math.min(bitsPerSymbol(chars), bitsPerSymbol(steps));
}

/**
 * The length of a repeating unit the value is (mostly) made of, or null. A value repeats with
 * period p when at least half of its characters equal the one p places further on; for a random
 * value that happens for no p (about 1 in 16 characters match by chance, even for hex).
 */
export function repeatingPatternLength(value: string): number | null {
  const chars = [...value];
  for (let period = 1; period <= chars.length / 2; period++) {
    let same = 0;
    for (let i = 0; i + period < chars.length; i++) if (chars[i] === chars[i + period]) same++;
    if (same >= (chars.length - period) / 2) return period;
  }
  return null;
}

/** Why a secret is unfit for production, or null. Shared by the config loader and `flokie check`. */
export function secretProblem(value: string): string | null {
  const problem = randomnessProblem(value);
  if (problem) return problem;
  if (isKnownSecret(value)) return 'is a known example value (it is written in this repository, so it is public)';
  return null;
}

/**
 * Why a value is not random enough to be a secret, or null. Only values that pass this need to be
 * in the repository's list (scripts/known-secrets.ts), since every other one is refused anyway.
 */
export function randomnessProblem(value: string): string | null {
  if (!value) return 'is not set';
  if (KNOWN_WEAK_SECRETS.has(value.trim().toLowerCase())) return 'is a known example value';
  if (Buffer.byteLength(value) < MIN_SECRET_BYTES) return `is shorter than ${MIN_SECRET_BYTES} bytes`;
  const period = repeatingPatternLength(value);
  if (period !== null) return `repeats a pattern of ${period} character${period === 1 ? '' : 's'}, so it is guessable`;
  const bits = Math.floor(estimateSecretEntropyBits(value));
  if (bits < MIN_SECRET_ENTROPY_BITS) {
    return `looks too little random (about ${bits} bits of entropy, at least ${MIN_SECRET_ENTROPY_BITS} needed)`;
  }
  return null;
}

/** A fresh secret for SECRET_KEY and friends: 48 random bytes (384 bits), base64url. */
export function generateSecret(): string {
  return randomBytes(48).toString('base64url');
}
