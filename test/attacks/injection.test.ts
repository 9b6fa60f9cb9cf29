/**
 * SQL injection against every string field and query/path parameter of every endpoint, read from
 * the live OpenAPI document (a new endpoint is attacked without editing this file), on SQLite and
 * on PostgreSQL (skipped with a message when it is not reachable).
 *
 * For every request: no 5xx, no SQL error text or internals in the body, the contract envelope;
 * the rows of bystander users (and their password history) are byte-identical afterwards; the
 * users / password_history row counts change only when the request legitimately succeeded; and a
 * filter given an injected value returns only rows that really contain that value (no extra rows).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { buildApp } from '../../src/app.js';
import type { FastifyInstance } from 'fastify';
import {
  STRONG_PASSWORD,
  bearer,
  json,
  login,
  makeAdmin,
  makeTestConfig,
  register,
  uniqueUser,
} from '../helpers/app.js';
import type { TestDatabase } from '../helpers/database.js';
import { ALL_SQL_PAYLOADS } from './payloads.js';
import {
  assertEnvelope,
  assertNoLeak,
  baseObject,
  baseValue,
  fillPath,
  freshDatabase,
  isStringSchema,
  mainSchema,
  postgresReachable,
  queryString,
  readOperations,
  snapshot,
  type BaseIds,
  type JsonSchema,
  type Operation,
} from './support.js';

interface Point {
  op: Operation;
  where: 'path' | 'query' | 'body';
  name: string;
  schema: JsonSchema;
}

function injectionPoints(ops: Operation[]): Point[] {
  const points: Point[] = [];
  for (const op of ops) {
    if (op.path.startsWith('/api/docs') || op.path === '/api/openapi.json') continue;
    for (const p of op.parameters) {
      if (p.in === 'path' || p.in === 'query') points.push({ op, where: p.in, name: p.name, schema: p.schema });
    }
    for (const [name, schema] of Object.entries(op.body?.properties ?? {})) {
      // Non-string body fields get the payload too: a wrong type must be a 400, never reach SQL.
      points.push({ op, where: 'body', name, schema });
    }
  }
  return points;
}

/** Numbers of points per engine, for the report. */
const figures: Record<string, { requests: number; points: number; routes: number }> = {};

