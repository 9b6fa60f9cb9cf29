/**
 * What the Dockerfile's runtime stage promises, run without Docker: the compiled app
 * (`tsc -p tsconfig.build.json`, as the build stage does) started with the image's command
 * (`node dist/server.js`) as an unprivileged uid in a directory laid out like /app, where only
 * var/ (the image's volume) and /tmp are writable — the situation of `docker run --read-only
 * --tmpfs /tmp` with a volume on /app/var. It must start in production mode with two workers,
 * serve sign-up and login (database and mail outbox written under var/), answer the image's
 * HEALTHCHECK script, and stop cleanly. Needs root to switch user (setpriv); skipped otherwise.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { freePort, request, ROOT, sleep } from '../helpers/server.js';
import { generateSecret } from '../../src/config/secret-strength.js';

const NOBODY = 65534;
const isRoot = process.getuid?.() === 0;
const hasSetpriv = spawnSync('sh', ['-c', 'command -v setpriv'], { encoding: 'utf8' }).status === 0;

describe(
  'the runtime image layout, read-only but for var/ and /tmp',
  { timeout: 300_000, skip: (!isRoot || !hasSetpriv) && 'needs root and setpriv to run as an unprivileged uid' },
  () => {
    it('runs compiled as non-root, serves, writes only under var/, passes its health check, stops', async () => {
      const top = mkdtempSync(join(tmpdir(), 'flokie-image-'));
      chmodSync(top, 0o755);
      const app = join(top, 'app');
      try {
        mkdirSync(join(app, 'deploy'), { recursive: true });
        const build = spawnSync(
          process.execPath,
          [
            join(ROOT, 'node_modules/typescript/bin/tsc'),
            '-p',
            join(ROOT, 'tsconfig.build.json'),
            '--outDir',
            join(app, 'dist'),
          ],
          { encoding: 'utf8' },
        );
        assert.equal(build.status, 0, build.stdout + build.stderr);
        copyFileSync(join(ROOT, 'package.json'), join(app, 'package.json'));
        copyFileSync(join(ROOT, 'deploy/healthcheck.mjs'), join(app, 'deploy/healthcheck.mjs'));
        symlinkSync(join(ROOT, 'node_modules'), join(app, 'node_modules'));
        mkdirSync(join(app, 'var'));
        chownSync(join(app, 'var'), NOBODY, NOBODY);
        const before = readdirSync(app).sort();

        const port = await freePort();
        const env = {
          PATH: process.env.PATH ?? '',
          NODE_ENV: 'production',
          HOST: '127.0.0.1',
          PORT: String(port),
          WEB_CONCURRENCY: '2',
          SECRET_KEY: generateSecret(),
          JWT_SECRET_KEY: generateSecret(),
          LOG_LEVEL: 'warn',
          HOME: '/nonexistent',
        };
        const asNobody = (args: string[]) => [
          '--reuid',
          String(NOBODY),
          '--regid',
          String(NOBODY),
          '--clear-groups',
          ...args,
        ];
        const child = spawn('setpriv', asNobody([process.execPath, 'dist/server.js']), {
          cwd: app,
          env,
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let output = '';
        child.stdout.on('data', (c: Buffer) => (output += c.toString()));
        child.stderr.on('data', (c: Buffer) => (output += c.toString()));
        const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
        try {
          const url = `http://127.0.0.1:${port}`;
          let healthy = false;
          for (let i = 0; i < 600 && !healthy && child.exitCode === null; i++) {
            healthy = (await request('GET', `${url}/api/health`).catch(() => undefined))?.status === 200;
            if (!healthy) await sleep(100);
          }
          assert.ok(healthy, `not healthy: ${output}`);

          const probe = () =>
            spawnSync('setpriv', asNobody([process.execPath, 'deploy/healthcheck.mjs']), {
              cwd: app,
              env,
              encoding: 'utf8',
            });
          assert.equal(probe().status, 0, 'the image HEALTHCHECK passes');

          const user = {
            username: `image_${Date.now()}`,
            email: `image${Date.now()}@example.com`,
            password: 'Velvet-Orbit-Harbor-42',
          };
          assert.equal((await request('POST', `${url}/api/auth/register`, { body: user })).status, 201);
          const login = await request('POST', `${url}/api/auth/login`, {
            body: { username: user.username, password: user.password },
          });
          assert.equal(login.status, 200, login.text);
          assert.equal(
            (await request('GET', `${url}/api/auth/me`, { token: login.body.data.access_token })).status,
            200,
          );

          child.kill('SIGTERM');
          assert.equal(await exited, 0, output);
          assert.doesNotMatch(output, /EACCES|EROFS|read-only/i, 'nothing tried to write outside var/ and /tmp');
          assert.deepEqual(readdirSync(app).sort(), before, 'nothing new beside var/');
          const written = readdirSync(join(app, 'var'));
          assert.ok(written.includes('flokie.db'), `var/ holds the database: ${written.join(', ')}`);
          for (let i = 0; i < 50 && !readdirSync(join(app, 'var')).includes('outbox'); i++) await sleep(100);
          assert.ok(
            readdirSync(join(app, 'var', 'outbox')).some((f) => f.endsWith('.eml')),
            'the verification mail went to var/outbox',
          );
          assert.notEqual(probe().status, 0, 'the HEALTHCHECK fails once the service is gone');
        } finally {
          if (child.exitCode === null) child.kill('SIGKILL');
        }
      } finally {
        rmSync(top, { recursive: true, force: true });
      }
    });
  },
);
