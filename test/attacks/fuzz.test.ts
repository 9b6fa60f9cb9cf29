/**
 * Property-based fuzzing (fast-check) of every route in the OpenAPI document: bodies, query
 * strings and path parameters generated from each route's schemas and then mutated — wrong types,
 * huge and tiny sizes, arbitrary unicode, deep nesting, prototype keys (__proto__, constructor,
 * prototype), huge and non-finite-looking numbers, nulls, odd content types — sent without a
 * token, with a user's token and with an admin's token.
 *
 * Properties: never a 5xx, always the contract envelope, Object.prototype never polluted, the
 * heap after GC does not grow over a long run, and a real server process stays alive under it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import { bearer, createTestApp, login, makeAdmin, register, uniqueUser, type TestApp } from '../helpers/app.js';
import { startServer } from '../helpers/server.js';
import {
  assertEnvelope,
  assertNoLeak,
  ATTACK_SERVER,
  baseValue,
  http,
  mainSchema,
  readOperations,
  type JsonSchema,
  type Operation,
} from './support.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const PROTO_KEYS = [
  '__proto__',
  'constructor',
  'prototype',
  '__defineGetter__',
  'hasOwnProperty',
  'toString',
  'valueOf',
];
const RUNS_PER_ROUTE = Number(process.env.FUZZ_RUNS ?? 60);

/** Raw JSON text, so keys like __proto__ and duplicate keys survive serialisation. */
type Raw = { raw: string };
const raw = (s: string): Raw => ({ raw: s });

function nested(depth: number, open: string, close: string, inner = '1'): string {
  return open.repeat(depth) + inner + close.repeat(depth);
}

const wildScalar: fc.Arbitrary<Raw> = fc.oneof(
  fc.constant(raw('null')),
  fc.boolean().map((b) => raw(String(b))),
  fc.integer().map((n) => raw(String(n))),
  fc
    .constantFrom(
      '1e308',
      '-1e308',
      '1e999',
      '-0',
      '9007199254740993',
      '123456789012345678901234567890',
      '0.0000000000000000000001',
      '1.7976931348623157e309',
    )
    .map(raw),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((n) => raw(JSON.stringify(n))),
  fc.string({ unit: 'binary', maxLength: 60 }).map((s) => raw(JSON.stringify(s))),
  fc.string({ unit: 'grapheme', maxLength: 60 }).map((s) => raw(JSON.stringify(s))),
  fc
    .constantFrom(
      '',
      ' ',
      '\u0000',
      '\ud800',
      '\u202e',
      '\ufeff',
      'é'.repeat(300),
      '😀'.repeat(200),
      '%00',
      '../../etc/passwd',
      '${7*7}',
      '{{7*7}}',
      '<img src=x onerror=alert(1)>',
    )
    .map((s) => raw(JSON.stringify(s))),
  fc.integer({ min: 100, max: 200_000 }).map((n) => raw(JSON.stringify('A'.repeat(n)))),
);

const wildValue: fc.Arbitrary<Raw> = fc.letrec<{ value: Raw }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    wildScalar,
    fc.array(tie('value'), { maxLength: 5 }).map((xs) => raw(`[${xs.map((x) => x.raw).join(',')}]`)),
    fc
      .array(fc.tuple(fc.oneof(fc.constantFrom(...PROTO_KEYS), fc.string({ maxLength: 12 })), tie('value')), {
        maxLength: 5,
      })
      .map((kv) => raw(`{${kv.map(([k, v]) => `${JSON.stringify(k)}:${v.raw}`).join(',')}}`)),
    fc.integer({ min: 10, max: 5000 }).map((d) => raw(nested(d, '[', ']'))),
    fc.integer({ min: 10, max: 3000 }).map((d) => raw(nested(d, '{"a":', '}'))),
    fc.constantFrom(...PROTO_KEYS).map((k) => raw(`{${JSON.stringify(k)}:{"polluted":true,"isAdmin":true}}`)),
  ),
})).value;

