/** Rules about text that services apply whoever calls them (the HTTP schemas are in src/http/fields.ts). */

/** The shape of a user id (a UUID). No username has it, so a lookup by "id or username" is never ambiguous. */
export const USER_ID_SHAPE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Strips C0/C1 control characters except newline and tab from free text. */
export function sanitizeText(text: string): string {
  return text.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/g, '');
}
