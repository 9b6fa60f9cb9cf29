/**
 * How request validation speaks to clients: every schema failure (Ajv errors) becomes
 * `details: {"field": ["message", …]}` in our own words, and query-string booleans are read the
 * way clients write them. Used by app.ts (validator options) and plugins/app/error-handler.ts.
 *
 * Bounded: a body full of bad or unknown fields (up to BODY_LIMIT) yields at most
 * MAX_DETAIL_FIELDS fields with at most MAX_MESSAGES_PER_FIELD messages each, and field names
 * (which come from the client) are cut to MAX_FIELD_NAME_LENGTH characters.
 */
import type { ValidateFunction } from 'ajv';
import { PATTERN_MESSAGES } from './fields.js';
import type { ErrorDetails } from '../core/errors.js';

export const MAX_DETAIL_FIELDS = 20;
export const MAX_MESSAGES_PER_FIELD = 5;
export const MAX_FIELD_NAME_LENGTH = 100;

export interface AjvError {
  instancePath: string;
  schemaPath: string;
  keyword: string;
  message?: string;
  params: Record<string, unknown>;
}

const TYPE_NAMES: Record<string, string> = {
  string: 'a string',
  integer: 'an integer',
  number: 'a number',
  boolean: 'true or false',
  object: 'an object',
  array: 'a list',
  null: 'null',
};

const FORMAT_MESSAGES: Record<string, string> = {
  email: 'Not a valid e-mail address',
  'date-time': 'Must be an ISO 8601 date-time, e.g. 2026-01-01T00:00:00Z',
};

const list = (values: unknown[]) => values.map((v) => (typeof v === 'string' ? v : JSON.stringify(v))).join(', ');
const typeName = (type: unknown) =>
  String(type)
    .split(',')
    .map((t) => TYPE_NAMES[t] ?? t)
    .join(' or ');

/**
 * Our message for each Ajv keyword. It doubles as the allow-list of keywords request schemas may
 * use (test/http/validation-messages.test.ts walks every route's schemas against it): all of
 * them cost time linear in the input, even with every error collected.
 */
export const KEYWORD_MESSAGES: Record<string, (params: Record<string, unknown>) => string> = {
  type: (p) => `Must be ${typeName(p.type)}`,
  required: () => 'This field is required',
  additionalProperties: () => 'Unknown field',
  minLength: (p) => (p.limit === 1 ? 'Must not be empty' : `Must be at least ${String(p.limit)} characters`),
  maxLength: (p) => `Must be at most ${String(p.limit)} characters`,
  pattern: (p) => PATTERN_MESSAGES[String(p.pattern)] ?? 'Contains characters that are not allowed',
  format: (p) => FORMAT_MESSAGES[String(p.format)] ?? `Must be a valid ${String(p.format)}`,
  minimum: (p) => `Must be at least ${String(p.limit)}`,
  maximum: (p) => `Must be at most ${String(p.limit)}`,
  exclusiveMinimum: (p) => `Must be greater than ${String(p.limit)}`,
  exclusiveMaximum: (p) => `Must be less than ${String(p.limit)}`,
  const: (p) => `Must be ${list([p.allowedValue])}`,
  enum: (p) => `Must be one of: ${list((p.allowedValues as unknown[]) ?? [])}`,
  anyOf: () => 'Does not match any allowed form',
};

/** Formats the messages above know by name; others get the generic "Must be a valid …". */
export const KNOWN_FORMATS = Object.keys(FORMAT_MESSAGES);

/** JSON pointer (`/a/0/b`, with ~0 ~1 escapes) → `a.0.b`, cut to a sane length. */
function fieldName(pointer: string, extra?: unknown): string {
  const parts =
    pointer === ''
      ? []
      : pointer
          .slice(1)
          .split('/')
          .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (extra !== undefined) parts.push(String(extra));
  const name = parts.join('.');
  return name.length > MAX_FIELD_NAME_LENGTH ? `${name.slice(0, MAX_FIELD_NAME_LENGTH)}…` : name;
}

function message(error: AjvError): string {
  const describe = Object.hasOwn(KEYWORD_MESSAGES, error.keyword) ? KEYWORD_MESSAGES[error.keyword] : undefined;
  return describe ? describe(error.params) : 'Is not valid';
}

/**
 * A failed `anyOf` (a TypeBox Union) reports every branch. Read as one rule: a union of
 * literals is "one of: a, b, c"; a nullable field (`T | null`) reports T's problem, "or null"
 * added to a type mismatch; any other union keeps its branches' own messages.
 */