/** A value that satisfies the schema where that is easy, so mutations land one field at a time. */
function plausible(name: string, schema: JsonSchema, ids: { targetId: string }): fc.Arbitrary<Raw> {
  const s = mainSchema(schema);
  const base = raw(JSON.stringify(baseValue(name, s, { targetId: ids.targetId, actorPassword: 'x' })));
  const options: fc.Arbitrary<Raw>[] = [fc.constant(base)];
  if (s.enum) options.push(fc.constantFrom(...s.enum).map((v) => raw(JSON.stringify(v))));
  if (s.type === 'string') {
    options.push(
      fc
        .string({ unit: 'grapheme', minLength: s.minLength ?? 0, maxLength: Math.min(s.maxLength ?? 80, 300) })
        .map((v) => raw(JSON.stringify(v))),
    );
    if (s.maxLength) options.push(fc.constant(raw(JSON.stringify('x'.repeat(s.maxLength + 1)))));
  }
  if (s.type === 'integer' || s.type === 'number')
    options.push(fc.integer({ min: (s.minimum ?? -10) - 5, max: (s.maximum ?? 1000) + 5 }).map((n) => raw(String(n))));
  if (s.type === 'boolean') options.push(fc.boolean().map((b) => raw(String(b))));
  return fc.oneof(...options);
}

function bodyArbitrary(schema: JsonSchema | null, ids: { targetId: string }): fc.Arbitrary<Raw | undefined> {
  const props = Object.entries(schema?.properties ?? {});
  const shaped = fc
    .tuple(
      fc.tuple(
        ...props.map(([name, prop]) =>
          fc.option(
            fc.oneof({ weight: 3, arbitrary: plausible(name, prop, ids) }, { weight: 2, arbitrary: wildValue }),
            { nil: undefined, freq: 4 },
          ),
        ),
      ),
      fc.array(fc.tuple(fc.oneof(fc.constantFrom(...PROTO_KEYS), fc.string({ maxLength: 10 })), wildValue), {
        maxLength: 3,
      }),
    )
    .map(([values, extra]) => {
      const entries: string[] = [];
      props.forEach(([name], i) => {
        const v = values[i];
        if (v) entries.push(`${JSON.stringify(name)}:${v.raw}`);
      });
      for (const [k, v] of extra) entries.push(`${JSON.stringify(k)}:${v.raw}`);
      return raw(`{${entries.join(',')}}`);
    });
  return fc.oneof(
    { weight: 6, arbitrary: shaped },
    { weight: 2, arbitrary: wildValue },
    { weight: 1, arbitrary: fc.constant(undefined) },
    { weight: 1, arbitrary: fc.string({ maxLength: 40 }).map((s) => raw(s)) },
  );
}

function queryArbitrary(op: Operation, ids: { targetId: string }): fc.Arbitrary<string> {
  const params = op.parameters.filter((p) => p.in === 'query');
  const value = (p: { name: string; schema: JsonSchema }) =>
    fc.oneof(
      plausible(p.name, p.schema, ids).map((r) => {
        const v = JSON.parse(r.raw) as unknown;
        return typeof v === 'string' ? v : JSON.stringify(v);
      }),
      fc.string({ unit: 'grapheme', maxLength: 50 }),
      fc.constantFrom(
        '',
        '-1',
        '0',
        '1e309',
        '99999999999999999999',
        'NaN',
        'true',
        'null',
        '[]',
        '{}',
        'a'.repeat(2000),
      ),
    );
  return fc
    .tuple(
      fc.tuple(...params.map((p) => fc.option(value(p), { nil: undefined, freq: 3 }))),
      fc.array(
        fc.tuple(
          fc.oneof(
            fc.constantFrom('__proto__[polluted]', 'constructor[prototype][polluted]', 'prototype', '__proto__'),
            fc.string({ maxLength: 8 }),
          ),
          fc.string({ maxLength: 10 }),
        ),
        { maxLength: 2 },
      ),
      fc.boolean(),
    )
    .map(([values, extra, repeat]) => {
      const search = new URLSearchParams();
      params.forEach((p, i) => {
        const v = values[i];
        if (v === undefined) return;
        search.append(p.name, v);
        if (repeat) search.append(p.name, v); // the same parameter twice becomes an array
      });
      for (const [k, v] of extra) search.append(k, v);
      const s = search.toString();
      return s ? `?${s}` : '';
    });
}

