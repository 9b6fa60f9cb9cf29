/**
 * The original (Python) Flokie's two example clients, examples/test_api.py and
 * examples/api_examples.py in degary/Flokie, replayed against this service: the same calls in the
 * same order, with the same bodies, query strings and headers as Python's `requests` sends them
 * (python-requests.ts), over a real socket to a development server (what those scripts are run
 * against: `npm start`). Changed, as the scripts' users would: the base URL, and the example
 * passwords our password policy refuses (admin123, DemoPassword123!).
 *
 * Every call must get the answer the script wants, except the one listed in KNOWN_REFUSALS, which
 * only a weaker service could grant (docs/migrating-from-flokie-python.md explains each).
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it, type TestContext } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.js';
import { cliContext } from '../../src/core/request-context.js';
import { makeTestConfig } from '../helpers/app.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import type { ResponseBody } from '../helpers/response-body.js';
import { PythonSession, type PyResponse, type PyValue } from './python-requests.js';

/** The scripts' example passwords that our policy refuses, and what the test uses instead. */
const OUR_PASSWORD: Record<string, string> = {
  admin123: 'Harbor-Velvet-Orbit-42', // "Password is too common"
  'DemoPassword123!': 'Quiet-Lantern-Meadow-77', // contains the username demo_user
};
const pw = (original: string) => OUR_PASSWORD[original] ?? original;

/**
 * test_api.py's "POST /auth/refresh" sends the ACCESS token as the refresh credential. Granting
 * it would let a stolen one-hour access token renew itself for the whole session; the original
 * refused it too (flask-jwt-extended's jwt_required(refresh=True) answers 422). We answer 401 and
 * say which token to send.
 */
const KNOWN_REFUSALS = new Map([
  [
    'test_api.py #10 POST /auth/refresh (access token as Bearer)',
    { status: 401, message: /access token: \/refresh needs the refresh token/ },
  ],
]);

interface Call {
  script: string;
  n: number;
  label: string;
  status: number;
  /** Whether the script itself counts this call in its results (test_api.py's summary). */
  counted: boolean;
  passed: boolean;
  body: ResponseBody;
}

class Service {
  app!: FastifyInstance;
  database!: TestDatabase;
  base = '';

  async start() {
    this.database = await createTestDatabase();
    // A developer's `npm start`: development mode, rate limits on (defaults), docs on.
    const config = makeTestConfig(
      { NODE_ENV: 'development', RATE_LIMIT_ENABLED: 'true', LOG_LEVEL: 'silent' },
      this.database.url,
    );
    this.app = await buildApp(config);
    await this.app.listen({ host: '127.0.0.1', port: 0 });
    this.base = `http://127.0.0.1:${(this.app.server.address() as AddressInfo).port}`;
    // The original ships an admin/admin123 account from its set-up script; ours: `flokie users create-admin`.
    await this.app.container.admin.create(
      { username: 'admin', email: 'admin@example.com', password: pw('admin123'), is_admin: true, is_verified: true },
      cliContext(),
    );
  }

  async stop() {
    await this.app.close();
    await this.database.drop();
  }
}

