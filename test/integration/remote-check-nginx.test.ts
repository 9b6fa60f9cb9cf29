/**
 * `flokie check --url` against the shipped deploy/nginx.conf (run unmodified, with test/helpers/nginx.ts
 * as test/integration/nginx.test.ts does) in front of a real service: every item passes,
 * including the plain-HTTP redirect, TLS versions and headers on answers that went through nginx;
 * and a deployment whose proxy is not trusted by the service (no HSTS on the proxied answers) fails.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { runCli } from '../cli/helpers.js';
import { ensureNginx, nginxArgs, nginxFolder } from '../helpers/nginx.js';
import { statuses } from '../cli/remote-support.js';
import { freePort, request, ROOT, sleep, startServer, type ServerProcess } from '../helpers/server.js';

describe('flokie check --url through nginx (deploy/nginx.conf)', { timeout: 300_000 }, () => {
  let dir: string;
  let certs: string;
  let app: ServerProcess;
  let nginx: ChildProcess | undefined;
  let ports: { app: number; http: number; https: number };
  let nginxDir = '';

  async function startNginx(appPort: number) {
    ports = { app: appPort, http: await freePort(), https: await freePort() };
    const folder = mkdtempSync(join(dir, 'nginx-'));
    nginxFolder(folder, ports, certs);
    nginx = spawn(ensureNginx(), [...nginxArgs(folder), '-g', 'daemon off;'], { stdio: 'ignore' });
    nginxDir = folder;
    const ca = readFileSync(join(certs, 'ca.pem'), 'utf8');
    for (let i = 0; i < 100; i++) {
      if (
        (await request('GET', `https://127.0.0.1:${ports.https}/api/health`, { ca }).catch(() => undefined))?.status ===
        200
      )
        return;
      await sleep(100);
    }
    throw new Error(`nginx did not start: ${readFileSync(join(nginxDir, 'error.log'), 'utf8')}`);
  }
  async function stopNginx() {
    if (!nginx) return;
    const exited = new Promise((done) => nginx!.once('exit', done));
    nginx.kill('SIGQUIT');
    await exited;
    nginx = undefined;
  }
  const check = (...extra: string[]) =>
    runCli(
      [
        'check',
        '--url',
        `https://localhost:${ports.https}`,
        '--http-url',
        `http://localhost:${ports.http}`,
        '--ca',
        join(certs, 'ca.pem'),
        ...extra,
      ],
      { env: {} },
    );

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'flokie-remote-nginx-'));
    certs = join(dir, 'certs');
    const made = spawnSync('sh', [join(ROOT, 'deploy/make-certs.sh'), certs, 'localhost'], { encoding: 'utf8' });
    assert.equal(made.status, 0, made.stderr);
    const appDir = join(dir, 'app');
    mkdirSync(appDir);
    app = await startServer(
      { DATABASE_URL: `sqlite:${join(appDir, 'flokie.db')}`, TRUSTED_PROXIES: '127.0.0.1', RATE_LIMIT_ENABLED: 'true' },
      { cwd: appDir },
    );
  });
  after(async () => {
    await stopNginx();
    await app?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('passes every item through the shipped proxy configuration', async () => {
    await startNginx(app.port);
    const result = await check();
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.match(
      result.stdout,
      /^PASS {2}Plain HTTP redirects to HTTPS: http:\/\/localhost:\d+ answers 308 → https:\/\/localhost\/api\/health$/m,
    );
    assert.match(
      result.stdout,
      /^PASS {2}Only TLS 1\.2 and 1\.3 are offered: refuses TLS 1\.0 and 1\.1; accepts TLSv1\.2, TLSv1\.3$/m,
    );
    assert.match(result.stdout, /^PASS {2}No version banners: Server: nginx, no X-Powered-By$/m);
    assert.match(result.stdout, /^PASS {2}Security headers on an error answer: .*HSTS max-age=31536000/m);
    assert.match(result.stderr, /12 checks: 12 pass, 0 warn, 0 fail/);
    console.log(`# flokie check --url through nginx:\n${result.stdout.replace(/^/gm, '#   ')}`);
  });

  it('fails when the service does not trust the proxy: proxied answers carry no HSTS', async () => {
    await stopNginx();
    const untrusting = await startServer({
      DATABASE_URL: `sqlite:${join(dir, 'untrusting.db')}`,
      RATE_LIMIT_ENABLED: 'true',
    });
    try {
      await startNginx(untrusting.port);
      const result = await check('--json');
      assert.equal(result.code, 1);
      const status = statuses(result.stdout);
      assert.equal(status['remote.headers.api'], 'fail');
      assert.equal(status['remote.headers.error'], 'fail');
      assert.equal(status['remote.tls'], 'pass');
    } finally {
      await stopNginx();
      await untrusting.stop();
    }
  });
});
