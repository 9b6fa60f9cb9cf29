/**
 * `flokie check --url` (src/cli/remote-check.ts) against the real service serving HTTPS itself
 * (TLS_CERT_FILE / TLS_KEY_FILE with a certificate openssl makes here): a sound deployment passes;
 * the same service misconfigured (a foreign CORS origin, docs on, plain HTTP, an untrusted or
 * wrong-name certificate) fails or warns on exactly those items. Behind nginx:
 * test/integration/remote-check-nginx.test.ts.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli } from './helpers.js';
import { makeCertificate, statuses } from './remote-support.js';
import { startServer, type ServerProcess } from '../helpers/server.js';

/** The real server serving HTTPS itself (ready once /api/health answers over TLS). */
function startTlsServer(env: Record<string, string>, tlsFiles: { cert: string; key: string }): Promise<ServerProcess> {
  return startServer({ TLS_CERT_FILE: tlsFiles.cert, TLS_KEY_FILE: tlsFiles.key, ...env });
}

describe('flokie check --url against the service serving HTTPS itself', { timeout: 180_000 }, () => {
  let dir: string;
  let tlsFiles: { cert: string; key: string };
  let good: { port: number; stop(): Promise<unknown> };
  let url: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'flokie-remote-check-'));
    tlsFiles = makeCertificate(dir);
    good = await startTlsServer(
      { RATE_LIMIT_ENABLED: 'true', DATABASE_URL: `sqlite:${join(dir, 'good.db')}` },
      tlsFiles,
    );
    url = `https://localhost:${good.port}`;
  });
  after(async () => {
    await good?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a sound deployment passes every item but the absent plain-HTTP port', async () => {
    const result = await runCli(['check', '--url', url, '--ca', tlsFiles.cert], { env: {} });
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.match(
      result.stdout,
      /^PASS {2}Only TLS 1\.2 and 1\.3 are offered: refuses TLS 1\.0 and 1\.1; accepts TLSv1\.2, TLSv1\.3$/m,
    );
    assert.match(
      result.stdout,
      /^PASS {2}Security headers on an error answer: GET an unknown \/api path \(404\): HSTS max-age=31536000/m,
    );
    assert.match(result.stdout, /^PASS {2}Rate limiting is active: RateLimit-Limit: 100/m);
    assert.match(result.stdout, /^WARN {2}Plain HTTP redirects to HTTPS: http:\/\/localhost: ECONNREFUSED/m);
    assert.match(result.stderr, /12 checks: 11 pass, 1 warn, 0 fail/);
    const json = statuses((await runCli(['check', '--url', url, '--ca', tlsFiles.cert, '--json'], { env: {} })).stdout);
    for (const id of [
      'remote.https',
      'remote.certificate',
      'remote.tls',
      'remote.headers.api',
      'remote.headers.error',
      'remote.banners',
      'remote.cors',
      'remote.docs',
      'remote.health.detailed',
      'remote.ratelimit',
    ])
      assert.equal(json[id], 'pass', id);
  });

  it('an untrusted certificate fails; --insecure downgrades it to a warning; a wrong name fails', async () => {
    const untrusted = statuses((await runCli(['check', '--url', url, '--json'], { env: {} })).stdout);
    assert.equal(untrusted['remote.certificate'], 'fail');
    const insecure = await runCli(['check', '--url', url, '--insecure'], { env: {} });
    assert.match(
      insecure.stdout,
      /^WARN {2}The certificate is valid: not verified \(--insecure\): DEPTH_ZERO_SELF_SIGNED_CERT/m,
    );
    const other = makeCertificate(dir, 'other.example');
    const wrongName = await startTlsServer({ DATABASE_URL: `sqlite:${join(dir, 'wrong.db')}` }, other);
    try {
      const result = await runCli(['check', '--url', `https://localhost:${wrongName.port}`, '--ca', other.cert], {
        env: {},
      });
      assert.equal(result.code, 1);
      assert.match(result.stdout, /^FAIL {2}The certificate is valid: .*does not name localhost/m);
    } finally {
      await wrongName.stop();
    }
  });

  it('misconfigured: CORS allowing the foreign origin, public docs, plain HTTP', async () => {
    const bad = await startTlsServer(
      {
        DOCS_ENABLED: 'true',
        CORS_ORIGINS: 'https://flokie-check.invalid',
        DATABASE_URL: `sqlite:${join(dir, 'bad.db')}`,
      },
      tlsFiles,
    );
    try {
      const result = await runCli(['check', '--url', `https://localhost:${bad.port}`, '--ca', tlsFiles.cert], {
        env: {},
      });
      assert.equal(result.code, 1);
      assert.match(
        result.stdout,
        /^FAIL {2}CORS refuses a foreign origin: Access-Control-Allow-Origin: https:\/\/flokie-check\.invalid/m,
      );
      assert.match(result.stdout, /^WARN {2}API docs are not public: \/api\/openapi\.json 200/m);
    } finally {
      await bad.stop();
    }
    const plain = await startServer({ DATABASE_URL: `sqlite:${join(dir, 'plain.db')}` });
    try {
      const result = await runCli(['check', '--url', plain.url], { env: {} });
      assert.equal(result.code, 1);
      assert.match(
        result.stdout,
        /^FAIL {2}The API is served over HTTPS: http:\/\/127\.0\.0\.1:\d+ is not https:\/\//m,
      );
    } finally {
      await plain.stop();
    }
  });
});