/** examples/test_api.py, run_all_tests(): health, auth, users, error handling. */
async function replayTestApi(base: string): Promise<Call[]> {
  const script = 'test_api.py';
  const calls: Call[] = [];
  const session = new PythonSession();
  let accessToken: string | null = null;
  // APITester._make_request: Content-Type always, Authorization when logged in and use_auth.
  async function request(
    method: string,
    endpoint: string,
    options: { data?: PyValue; params?: Record<string, string | number | boolean>; useAuth?: boolean } = {},
  ) {
    const headers: Record<string, string> = { 'Content-Type': 'application/json' };
    if ((options.useAuth ?? true) && accessToken) headers.Authorization = `Bearer ${accessToken}`;
    return session.request(method, `${base}/api${endpoint}`, {
      json: options.data ?? null,
      params: options.params ?? null,
      headers,
    });
  }
  const record = (label: string, res: PyResponse, passed = res.ok, counted = true) => {
    calls.push({
      script,
      n: calls.filter((c) => c.counted).length + (counted ? 1 : 0),
      label,
      status: res.status,
      counted,
      passed,
      body: res.body,
    });
    return res;
  };
  async function loginAdmin(counted: boolean) {
    const res = record(
      'POST /auth/login (admin)',
      await request('POST', '/auth/login', { data: { username: 'admin', password: pw('admin123') }, useAuth: false }),
      undefined,
      counted,
    );
    if (res.ok) accessToken = res.body.data.access_token;
    return res;
  }

  // test_health_endpoints
  for (const endpoint of [
    '/health',
    '/health/detailed',
    '/health/database',
    '/health/system',
    '/health/readiness',
    '/health/liveness',
  ]) {
    record(`GET ${endpoint}`, await request('GET', endpoint, { useAuth: false }));
  }

  // test_auth_endpoints
  const ts = Math.floor(Date.now() / 1000);
  record(
    'POST /auth/register',
    await request('POST', '/auth/register', {
      data: {
        username: `test_user_${ts}`,
        email: `test_${ts}@example.com`,
        password: 'TestPassword123!',
        first_name: 'Test',
        last_name: 'User',
      },
      useAuth: false,
    }),
  );
  if ((await loginAdmin(true)).ok) {
    record('GET /auth/me', await request('GET', '/auth/me'));
    record('POST /auth/refresh (access token as Bearer)', await request('POST', '/auth/refresh'));
    record('POST /auth/logout', await request('POST', '/auth/logout'));
  }

  // test_user_endpoints: its own login is not among the results it counts.
  if ((await loginAdmin(false)).ok) {
    record('GET /users', await request('GET', '/users'));
    const create = record(
      'POST /users',
      await request('POST', '/users', {
        data: {
          username: `api_test_user_${ts}`,
          email: `api_test_${ts}@example.com`,
          password: 'TestPassword123!',
          first_name: 'API',
          last_name: 'Test',
        },
      }),
    );
    if (create.ok) {
      const id = String(create.body.data.user.id);
      record('GET /users/{id}', await request('GET', `/users/${id}`));
      record('PUT /users/{id}', await request('PUT', `/users/${id}`, { data: { first_name: 'Updated' } }));
      record('POST /users/{id}/deactivate', await request('POST', `/users/${id}/deactivate`));
      record('POST /users/{id}/activate', await request('POST', `/users/${id}/activate`));
      record('DELETE /users/{id}', await request('DELETE', `/users/${id}`));
    }
    record('GET /users/search?q=admin', await request('GET', '/users/search', { params: { q: 'admin' } }));
    record('GET /users/statistics', await request('GET', '/users/statistics'));
  }

  // test_error_handling: each passes on its own expected status.
  const unauth = await request('GET', '/auth/me', { useAuth: false });
  record('GET /auth/me without a token (wants 401)', unauth, unauth.status === 401);
  const invalid = await request('POST', '/auth/login', {
    data: { username: 'invalid', password: 'invalid' },
    useAuth: false,
  });
  record('POST /auth/login invalid/invalid (wants 401)', invalid, invalid.status === 401);
  const missing = await request('GET', '/users/99999');
  record('GET /users/99999 (wants 404)', missing, missing.status === 404);
  const bad = await request('POST', '/auth/register', {
    data: { username: '', email: 'invalid-email', password: '123', first_name: '', last_name: '' },
    useAuth: false,
  });
  record('POST /auth/register with bad fields (wants 400)', bad, bad.status === 400);

  session.close();
  return calls;
}

