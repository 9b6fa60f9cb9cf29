/**
 * Bad input at the HTTP layer: oversized headers, bodies and URLs, undecodable and traversal URLs,
 * non-JSON bodies, duplicate and conflicting headers. Each is a 4xx in the contract's envelope,
 * never a 500, and the server keeps serving. Raw-socket cases use a real listening server.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { InjectOptions } from 'fastify';
import { bearer, createTestApp, registerAndLogin, type TestApp } from '../helpers/app.js';

/** Sends raw bytes, returns the raw response text (the server closes or we time out). */
function raw(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let data = '';
    socket.setTimeout(5000, () => {
      socket.destroy();
      resolve(data);
    });
    socket.on('data', (chunk) => (data += chunk.toString()));
    socket.on('end', () => resolve(data));
    socket.on('close', () => resolve(data));
    socket.on('error', (error) => (data ? resolve(data) : reject(error)));
    socket.write(request);
  });
}

function parse(response: string) {
  const [head, ...rest] = response.split('\r\n\r\n');
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head ?? '')?.[1]);
  const headers = Object.fromEntries(
    (head ?? '')
      .split('\r\n')
      .slice(1)
      .map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]),
  );
  return { status, headers, body: rest.join('\r\n\r\n') };
}

function assertEnvelope(body: string, status: number, label: string) {
  const parsed = JSON.parse(body);
  assert.equal(parsed.success, false, label);
  assert.equal(typeof parsed.error.code, 'string', label);
  assert.ok(status >= 400 && status < 500, `${label}: ${status}`);
}

