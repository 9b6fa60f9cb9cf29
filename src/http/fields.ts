/** Field schemas shared by every route that accepts them: one definition of each input rule. */
import { Type } from '@sinclair/typebox';
import { RATE_PATTERN, type Config } from '../config/index.js';

const HEX = (n: number) => `[0-9A-Fa-f]{${n}}`;
const USERNAME_PATTERN = `^(?!${HEX(8)}-${HEX(4)}-${HEX(4)}-${HEX(4)}-${HEX(12)}$)[A-Za-z0-9_-]*$`;
export const USERNAME_RULE = '3–50 of A–Z, a–z, 0–9, _ and -, not shaped like a user id';
export const Username = Type.String({
  minLength: 3,
  maxLength: 50,
  pattern: USERNAME_PATTERN,
  description: USERNAME_RULE,
});
export const Email = Type.String({ format: 'email', maxLength: 254 });
/** A password being checked (login, current password): any length a password ever had. */
export const Password = Type.String({ minLength: 1, maxLength: 1024 });
/**
 * A password being set: the policy's length bounds (MIN_/MAX_PASSWORD_LENGTH), so the contract
 * says them; every other rule is the password policy's (400 naming the rules that failed).
 */
export const NewPassword = (config: Pick<Config, 'MIN_PASSWORD_LENGTH' | 'MAX_PASSWORD_LENGTH'>) =>
  Type.String({
    minLength: config.MIN_PASSWORD_LENGTH,
    maxLength: config.MAX_PASSWORD_LENGTH,
    description:
      'Must also pass the password policy (docs/security.md): character classes, not common or breached, strong enough',
  });
/**
 * Names: no markup, no control characters, and no invisible format characters (Unicode category
 * Cf: bidi controls such as U+202E and U+2066–U+2069, zero-width U+200B–U+200D, U+FEFF…), which
 * would make a name display as something other than what it is.
 */
const PERSON_NAME_PATTERN = '^[^<>&"\\\\\\u0000-\\u001f\\u007f-\\u009f\\p{Cf}]*$';
export const PersonName = Type.String({ maxLength: 100, pattern: PERSON_NAME_PATTERN });

/** A rate ("5 per minute", "100/hour", "10 per 30 seconds"): config's parseRate rule, as a pattern. */
const RATE_RULE = 'a rate like "5 per minute", "100/hour" or "10 per 30 seconds" (second, minute, hour or day)';
export const Rate = Type.String({ minLength: 1, maxLength: 50, pattern: RATE_PATTERN });

/** The 400 message for a field that fails one of the patterns above (validation.ts). */
export const PATTERN_MESSAGES: Record<string, string> = {
  [RATE_PATTERN]: `Must be ${RATE_RULE}`,
  [USERNAME_PATTERN]: `Must be ${USERNAME_RULE}`,
  [PERSON_NAME_PATTERN]:
    'Must not contain markup (< > & " \\), control characters or invisible format characters (such as bidi controls)',
};
/** Free text: control characters are stripped (see sanitizeText), markup is stored as given and escaped on output. */
export const Bio = Type.String({ maxLength: 1000 });
export const OpaqueToken = Type.String({ minLength: 1, maxLength: 4096 });
/** Text used as a lookup key (login name, ids, jti): PostgreSQL cannot even compare a NUL byte, so it is a 400 here. */
export const NO_NUL = '^[^\\u0000]*$';
