/**
 * The service keeps its OpenAPI document: for every operation, requests generated from the
 * document itself (json-schema-faker, seeded: the same requests every run) — valid ones and
 * invalid ones (wrong types, unknown fields, missing or oversized bodies, non-JSON bodies, bad
 * parameters, bad tokens) — sent anonymously, with a user's token and with an admin's token, get
 * only statuses the operation documents, never a 5xx, and bodies that match the documented schema.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createGeneratorSync } from 'json-schema-faker';
import { isOpenHealthProbe } from '../../src/modules/health/open-probes.js';
import { setEmergencyLimit } from '../../src/state/emergency-limit.js';
import { bearer, createTestApp, makeAdmin, registerAndLogin, uniqueUser, type TestApp } from '../helpers/app.js';
import { liveDocument, operations, responseValidator, toJsonSchema } from './support.js';
import type { OpenApiDocument, OperationEntry, Schema } from './support.js';

const SEED = 20261129;
const VALID_PER_IDENTITY = 3;
const BODY_LIMIT = 4096;

type Identity = 'anonymous' | 'user' | 'admin' | 'bad token';
interface Request {
  label: string;
  method: string;
  url: string;
  headers: Record<string, string>;
  payload?: string;
}

const generator = createGeneratorSync({ seed: SEED, optionalsProbability: 0.5 });
const fake = (schema: Schema) => generator.generate(toJsonSchema(schema) as Schema);

/** A value of the wrong JSON type for a schema. */
function wrongType(schema: Schema): unknown {
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
  if (type === 'string') return { not: 'a string' };
  if (type === 'integer' || type === 'number' || type === 'boolean') return 'not-a-value';
  if (type === 'object') return ['not', 'an', 'object'];
  return 12345;
}

/** A query-string value the parameter's schema refuses. */
function badQueryValue(schema: Schema): string {
  if (schema.type === 'integer' || schema.type === 'number') return 'abc';
  if (schema.type === 'boolean') return 'maybe';
  if (Array.isArray(schema.enum) || schema.anyOf) return 'no-such-value';
  if (typeof schema.maxLength === 'number') return 'x'.repeat(schema.maxLength + 1);
  if (schema.format === 'date-time') return 'yesterday';
  return '';
}

function buildUrl(path: string, pathValues: Record<string, string>, query: Record<string, string>): string {
  const url = path.replace(/\{(\w+)\}/g, (_m, name: string) => encodeURIComponent(pathValues[name] ?? 'x'));
  const search = new URLSearchParams(query).toString();
  return search ? `${url}?${search}` : url;
}

/** Valid and invalid requests for one operation, from its parameters and body schema. */
function requestsFor({ method, path, operation }: OperationEntry, knownId: string): Request[] {
  const parameters = operation.parameters ?? [];
  const bodySchema = operation.requestBody?.content['application/json']?.schema;
  const json = { 'content-type': 'application/json' };
  const requests: Request[] = [];
  const add = (label: string, url: string, headers: Record<string, string> = {}, payload?: string) =>
    requests.push({ label, method, url, headers, payload });
  const pathParameters = parameters.filter((p) => p.in === 'path');
  // The first valid request names a real user (the caller's own id); the others generated ids.
  const pathValue = (p: { schema: Schema }, i: number) => (i === 0 ? knownId : String(fake(p.schema)));
  const validPath = (i: number) => Object.fromEntries(pathParameters.map((p) => [p.name, pathValue(p, i)]));
  const validQuery = () => {
    const query: Record<string, string> = {};
    for (const p of parameters.filter((x) => x.in === 'query')) {
      if (p.required || generator.generate({ type: 'boolean' })) query[p.name] = String(fake(p.schema));
    }
    return query;
  };
  for (let i = 0; i < VALID_PER_IDENTITY; i++) {
    const body = bodySchema ? fake(bodySchema) : undefined;
    requests.push({
      label: `valid #${i}`,
      method,
      url: buildUrl(path, validPath(i), validQuery()),
      headers: body === undefined ? {} : json,
      payload: body === undefined ? undefined : JSON.stringify(body),
    });
  }
  const url = buildUrl(path, validPath(0), validQuery());
  for (const p of parameters) {
    const bad = { ...validQuery(), [p.name]: badQueryValue(p.schema) };
    if (p.in === 'query') add(`bad ?${p.name}`, buildUrl(path, validPath(0), bad));
    if (p.in === 'path') add(`bad {${p.name}}`, buildUrl(path, { [p.name]: 'x'.repeat(65) }, {}));
  }
  if (parameters.some((p) => p.in === 'query')) {
    add('unknown query parameter', buildUrl(path, validPath(0), { ...validQuery(), no_such_parameter: '1' }));
  }
  if (method !== 'GET') {
    add('text/plain body', url, { 'content-type': 'text/plain' }, 'hello');
    add('oversized body', url, json, JSON.stringify({ pad: 'x'.repeat(BODY_LIMIT) }));
    add('malformed JSON', url, json, '{"unterminated');
  }
  if (bodySchema) {
    add('no body', url);
    add('body of the wrong type', url, json, JSON.stringify(wrongType(bodySchema)));
    const valid = (fake(bodySchema) ?? {}) as Record<string, unknown>;
    add('unknown field', url, json, JSON.stringify({ ...valid, no_such_field: true }));
    const properties = (bodySchema.properties ?? {}) as Record<string, Schema>;
    for (const [name, schema] of Object.entries(properties)) {
      add(`${name} of the wrong type`, url, json, JSON.stringify({ ...valid, [name]: wrongType(schema) }));
    }
    for (const name of (bodySchema.required ?? []) as string[]) {
      const { [name]: _dropped, ...rest } = valid;
      add(`without ${name}`, url, json, JSON.stringify(rest));
    }
  }
  return requests;
}