function pathArbitrary(op: Operation, ids: { targetId: string }): fc.Arbitrary<string> {
  const names = [...op.path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!);
  const segment = fc.oneof(
    fc.constant(ids.targetId),
    fc.string({ unit: 'grapheme', minLength: 1, maxLength: 80 }),
    fc.constantFrom('..', '%2e%2e', '0', '-1', 'a'.repeat(300), '__proto__', 'constructor'),
  );
  return fc.tuple(...names.map(() => segment)).map((values) => {
    let i = 0;
    return op.path.replace(/\{\w+\}/g, () => {
      const v = values[i++]!;
      // Some values are meant to be sent as written (already encoded or traversal).
      return /^(\.\.|%2e%2e)$/.test(v) ? v : encodeURIComponent(v);
    });
  });
}

/** fc.assert, but the failure message is the assertion's own (counterexamples here can be megabytes). */
async function checkProperty<T>(property: fc.IAsyncProperty<T>, options: fc.Parameters<T>): Promise<void> {
  const details = await fc.check(property, { ...options, endOnFailure: true });
  if (details.failed) {
    const message =
      details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
    assert.fail(
      `fuzz failure after ${details.numRuns} runs (seed ${details.seed}, path ${details.counterexamplePath}): ` +
        `${message.slice(0, 1500)}`,
    );
  }
}

const contentTypes = fc.oneof(
  { weight: 8, arbitrary: fc.constant('application/json') },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      'text/plain',
      'application/x-www-form-urlencoded',
      'application/json; charset=utf-16',
      'application/json; charset=latin1',
      'multipart/form-data; boundary=x',
      '',
      'application/JSON',
      'application/vnd.api+json',
    ),
  },
);

describe('fuzzing every route from its OpenAPI schema', () => {
  let t: TestApp;
  let ops: Operation[];
  const tokens = { user: '', admin: '' };
  let userName = '';
  let adminName = '';
  let targetId = '';
  let requests = 0;

  before(async () => {
    t = await createTestApp({ BRUTE_FORCE_BLOCK_MINUTES: '0' });
    ops = (await readOperations(t.app)).filter((o) => !o.path.startsWith('/api/docs'));
    const u = await register(t.app, uniqueUser('fuzzuser'));
    const a = await register(t.app, uniqueUser('fuzzadmin'));
    await makeAdmin(t.app, a.id);
    targetId = (await register(t.app, uniqueUser('fuzztarget'))).id;
    userName = u.username;
    adminName = a.username;
    await relogin();
  });
  after(() => t.close());

  async function relogin() {
    // Fuzzed logins may have locked these accounts; clear that first (test set-up, not an attack).
    await t.app.container.db.deleteFrom('login_attempts').execute();
    tokens.user = (await login(t.app, userName)).access;
    tokens.admin = (await login(t.app, adminName)).access;
  }

  async function fuzzRoute(op: Operation, runs: number) {
    const ids = { targetId };
    const request = fc.record({
      path: pathArbitrary(op, ids),
      query: queryArbitrary(op, ids),
      body:
        op.method === 'GET' || op.method === 'DELETE'
          ? fc.option(bodyArbitrary(op.body, ids), { nil: undefined, freq: 5 })
          : bodyArbitrary(op.body, ids),
      contentType: contentTypes,
      auth: fc.constantFrom('none', 'user', 'admin', 'garbage'),
    });
    await checkProperty(
      fc.asyncProperty(request, async (r) => {
        const headers: Record<string, string> = {};
        if (r.auth === 'user' || r.auth === 'admin') Object.assign(headers, bearer(tokens[r.auth]));
        if (r.auth === 'garbage') headers.authorization = 'Bearer \u00ff\u00fe';
        if (r.body !== undefined && r.contentType) headers['content-type'] = r.contentType;
        const res = await t.app.inject({
          method: op.method as 'GET',
          url: r.path + r.query,
          headers,
          ...(r.body !== undefined ? { payload: r.body.raw } : {}),
        });
        requests++;
        const context = `${op.method} ${r.path}${r.query.slice(0, 200)} body=${r.body?.raw.slice(0, 200)}`;
        assert.ok(res.statusCode < 500, `${context}: ${res.statusCode} ${res.body.slice(0, 300)}`);
        assertEnvelope(res, context);
        assertNoLeak(res, context);
        assert.equal(({} as Record<string, unknown>).polluted, undefined, `${context}: Object.prototype polluted`);
        assert.equal(({} as Record<string, unknown>).isAdmin, undefined, `${context}: Object.prototype polluted`);
        if (res.statusCode === 401 && r.auth !== 'none' && r.auth !== 'garbage') await relogin();
      }),
      { numRuns: runs },
    );
  }

  it('no 5xx, the envelope, no pollution: every route, every auth mode', async (t2) => {
    assert.ok(ops.length >= 15, `expected the routes of the OpenAPI document, found ${ops.length}`);
    for (const op of ops) {
      await relogin();
      await fuzzRoute(op, RUNS_PER_ROUTE);
    }
    t2.diagnostic(`${requests} fuzzed requests over ${ops.length} routes`);
  });

  it('prototype keys as body fields are a 400 envelope on every route with a body (deterministic)', async () => {
    for (const op of ops.filter((o) => o.body)) {
      for (const key of PROTO_KEYS) {
        for (const value of ['1', '{"polluted":true}', '{"prototype":{"polluted":true}}']) {
          const res = await t.app.inject({
            method: op.method as 'POST',
            url: op.path.replace(/\{\w+\}/g, targetId),
            headers: { ...bearer(tokens.admin), 'content-type': 'application/json' },
            payload: `{${JSON.stringify(key)}:${value}}`,
          });
          const context = `${op.method} ${op.path} {${key}:${value}}`;
          assert.equal(res.statusCode, 400, `${context}: ${res.statusCode} ${res.body.slice(0, 200)}`);
          assertEnvelope(res, context);
          assert.equal(({} as Record<string, unknown>).polluted, undefined, `${context}: Object.prototype polluted`);
        }
      }
    }
  });

  it('memory: heapUsed after GC does not grow over a long run', async (t2) => {
    const body = ops.filter((o) => o.method !== 'GET');
    const round = async () => {
      for (const op of body) await fuzzRoute(op, 15);
    };
    await round(); // warm-up: JIT, caches, lazily built validators
    gc();
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < 4; i++) await round();
    await new Promise((r) => setTimeout(r, 200));
    gc();
    gc();
    const afterHeap = process.memoryUsage().heapUsed;
    const growthMb = (afterHeap - before) / 1024 / 1024;
    t2.diagnostic(
      `heapUsed after GC: ${(before / 1048576).toFixed(1)} MB -> ${(afterHeap / 1048576).toFixed(1)} MB ` +
        `(${growthMb.toFixed(1)} MB over ${body.length * 15 * 4} requests)`,
    );
    assert.ok(growthMb < 40, `heap grew by ${growthMb.toFixed(1)} MB`);
  });
});

