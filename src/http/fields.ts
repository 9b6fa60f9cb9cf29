/** Field schemas shared by every route that accepts them: one definition of each input rule. */
import { Type } from '@sinclair/typebox';
import type { Config } from '../config/index.js';

export const Username = Type.String({ minLength: 3, maxLength: 50, pattern: '^[A-Za-z0-9_-]*$', description: '3–50 of A–Z, a–z, 0–9, _ and -' });
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
    description: 'Must also pass the password policy (docs/security.md): character classes, not common or breached, strong enough',
  });
/** Names: no markup or control characters. */
export const PersonName = Type.String({ maxLength: 100, pattern: '^[^<>&"\\\\\\u0000-\\u001f\\u007f]*$' });
/** Free text: control characters are stripped (see sanitizeText), markup is stored as given and escaped on output. */
export const Bio = Type.String({ maxLength: 1000 });
export const OpaqueToken = Type.String({ minLength: 1, maxLength: 4096 });
/** Text used as a lookup key (login name, ids, jti): PostgreSQL cannot even compare a NUL byte, so it is a 400 here. */
export const NO_NUL = '^[^\\u0000]*$';

/** Strips C0/C1 control characters except newline and tab from free text. */
export function sanitizeText(text: string): string {
  return text.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/g, '');
}
