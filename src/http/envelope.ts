import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { ERROR_CODES, type ErrorCode } from '../core/errors.js';

/** Schema of the success envelope around a route's data, for validation-free fast serialisation and OpenAPI. */
export function Envelope<T extends TSchema>(data: T) {
  return Type.Object({ success: Type.Literal(true), message: Type.String(), data });
}

/**
 * `T | null` in a response schema, written `type: [T, 'null']`: fast-json-stringify serialises
 * that directly, where for an anyOf it runs ajv against each branch on every response.
 */
export function Nullable<T extends TSchema>(schema: T) {
  return Type.Unsafe<Static<T> | null>({ ...schema, type: [schema.type, 'null'] });
}

/** Success envelope for routes with no data. */
export const MessageEnvelope = Type.Object(
  { success: Type.Literal(true), message: Type.String(), data: Type.Optional(Type.Object({})) },
  { $id: 'MessageResponse' },
);

export const ErrorEnvelope = Type.Object(
  {
    success: Type.Literal(false),
    error: Type.Object({
      // An enum, not a union of literals: fast-json-stringify would check each branch with ajv.
      code: Type.Unsafe<ErrorCode>({ type: 'string', enum: [...ERROR_CODES], description: 'Stable (docs/api.md)' }),
      message: Type.String({ description: 'For people; may change' }),
      details: Type.Optional(
        Type.Record(Type.String(), Type.Array(Type.String()), { description: 'Field name → what is wrong with it' }),
      ),
    }),
    timestamp: Type.String({ format: 'date-time' }),
    request_id: Type.String(),
  },
  { $id: 'Error' },
);

export function ok<T>(message: string, data: T): { success: true; message: string; data: T } {
  return { success: true, message, data };
}

/** JSON that never contains raw <, > or & (docs/api.md): a browser mis-sniffing it finds no markup. */
const HTML_CHARS = /[<>&\u2028\u2029]/g;
const ESCAPES: Record<string, string> = {
  '<': '\\u003c',
  '>': '\\u003e',
  '&': '\\u0026',
  '\u2028': '\\u2028',
  '\u2029': '\\u2029',
};
const ESCAPED = Object.keys(ESCAPES);
export function escapeJsonForHtml(json: string): string {
  // Most answers need no change; includes() finds that four times faster than a regex test.
  return ESCAPED.some((c) => json.includes(c)) ? json.replace(HTML_CHARS, (c) => ESCAPES[c]!) : json;
}

/** Page figures of every paged list (admin users, security events). */
export const PaginationSchema = Type.Object(
  {
    page: Type.Integer(),
    per_page: Type.Integer(),
    total: Type.Integer(),
    pages: Type.Integer(),
    has_prev: Type.Boolean(),
    has_next: Type.Boolean(),
    prev_num: Type.Union([Type.Integer(), Type.Null()]),
    next_num: Type.Union([Type.Integer(), Type.Null()]),
  },
  { $id: 'Pagination' },
);