function collapseUnions(errors: AjvError[]): AjvError[] {
  const unions = errors.filter((e) => e.keyword === 'anyOf').sort((a, b) => a.schemaPath.length - b.schemaPath.length);
  const consumed = new Set<AjvError>();
  const out: AjvError[] = [];
  const replacements = new Map<AjvError, AjvError[]>();
  for (const union of unions) {
    if (consumed.has(union)) continue;
    const prefix = `${union.schemaPath}/`;
    const branches = errors.filter((e) => e !== union && !consumed.has(e) && e.schemaPath.startsWith(prefix));
    branches.forEach((e) => consumed.add(e));
    const here = branches.filter((e) => e.instancePath === union.instancePath);
    const nullBranch = here.some((e) => e.keyword === 'type' && e.params.type === 'null');
    const rest = branches.filter(
      (e) => !(e.keyword === 'type' && e.params.type === 'null' && e.instancePath === union.instancePath),
    );
    const literals = here.filter((e) => e.keyword === 'const' || e.keyword === 'enum');
    if (rest.length > 0 && literals.length === rest.length) {
      const values = literals.flatMap((e) =>
        e.keyword === 'const' ? [e.params.allowedValue] : ((e.params.allowedValues as unknown[]) ?? []),
      );
      replacements.set(union, [
        { ...union, keyword: 'enum', params: { allowedValues: nullBranch ? [...values, null] : values } },
      ]);
    } else if (rest.length > 0) {
      replacements.set(
        union,
        rest.map((e) =>
          nullBranch && e.keyword === 'type' && e.instancePath === union.instancePath
            ? { ...e, params: { type: `${String(e.params.type)},null` } }
            : e,
        ),
      );
    } else {
      replacements.set(union, [union]);
    }
  }
  for (const error of errors) {
    if (consumed.has(error)) continue;
    out.push(...(replacements.get(error) ?? [error]));
  }
  return out;
}

/**
 * Ajv errors → `{"field": ["message", …]}`, fields named the way the client sent them.
 * Returns the (bounded) details and how many problems there were in all.
 */
export function validationDetails(
  errors: AjvError[],
  part: string | undefined,
): { details: ErrorDetails; total: number } {
  // Field names come from the client ("toString", "__proto__"): no inherited keys to collide with.
  const details = Object.create(null) as ErrorDetails;
  let fields = 0;
  let total = 0;
  for (const error of collapseUnions(errors)) {
    let field: string;
    let text = message(error);
    if (error.keyword === 'required') field = fieldName(error.instancePath, error.params.missingProperty);
    else if (error.keyword === 'additionalProperties')
      field = fieldName(error.instancePath, error.params.additionalProperty);
    else field = fieldName(error.instancePath);
    if (field === '' && error.keyword === 'type' && part === 'body') text = 'A JSON object is required';
    const key = field || part || 'body';
    total += 1;
    const messages = details[key];
    if (messages) {
      if (messages.length < MAX_MESSAGES_PER_FIELD && !messages.includes(text)) messages.push(text);
    } else if (fields < MAX_DETAIL_FIELDS) {
      details[key] = [text];
      fields += 1;
    }
  }
  return { details, total };
}

/** What Ajv passes a validator besides the data: where the data sits in its parent object. */
type DataContext = Parameters<ValidateFunction>[1];
type Validator = ((data: unknown, context?: DataContext) => unknown) & { errors?: unknown; schemaEnv?: unknown };

/**
 * Query-string booleans as clients write them: true/false/1/0 in any case (Python's requests
 * sends `False`). Wraps the validator of a querystring schema so they are booleans before Ajv
 * sees them; anything else is left for Ajv to refuse.
 */
export function acceptQueryBooleans<V extends Validator>(schema: unknown, validate: V): V {
  const properties = (schema as { properties?: Record<string, { type?: unknown }> } | undefined)?.properties ?? {};
  const keys = Object.keys(properties).filter((k) => properties[k]?.type === 'boolean');
  if (keys.length === 0) return validate;
  const wrapped = function (data: unknown, context?: DataContext) {
    if (data && typeof data === 'object') {
      const query = data as Record<string, unknown>;
      for (const key of keys) {
        const value = query[key];
        if (typeof value !== 'string') continue;
        const lower = value.toLowerCase();
        if (lower === 'true' || lower === '1') query[key] = true;
        else if (lower === 'false' || lower === '0') query[key] = false;
      }
    }
    const result = context === undefined ? validate(data) : validate(data, context);
    wrapped.errors = validate.errors;
    return result;
  } as unknown as V;
  // Fastify passes the parent object (for root coercion) only to validators that carry schemaEnv.
  if (validate.schemaEnv !== undefined) wrapped.schemaEnv = validate.schemaEnv;
  return wrapped;
}