describe('fuzzing a real server process', () => {
  it('the process stays up and answers every raw request with a 4xx envelope', async (t2) => {
    const server = await startServer({ DATABASE_URL: 'sqlite::memory:', RATE_LIMIT_ENABLED: 'false' }, ATTACK_SERVER);
    try {
      const appForDoc = await readOperations({
        inject: (o: { method: string; url: string }) => http(server.url, o.method, o.url).then((r) => ({ ...r })),
      } as never);
      let sent = 0;
      await checkProperty(
        fc.asyncProperty(fc.constantFrom(...appForDoc), fc.nat(), async (op, seed) => {
          const [r] = fc.sample(
            fc.record({
              path: pathArbitrary(op, { targetId: 'x' }),
              query: queryArbitrary(op, { targetId: 'x' }),
              body: bodyArbitrary(op.body, { targetId: 'x' }),
            }),
            { seed, numRuns: 1 },
          );
          const res = await fetch(server.url + r!.path + r!.query, {
            method: op.method,
            headers: r!.body ? { 'content-type': 'application/json' } : {},
            body: r!.body && op.method !== 'GET' ? r!.body.raw : undefined,
          });
          const text = await res.text();
          sent++;
          const context = `${op.method} ${r!.path}`;
          assert.ok(res.status < 500, `${context}: ${res.status} ${text.slice(0, 200)}`);
          assertEnvelope({ statusCode: res.status, body: text, headers: Object.fromEntries(res.headers) }, context);
        }),
        { numRuns: 400 },
      );
      assert.equal(server.child.exitCode, null, `server exited:\n${server.output().slice(-1000)}`);
      assert.equal((await http(server.url, 'GET', '/api/health')).statusCode, 200);
      t2.diagnostic(`${sent} requests over HTTP; server still up`);
    } finally {
      await server.stop();
    }
  });
});
