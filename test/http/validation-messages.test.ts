/**
 * Validation answers: every failing field listed, every message in our words (src/http/validation.ts),
 * and bounded. The walk below records the request schema of every route as Fastify compiles it,
 * checks that each Ajv keyword in them has a message of ours, then sends a failing value for each
 * keyword of each field of each route and reads the answer.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, before, describe, it } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { PATTERN_MESSAGES } from '../../src/http/fields.js';
import {
  KEYWORD_MESSAGES,
  KNOWN_FORMATS,
  MAX_DETAIL_FIELDS,
  MAX_FIELD_NAME_LENGTH,
  MAX_MESSAGES_PER_FIELD,
  validationDetails,
} from '../../src/http/validation.js';
import { bearer, createTestApp, json, makeAdmin, registerAndLogin, type TestApp } from '../helpers/app.js';

/** A JSON Schema as Fastify compiles it: the keywords these tests read, and any others. */
interface Schema {
  type?: string | string[];
  format?: string;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  anyOf?: Schema[];
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: boolean | Schema;
  default?: unknown;
  [keyword: string]: unknown;
}
interface Compiled {
  method: string;
  url: string;
  httpPart: 'body' | 'querystring' | 'params' | 'headers';
  schema: Schema;
}

/** Every request schema Fastify compiles, recorded through @fastify/ajv-compiler's one entry point. */
const compiled: Compiled[] = [];
const ValidatorCompiler = createRequire(import.meta.url)('@fastify/ajv-compiler/lib/validator-compiler');
const original = ValidatorCompiler.prototype.buildValidatorFunction;
ValidatorCompiler.prototype.buildValidatorFunction = function (route: Compiled) {
  compiled.push({ method: route.method, url: route.url, httpPart: route.httpPart, schema: route.schema });
  return original.call(this, route);
};

const ANNOTATIONS = new Set(['description', 'default', 'title', 'examples', '$id', '$schema', 'deprecated']);
/** Keywords whose own failure is reported by the keywords inside them. */
const CONTAINERS = new Set(['properties', 'items']);

function keywordsOf(schema: Schema, into: Map<string, Set<string>>, where: string): void {
  for (const [key, value] of Object.entries(schema)) {
    if (ANNOTATIONS.has(key)) continue;
    if (!CONTAINERS.has(key)) (into.get(key) ?? into.set(key, new Set()).get(key)!).add(where);
    if (key === 'format')
      (into.get(`format:${value}`) ?? into.set(`format:${value}`, new Set()).get(`format:${value}`)!).add(where);
    if (key === 'properties')
      for (const [name, sub] of Object.entries(value as Schema)) keywordsOf(sub as Schema, into, `${where}.${name}`);
    if (key === 'anyOf' || key === 'oneOf' || key === 'allOf')
      for (const sub of value as Schema[]) keywordsOf(sub, into, where);
    if ((key === 'items' || key === 'additionalProperties' || key === 'not') && typeof value === 'object')
      keywordsOf(value as Schema, into, where);
  }
}

/** Ajv's own wording, which must never reach a client. */
const AJV_WORDING = /^must |must NOT|must match|must have required|must be equal to/;

interface Case {
  keyword: string;
  value: unknown;
  expect: (messages: string[]) => boolean;
  describe: string;
}

const has = (text: string) => (messages: string[]) => messages.includes(text);

/** The failing values for one field's schema, one per keyword it uses. */
function casesFor(schema: Schema, inQuery: boolean): Case[] {
  let s = schema;
  let nullable = false;
  if (Array.isArray(s.anyOf)) {
    const branches = s.anyOf as Schema[];
    if (branches.every((b) => 'const' in b || 'enum' in b)) {
      return [
        {
          keyword: 'anyOf+const',
          value: 'zz-not-allowed',
          expect: (m) => m.some((x) => x.startsWith('Must be one of: ')),
          describe: 'one of',
        },
      ];
    }
    nullable = branches.some((b) => b.type === 'null');
    s = branches.find((b) => b.type !== 'null')!;
  }
  const cases: Case[] = [];
  const orNull = nullable ? ' or null' : '';
  if (s.type === 'string') {
    if (!inQuery)
      cases.push({
        keyword: 'type',
        value: 12345,
        expect: has(`Must be a string${orNull}`),
        describe: 'number for a string',
      });
    if ((s.minLength ?? 0) >= 1)
      cases.push({
        keyword: 'minLength',
        value: '',
        expect: has(s.minLength === 1 ? 'Must not be empty' : `Must be at least ${s.minLength} characters`),
        describe: 'empty',
      });
    if (s.maxLength !== undefined)
      cases.push({
        keyword: 'maxLength',
        value: 'a'.repeat(s.maxLength + 1),
        expect: has(`Must be at most ${s.maxLength} characters`),
        describe: 'too long',
      });
    if (s.pattern !== undefined) {
      const re = new RegExp(s.pattern, 'u');
      const bad = ['<b>', 'a b', '\u0000'].filter((v) => !(inQuery && v.includes('\u0000'))).find((v) => !re.test(v));
      if (bad !== undefined)
        cases.push({
          keyword: 'pattern',
          value: bad,
          expect: has(PATTERN_MESSAGES[s.pattern] ?? 'Contains characters that are not allowed'),
          describe: `pattern ${JSON.stringify(bad)}`,
        });
    }
    if (s.format !== undefined) {
      const text = (KEYWORD_MESSAGES.format as (p: Record<string, unknown>) => string)({ format: s.format });
      cases.push({ keyword: 'format', value: 'not@@valid', expect: has(text), describe: `format ${s.format}` });
    }
  } else if (s.type === 'integer' || s.type === 'number') {
    cases.push({
      keyword: 'type',
      value: 'abc',
      expect: has(`Must be ${s.type === 'integer' ? 'an integer' : 'a number'}${orNull}`),
      describe: 'text for a number',
    });
    if (s.minimum !== undefined)
      cases.push({
        keyword: 'minimum',
        value: s.minimum - 1,
        expect: has(`Must be at least ${s.minimum}`),
        describe: 'below minimum',
      });
    if (s.maximum !== undefined)
      cases.push({
        keyword: 'maximum',
        value: s.maximum + 1,
        expect: has(`Must be at most ${s.maximum}`),
        describe: 'above maximum',
      });
  } else if (s.type === 'boolean') {
    cases.push({
      keyword: 'type',
      value: 'maybe',
      expect: has(`Must be true or false${orNull}`),
      describe: 'maybe for a boolean',
    });
  }
  if (nullable) for (const c of cases) c.keyword = `anyOf+${c.keyword}`;
  return cases;
}