describe('bad input on a real socket', () => {
  let t: TestApp;
  let port: number;
  before(async () => {
    t = await createTestApp();
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    port = (t.app.server.address() as { port: number }).port;
  });
  after(() => t.close());

  const cases: [string, string, number][] = [
    ['oversized headers', `GET /api/health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431],
    ['oversized URL beyond the header limit', `GET /api/health?${'q'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`, 431],
    [
      'duplicate Content-Length',
      'POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
        'Content-Length: 2\r\nContent-Length: 5\r\n\r\n{}',
      400,
    ],
    [
      'Content-Length with Transfer-Encoding',
      'POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
        'Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      400,
    ],
    ['garbage request line', 'HELLO THERE\r\n\r\n', 400],
    ['control character in a header', 'GET /api/health HTTP/1.1\r\nHost: x\r\nX-Evil: a\u0001b\r\n\r\n', 400],
  ];
  for (const [label, request, expected] of cases) {
    it(`${label}: ${expected} envelope with security headers`, async () => {
      const res = parse(await raw(port, request));
      assert.equal(res.status, expected, label);
      assertEnvelope(res.body, res.status, label);
      assert.equal(res.headers['x-content-type-options'], 'nosniff');
      assert.equal(res.headers['x-frame-options'], 'DENY');
      assert.ok(res.headers['x-request-id']);
      assert.equal(JSON.parse(res.body).request_id, res.headers['x-request-id']);
    });
  }

  it('duplicate X-CSRF-Token / X-Auth-Mode / Authorization headers are 4xx, and the server still serves', async () => {
    const dupAuth = parse(
      await raw(
        port,
        'GET /api/auth/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer a.b.c\r\n' +
          'Authorization: Bearer d.e.f\r\nConnection: close\r\n\r\n',
      ),
    );
    assert.equal(dupAuth.status, 401);
    assertEnvelope(dupAuth.body, dupAuth.status, 'duplicate authorization');
    const dupCsrf = parse(
      await raw(
        port,
        'POST /api/auth/refresh HTTP/1.1\r\nHost: x\r\nCookie: flokie_refresh=abc\r\n' +
          'X-CSRF-Token: a\r\nX-CSRF-Token: b\r\nConnection: close\r\n\r\n',
      ),
    );
    assert.equal(dupCsrf.status, 403);
    const health = await fetch(`http://127.0.0.1:${port}/api/health`);
    assert.equal(health.status, 200);
  });
});

describe('bad input through the router', () => {
  let t: TestApp;
  before(async () => {
    t = await createTestApp();
  });
  after(() => t.close());

  it('every case is a 4xx envelope, never a 500', async () => {
    const cases: [string, InjectOptions, number][] = [
      ['undecodable URL', { method: 'GET', url: '/api/auth/%zz' }, 400],
      ['NUL in URL', { method: 'GET', url: '/api/users/%00' }, 400],
      ['long query string', { method: 'GET', url: `/api/health?${'x'.repeat(9000)}` }, 414],
      ['dot-dot traversal', { method: 'GET', url: '/api/docs/static/../../../package.json' }, 404],
      ['encoded traversal', { method: 'GET', url: '/api/docs/static/..%2f..%2f..%2fpackage.json' }, 404],
      ['double-encoded traversal', { method: 'GET', url: '/api/docs/static/%252e%252e%252fpackage.json' }, 404],
      [
        'backslash traversal (refused by the static file server)',
        { method: 'GET', url: '/api/docs/static/..%5c..%5cpackage.json' },
        403,
      ],
      ['overlong UTF-8', { method: 'GET', url: '/api/users/%c0%ae%c0%ae' }, 400],
      [
        'form body on a JSON route',
        {
          method: 'POST',
          url: '/api/auth/login',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          payload: 'username=a&password=b',
        },
        415,
      ],
      [
        'text body on a JSON route',
        {
          method: 'POST',
          url: '/api/auth/login',
          headers: { 'content-type': 'text/plain' },
          payload: '{"username":"a","password":"b"}',
        },
        415,
      ],
      [
        'xml body',
        { method: 'POST', url: '/api/auth/register', headers: { 'content-type': 'application/xml' }, payload: '<a/>' },
        415,
      ],
      [
        'malformed JSON',
        {
          method: 'POST',
          url: '/api/auth/login',
          headers: { 'content-type': 'application/json' },
          payload: '{"username":',
        },
        400,
      ],
      [
        'body over BODY_LIMIT',
        {
          method: 'POST',
          url: '/api/auth/login',
          headers: { 'content-type': 'application/json' },
          payload: JSON.stringify({ username: 'a', password: 'b'.repeat(120_000) }),
        },
        413,
      ],
      [
        'JSON array instead of object',
        { method: 'POST', url: '/api/auth/login', headers: { 'content-type': 'application/json' }, payload: '[]' },
        400,
      ],
      [
        '__proto__ key',
        {
          method: 'POST',
          url: '/api/auth/login',
          headers: { 'content-type': 'application/json' },
          payload: '{"__proto__":{"x":1},"username":"a","password":"b"}',
        },
        400,
      ],
      [
        'conflicting content types',
        {
          method: 'POST',
          url: '/api/auth/login',
          headers: { 'content-type': 'application/json, text/plain' },
          payload: '{}',
        },
        415,
      ],
    ];
    for (const [label, request, status] of cases) {
      const res = await t.app.inject(request);
      assert.equal(res.statusCode, status, `${label}: ${res.body.slice(0, 200)}`);
      assertEnvelope(res.body, res.statusCode, label);
      assert.equal(res.headers['x-content-type-options'], 'nosniff', label);
    }
  });
});

describe('output encoding and input sanitising (the guide’s XSS test)', () => {
  let t: TestApp;
  before(async () => {
    t = await createTestApp();
  });
  after(() => t.close());

  it('test_xss_prevention: a <script> bio comes back escaped (no raw <, > or &), decodes to the original', async () => {
    const u = await registerAndLogin(t.app);
    const payload = "<script>alert('xss')</script> & more";
    const res = await t.app.inject({
      method: 'PUT',
      url: '/api/users/profile',
      headers: bearer(u.access),
      payload: { bio: payload },
    });
    assert.equal(res.statusCode, 200);
    assert.doesNotMatch(res.body, /[<>&]/);
    assert.match(res.body, /\\u003cscript\\u003e/);
    assert.equal(JSON.parse(res.body).data.user.bio, payload);
    const read = await t.app.inject({ method: 'GET', url: '/api/users/profile', headers: bearer(u.access) });
    assert.doesNotMatch(read.body, /[<>&]/);
    assert.equal(read.headers['content-type'], 'application/json; charset=utf-8');
    assert.equal(read.headers['x-content-type-options'], 'nosniff');
  });

  it('error bodies that echo input are escaped too', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/api/<script>' });
    assert.equal(res.statusCode, 404);
    assert.doesNotMatch(res.body, /[<>&]/);
  });

  it('control characters are stripped from free text; names with markup characters are refused', async () => {
    const u = await registerAndLogin(t.app);
    const res = await t.app.inject({
      method: 'PUT',
      url: '/api/users/profile',
      headers: bearer(u.access),
      payload: { bio: 'line one\nline\u0000 two\u0007\u001b[31m\u0085' },
    });
    assert.equal(res.statusCode, 200);
    assert.equal(JSON.parse(res.body).data.user.bio, 'line one\nline two[31m');
    for (const name of ['<b>bold</b>', 'Tom & Jerry', 'a"b', 'back\\slash', 'tab\there']) {
      const bad = await t.app.inject({
        method: 'PUT',
        url: '/api/users/profile',
        headers: bearer(u.access),
        payload: { first_name: name },
      });
      assert.equal(bad.statusCode, 400, name);
      assert.equal(JSON.parse(bad.body).error.code, 'VALIDATION_ERROR');
    }
    const fine = await t.app.inject({
      method: 'PUT',
      url: '/api/users/profile',
      headers: bearer(u.access),
      payload: { first_name: "Zoë O'Brien-Łukasz" },
    });
    assert.equal(fine.statusCode, 200);
  });
});