describe('the service keeps its OpenAPI document (generated requests)', () => {
  let t: TestApp;
  let document: OpenApiDocument;
  let validate: ReturnType<typeof responseValidator>;
  const succeeded = new Set<string>();
  let sent = 0;

  before(async () => {
    t = await createTestApp({ BODY_LIMIT: String(BODY_LIMIT), PASSWORD_MIN_SCORE: '0' });
    document = await liveDocument(t.app);
    validate = responseValidator(document);
  });
  after(async () => t?.close());

  /** Fresh accounts per operation: a generated request may log out, deactivate or lock the caller. */
  async function identities() {
    const user = await registerAndLogin(t.app, uniqueUser('cu'));
    const admin = await registerAndLogin(t.app, uniqueUser('ca'));
    await makeAdmin(t.app, admin.id);
    const headers: Record<Identity, Record<string, string>> = {
      anonymous: {},
      user: bearer(user.access),
      admin: bearer(admin.access),
      'bad token': bearer('not.a.token'),
    };
    return { headers, userId: user.id };
  }

  it('every operation: only documented statuses, never a 5xx, every body matches its schema', async (context) => {
    const problems: string[] = [];
    for (const entry of operations(document)) {
      const { method, path, operation } = entry;
      const { headers, userId } = await identities();
      for (const identity of ['anonymous', 'bad token', 'user', 'admin'] as const) {
        for (const request of requestsFor(entry, userId)) {
          const res = await t.app.inject({
            method: request.method as 'GET',
            url: request.url,
            headers: { ...request.headers, ...headers[identity] },
            payload: request.payload,
          });
          sent += 1;
          const where = `${method} ${path} (${identity}, ${request.label}) → ${res.statusCode}`;
          const documented = operation.responses[String(res.statusCode)];
          if (res.statusCode >= 500) problems.push(`${where}: a 5xx ${res.body.slice(0, 200)}`);
          if (!documented) {
            problems.push(`${where}: status not documented ${res.body.slice(0, 200)}`);
            continue;
          }
          if (res.statusCode < 300) succeeded.add(operation.operationId!);
          const schema = documented.content?.['application/json']?.schema;
          if (!schema) continue;
          let body: unknown;
          try {
            body = JSON.parse(res.body);
          } catch {
            problems.push(`${where}: not JSON`);
            continue;
          }
          const error = validate(schema, body);
          if (error) problems.push(`${where}: body does not match the schema: ${error}`);
          // Retry-After is promised with 423 and 429 (with 503 only when the wait is known).
          if (documented.headers?.['Retry-After'] && res.statusCode !== 503 && !res.headers['retry-after']) {
            problems.push(`${where}: no Retry-After`);
          }
        }
      }
      // A generated valid rate sets the emergency limit: lifted, so the operations after it are not all 429.
      await setEmergencyLimit(t.app.container.db, t.app.container.changes, null);
    }
    context.diagnostic(`${sent} requests; ${succeeded.size} operations answered 2xx`);
    assert.deepEqual(problems, []);
    // Generated requests reach the operations' logic, not only their validation.
    assert.ok(succeeded.size >= 25, `only ${succeeded.size} operations answered 2xx: ${[...succeeded].join(', ')}`);
    assert.ok(sent > 1000, `${sent} requests`);
  });

  it('with the emergency limit on, every limited operation answers a documented 429 with Retry-After', async () => {
    const { headers } = await identities();
    const url = '/api/security/emergency-rate-limit';
    const set = await t.app.inject({ method: 'PUT', url, headers: headers.admin, payload: { limit: '1 per hour' } });
    assert.equal(set.statusCode, 200, set.body);
    try {
      for (const { method, path, operation } of operations(document)) {
        const url = buildUrl(path, {}, {});
        let res = await t.app.inject({ method: method as 'GET', url, headers: headers.admin });
        if (res.statusCode !== 429) res = await t.app.inject({ method: method as 'GET', url, headers: headers.admin });
        if (isOpenHealthProbe(path)) {
          assert.notEqual(res.statusCode, 429, `${method} ${path}: the probes are exempt`);
          continue;
        }
        assert.equal(res.statusCode, 429, `${method} ${path}`);
        assert.ok(operation.responses['429'], `${method} ${path}: 429 documented`);
        assert.match(String(res.headers['retry-after']), /^[1-9]\d*$/);
        const schema = operation.responses['429']!.content!['application/json']!.schema;
        assert.equal(validate(schema, JSON.parse(res.body)), null);
      }
    } finally {
      await setEmergencyLimit(t.app.container.db, t.app.container.changes, null);
    }
  });
});
