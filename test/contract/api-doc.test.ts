/**
 * docs/api.md and the live OpenAPI document say the same thing: the same operations (method,
 * path, operationId, statuses) both ways, the error codes the code defines; and the document
 * holds the contract's promises (operationIds usable as method names, named schemas, the
 * standard errors, `security: []` on public operations, servers, password length, optional
 * defaults and refresh body).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { RATE_PATTERN } from '../../src/config/index.js';
import { ERROR_CODES } from '../../src/core/errors.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { liveDocument, operations, type OpenApiDocument, type OperationEntry } from './support.js';

const API_MD = readFileSync(new URL('../../docs/api.md', import.meta.url), 'utf8');

/** Rows of the endpoint tables: | `METHOD /path` | `operationId` | auth | input | success | errors |. */
function documentedRows() {
  const rows = new Map<string, { operationId: string; statuses: string[] }>();
  const row =
    /^\| `(GET|POST|PUT|PATCH|DELETE) (\/api\/[^`\s]*)` \| `(\w+)` \|[^|]*\|[^|]*\| ([\d, ]+) \| ([\d, ]+) \|$/;
  for (const line of API_MD.split('\n')) {
    const m = row.exec(line);
    if (!m) continue;
    const key = `${m[1]} ${m[2]}`;
    assert.ok(!rows.has(key), `${key} is listed twice in docs/api.md`);
    const statuses = `${m[4]},${m[5]}`
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)
      .sort();
    rows.set(key, { operationId: m[3]!, statuses });
  }
  return rows;
}

describe('docs/api.md against the live OpenAPI document', () => {
  let t: TestApp;
  let document: OpenApiDocument;
  let ops: OperationEntry[];
  before(async () => {
    t = await createTestApp({
      MIN_PASSWORD_LENGTH: '12',
      MAX_PASSWORD_LENGTH: '200',
      PUBLIC_URL: 'https://accounts.flokie.test/',
    });
    document = await liveDocument(t.app);
    ops = operations(document);
  });
  after(async () => t?.close());

  it('lists every operation of the document, with its operationId and statuses, and no other', () => {
    const rows = documentedRows();
    const live = new Map(ops.map(({ method, path, operation }) => [`${method} ${path}`, operation]));
    for (const [key, operation] of live) {
      const row = rows.get(key);
      assert.ok(row, `${key} is missing from docs/api.md`);
      assert.equal(row.operationId, operation.operationId, `${key}: operationId`);
      assert.deepEqual(row.statuses, Object.keys(operation.responses).sort(), `${key}: statuses in docs/api.md`);
    }
    for (const key of rows.keys())
      assert.ok(live.has(key), `docs/api.md lists ${key}, which the service does not document`);
    assert.ok(rows.size >= 40);
  });

  it('lists exactly the error codes the code defines, and so does the Error schema', () => {
    const listed = [...API_MD.matchAll(/^\| `([A-Z_]+)` \| \d{3}/gm)].map((m) => m[1]);
    assert.deepEqual([...listed].sort(), [...ERROR_CODES].sort());
    const error = document.components.schemas.Error as {
      properties: { error: { properties: { code: { enum: string[] } } } };
    };
    assert.deepEqual([...error.properties.error.properties.code.enum].sort(), [...ERROR_CODES].sort());
  });

  it('every operation: a camelCase operationId (unique), a summary, a tag, described answers', () => {
    const ids = new Set<string>();
    for (const { method, path, operation } of ops) {
      const name = `${method} ${path}`;
      assert.match(operation.operationId ?? '', /^[a-z][A-Za-z0-9]*$/, `${name}: operationId`);
      assert.ok(!ids.has(operation.operationId!), `${name}: duplicate operationId`);
      ids.add(operation.operationId!);
      assert.ok(operation.summary, `${name}: summary`);
      assert.ok((operation.tags ?? []).length > 0, `${name}: tag`);
      for (const [status, response] of Object.entries(operation.responses)) {
        assert.ok(
          response.description && response.description !== 'Default Response',
          `${name} ${status}: description`,
        );
      }
    }
  });

  it('components have names, and every error answer is the Error schema', () => {
    for (const name of [
      'User',
      'AdminUser',
      'Session',
      'TokenPair',
      'LoginResult',
      'Error',
      'Pagination',
      'SecurityEvent',
      'EmergencyRateLimit',
    ]) {
      assert.ok(document.components.schemas[name], `component ${name}`);
    }
    assert.deepEqual(
      Object.keys(document.components.schemas).filter((n) => /^def-/.test(n)),
      [],
    );
    for (const { method, path, operation } of ops) {
      for (const [status, response] of Object.entries(operation.responses)) {
        if (Number(status) < 400 || (path.startsWith('/api/health') && status === '503')) continue;
        const schema = response.content?.['application/json']?.schema as { allOf?: { $ref: string }[] } | undefined;
        assert.equal(schema?.allOf?.[0]?.$ref, '#/components/schemas/Error', `${method} ${path} ${status}`);
      }
    }
  });

  it('standard errors: 429 + Retry-After where rate-limited, 401 where a token is taken, 413/415 on bodies', () => {
    for (const { method, path, operation } of ops) {
      const name = `${method} ${path}`;
      const statuses = Object.keys(operation.responses);
      assert.ok(statuses.includes('400') && statuses.includes('503'), `${name}: 400 and 503`);
      if (!path.startsWith('/api/health')) {
        assert.ok(statuses.includes('429'), `${name}: 429`);
        assert.ok(operation.responses['429']!.headers?.['Retry-After'], `${name}: 429 Retry-After`);
      }
      if ((operation.security ?? []).length > 0) assert.ok(statuses.includes('401'), `${name}: 401`);
      if (['POST', 'PUT', 'DELETE'].includes(method))
        assert.ok(statuses.includes('413') && statuses.includes('415'), `${name}: 413/415`);
      if (statuses.includes('423'))
        assert.ok(operation.responses['423']!.headers?.['Retry-After'], `${name}: 423 Retry-After`);
    }
  });

  it('public operations say security: [], the others name their scheme', () => {
    const publicOps = [
      'register',
      'login',
      'refreshTokens',
      'getCsrfToken',
      'requestPasswordReset',
      'resetPassword',
      'verifyEmail',
      'getHealth',
      'getLiveness',
    ];
    for (const { operation } of ops) {
      assert.ok(Array.isArray(operation.security), `${operation.operationId}: security`);
      if (publicOps.includes(operation.operationId!)) assert.deepEqual(operation.security, [], operation.operationId);
    }
    const me = ops.find((o) => o.operation.operationId === 'getCurrentUser')!;
    assert.deepEqual(me.operation.security, [{ bearerAuth: [] }]);
  });

  it('servers come from PUBLIC_URL', () => {
    assert.deepEqual(
      document.servers?.map((s) => s.url),
      ['https://accounts.flokie.test'],
    );
  });

  it('new passwords carry MIN_/MAX_PASSWORD_LENGTH; passwords being checked do not', () => {
    const body = (id: string) =>
      ops.find((o) => o.operation.operationId === id)!.operation.requestBody!.content['application/json']!.schema as {
        properties: Record<string, { minLength?: number; maxLength?: number }>;
      };
    for (const [id, field] of [
      ['register', 'password'],
      ['createUser', 'password'],
      ['changePassword', 'new_password'],
      ['resetPassword', 'new_password'],
    ] as const) {
      assert.equal(body(id).properties[field]!.minLength, 12, `${id}.${field}`);
      assert.equal(body(id).properties[field]!.maxLength, 200, `${id}.${field}`);
    }
    assert.equal(body('login').properties.password!.minLength, 1, 'an old, shorter password still logs in');
    assert.equal(body('changePassword').properties.current_password!.minLength, 1);
  });

  it('query parameters with a default are optional; the refresh and lock bodies are optional', () => {
    for (const { method, path, operation } of ops) {
      for (const parameter of operation.parameters ?? []) {
        if ((parameter.schema as { default?: unknown }).default !== undefined)
          assert.notEqual(parameter.required, true, `${method} ${path} ?${parameter.name}`);
      }
    }
    const list = ops.find((o) => o.operation.operationId === 'listUsers')!.operation;
    assert.deepEqual(
      list.parameters!.filter((p) => p.required).map((p) => p.name),
      [],
    );
    for (const id of ['refreshTokens', 'lockUser']) {
      assert.equal(ops.find((o) => o.operation.operationId === id)!.operation.requestBody!.required, false, id);
    }
    assert.equal(ops.find((o) => o.operation.operationId === 'register')!.operation.requestBody!.required, true);
  });

  it('one-of rules: revokeTokens takes exactly one of jti and user_id; login one of username and its alias', () => {
    const schema = (id: string) =>
      ops.find((o) => o.operation.operationId === id)!.operation.requestBody!.content['application/json']!.schema;
    assert.deepEqual(schema('revokeTokens').oneOf, [{ required: ['jti'] }, { required: ['user_id'] }]);
    assert.deepEqual(schema('login').oneOf, [{ required: ['username'] }, { required: ['username_or_email'] }]);
    assert.deepEqual(schema('login').required, ['password']);
  });

  it("the emergency limit's format is the pattern parseRate reads rates with", () => {
    const body = ops.find((o) => o.operation.operationId === 'setEmergencyRateLimit')!.operation.requestBody!;
    const limit = (body.content['application/json']!.schema.properties as Record<string, { pattern?: string }>).limit!;
    assert.equal(limit.pattern, RATE_PATTERN);
    const rate = new RegExp(limit.pattern, 'u');
    for (const ok of ['1 per minute', '100/hour', '10 per 30 seconds', '5 PER Day']) assert.match(ok, rate);
    for (const bad of ['lots', '5 per fortnight', 'per minute', '5 per']) assert.doesNotMatch(bad, rate);
  });
});
