/**
 * HTTPS served by the process: TLS 1.2+ only, ECDHE AEAD suites (the same list as nginx's), no DHE,
 * no session tickets (as nginx), HSTS; FORCE_HTTPS redirects.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect, type ConnectionOptions } from 'node:tls';
import { TLS12_CIPHERS, tlsServerOptions } from '../../src/http/tls.js';
import { loadConfig } from '../../src/config/index.js';
import { createTestApp, TEST_ENV, type TestApp } from '../helpers/app.js';

function handshake(port: number, options: ConnectionOptions): Promise<{ protocol: string | null; cipher: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...options }, () => {
      const result = { protocol: socket.getProtocol(), cipher: socket.getCipher().name };
      socket.end();
      resolve(result);
    });
    socket.on('error', reject);
  });
}

describe('TLS', () => {
  let dir: string;
  let t: TestApp;
  let port: number;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'flokie-tls-'));
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=localhost',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    t = await createTestApp({ TLS_CERT_FILE: join(dir, 'cert.pem'), TLS_KEY_FILE: join(dir, 'key.pem') });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    port = (t.app.server.address() as { port: number }).port;
  });
  after(async () => {
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves HTTPS with HSTS on every response', async () => {
    const { request } = await import('node:https');
    const res = await new Promise<{ status: number; hsts: unknown }>((resolve, reject) => {
      request({ host: '127.0.0.1', port, path: '/api/nothing', rejectUnauthorized: false }, (r) => {
        r.resume();
        resolve({ status: r.statusCode!, hsts: r.headers['strict-transport-security'] });
      })
        .on('error', reject)
        .end();
    });
    assert.equal(res.status, 404);
    assert.equal(res.hsts, 'max-age=31536000; includeSubDomains');
  });

  it('accepts TLS 1.3 and TLS 1.2 with the guide-style ECDHE AES-256-GCM suite', async () => {
    assert.equal((await handshake(port, { minVersion: 'TLSv1.3' })).protocol, 'TLSv1.3');
    const tls12 = await handshake(port, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES256-GCM-SHA384' });
    assert.deepEqual(tls12, { protocol: 'TLSv1.2', cipher: 'ECDHE-RSA-AES256-GCM-SHA384' });
  });

  it('offers exactly the TLS 1.2 suites nginx offers (deploy/nginx.conf), all ECDHE with AEAD', async () => {
    const nginx = /^\s*ssl_ciphers\s+([^;]+);/m.exec(
      readFileSync(join(import.meta.dirname, '../../deploy/nginx.conf'), 'utf8'),
    )?.[1];
    assert.equal(nginx, TLS12_CIPHERS);
    for (const cipher of TLS12_CIPHERS.split(':'))
      assert.match(cipher, /^ECDHE-(ECDSA|RSA)-(AES(128|256)-GCM-SHA(256|384)|CHACHA20-POLY1305)$/);
    for (const cipher of TLS12_CIPHERS.split(':').filter((c) => c.startsWith('ECDHE-RSA-'))) {
      assert.equal(
        (await handshake(port, { maxVersion: 'TLSv1.2', ciphers: cipher })).cipher,
        cipher,
        'an RSA certificate serves each RSA suite',
      );
    }
  });

  it('refuses DHE (there are no DH parameters to offer it with)', async () => {
    await assert.rejects(
      handshake(port, { maxVersion: 'TLSv1.2', ciphers: 'DHE-RSA-AES256-GCM-SHA384:DHE-RSA-AES128-GCM-SHA256' }),
      /handshake|cipher|alert/i,
    );
  });

  it('issues no session tickets (ssl_session_tickets off, as in nginx): nothing to resume a session with', async () => {
    for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
      const first = await new Promise<{ session?: Buffer; ticket?: Buffer }>((resolve, reject) => {
        let session: Buffer | undefined;
        const socket = connect(
          { host: '127.0.0.1', port, rejectUnauthorized: false, minVersion: version, maxVersion: version },
          () => {
            // TLS 1.3 delivers its session after the handshake: wait for the server's first bytes.
            setTimeout(() => {
              resolve({ session, ticket: socket.getTLSTicket() });
              socket.destroy();
            }, 100);
          },
        );
        socket.on('session', (s: Buffer) => (session = s));
        socket.on('error', reject);
        socket.write('GET /api/health HTTP/1.1\r\nHost: localhost\r\n\r\n');
      });
      if (version === 'TLSv1.2') assert.equal(first.ticket, undefined, 'no TLS 1.2 ticket');
      const reused = await new Promise<boolean>((resolve, reject) => {
        const socket = connect(
          {
            host: '127.0.0.1',
            port,
            rejectUnauthorized: false,
            minVersion: version,
            maxVersion: version,
            session: first.session,
          },
          () => {
            resolve(socket.isSessionReused());
            socket.destroy();
          },
        );
        socket.on('error', reject);
      });
      assert.equal(reused, false, `${version}: no resumption from a ticket`);
    }
  });

  it('refuses TLS 1.0/1.1 and TLS 1.2 suites without forward secrecy or AEAD', async () => {
    // The client is made willing (security level 0) so that the refusal is the server's.
    await assert.rejects(
      handshake(port, { minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' }),
      /protocol|version|handshake/i,
    );
    for (const cipher of ['AES256-SHA', 'AES128-GCM-SHA256', 'ECDHE-RSA-AES128-SHA']) {
      await assert.rejects(
        handshake(port, { maxVersion: 'TLSv1.2', ciphers: `${cipher}@SECLEVEL=0` }),
        /handshake|cipher|alert/i,
        cipher,
      );
    }
  });
});

describe('TLS settings', () => {
  it('an unreadable certificate stops the start with a message naming the setting', () => {
    assert.throws(
      () => tlsServerOptions({ TLS_CERT_FILE: '/nonexistent/cert.pem', TLS_KEY_FILE: '/nonexistent/key.pem' }),
      /TLS_CERT_FILE cannot be read: ENOENT/,
    );
    assert.equal(tlsServerOptions({ TLS_CERT_FILE: '', TLS_KEY_FILE: '' }), null);
  });
});

describe('FORCE_HTTPS', () => {
  let t: TestApp;
  before(async () => {
    t = await createTestApp({
      FORCE_HTTPS: 'true',
      TRUSTED_PROXIES: '10.0.0.1',
      PUBLIC_URL: 'https://api.example.com',
    });
  });
  after(() => t.close());

  it('redirects plain HTTP with 308 to the same URL on https, keeping the method', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/auth/login?x=1',
      headers: { host: 'api.example.com:8080' },
      payload: { username: 'a', password: 'b' },
    });
    assert.equal(res.statusCode, 308);
    assert.equal(res.headers.location, 'https://api.example.com/api/auth/login?x=1');
    assert.equal(res.headers['x-frame-options'], 'DENY');
  });

  it("redirects only to PUBLIC_URL's host, whatever Host or X-Forwarded-Host the request sends", async () => {
    for (const headers of [
      { host: 'evil.example' },
      { host: 'evil.example:443' },
      { host: 'api.example.com', 'x-forwarded-host': 'evil.example' },
    ]) {
      const res = await t.app.inject({ method: 'GET', url: '/api/auth/me', headers });
      assert.equal(res.statusCode, 308);
      assert.equal(res.headers.location, 'https://api.example.com/api/auth/me', JSON.stringify(headers));
    }
    const fromProxy = await t.app.inject({
      method: 'GET',
      url: '/x',
      remoteAddress: '10.0.0.1',
      headers: { host: 'evil.example', 'x-forwarded-host': 'evil.example' },
    });
    assert.equal(fromProxy.headers.location, 'https://api.example.com/x');
  });

  it('refuses to start with FORCE_HTTPS unless PUBLIC_URL is https://', () => {
    for (const publicUrl of [undefined, 'http://api.example.com']) {
      const env: Record<string, string> = { ...TEST_ENV, DATABASE_URL: 'sqlite::memory:', FORCE_HTTPS: 'true' };
      if (publicUrl) env.PUBLIC_URL = publicUrl;
      assert.throws(() => loadConfig(env, { dotenv: false }), /PUBLIC_URL.*https/);
    }
    assert.doesNotThrow(() =>
      loadConfig(
        { ...TEST_ENV, DATABASE_URL: 'sqlite::memory:', FORCE_HTTPS: 'true', PUBLIC_URL: 'https://a.example' },
        { dotenv: false },
      ),
    );
  });

  it('lets HTTPS through when a trusted proxy says so, not anyone else; health checks are not redirected', async () => {
    const viaProxy = await t.app.inject({
      method: 'GET',
      url: '/api/auth/me',
      remoteAddress: '10.0.0.1',
      headers: { 'x-forwarded-proto': 'https' },
    });
    assert.equal(viaProxy.statusCode, 401);
    const spoofed = await t.app.inject({
      method: 'GET',
      url: '/api/auth/me',
      remoteAddress: '198.51.100.1',
      headers: { 'x-forwarded-proto': 'https' },
    });
    assert.equal(spoofed.statusCode, 308);
    assert.equal((await t.app.inject({ method: 'GET', url: '/api/health' })).statusCode, 200);
  });

  it('answers only the open probes over plain HTTP; the token-taking health views are redirected', async () => {
    for (const url of ['/api/health', '/api/health/', '/api/health/liveness', '/api/health/readiness']) {
      assert.equal((await t.app.inject({ method: 'GET', url })).statusCode, 200, url);
    }
    for (const url of ['/api/health/detailed', '/api/health/database', '/api/health/system']) {
      // The health token must never travel in clear: the redirect comes before the token is read.
      const res = await t.app.inject({ method: 'GET', url, headers: { 'x-health-token': 'sent-over-http' } });
      assert.equal(res.statusCode, 308, url);
      assert.equal(res.headers.location, `https://api.example.com${url}`);
    }
  });
});