/** examples/api_examples.py, main(): health, authentication flow, user management, errors, performance. */
async function replayApiExamples(base: string): Promise<Call[]> {
  const script = 'api_examples.py';
  const calls: Call[] = [];
  const record = (label: string, res: PyResponse, passed = res.ok) => {
    calls.push({ script, n: calls.length + 1, label, status: res.status, counted: true, passed, body: res.body });
    return res;
  };

  /** FlaskAPIClient: a requests.Session with a token pair. */
  class Client {
    accessToken: string | null = null;
    refreshToken: string | null = null;
    readonly session = new PythonSession();

    private headers(): Record<string, string> {
      const headers: Record<string, string> = {
        'Content-Type': 'application/json',
        'User-Agent': 'Flask-API-Template-Client/1.0',
      };
      if (this.accessToken) headers.Authorization = `Bearer ${this.accessToken}`;
      return headers;
    }

    request(
      method: string,
      endpoint: string,
      data: PyValue | null = null,
      params: Record<string, string | number | boolean> | null = null,
      useAuth = true,
    ) {
      const headers = useAuth ? this.headers() : { 'Content-Type': 'application/json' };
      return this.session.request(method, `${base}/api${endpoint}`, { json: data, params, headers });
    }

    register(username: string, email: string, password: string, first_name: string, last_name: string) {
      return this.request('POST', '/auth/register', { username, email, password, first_name, last_name }, null, false);
    }

    async login(username: string, password: string) {
      const res = await this.request('POST', '/auth/login', { username, password }, null, false);
      if (res.ok) {
        this.accessToken = res.body.data.access_token;
        this.refreshToken = res.body.data.refresh_token;
      }
      return res;
    }

    /** Sends the refresh token as the Bearer token, keeps only the new access token. */
    async refreshAccessToken() {
      const old = this.accessToken;
      this.accessToken = this.refreshToken;
      const res = await this.request('POST', '/auth/refresh');
      this.accessToken = res.ok ? res.body.data.access_token : old;
      return res;
    }

    async logout() {
      const res = await this.request('POST', '/auth/logout');
      if (res.ok) this.accessToken = this.refreshToken = null;
      return res;
    }

    getUsers(
      page = 1,
      perPage = 20,
      search: string | null = null,
      includeInactive = false,
      sortBy = 'created_at',
      sortOrder = 'desc',
    ) {
      const params: Record<string, string | number | boolean> = {
        page,
        per_page: perPage,
        include_inactive: includeInactive,
        sort_by: sortBy,
        sort_order: sortOrder,
      };
      if (search) params.search = search;
      return this.request('GET', '/users', null, params);
    }

    createUser(
      username: string,
      email: string,
      password: string,
      first_name: string,
      last_name: string,
      is_admin = false,
    ) {
      return this.request('POST', '/users', { username, email, password, first_name, last_name, is_admin });
    }

    deleteUser(id: string, hardDelete = false) {
      return this.request('DELETE', `/users/${id}`, null, hardDelete ? { hard_delete: hardDelete } : null);
    }

    searchUsers(query: string, limit = 20, includeInactive = false) {
      return this.request('GET', '/users/search', null, { q: query, limit, include_inactive: includeInactive });
    }

    close() {
      this.session.close();
    }
  }

  // demo_health_checks
  {
    const client = new Client();
    record('GET /health', await client.request('GET', '/health', null, null, false));
    record('GET /health/detailed', await client.request('GET', '/health/detailed', null, null, false));
    record('GET /health/database', await client.request('GET', '/health/database', null, null, false));
    client.close();
  }

  // demo_authentication_flow
  {
    const client = new Client();
    record('GET /health', await client.request('GET', '/health', null, null, false));
    record(
      'POST /auth/register demo_user',
      await client.register('demo_user', 'demo@example.com', pw('DemoPassword123!'), 'Demo', 'User'),
    );
    let login = record('POST /auth/login demo_user', await client.login('demo_user', pw('DemoPassword123!')));
    if (!login.ok) login = record('POST /auth/login admin (fallback)', await client.login('admin', pw('admin123')));
    if (login.ok) {
      record('GET /auth/me', await client.request('GET', '/auth/me'));
      record('POST /auth/refresh (refresh token as Bearer)', await client.refreshAccessToken());
      record('POST /auth/logout', await client.logout());
    }
    client.close();
  }

  // demo_user_management
  {
    const client = new Client();
    const login = record('POST /auth/login admin', await client.login('admin', pw('admin123')));
    if (login.ok) {
      record('GET /users?page=1&per_page=5&include_inactive=False&…', await client.getUsers(1, 5));
      const ts = Math.floor(Date.now() / 1000);
      const create = record(
        'POST /users',
        await client.createUser(`test_user_${ts}`, `test_${ts}@example.com`, 'TestPassword123!', 'Test', 'User'),
      );
      if (create.ok) {
        const id = String(create.body.data.user.id);
        record('GET /users/{id}', await client.request('GET', `/users/${id}`));
        record(
          'PUT /users/{id}',
          await client.request('PUT', `/users/${id}`, { first_name: 'Updated', last_name: 'Name' }),
        );
        record('POST /users/{id}/deactivate', await client.request('POST', `/users/${id}/deactivate`));
        record('POST /users/{id}/activate', await client.request('POST', `/users/${id}/activate`));
        record('DELETE /users/{id}', await client.deleteUser(id, false));
      }
      record('GET /users/search?q=admin&limit=5&include_inactive=False', await client.searchUsers('admin', 5));
      record('GET /users/statistics', await client.request('GET', '/users/statistics'));
    }
    client.close();
  }

  // demo_error_handling: the first, second and last two calls want an error.
  {
    const client = new Client();
    const unauth = await client.request('GET', '/auth/me');
    record('GET /auth/me without a token (wants 401)', unauth, unauth.status === 401);
    const invalid = await client.login('invalid_user', 'wrong_password');
    record('POST /auth/login invalid_user (wants 401)', invalid, invalid.status === 401);
    record('POST /auth/login admin', await client.login('admin', pw('admin123')));
    const missing = await client.request('GET', '/users/99999');
    record('GET /users/99999 (wants 404)', missing, missing.status === 404);
    const bad = await client.register('', 'invalid-email', '123', '', '');
    record('POST /auth/register with bad fields (wants 400)', bad, bad.status === 400);
    client.close();
  }

  // performance_test
  {
    const client = new Client();
    const login = record('POST /auth/login admin', await client.login('admin', pw('admin123')));
    if (login.ok)
      for (let i = 0; i < 10; i++)
        record(`GET /health (${i + 1} of 10)`, await client.request('GET', '/health', null, null, false));
    client.close();
  }
  return calls;
}

