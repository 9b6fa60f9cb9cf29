/**
 * deploy/nginx.conf for real: Debian's nginx (installed by scripts/install-nginx.sh when missing)
 * runs the shipped file itself, unmodified (a symbolic link to it), on loopback in front of a
 * real service process (TRUSTED_PROXIES=127.0.0.1). Only the folder deploy/nginx.conf reads its
 * places from is the test's own: flokie/upstream.conf names the service's port, the listen files
 * loopback ports (made from the shipped ones by changing the address only), and the shipped
 * security-headers.conf is linked in; certs/ comes from deploy/make-certs.sh. Checks: `nginx -t`
 * (also with the shipped listen files); TLS 1.2 and 1.3 with the service's own cipher list and
 * HTTP/2, TLS 1.0/1.1 and DHE refused, no session tickets; the client address, protocol and
 * request id reach the service as trusted facts; a login burst answered 429 by limit_req; the
 * HTTP port redirects; every answer nginx writes itself (404, 413, 429, 503, the redirect) is the
 * API's JSON envelope with the same security headers as the service's answers; with the service
 * gone, 503 SERVICE_UNAVAILABLE with Retry-After.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import SQLite from 'better-sqlite3';
import { TLS12_CIPHERS } from '../../src/http/tls.js';
import { ensureNginx, nginxArgs, nginxFolder, SHIPPED, SHIPPED_PLACES } from '../helpers/nginx.js';
import { freePort, request, ROOT, sleep, startServer, type Response, type ServerProcess } from '../helpers/server.js';

/** The service's security headers, as it sends them on its own answers. */
const SECURITY_HEADERS = [
  'content-security-policy',
  'cross-origin-opener-policy',
  'cross-origin-resource-policy',
  'origin-agent-cluster',
  'referrer-policy',
  'strict-transport-security',
  'x-content-type-options',
  'x-dns-prefetch-control',
  'x-download-options',
  'x-frame-options',
  'x-permitted-cross-domain-policies',
  'x-xss-protection',
  'cache-control',
];

