/**
 * How `npx flokie` starts: bin/flokie.js runs the compiled CLI when dist/ is at least as new as
 * src/, the sources through tsx otherwise (never stale code); scripts/compile.mjs (run by npm after
 * `npm ci`) writes a dist/ that works. Start-up time itself is measured, not tested (see README).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { BIN, ROOT } from './helpers.js';
import { VERSION } from '../../src/core/version.js';
import { createTestApp } from '../helpers/app.js';

describe('bin/flokie.js picks compiled code only when it is up to date', () => {
  const dir = mkdtempSync(join(tmpdir(), 'flokie-bin-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'bin'));
  writeFileSync(join(dir, 'package.json'), '{"type": "module"}\n');
  mkdirSync(join(dir, 'src', 'cli'), { recursive: true });
  copyFileSync(BIN, join(dir, 'bin', 'flokie.js'));
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  writeFileSync(join(dir, 'src', 'cli', 'index.ts'), "const where: string = 'sources';\nconsole.log(where);\n");
  const run = () => spawnSync(process.execPath, [join(dir, 'bin', 'flokie.js')], { encoding: 'utf8' });
  const at = (path: string, seconds: number) => utimesSync(path, seconds, seconds);

  it('no dist/: the sources', () => {
    assert.equal(run().stdout.trim(), 'sources');
  });

  it('dist/ newer than every source: dist/; a source edited since: the sources again', () => {
    mkdirSync(join(dir, 'dist', 'cli'), { recursive: true });
    writeFileSync(join(dir, 'dist', 'cli', 'index.js'), "console.log('compiled');\n");
    at(join(dir, 'src', 'cli', 'index.ts'), 1_000_000);
    at(join(dir, 'dist', 'cli', 'index.js'), 2_000_000);
    assert.equal(run().stdout.trim(), 'compiled');
    mkdirSync(join(dir, 'src', 'deep', 'er'), { recursive: true });
    writeFileSync(join(dir, 'src', 'deep', 'er', 'edited.ts'), 'export {};\n');
    at(join(dir, 'src', 'deep', 'er', 'edited.ts'), 3_000_000);
    assert.equal(run().stdout.trim(), 'sources');
  });
});

describe('scripts/compile.mjs', () => {
  const outdir = join(ROOT, 'var', `test-compile-${process.pid}`);
  after(() => rmSync(outdir, { recursive: true, force: true }));

  it('transpiles src/ into a dist/ whose CLI runs', () => {
    const compile = spawnSync(process.execPath, [join(ROOT, 'scripts', 'compile.mjs'), '--outdir', outdir], {
      encoding: 'utf8',
    });
    assert.equal(compile.status, 0, compile.stderr);
    assert.match(compile.stdout, /^compile: \d+ files to /);
    const help = spawnSync(process.execPath, [join(outdir, 'cli', 'index.js'), '--help'], {
      encoding: 'utf8',
      cwd: ROOT,
    });
    assert.equal(help.status, 0, help.stderr);
    assert.match(help.stdout, /Usage: flokie/);
    for (const command of ['users', 'tokens', 'ratelimit', 'secrets', 'check', 'events'])
      assert.match(help.stdout, new RegExp(`\\n  ${command} `));
  });
});

describe('one version everywhere', () => {
  const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };

  it("`flokie --version` prints package.json's version, however the CLI was started", () => {
    // npm sets npm_package_version only under `npm run`; a stale or foreign value must not leak in.
    const env = { ...process.env, npm_package_version: '9.9.9' };
    const out = spawnSync(process.execPath, [BIN, '--version'], { encoding: 'utf8', env });
    assert.equal(out.stdout.trim(), version);
  });

  it('the health answer and the OpenAPI document carry the same version', async () => {
    assert.equal(VERSION, version);
    const t = await createTestApp();
    try {
      const health = (await t.app.inject({ method: 'GET', url: '/api/health' })).json() as { version: string };
      assert.equal(health.version, version);
      const doc = (await t.app.inject({ method: 'GET', url: '/api/openapi.json' })).json() as {
        info: { version: string };
      };
      assert.equal(doc.info.version, version);
    } finally {
      await t.close();
    }
  });
});
