/**
 * The deployment files, checked for what they promise (no Docker engine runs here, and hadolint
 * cannot be installed from the npm registry or Debian): the Dockerfile is linted by
 * dockerfile-utils and parsed for a multi-stage build, a non-root user, a health check, nothing
 * secret baked in, and a runtime that only writes to its volume and /tmp; docker-compose.yml is
 * parsed for read-only roots, no-new-privileges, dropped capabilities and secrets coming only
 * from git-ignored env files; nginx.conf for the guide's TLS and rate-limit settings (it runs for
 * real in test/integration/nginx.test.ts).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { validate } from 'dockerfile-utils';
import { parse as parseYaml } from 'yaml';
import { parse as parseDotenv } from 'dotenv';
import { runChecks } from '../../src/cli/check.js';
import { loadConfig, SETTINGS } from '../../src/config/index.js';
import { TLS12_CIPHERS } from '../../src/http/tls.js';

const root = resolve(import.meta.dirname, '../..');
const read = (path: string) => readFileSync(join(root, path), 'utf8');

interface Instruction {
  keyword: string;
  args: string;
  line: number;
}

/** Dockerfile → instructions (continuation lines joined, comments dropped), split into stages. */
function parseDockerfile(text: string): Instruction[][] {
  const stages: Instruction[][] = [];
  let pending = '';
  let startLine = 0;
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    if (!pending && (line === '' || line.startsWith('#'))) return;
    if (!pending) startLine = index + 1;
    if (line.endsWith('\\')) {
      pending += line.slice(0, -1) + ' ';
      return;
    }
    const full = (pending + line).trim();
    pending = '';
    const [keyword = '', ...rest] = full.split(/\s+/);
    const instruction = { keyword: keyword.toUpperCase(), args: rest.join(' '), line: startLine };
    if (instruction.keyword === 'FROM') stages.push([]);
    if (stages.length) stages.at(-1)!.push(instruction);
  });
  return stages;
}

/** Names of settings whose values are secrets (the settings table marks them). */
const SECRET_ENV = new Set(
  Object.values(SETTINGS)
    .filter((s) => 'secret' in s && s.secret)
    .map((s) => s.env),
);
const SECRETISH = /SECRET|PASSWORD|PASSWD|TOKEN|_KEY$|DSN/i;