describe('nginx in front of the service (deploy/nginx.conf)', { timeout: 300_000 }, () => {
  let nginxBin: string;
  let dir: string;
  let certs: string;
  let ca: string;
  let app: ServerProcess;
  let nginx: ChildProcess | undefined;
  let httpsUrl: string;
  let httpUrl: string;
  let httpsPort: number;
  let nginxOutput = '';
  /** The security headers of an answer the service itself sent through nginx. */
  let serviceHeaders: Record<string, string | string[] | undefined>;

  function assertServiceHeaders(res: Response, what: string): void {
    for (const name of SECURITY_HEADERS) assert.equal(res.headers[name], serviceHeaders[name], `${what}: ${name}`);
  }

  /** An answer nginx wrote itself: the API's error envelope as JSON, with the service's headers. */
  function assertNginxEnvelope(res: Response, status: number, code: string): void {
    assert.equal(res.status, status, res.text);
    assert.equal(res.headers['content-type'], 'application/json; charset=utf-8');
    assert.equal(res.body?.success, false, res.text);
    assert.equal(res.body.error.code, code);
    assert.ok(!Number.isNaN(Date.parse(res.body.timestamp)), res.body.timestamp);
    assert.equal(res.body.request_id, res.headers['x-request-id']);
    assertServiceHeaders(res, `nginx's ${status}`);
  }

  before(async () => {
    nginxBin = ensureNginx();
    dir = mkdtempSync(join(tmpdir(), 'flokie-nginx-'));
    certs = join(dir, 'certs');
    const made = spawnSync('sh', [join(ROOT, 'deploy/make-certs.sh'), certs, 'localhost'], { encoding: 'utf8' });
    assert.equal(made.status, 0, made.stderr);
    ca = readFileSync(join(certs, 'ca.pem'), 'utf8');

    const appDir = join(dir, 'app');
    mkdirSync(appDir);
    app = await startServer(
      {
        DATABASE_URL: `sqlite:${join(appDir, 'flokie.db')}`,
        TRUSTED_PROXIES: '127.0.0.1',
        RATE_LIMIT_ENABLED: 'true',
        // The service's own limits are set high so that every 429 here is nginx's.
        RATE_LIMITS: JSON.stringify({
          default: '100000 per hour',
          'auth.login': '100000 per hour',
          'auth.register': '100000 per hour',
        }),
        BRUTE_FORCE_ALERT_THRESHOLD: '100000',
      },
      { cwd: appDir },
    );
    const [http, https] = [await freePort(), await freePort()];
    httpsPort = https;
    httpUrl = `http://127.0.0.1:${http}`;
    httpsUrl = `https://127.0.0.1:${https}`;
    nginxFolder(dir, { app: app.port, http, https }, certs);
  });

  after(async () => {
    nginx?.kill('SIGQUIT');
    await app?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  // The pid file moves by command line; the file names none (nor a user: nobody, Debian's default).

  it('nginx -t accepts the shipped file', () => {
    const test = spawnSync(nginxBin, ['-t', ...nginxArgs(dir)], { encoding: 'utf8' });
    assert.equal(test.status, 0, test.stderr);
    assert.match(test.stderr, /syntax is ok/);
    assert.match(test.stderr, /test is successful/);
    assert.equal(
      readFileSync(join(dir, 'nginx.conf'), 'utf8'),
      readFileSync(SHIPPED, 'utf8'),
      'the very file, unmodified',
    );
  });

  it('nginx -t accepts it with the shipped listen files too (only the upstream host, unknown here, replaced)', () => {
    const other = mkdtempSync(join(tmpdir(), 'flokie-nginx-shipped-'));
    try {
      symlinkSync(SHIPPED, join(other, 'nginx.conf'));
      symlinkSync(certs, join(other, 'certs'));
      mkdirSync(join(other, 'flokie'));
      for (const file of ['listen-http.conf', 'listen-https.conf', 'security-headers.conf'])
        symlinkSync(join(SHIPPED_PLACES, file), join(other, 'flokie', file));
      assert.match(readFileSync(join(SHIPPED_PLACES, 'upstream.conf'), 'utf8'), /^server app:5000;$/m);
      writeFileSync(join(other, 'flokie', 'upstream.conf'), 'server 127.0.0.1:5000;\n');
      const test = spawnSync(nginxBin, ['-t', ...nginxArgs(other)], { encoding: 'utf8' });
      assert.equal(test.status, 0, test.stderr);
      assert.match(test.stderr, /test is successful/);
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });

  it('starts on loopback and proxies /api/health over TLS', async () => {
    nginx = spawn(nginxBin, [...nginxArgs(dir), '-g', 'daemon off;'], { stdio: ['ignore', 'pipe', 'pipe'] });
    nginx.stdout!.on('data', (c: Buffer) => (nginxOutput += c.toString()));
    nginx.stderr!.on('data', (c: Buffer) => (nginxOutput += c.toString()));
    let res;
    for (let i = 0; i < 100; i++) {
      res = await request('GET', `${httpsUrl}/api/health`, { ca }).catch(() => undefined);
      if (res) break;
      await sleep(100);
    }
    assert.ok(res, `nginx did not answer: ${nginxOutput}`);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.status, 'healthy');
    serviceHeaders = Object.fromEntries(SECURITY_HEADERS.map((name) => [name, res.headers[name]]));
    for (const name of SECURITY_HEADERS) assert.ok(serviceHeaders[name], `the service sends ${name}`);
  });

  /** A raw TLS handshake: the negotiated protocol, cipher and ALPN, or the error code. */
  function handshake(
    options: tls.ConnectionOptions,
  ): Promise<{ protocol?: string | null; cipher?: string; alpn?: string | false | null; error?: string }> {
    return new Promise((done) => {
      const socket = tls.connect(
        { host: '127.0.0.1', port: httpsPort, servername: 'localhost', ca, ...options },
        () => {
          const result = { protocol: socket.getProtocol(), cipher: socket.getCipher().name, alpn: socket.alpnProtocol };
          socket.end();
          done(result);
        },
      );
      socket.on('error', (error: NodeJS.ErrnoException) => done({ error: error.code ?? error.message }));
    });
  }

  it("TLS 1.3 and 1.2 with the service's ciphers, HTTP/2 by ALPN, a verified certificate; no DHE/tickets", async () => {
    const v13 = await handshake({ minVersion: 'TLSv1.3', ALPNProtocols: ['h2', 'http/1.1'] });
    assert.equal(v13.protocol, 'TLSv1.3', JSON.stringify(v13));
    assert.equal(v13.alpn, 'h2', 'HTTP/2 offered');
    const v12 = await handshake({ minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' });
    assert.equal(v12.protocol, 'TLSv1.2', JSON.stringify(v12));
    assert.ok(TLS12_CIPHERS.split(':').includes(v12.cipher!), String(v12.cipher));
    // Every RSA suite of the list works (the certificate is RSA), in the guide's preferred one too.
    for (const cipher of TLS12_CIPHERS.split(':').filter((c) => c.startsWith('ECDHE-RSA-'))) {
      assert.equal((await handshake({ maxVersion: 'TLSv1.2', ciphers: cipher })).cipher, cipher);
    }
    const dhe = await handshake({ maxVersion: 'TLSv1.2', ciphers: 'DHE-RSA-AES256-GCM-SHA384' });
    assert.ok(dhe.error, `DHE is not offered: ${JSON.stringify(dhe)}`);
    const weak = await handshake({ maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES128-SHA:AES128-GCM-SHA256' });
    assert.ok(weak.error, `a cipher outside the list is refused: ${JSON.stringify(weak)}`);
    assert.equal(await tls12Ticket(), false, 'ssl_session_tickets off');
    assert.equal(await tls12Resumed(), true, 'resumed from the session cache instead');
  });

  /** Whether a TLS 1.2 handshake left the client holding a session ticket. */
  function tls12Ticket(): Promise<boolean> {
    return new Promise((done, fail) => {
      const socket = tls.connect(
        { host: '127.0.0.1', port: httpsPort, servername: 'localhost', ca, maxVersion: 'TLSv1.2' },
        () => {
          const ticket = socket.getTLSTicket();
          socket.end();
          done(ticket !== undefined);
        },
      );
      socket.on('error', fail);
    });
  }

  /** Whether a second TLS 1.2 connection resumes the first one's session (by its id: there is no ticket). */
  async function tls12Resumed(): Promise<boolean> {
    const session = await new Promise<Buffer>((done, fail) => {
      const socket = tls.connect({
        host: '127.0.0.1',
        port: httpsPort,
        servername: 'localhost',
        ca,
        maxVersion: 'TLSv1.2',
      });
      socket.once('session', (s: Buffer) => {
        socket.end();
        done(s);
      });
      socket.on('error', fail);
    });
    return new Promise((done, fail) => {
      const socket = tls.connect(
        { host: '127.0.0.1', port: httpsPort, servername: 'localhost', ca, maxVersion: 'TLSv1.2', session },
        () => {
          done(socket.isSessionReused());
          socket.end();
        },
      );
      socket.on('error', fail);
    });
  }

  it('refuses TLS 1.0 and 1.1: the server answers with a protocol_version alert', async () => {
    // SECLEVEL=0 lets this client offer the old versions, so the refusal is the server's.
    for (const version of ['TLSv1', 'TLSv1.1'] as const) {
      const result = await handshake({ minVersion: version, maxVersion: version, ciphers: 'DEFAULT:@SECLEVEL=0' });
      assert.equal(result.error, 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION', `${version}: ${JSON.stringify(result)}`);
    }
  });

  it('forwards the client address, protocol and request id, which the service trusts', async () => {
    const username = `proxied_${Date.now()}`;
    const res = await request('POST', `${httpsUrl}/api/auth/login`, {
      ca,
      from: '127.0.0.2',
      // A client-supplied X-Forwarded-For is replaced by nginx, never believed.
      headers: { 'x-request-id': 'nginx-test-request-1', 'x-forwarded-for': '203.0.113.66' },
      body: { username, password: 'Wrong-Password-123' },
    });
    assert.equal(res.status, 401, res.text);
    // The client's own id never becomes ours: nginx makes the id, the service adopts it.
    const requestId = String(res.headers['x-request-id']);
    assert.match(requestId, /^[0-9a-f]{32}$/);
    assert.equal(res.body.request_id, requestId);
    assert.match(
      String(res.headers['strict-transport-security']),
      /max-age=\d+/,
      'HTTPS seen through X-Forwarded-Proto',
    );
    const direct = await request('GET', `${app.url}/api/health`);
    assert.equal(
      direct.headers['strict-transport-security'],
      undefined,
      'plain HTTP straight to the service gets no HSTS',
    );

    const database = new SQLite(join(app.cwd, 'flokie.db'), { readonly: true, fileMustExist: true });
    try {
      let row: { ip: string | null } | undefined;
      for (let i = 0; i < 100 && !row; i++) {
        row = database
          .prepare("SELECT ip FROM security_events WHERE type = 'login_failure' AND request_id = ?")
          .get(requestId) as typeof row;
        if (!row) await sleep(100);
      }
      assert.ok(row, 'the failed login was recorded');
      assert.equal(row.ip, '127.0.0.2', 'the real client address, not the proxy and not the spoofed header');
    } finally {
      database.close();
    }
  });

  it('answers a login burst with 429 from limit_req (1r/s, burst 5), in the API envelope', async () => {
    const attempts = await Promise.all(
      Array.from({ length: 14 }, (_, i) =>
        request('POST', `${httpsUrl}/api/auth/login`, {
          ca,
          from: '127.0.0.3',
          body: { username: `burst_${i}`, password: 'Wrong-Password-123' },
        }),
      ),
    );
    const statuses = attempts.map((r) => r.status);
    const limited = attempts.filter((r) => r.status === 429);
    const passed = statuses.filter((s) => s === 401).length;
    console.log(`# nginx login burst of 14: ${passed} reached the service, ${limited.length} refused by nginx`);
    assert.ok(limited.length >= 7, `statuses ${statuses.join(',')}`);
    assert.ok(passed <= 7, 'at most 1 + burst 5 (+1 refilled) reach the service');
    const refusal = limited[0]!;
    assertNginxEnvelope(refusal, 429, 'RATE_LIMIT_EXCEEDED');
    assert.equal(refusal.headers['retry-after'], '1');
    assert.equal(refusal.headers['ratelimit-limit'], undefined, 'answered by nginx, not the service');
    assert.match(nginxOutput, /limiting requests, excess: .* zone "login"/, 'logged on stderr');
    const other = await request('POST', `${httpsUrl}/api/auth/login`, {
      ca,
      from: '127.0.0.4',
      body: { username: 'someone', password: 'Wrong-Password-123' },
    });
    assert.equal(other.status, 401, 'another client address is not limited');
  });

  it('redirects plain HTTP to HTTPS and rejects an oversized body in the envelope', async () => {
    const redirect = await request('GET', `${httpUrl}/api/health`);
    assert.equal(redirect.status, 308);
    assert.equal(redirect.headers.location, 'https://127.0.0.1/api/health');
    assertServiceHeaders(redirect, 'the redirect');
    const big = await request('POST', `${httpsUrl}/api/auth/register`, {
      ca,
      from: '127.0.0.5',
      body: { bio: 'x'.repeat(200 * 1024) },
    });
    assertNginxEnvelope(big, 413, 'PAYLOAD_TOO_LARGE');
  });

  it("answers outside /api/ with a 404 envelope of its own; the service's 404 under /api/ passes through", async () => {
    for (const path of ['/', '/nothing', '/api', '/index.html', '/.env']) {
      const res = await request('GET', `${httpsUrl}${path}`, {
        ca,
        from: '127.0.0.6',
        headers: { 'x-request-id': 'nginx-404-check' },
      });
      assertNginxEnvelope(res, 404, 'NOT_FOUND');
      assert.match(res.body.request_id, /^[0-9a-f]{32}$/, "nginx's own id, not the client's");
      assert.equal(res.headers['x-request-id'], res.body.request_id);
    }
    const fromService = await request('GET', `${httpsUrl}/api/nothing`, { ca, from: '127.0.0.6' });
    assert.equal(fromService.status, 404);
    assert.equal(fromService.headers.vary, 'Origin', "this one is the service's own answer");
    assert.equal(fromService.headers['x-frame-options'], 'DENY', 'and is not given the headers twice');
  });

  it('passes the e-mailed link pages and their script to the service, query and page headers intact', async () => {
    for (const path of ['/verify-email', '/reset-password', '/confirm-email-change', '/assets/flokie-links.js']) {
      const res = await request('GET', `${httpsUrl}${path}?token=abc`, { ca, from: '127.0.0.8' });
      assert.equal(res.status, 200, `${path}: ${res.text.slice(0, 200)}`);
      assert.equal(res.headers['referrer-policy'], 'no-referrer', path);
      assert.match(String(res.headers['content-security-policy']), /script-src 'self'/, path);
      assert.equal(res.headers['x-frame-options'], 'DENY', path);
      assert.equal(res.headers['cache-control'], 'no-store', path);
    }
    const page = await request('GET', `${httpsUrl}/reset-password`, { ca, from: '127.0.0.8' });
    assert.match(page.text, /<form id="reset-form"/);
    // Only these paths: their neighbours stay nginx's 404.
    for (const path of ['/assets/', '/assets/other.js', '/verify-email/x']) {
      assertNginxEnvelope(await request('GET', `${httpsUrl}${path}`, { ca, from: '127.0.0.8' }), 404, 'NOT_FOUND');
    }
  });

  it('with the service gone: 503 SERVICE_UNAVAILABLE with Retry-After in the envelope (not 502)', async () => {
    await app.stop();
    const res = await request('GET', `${httpsUrl}/api/health`, { ca, from: '127.0.0.7' });
    assertNginxEnvelope(res, 503, 'SERVICE_UNAVAILABLE');
    assert.equal(res.headers['retry-after'], '5');
    const login = await request('POST', `${httpsUrl}/api/auth/login`, {
      ca,
      from: '127.0.0.7',
      body: { username: 'a', password: 'b' },
    });
    assertNginxEnvelope(login, 503, 'SERVICE_UNAVAILABLE');
  });
});