for (const engine of ['sqlite', 'postgres'] as const) {
  describe(`SQL injection on ${engine}`, () => {
    let app: FastifyInstance;
    let database: TestDatabase;
    let skip: string | false = false;
    let admin: { id: string; username: string; access: string };
    let target: { id: string; username: string };
    let canaries: Array<{ id: string; username: string; email: string }>;

    before(async () => {
      if (engine === 'postgres' && !(await postgresReachable())) {
        skip = 'PostgreSQL is not reachable (set TEST_DATABASE_URL or start it on 127.0.0.1:5432)';
        return;
      }
      database = await freshDatabase(engine);
      app = await buildApp(makeTestConfig({ BRUTE_FORCE_BLOCK_MINUTES: '0' }, database.url));
      await app.ready();
      const a = await register(app, uniqueUser('secadmin'));
      await makeAdmin(app, a.id);
      admin = { ...a, access: (await login(app, a.username)).access };
      target = await register(app, uniqueUser('sectarget'));
      canaries = [];
      for (let i = 0; i < 3; i++) {
        const c = await register(app, {
          ...uniqueUser('canary'),
          first_name: `Canary${i}`,
          last_name: "O'Brien",
        } as never);
        await app.inject({
          method: 'POST',
          url: '/api/auth/login',
          payload: { username: c.username, password: STRONG_PASSWORD },
        });
        canaries.push(c);
      }
    });
    after(async () => {
      if (skip) return;
      await app.close();
      await database.drop();
    });

    it("the guide's test_sql_injection: `'; DROP TABLE users; --` as username is a 400", async (t) => {
      if (skip) return t.skip(skip);
      const res = await app.inject({
        method: 'POST',
        url: '/api/auth/register',
        payload: { username: "'; DROP TABLE users; --", email: 'drop@example.com', password: STRONG_PASSWORD },
      });
      assert.equal(res.statusCode, 400, res.body);
      assert.equal(json(res).error.code, 'VALIDATION_ERROR');
      const count = await app.container.db
        .selectFrom('users')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirstOrThrow();
      assert.ok(Number(count.n) >= 5, 'users table still there with its rows');
    });

    it("the guide's test_xss_prevention: a <script> bio is stored as given and returned escaped", async (t) => {
      if (skip) return t.skip(skip);
      const xss = "<script>alert('xss')</script>";
      const u = await register(app, uniqueUser('xss'));
      const { access } = await login(app, u.username);
      const res = await app.inject({
        method: 'PUT',
        url: '/api/users/profile',
        headers: bearer(access),
        payload: { bio: xss },
      });
      assert.equal(res.statusCode, 200, res.body);
      assert.ok(!res.body.includes('<'), 'no raw < in the body');
      assert.ok(res.body.includes('\\u003cscript\\u003e'), 'escaped as \\u003c…\\u003e');
      assert.equal(json(res).data.user.bio, xss, 'the client decodes the original text');
      const got = await app.inject({ method: 'GET', url: '/api/users/profile', headers: bearer(access) });
      assert.ok(!got.body.includes('<'));
      const row = await app.container.users.findById(u.id);
      assert.equal(row?.bio, xss, 'stored verbatim');
    });

    it('every payload against every string field and parameter of every route', async (t) => {
      if (skip) return t.skip(skip);
      const ops = await readOperations(app);
      const points = injectionPoints(ops);
      const routes = new Set(points.map((p) => `${p.op.method} ${p.op.path}`));
      assert.ok(routes.size >= 8, `expected the routes with inputs in the OpenAPI document, found ${routes.size}`);
      const canaryIds = canaries.map((c) => c.id);
      const db = app.container.db;
      let requests = 0;
      const problems: string[] = [];

      for (const point of points) {
        const { op } = point;
        // A login aimed at a bystander: the password check fails but must not change its row.
        const ids: BaseIds = {
          targetId: target.id,
          actorPassword: STRONG_PASSWORD,
          loginName: op.path.endsWith('/login') ? canaries[0]!.username : undefined,
        };
        for (const payload of ALL_SQL_PAYLOADS) {
          const pathValues: Record<string, string> = {};
          for (const p of op.parameters.filter((x) => x.in === 'path'))
            pathValues[p.name] = String(baseValue(p.name, p.schema, ids));
          const query: Record<string, unknown> = {};
          for (const p of op.parameters.filter((x) => x.in === 'query' && x.required))
            query[p.name] = baseValue(p.name, p.schema, ids);
          let body: Record<string, unknown> | undefined = op.body ? baseObject(op.body, ids) : undefined;
          if (point.where === 'path') pathValues[point.name] = payload;
          if (point.where === 'query') query[point.name] = payload;
          if (point.where === 'body') body = { ...body, [point.name]: payload };

          const before = await snapshot(db, canaryIds);
          const canaryRows = await canaryDigest();
          const context = `${engine} ${op.method} ${op.path} ${point.where}.${point.name}=${JSON.stringify(payload)}`;
          const url = fillPath(op.path, pathValues) + queryString(query);
          let res = await send();
          if (res.statusCode === 401 && op.secured) {
            admin.access = (await login(app, admin.username)).access;
            res = await send();
          }
          requests++;
          try {
            assert.ok(res.statusCode < 500, `${context}: ${res.statusCode} ${res.body.slice(0, 300)}`);
            assertNoLeak(res, context, payload);
            const parsed = assertEnvelope(res, context);
            const afterSnap = await snapshot(db, canaryIds);
            assert.equal(await canaryDigest(), canaryRows, `${context}: a bystander's rows changed`);
            assert.equal(afterSnap.digest, before.digest, `${context}: stored data of bystanders changed`);
            const delta = afterSnap.counts.users! - before.counts.users!;
            if (res.statusCode >= 400) {
              assert.equal(delta, 0, `${context}: refused, yet users changed by ${delta}`);
              assert.equal(
                afterSnap.counts.password_history,
                before.counts.password_history,
                `${context}: refused, yet password_history changed`,
              );
            } else {
              assert.ok(
                delta === 0 || (delta === 1 && res.statusCode === 201) || (delta === -1 && op.method === 'DELETE'),
                `${context}: users changed by ${delta}`,
              );
            }
            if (
              point.where === 'query' &&
              res.statusCode === 200 &&
              isStringSchema(point.schema) &&
              !mainSchema(point.schema).enum
            ) {
              for (const [key, list] of Object.entries(parsed?.data ?? {})) {
                if (!Array.isArray(list)) continue;
                for (const item of list) {
                  assert.ok(
                    JSON.stringify(item).toLowerCase().includes(JSON.stringify(payload).slice(1, -1).toLowerCase()),
                    `${context}: data.${key} returned a row that does not contain the filter value: ` +
                      `${JSON.stringify(item).slice(0, 200)}`,
                  );
                }
              }
            }
          } catch (error) {
            problems.push((error as Error).message.split('\n')[0]!);
            if (problems.length > 20) break;
          }

          function send() {
            return app.inject({
              method: op.method as 'GET',
              url,
              headers: op.secured ? bearer(admin.access) : {},
              ...(body !== undefined ? { payload: body } : {}),
            });
          }
        }
      }
      figures[engine] = { requests, points: points.length, routes: routes.size };
      t.diagnostic(
        `${engine}: ${requests} requests, ${ALL_SQL_PAYLOADS.length} payloads x ${points.length} injection points ` +
          `on ${routes.size} routes`,
      );
      assert.deepEqual(problems, [], `${problems.length} problems:\n${problems.join('\n')}`);

      async function canaryDigest(): Promise<string> {
        const rows = await db.selectFrom('users').selectAll().where('id', 'in', canaryIds).orderBy('id').execute();
        return JSON.stringify(rows.map(({ last_login_at: _l, ...rest }) => rest));
      }
    });

    it('payloads in stored headers (User-Agent, X-Request-ID) are kept as text', async (t) => {
      if (skip) return t.skip(skip);
      const u = await register(app, uniqueUser('ua'));
      for (const payload of ALL_SQL_PAYLOADS.filter((p) => /^[\x20-\x7e]+$/.test(p))) {
        const res = await app.inject({
          method: 'POST',
          url: '/api/auth/login',
          payload: { username: u.username, password: STRONG_PASSWORD },
          headers: { 'user-agent': payload, 'x-request-id': payload },
        });
        assert.equal(res.statusCode, 200, `${payload}: ${res.body.slice(0, 200)}`);
        assertNoLeak(res, payload, payload);
        assert.notEqual(
          res.headers['x-request-id'],
          payload.includes(' ') ? payload : '\0',
          'an insane X-Request-ID is replaced',
        );
      }
      const stored = await app.container.db
        .selectFrom('sessions')
        .select('user_agent')
        .where('user_id', '=', u.id)
        .execute();
      const agents = new Set(stored.map((s) => s.user_agent));
      assert.ok(agents.has("'; DROP TABLE users; --"), 'the payload is stored verbatim as a user agent');
    });
  });
}