describe('Dockerfile', () => {
  const text = read('Dockerfile');
  const stages = parseDockerfile(text);
  const runtime = stages.at(-1)!;
  const find = (stage: Instruction[], keyword: string) => stage.filter((i) => i.keyword === keyword);

  it('passes the dockerfile-utils linter with no finding', () => {
    const findings = validate(text).map((d) => `line ${d.range.start.line + 1}: ${d.message}`);
    assert.deepEqual(findings, []);
  });

  it('is multi-stage: the toolchain stays in the build stage, the runtime is a slim image', () => {
    assert.ok(stages.length >= 2, 'at least a build and a runtime stage');
    const from = find(runtime, 'FROM')[0]!.args;
    const argDefault = /ARG NODE_IMAGE=(\S+)/.exec(text)?.[1] ?? '';
    const image = from.startsWith('${NODE_IMAGE}') ? argDefault : from;
    assert.match(image, /^node:20[-.\w]*-(slim|alpine)|^node:20-(bookworm-)?slim$/, `runtime image ${image}`);
    const buildRuns = stages
      .slice(0, -1)
      .flatMap((s) => find(s, 'RUN').map((i) => i.args))
      .join('\n');
    assert.match(buildRuns, /g\+\+/, 'build stage can compile better-sqlite3');
    assert.match(buildRuns, /npm ci/);
    assert.match(buildRuns, /npm prune --omit=dev/);
    for (const run of find(runtime, 'RUN'))
      assert.doesNotMatch(run.args, /apt-get install|g\+\+|npm (ci|install)/, `runtime stage line ${run.line}`);
    for (const copy of find(runtime, 'COPY').filter((c) => /--from=/.test(c.args))) {
      assert.doesNotMatch(copy.args, /\/app\/src\b|\s\.\s/, 'runtime copies built output, not the source tree');
    }
  });

  it('runs as a fixed non-root user', () => {
    const users = find(runtime, 'USER');
    assert.ok(users.length > 0, 'runtime stage sets USER');
    const user = users.at(-1)!.args.split(':')[0]!;
    assert.notEqual(user, 'root');
    assert.notEqual(user, '0');
    assert.match(user, /^\d+$/, 'numeric uid, so runAsNonRoot can verify it');
    const created = find(runtime, 'RUN')
      .map((r) => r.args)
      .join('\n');

    assert.match(created, new RegExp(`useradd [^\\n]*--uid ${user}\\b`), 'the uid is created in the image');
  });

  it('has a HEALTHCHECK that calls /api/health with node (no curl in slim images)', () => {
    const check = find(runtime, 'HEALTHCHECK')[0];
    assert.ok(check, 'HEALTHCHECK present');
    assert.match(check.args, /CMD \["node", "deploy\/healthcheck\.mjs"\]/);
    assert.match(read('deploy/healthcheck.mjs'), /\/api\/health'/);
  });

  it('bakes in no secret and starts node directly', () => {
    for (const instruction of runtime
      .concat(...stages.slice(0, -1))
      .filter((i) => i.keyword === 'ENV' || i.keyword === 'ARG')) {
      for (const [, name] of instruction.args.matchAll(/(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)[=\s]/g)) {
        assert.ok(
          !SECRET_ENV.has(name!) && !SECRETISH.test(name!),
          `${instruction.keyword} ${name} on line ${instruction.line}`,
        );
      }
    }
    for (const copy of stages.flat().filter((i) => i.keyword === 'COPY'))
      assert.doesNotMatch(copy.args, /\.env|\.pem|\.key\b/, `no secret file copied (line ${copy.line})`);
    const cmd = find(runtime, 'CMD').at(-1)!.args;
    assert.match(cmd, /^\["node", "dist\/server\.js"\]$/);
    assert.match(
      find(runtime, 'ENV')
        .map((e) => e.args)
        .join(' '),
      /NODE_ENV=production/,
    );
  });

  it('writes only to its /app/var volume (and /tmp): every default write path is under var/', () => {
    assert.deepEqual(
      find(runtime, 'WORKDIR').map((w) => w.args),
      ['/app'],
    );
    assert.match(find(runtime, 'VOLUME')[0]?.args ?? '', /"\/app\/var"/);
    const runs = find(runtime, 'RUN')
      .map((r) => r.args)
      .join('\n');
    assert.match(runs, /chown flokie:flokie \/app\/var/);
    assert.match(SETTINGS.DATABASE_URL.default, /^sqlite:var\//);
    assert.match(SETTINGS.MAIL_OUTBOX_DIR.default, /^var\//);
  });

  it('npm ci can run its prepare script in the build stage: the script is copied before `RUN npm ci`', () => {
    const prepare = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts.prepare!;
    const script = /^node (\S+)$/.exec(prepare)?.[1];
    assert.ok(script, `prepare runs one node script: ${prepare}`);
    const build = stages[0]!;
    const install = build.findIndex((i) => i.keyword === 'RUN' && /npm ci/.test(i.args));
    const copied = build
      .slice(0, install)
      .filter((i) => i.keyword === 'COPY')
      .flatMap((i) => i.args.split(/\s+/).slice(0, -1));
    assert.ok(copied.includes(script), `${script} is copied before npm ci (copied: ${copied.join(' ')})`);
  });

  it('copies only files that exist and that .dockerignore lets through; .dockerignore keeps secrets out', () => {
    const ignore = read('.dockerignore')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    assert.equal(ignore[0], '*', 'allow-list: everything is excluded first');
    for (const excluded of ['**/.env*', '**/*.pem', '**/*.key'])
      assert.ok(ignore.includes(excluded), `.dockerignore has ${excluded}`);
    const allowed = ignore.filter((l) => l.startsWith('!')).map((l) => l.slice(1).replace(/\/$/, ''));
    const sources = stages
      .flat()
      .filter((i) => i.keyword === 'COPY' && !/--from=/.test(i.args))
      .flatMap((i) =>
        i.args
          .split(/\s+/)
          .filter((a) => !a.startsWith('--'))
          .slice(0, -1),
      );
    assert.ok(sources.length >= 4);
    for (const source of sources) {
      assert.ok(existsSync(join(root, source)), `COPY source ${source} exists`);
      assert.ok(
        allowed.some((a) => source === a || source.startsWith(a + '/')),
        `COPY source ${source} is allowed by .dockerignore`,
      );
    }
  });
});

/** The parts of a docker-compose.yml service these tests read. */
interface ComposeService {
  image: string;
  command?: string[];
  environment: Record<string, string>;
  env_file?: string[];
  read_only?: boolean;
  privileged?: boolean;
  tmpfs?: string[];
  security_opt?: string[];
  cap_drop?: string[];
  cap_add?: string[];
  ports?: string[];
  volumes: string[];
  /** A list of names, or (nginx) names with a fixed address each. */
  networks: string[] | Record<string, { ipv4_address?: string } | null>;
  healthcheck: { test: string[] };
  depends_on: Record<string, { condition: string }>;
}

describe('docker-compose.yml', () => {
  const compose = parseYaml(read('docker-compose.yml'), { merge: true }) as {
    services: Record<'app' | 'migrate' | 'postgres' | 'redis' | 'nginx', ComposeService> &
      Record<string, ComposeService>;
    networks: Record<'backend' | 'edge', { internal?: boolean }>;
  };
  const services = compose.services;

  it('runs the app with PostgreSQL, Redis and nginx', () => {
    for (const name of ['app', 'postgres', 'redis', 'nginx']) assert.ok(services[name], `service ${name}`);
    assert.match(services.postgres.image, /^postgres:/);
    assert.match(services.redis.image, /^redis:/);
    assert.match(services.nginx.image, /^nginx:/);
  });

  it('hardens every service: read-only root, tmpfs /tmp, no-new-privileges, all capabilities dropped', () => {
    for (const [name, service] of Object.entries(services)) {
      assert.equal(service.read_only, true, `${name}.read_only`);
      assert.ok(service.tmpfs?.includes('/tmp'), `${name}.tmpfs has /tmp`);
      assert.ok(service.security_opt?.includes('no-new-privileges:true'), `${name}.security_opt`);
      assert.deepEqual(service.cap_drop, ['ALL'], `${name}.cap_drop`);
      for (const cap of service.cap_add ?? [])
        assert.ok(!['SYS_ADMIN', 'NET_ADMIN', 'SYS_PTRACE', 'ALL'].includes(cap), `${name} adds ${cap}`);
      assert.notEqual(service.privileged, true, `${name} is not privileged`);
    }
    assert.equal(services.app.cap_add, undefined, 'the app needs no capability at all');
  });

  it('takes secrets only from git-ignored env files, never inline', () => {
    for (const [name, service] of Object.entries(services)) {
      for (const key of Object.keys(service.environment ?? {})) {
        assert.ok(
          !SECRET_ENV.has(key) && !SECRETISH.test(key),
          `${name}.environment.${key} must come from an env file`,
        );
      }
      for (const file of service.env_file ?? []) {
        const ignored = spawnSync('git', ['check-ignore', '-q', file], { cwd: root });
        assert.equal(ignored.status, 0, `${file} is ignored by git`);
      }
    }
    assert.ok(services.app.env_file?.length, 'app reads an env file');
  });

  it('publishes only nginx; the database and Redis are on an internal network', () => {
    for (const [name, service] of Object.entries(services))
      if (name !== 'nginx') assert.equal(service.ports, undefined, `${name} publishes no port`);
    assert.equal(compose.networks.backend.internal, true);
    for (const name of ['postgres', 'redis'] as const) assert.deepEqual(services[name].networks, ['backend']);
  });

  it('wires the app for scale-out behind the proxy', () => {
    const env = services.app.environment;
    assert.equal(env.AUTO_MIGRATE, 'false', 'the limited role cannot migrate; the migrate job does');
    assert.equal(
      env.TRUSTED_PROXIES,
      (services.nginx.networks as Record<string, { ipv4_address: string }>).edge!.ipv4_address,
      'only nginx is a trusted proxy',
    );
    assert.ok(Number(env.WEB_CONCURRENCY) >= 1);
    assert.deepEqual(services.app.healthcheck.test, ['CMD', 'node', 'deploy/healthcheck.mjs']);
    assert.ok(
      services.app.volumes.some((v: string) => v.endsWith(':/app/var')),
      'a volume for /app/var',
    );
    assert.equal(services.app.depends_on.migrate?.condition, 'service_completed_successfully');
    assert.deepEqual(services.migrate.command, ['node', 'dist/cli/index.js', 'migrate', 'up']);
    assert.ok(existsSync(join(root, 'src/cli/migrate.ts')));
  });

  it('mounts only files the repository or its generators provide', () => {
    const certs = ['ca.pem', 'fullchain.pem', 'privkey.pem', 'postgres.crt', 'postgres.key'];
    for (const [name, service] of Object.entries(services)) {
      for (const volume of service.volumes ?? []) {
        const source = String(volume).split(':')[0]!;
        if (!source.startsWith('./')) continue;
        const generated =
          source.startsWith('./deploy/certs/') && certs.includes(source.slice('./deploy/certs/'.length));
        assert.ok(generated || existsSync(join(root, source)), `${name} mounts ${source}`);
      }
    }
  });

  it('deploy/generate-env.mjs writes every env file, mode 600, with secrets production accepts', () => {
    const dir = mkdtempSync(join(tmpdir(), 'flokie-env-'));
    try {
      const run = () =>
        spawnSync(process.execPath, [join(root, 'deploy/generate-env.mjs'), '--dir', dir], { encoding: 'utf8' });
      assert.equal(run().status, 0);
      const wanted = new Set(
        Object.values(services)
          .flatMap((s) => s.env_file ?? [])
          .map((f: string) => f.replace(/^deploy\//, '')),
      );
      for (const file of wanted) {
        assert.ok(existsSync(join(dir, file)), `${file} generated`);
        assert.equal(statSync(join(dir, file)).mode & 0o777, 0o600, `${file} is private`);
      }
      const again = run();
      assert.notEqual(again.status, 0, 'never overwrites without --force');
      const env = parseDotenv(readFileSync(join(dir, 'production.env')));
      const pg = parseDotenv(readFileSync(join(dir, 'postgres.env')));
      const config = loadConfig({ ...env, ...services.app.environment }, { dotenv: false, cwd: dir });
      assert.equal(config.isProduction, true);
      assert.equal(new URL(config.DATABASE_URL).username, 'flokie_app');
      assert.equal(decodeURIComponent(new URL(config.DATABASE_URL).password), pg.FLOKIE_APP_PASSWORD);
      assert.equal(new URL(config.DATABASE_URL).searchParams.get('sslmode'), 'verify-full');
      const migrator = parseDotenv(readFileSync(join(dir, 'migrator.env')));
      const migratorConfig = loadConfig({ ...migrator, ...services.migrate.environment }, { dotenv: false, cwd: dir });
      assert.equal(migratorConfig.isProduction, true, 'the migrate job passes production validation');
      assert.equal(new URL(migratorConfig.DATABASE_URL).username, 'flokie_migrator');
      assert.notEqual(migrator.JWT_SECRET_KEY, env.JWT_SECRET_KEY, "the migrate job never holds the service's keys");
      assert.notEqual(env.SECRET_KEY, env.JWT_SECRET_KEY);
      // The pre-deployment checklist (`flokie check`) finds nothing to fail in this configuration.
      const failed = runChecks(config, {
        cwd: dir,
        env: { ...env, ...services.app.environment },
        skipGit: true,
      }).filter((r) => r.status === 'fail');
      assert.deepEqual(
        failed.map((r) => `${r.id}: ${r.detail}`),
        [],
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('deploy/nginx.conf', () => {
  const conf = read('deploy/nginx.conf').replace(/#.*$/gm, '');

  const directive = (name: string) =>
    [...conf.matchAll(new RegExp(`^\\s*${name}\\s+([^;]+);`, 'gm'))].map((m) => m[1]!.trim());
  const location = (path: string) =>
    new RegExp(`location ${path.replace(/[/.]/g, '\\$&')} \\{([^}]*)\\}`).exec(conf)?.[1] ?? '';

  it("has the guide's TLS settings: TLS 1.2/1.3 only, the service's own ECDHE AEAD suites, no tickets, HTTP/2", () => {
    assert.deepEqual(directive('ssl_protocols'), ['TLSv1.2 TLSv1.3']);
    assert.deepEqual(directive('ssl_prefer_server_ciphers'), ['off']);
    assert.deepEqual(directive('ssl_session_tickets'), ['off']);
    const ciphers = directive('ssl_ciphers')[0]!.split(':');
    assert.ok(ciphers.includes('ECDHE-RSA-AES256-GCM-SHA384'));
    assert.deepEqual(ciphers, TLS12_CIPHERS.split(':'), 'the same list as src/http/tls.ts');
    for (const cipher of ciphers) assert.match(cipher, /^ECDHE-.*(GCM|POLY1305)/, `${cipher}: forward secrecy, AEAD`);
    assert.equal(directive('ssl_dhparam').length, 0, 'no DHE, so no DH parameters');
    assert.match(read('deploy/nginx/listen-https.conf'), /^listen 443 ssl http2;$/m);
    for (const place of ['upstream.conf', 'listen-http.conf', 'listen-https.conf', 'security-headers.conf']) {
      assert.ok(directive('include').includes(`flokie/${place}`), `includes flokie/${place}`);
    }
  });

  it("has the guide's limit_req zones: api 10r/s burst 20, login 1r/s burst 5", () => {
    const zones = directive('limit_req_zone');
    assert.ok(zones.includes('$binary_remote_addr zone=api:10m rate=10r/s'));
    assert.ok(zones.includes('$binary_remote_addr zone=login:10m rate=1r/s'));
    assert.match(location('/api/'), /limit_req zone=api burst=20 nodelay;/);
    assert.match(location('= /api/auth/login'), /limit_req zone=login burst=5 nodelay;/);
  });

  it('forwards the client address (replacing any it sent), protocol and request id', () => {
    const headers = directive('proxy_set_header');
    assert.ok(headers.includes('X-Forwarded-For $remote_addr'));
    assert.ok(headers.includes('X-Forwarded-Proto $scheme'));
    assert.ok(headers.some((h) => h.startsWith('X-Request-ID ')));
    assert.ok(!headers.some((h) => h.includes('$proxy_add_x_forwarded_for')), 'a client cannot prepend addresses');
  });
});