/** The object schema of a body (a nullable object body unwrapped). */
const objectOf = (schema: Schema): Schema =>
  Array.isArray(schema.anyOf) ? (schema.anyOf as Schema[]).find((b) => b.type === 'object')! : schema;

describe('validation messages: every keyword in our words, every field listed, bounded', () => {
  let t: TestApp;
  let auth: Record<string, string>;
  const seen: string[] = [];
  before(async () => {
    t = await createTestApp();
    const admin = await registerAndLogin(t.app);
    await makeAdmin(t.app, admin.id);
    auth = bearer(admin.access);
  });
  after(() => t.close());

  it('every Ajv keyword and format our request schemas use has a message of ours', () => {
    const used = new Map<string, Set<string>>();
    for (const c of compiled)
      if (c.httpPart !== 'headers') keywordsOf(c.schema, used, `${c.method} ${c.url} ${c.httpPart}`);
    assert.ok(compiled.length > 20, `request schemas recorded: ${compiled.length}`);
    for (const [keyword, where] of used) {
      if (keyword.startsWith('format:'))
        assert.ok(KNOWN_FORMATS.includes(keyword.slice(7)), `${keyword} (${[...where][0]}) has no message`);
      else
        assert.ok(
          Object.hasOwn(KEYWORD_MESSAGES, keyword),
          `keyword "${keyword}" (${[...where][0]}) has no message of ours`,
        );
    }
  });

  it('a failing value for each keyword of each field of each route gets our message under that field', async () => {
    const exercised = new Set<string>();
    const send = async (c: Compiled, field: string, value: unknown): Promise<LightMyRequestResponse> => {
      const url = c.url.replace(/:(\w+)/g, 'x');
      if (c.httpPart === 'body')
        return t.app.inject({
          method: c.method as 'POST',
          url,
          headers: auth,
          payload: { [field]: value } as Record<string, unknown>,
        });
      if (c.httpPart === 'querystring')
        return t.app.inject({ method: c.method as 'GET', url, headers: auth, query: { [field]: String(value) } });
      return t.app.inject({
        method: c.method as 'GET',
        url: c.url.replace(`:${field}`, encodeURIComponent(String(value))).replace(/:(\w+)/g, 'x'),
        headers: auth,
      });
    };
    for (const c of compiled) {
      // HEAD shares GET's schema and answers without a body.
      if (c.httpPart === 'headers' || c.method === 'HEAD') continue;
      const object = objectOf(c.schema);
      for (const [field, schema] of Object.entries((object.properties ?? {}) as Record<string, Schema>)) {
        for (const k of casesFor(schema, c.httpPart !== 'body')) {
          if (c.httpPart === 'params' && k.keyword !== 'maxLength') continue; // a path segment can only be too long
          const res = await send(c, field, k.value);
          const where: string = `${c.method} ${c.url} ${c.httpPart}.${field} (${k.describe})`;
          assert.equal(res.statusCode, 400, `${where}: ${res.body}`);
          const body = json(res);
          assert.equal(body.error.code, 'VALIDATION_ERROR');
          // Login's alias is read as `username` before validation (src/modules/auth/routes.ts), so errors name that.
          const named = field === 'username_or_email' ? 'username' : field;
          const messages: string[] = body.error.details?.[named] ?? [];
          assert.ok(k.expect(messages), `${where}: got ${JSON.stringify(body.error.details)}`);
          for (const list of Object.values(body.error.details as Record<string, string[]>)) seen.push(...list);
          for (const keyword of k.keyword.split('+')) exercised.add(keyword);
        }
      }
      // Required fields without a default, and unknown fields.
      if (c.httpPart !== 'params') {
        const required = ((object.required ?? []) as string[]).filter(
          (f) => (object.properties?.[f] as Schema | undefined)?.default === undefined,
        );
        if (required.length) {
          const res =
            c.httpPart === 'body'
              ? await t.app.inject({
                  method: c.method as 'POST',
                  url: c.url.replace(/:(\w+)/g, 'x'),
                  headers: auth,
                  payload: {},
                })
              : await t.app.inject({ method: c.method as 'GET', url: c.url.replace(/:(\w+)/g, 'x'), headers: auth });
          for (const f of required)
            assert.deepEqual(
              json(res).error.details?.[f],
              ['This field is required'],
              `${c.method} ${c.url} ${f}: ${res.body}`,
            );
          exercised.add('required');
        }
        if (object.additionalProperties === false) {
          const res = await send(c, 'zz_unknown', 1);
          assert.deepEqual(json(res).error.details?.zz_unknown, ['Unknown field'], `${c.method} ${c.url}: ${res.body}`);
          exercised.add('additionalProperties');
        }
      }
    }
    const used = new Map<string, Set<string>>();
    for (const c of compiled) if (c.httpPart !== 'headers') keywordsOf(c.schema, used, c.url);
    for (const keyword of used.keys()) {
      if (keyword.startsWith('format:') || keyword === 'properties') continue;
      assert.ok(exercised.has(keyword), `no failing value exercised "${keyword}"`);
    }
    assert.ok(seen.length > 100, `messages read: ${seen.length}`);
    for (const text of new Set(seen)) {
      assert.doesNotMatch(text, AJV_WORDING, `Ajv's wording reached a client: ${text}`);
      assert.match(text, /^[A-Z]/, `not one of our sentences: ${text}`);
    }
  });

  it('lists every failing field at once (the original clients’ bad registration)', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/auth/register',
      payload: { username: 'x', email: 'invalid-email', password: '', first_name: '<b>', last_name: 7, is_admin: true },
    });
    assert.equal(res.statusCode, 400);
    assert.deepEqual(json(res).error.details, {
      username: ['Must be at least 3 characters'],
      email: ['Not a valid e-mail address'],
      // A password being set is MIN_PASSWORD_LENGTH (8) long at least, a rule the contract states.
      password: ['Must be at least 8 characters'],
      first_name: [
        'Must not contain markup (< > & " \\), ' +
          'control characters or invisible format characters (such as bidi controls)',
      ],
      last_name: ['Must be a string'],
      is_admin: ['Unknown field'],
    });
  });

  it('a 100 KB body of bad fields gets a bounded answer: at most 20 fields, names cut, the total said', async () => {
    const fields: Record<string, number> = {};
    for (let i = 0; i < 5800; i++) fields[`field_${i}`] = i;
    const body = JSON.stringify(fields);
    assert.ok(body.length > 100_000 && body.length <= t.config.BODY_LIMIT);
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/auth/register',
      headers: { 'content-type': 'application/json' },
      payload: body,
    });
    assert.equal(res.statusCode, 400);
    assert.ok(res.body.length < 4096, `answer is ${res.body.length} bytes`);
    const error = json(res).error;
    assert.equal(Object.keys(error.details).length, MAX_DETAIL_FIELDS);
    assert.equal(error.message, `Request validation failed (${MAX_DETAIL_FIELDS} of 5803 problems shown)`);

    const longName = { ['k'.repeat(90_000)]: 1 };
    const long = await t.app.inject({ method: 'POST', url: '/api/auth/register', payload: longName });
    assert.equal(long.statusCode, 400);
    assert.ok(long.body.length < 2048, `answer is ${long.body.length} bytes`);
    const names = Object.keys(json(long).error.details);
    assert.ok(
      names.every((n) => n.length <= MAX_FIELD_NAME_LENGTH + 1),
      names.join(', '),
    );
  });

  it('at most MAX_MESSAGES_PER_FIELD messages per field, none repeated', () => {
    const errors = Array.from({ length: 12 }, (_, i) => ({
      instancePath: '/name',
      schemaPath: `#/x/${i}`,
      keyword: 'maxLength',
      params: { limit: i },
    }));
    errors.push({ instancePath: '/name', schemaPath: '#/y', keyword: 'maxLength', params: { limit: 0 } });
    const { details, total } = validationDetails(errors, 'body');
    assert.equal(details.name!.length, MAX_MESSAGES_PER_FIELD);
    assert.equal(new Set(details.name).size, details.name!.length);
    assert.equal(total, 13);
  });

  it('an unknown Ajv keyword still gets a sentence of ours, never Ajv’s text', () => {
    const { details } = validationDetails(
      [
        {
          instancePath: '/x',
          schemaPath: '#/x/uniqueItems',
          keyword: 'uniqueItems',
          message: 'must NOT have duplicate items',
          params: {},
        },
      ],
      'body',
    );
    assert.deepEqual({ ...details }, { x: ['Is not valid'] });
  });
});