function report(t: TestContext, calls: Call[]) {
  for (const c of calls)
    t.diagnostic(
      `${c.script} ${c.counted ? `#${c.n}` : '(uncounted)'} ${c.label}: ${c.status} ${c.passed ? 'pass' : 'FAIL'}`,
    );
}

const failures = (calls: Call[]) =>
  calls.filter((c) => !c.passed && !KNOWN_REFUSALS.has(`${c.script} #${c.n} ${c.label}`));

describe("the original Flokie's example clients against this service", () => {
  let service: Service;
  before(async () => {
    service = new Service();
    await service.start();
  });
  after(() => service.stop());

  it('examples/test_api.py: 24 results pass; refresh with an access token fails, told what to send', async (t) => {
    const calls = await replayTestApi(service.base);
    report(t, calls);
    const counted = calls.filter((c) => c.counted);
    assert.equal(counted.length, 24);
    assert.deepEqual(
      failures(calls).map((c) => `${c.label}: ${c.status} ${JSON.stringify(c.body)}`),
      [],
    );
    for (const [key, expected] of KNOWN_REFUSALS) {
      const call = calls.find((c) => `${c.script} #${c.n} ${c.label}` === key);
      assert.ok(call, `${key} was made`);
      assert.equal(call.status, expected.status);
      assert.match(call.body.error.message, expected.message);
    }
    assert.equal(counted.filter((c) => c.passed).length, 23);
    assert.ok(
      !calls.some((c) => c.status === 429 || c.status >= 500),
      'no call was rate limited or failed on the server',
    );
  });
});

describe("the original Flokie's example clients against this service (api_examples.py)", () => {
  let service: Service;
  before(async () => {
    service = new Service();
    await service.start();
  });
  after(() => service.stop());

  it('examples/api_examples.py: every one of its 35 calls gets the answer the demo wants', async (t) => {
    const calls = await replayApiExamples(service.base);
    report(t, calls);
    assert.equal(calls.length, 35);
    assert.deepEqual(
      failures(calls).map((c) => `${c.label}: ${c.status} ${JSON.stringify(c.body)}`),
      [],
    );
  });
});
