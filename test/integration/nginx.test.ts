/**
 * deploy/nginx.conf for real: Debian's nginx (installed by scripts/install-nginx.sh when
 * missing) runs a copy of the file with only paths and ports changed, on loopback, in front of a
 * real service process (TRUSTED_PROXIES=127.0.0.1), with a certificate and DH parameters made
 * by deploy/make-certs.sh. Checks: `nginx -t`; TLS 1.2 and 1.3 with the configured ciphers and
 * HTTP/2, TLS 1.0/1.1 refused by the server; the client address, protocol and request id reach
 * the service as trusted facts (security events record the real client ip; HSTS because the
 * request was HTTPS); a login burst answered 429 by nginx's limit_req; the HTTP port redirects.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import SQLite from 'better-sqlite3';
import { freePort, request, ROOT, sleep, startServer, type ServerProcess } from './servers.js';

function ensureNginx(): string {
  const found = spawnSync('sh', ['-c', 'command -v nginx || ls /usr/sbin/nginx'], { encoding: 'utf8' });
  if (found.status === 0) return found.stdout.trim().split('\n')[0]!;
  const install = spawnSync('bash', [join(ROOT, 'scripts/install-nginx.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  assert.equal(install.status, 0, 'scripts/install-nginx.sh failed');
  return install.stdout.trim().split('\n').at(-1)!;
}

/** deploy/nginx.conf with local paths and ports; every replaced text must be there, so drift fails loudly. */
export function renderNginxConf(source: string, dir: string, ports: { app: number; http: number; https: number }, certs: string): string {
  const replacements: [string, string][] = [
    ['user nginx;', process.getuid?.() === 0 ? 'user root root;' : ''],
    ['pid /var/run/nginx.pid;', `pid ${dir}/nginx.pid;`],
    ['error_log /var/log/nginx/error.log warn;', `error_log ${dir}/error.log info;`],
    ['access_log /var/log/nginx/access.log;', `access_log ${dir}/access.log;`],
    ['server app:5000;', `server 127.0.0.1:${ports.app};`],
    ['listen 80;', `listen 127.0.0.1:${ports.http};`],
    ['listen 443 ssl http2;', `listen 127.0.0.1:${ports.https} ssl http2;`],
  ];
  let text = source;
  for (const [from, to] of replacements) {
    assert.ok(text.includes(from), `deploy/nginx.conf contains "${from}"`);
    text = text.split(from).join(to);
  }
  for (const [from, to] of [
    ['/etc/nginx/certs/', `${certs}/`],
    ['/tmp/nginx-', `${dir}/nginx-`],
  ] as const) {
    assert.ok(text.includes(from));
    text = text.split(from).join(to);
  }
  return text;
}

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

  before(async () => {
    nginxBin = ensureNginx();
    dir = mkdtempSync(join(tmpdir(), 'flokie-nginx-'));
    certs = join(dir, 'certs');
    const made = spawnSync('sh', [join(ROOT, 'deploy/make-certs.sh'), certs, 'localhost'], { encoding: 'utf8', env: { ...process.env, DHPARAM_FAST: '1' } });
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
        RATE_LIMITS: JSON.stringify({ default: '100000 per hour', 'auth.login': '100000 per hour', 'auth.register': '100000 per hour' }),
        BRUTE_FORCE_ALERT_THRESHOLD: '100000',
      },
      { cwd: appDir },
    );
    const [http, https] = [await freePort(), await freePort()];
    httpsPort = https;
    httpUrl = `http://127.0.0.1:${http}`;
    httpsUrl = `https://127.0.0.1:${https}`;
    writeFileSync(join(dir, 'nginx.conf'), renderNginxConf(readFileSync(join(ROOT, 'deploy/nginx.conf'), 'utf8'), dir, { app: app.port, http, https }, certs));
  });

  after(async () => {
    nginx?.kill('SIGQUIT');
    await app?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const nginxArgs = () => ['-p', dir, '-e', join(dir, 'error.log'), '-c', join(dir, 'nginx.conf')];

  it('nginx -t accepts the configuration', () => {
    const test = spawnSync(nginxBin, ['-t', ...nginxArgs()], { encoding: 'utf8' });
    assert.equal(test.status, 0, test.stderr);
    assert.match(test.stderr, /syntax is ok/);
    assert.match(test.stderr, /test is successful/);
  });

  it('starts on loopback and proxies /api/health over TLS', async () => {
    nginx = spawn(nginxBin, [...nginxArgs(), '-g', 'daemon off;'], { stdio: ['ignore', 'pipe', 'pipe'] });
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
  });

  /** A raw TLS handshake: the negotiated protocol, cipher and ALPN, or the error code. */
  function handshake(options: tls.ConnectionOptions): Promise<{ protocol?: string | null; cipher?: string; alpn?: string | false | null; error?: string }> {
    return new Promise((done) => {
      const socket = tls.connect({ host: '127.0.0.1', port: httpsPort, servername: 'localhost', ca, ...options }, () => {
        const result = { protocol: socket.getProtocol(), cipher: socket.getCipher().name, alpn: socket.alpnProtocol };
        socket.end();
        done(result);
      });
      socket.on('error', (error: NodeJS.ErrnoException) => done({ error: error.code ?? error.message }));
    });
  }

  it('speaks TLS 1.3 and TLS 1.2 with the configured ciphers, HTTP/2 by ALPN, a verified certificate', async () => {
    const v13 = await handshake({ minVersion: 'TLSv1.3', ALPNProtocols: ['h2', 'http/1.1'] });
    assert.equal(v13.protocol, 'TLSv1.3', JSON.stringify(v13));
    assert.equal(v13.alpn, 'h2', 'HTTP/2 offered');
    const v12 = await handshake({ minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' });
    assert.equal(v12.protocol, 'TLSv1.2', JSON.stringify(v12));
    assert.equal(v12.cipher, 'ECDHE-RSA-AES256-GCM-SHA384');
    const dhe = await handshake({ maxVersion: 'TLSv1.2', ciphers: 'DHE-RSA-AES256-GCM-SHA384' });
    assert.equal(dhe.cipher, 'DHE-RSA-AES256-GCM-SHA384', `the DH parameters are loaded: ${JSON.stringify(dhe)}`);
    const weak = await handshake({ maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES128-SHA:AES128-GCM-SHA256' });
    assert.ok(weak.error, `a cipher outside the list is refused: ${JSON.stringify(weak)}`);
  });

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
    assert.equal(res.headers['x-request-id'], 'nginx-test-request-1');
    assert.equal(res.body.request_id, 'nginx-test-request-1');
    assert.match(String(res.headers['strict-transport-security']), /max-age=\d+/, 'HTTPS seen through X-Forwarded-Proto');
    const direct = await request('GET', `${app.url}/api/health`);
    assert.equal(direct.headers['strict-transport-security'], undefined, 'plain HTTP straight to the service gets no HSTS');

    const database = new SQLite(join(app.cwd, 'flokie.db'), { readonly: true, fileMustExist: true });
    try {
      let row: { ip: string | null } | undefined;
      for (let i = 0; i < 100 && !row; i++) {
        row = database.prepare("SELECT ip FROM security_events WHERE type = 'login_failure' AND request_id = ?").get('nginx-test-request-1') as typeof row;
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
        request('POST', `${httpsUrl}/api/auth/login`, { ca, from: '127.0.0.3', body: { username: `burst_${i}`, password: 'Wrong-Password-123' } }),
      ),
    );
    const statuses = attempts.map((r) => r.status);
    const limited = attempts.filter((r) => r.status === 429 || r.status === 503);
    const passed = statuses.filter((s) => s === 401).length;
    console.log(`# nginx login burst of 14: ${passed} reached the service, ${limited.length} refused by nginx`);
    assert.ok(limited.length >= 7, `statuses ${statuses.join(',')}`);
    assert.ok(passed <= 7, 'at most 1 + burst 5 (+1 refilled) reach the service');
    const refusal = limited[0]!;
    assert.equal(refusal.body.error.code, 'RATE_LIMIT_EXCEEDED');
    assert.equal(refusal.headers['retry-after'], '1');
    assert.equal(refusal.headers['ratelimit-limit'], undefined, 'answered by nginx, not the service');
    assert.match(readFileSync(join(dir, 'error.log'), 'utf8'), /limiting requests, excess: .* zone "login"/);
    const other = await request('POST', `${httpsUrl}/api/auth/login`, { ca, from: '127.0.0.4', body: { username: 'someone', password: 'Wrong-Password-123' } });
    assert.equal(other.status, 401, 'another client address is not limited');
  });

  it('redirects plain HTTP to HTTPS and rejects an oversized body in the envelope', async () => {
    const redirect = await request('GET', `${httpUrl}/api/health`);
    assert.equal(redirect.status, 308);
    assert.equal(redirect.headers.location, 'https://127.0.0.1/api/health');
    const big = await request('POST', `${httpsUrl}/api/auth/register`, { ca, from: '127.0.0.5', body: { bio: 'x'.repeat(200 * 1024) } });
    assert.equal(big.status, 413);
    assert.equal(big.body.error.code, 'PAYLOAD_TOO_LARGE');
  });
});
