/** `flokie check` on crafted configurations, and the production start refusing a critical failure. */
import { randomBytes } from 'node:crypto';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { criticalFailures, runChecklist, runChecks, type CheckResult } from '../../src/cli/check.js';
import { inspectConfig, loadConfig } from '../../src/config/index.js';
import { generateSecret } from '../../src/config/secret-strength.js';
import { RETENTION } from '../../src/modules/retention/retention.js';
import { cliEnv, ROOT, runCli } from './helpers.js';

// Generated per run: a secret written in the repository is public, so production refuses it.
const STRONG = { SECRET_KEY: generateSecret(), JWT_SECRET_KEY: generateSecret() };

/** A production deployment done right. */
const GOOD: Record<string, string> = {
  NODE_ENV: 'production',
  ...STRONG,
  DATABASE_URL: 'postgresql://flokie:Rq8vT2mW9xL4nB7cY3kJ@db.internal.example.com:5432/flokie?sslmode=require',
  TRUSTED_PROXIES: '10.0.0.2',
  PUBLIC_URL: 'https://api.example.com',
  CORS_ORIGINS: 'https://app.example.com',
  SENTRY_DSN: 'https://publickey@o1.ingest.sentry.io/42',
  LOG_LEVEL: 'info',
  RATE_LIMIT_ENABLED: 'true',
  DOCS_ENABLED: 'false',
};

/** Everything the guide warns about. */
const BAD: Record<string, string> = {
  NODE_ENV: 'development',
  SECRET_KEY: 'changeme',
  JWT_SECRET_KEY: 'changeme',
  DATABASE_URL: 'postgresql://flokie:pw@db.example.com:5432/flokie',
  CORS_ORIGINS: '*',
  CORS_SUPPORTS_CREDENTIALS: 'false',
  RATE_LIMIT_ENABLED: 'false',
  WTF_CSRF_ENABLED: 'false',
  HSTS_MAX_AGE: '0',
  LOG_LEVEL: 'silent',
  SENTRY_DSN: 'not a dsn',
  JWT_ACCESS_TOKEN_EXPIRES_HOURS: '12',
  MIN_PASSWORD_LENGTH: '6',
};

const byId = (results: CheckResult[]) => Object.fromEntries(results.map((r) => [r.id, r]));

function gitRepo(gitignore: string | null, tracked: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'flokie-check-'));
  spawnSync('git', ['init', '-q'], { cwd: dir });
  if (gitignore !== null) writeFileSync(join(dir, '.gitignore'), gitignore);
  for (const [name, content] of Object.entries(tracked)) {
    writeFileSync(join(dir, name), content);
    spawnSync('git', ['add', '-f', name], { cwd: dir });
  }
  return dir;
}

describe('flokie check', () => {
  const dirs: string[] = [];
  let goodRepo: string;
  let badRepo: string;
  before(() => {
    goodRepo = gitRepo('.env\n*.key\n');
    badRepo = gitRepo('node_modules/\n', { '.env': 'SECRET_KEY=x\n', 'server.key': 'key' });
    dirs.push(goodRepo, badRepo);
  });
  after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  it('passes a well-configured production deployment', () => {
    const results = runChecks(loadConfig(GOOD, { dotenv: false }), { env: GOOD, cwd: goodRepo });
    const failed = results.filter((r) => r.status === 'fail');
    assert.deepEqual(failed, []);
    const r = byId(results);
    for (const id of [
      'secret.SECRET_KEY',
      'secret.JWT_SECRET_KEY',
      'secret.unique',
      'git.ignore',
      'database.tls',
      'network.cors',
      'network.hsts',
      'ratelimit.enabled',
      'monitoring.sentry',
      'debug.off',
      'logging.level',
    ]) {
      assert.equal(r[id]?.status, 'pass', `${id}: ${r[id]?.detail}`);
    }
  });

  it('fails each item of a crafted bad configuration', () => {
    const results = runChecks(loadConfig(BAD, { dotenv: false }), { env: BAD, cwd: badRepo });
    const r = byId(results);
    for (const id of [
      'secret.SECRET_KEY',
      'secret.JWT_SECRET_KEY',
      'secret.unique',
      'git.ignore',
      'database.tls',
      'network.cors',
      'network.hsts',
      'network.csrf',
      'ratelimit.enabled',
      'logging.level',
      'monitoring.sentry',
      'debug.off',
      'passwords.policy',
    ]) {
      assert.equal(r[id]?.status, 'fail', `${id} should fail: ${r[id]?.detail}`);
    }
    assert.equal(r['tokens.access']!.status, 'warn');
    assert.match(r['git.ignore']!.detail, /\.env is not ignored/);
    assert.match(r['git.ignore']!.detail, /server\.key/);
    assert.match(r['database.tls']!.detail, /sslmode=require/);
  });

  it('tells a local database without TLS (warn) from a remote one (fail); a missing Sentry is a warning', () => {
    const local = {
      ...GOOD,
      DATABASE_URL: 'postgresql://flokie:Rq8vT2mW9xL4nB7cY3kJ@127.0.0.1:5432/flokie',
      SENTRY_DSN: '',
    };
    const r = byId(runChecks(loadConfig(local, { dotenv: false }), { env: local, cwd: goodRepo }));
    assert.equal(r['database.tls']!.status, 'warn');
    assert.equal(r['monitoring.sentry']!.status, 'warn');
    const mysql = { ...GOOD, DATABASE_URL: 'mysql://flokie:Rq8vT2mW9xL4nB7cY3kJ@db.example.com/flokie' };
    assert.equal(
      byId(runChecks(loadConfig(mysql, { dotenv: false }), { env: mysql, cwd: goodRepo }))['database.tls']!.status,
      'fail',
    );
  });

  it('reads secrets from .env like the service does, and sees a secret equal to the database password', () => {
    const dir = gitRepo('.env\n*.key\n');
    dirs.push(dir);
    writeFileSync(join(dir, '.env'), `SECRET_KEY=${STRONG.SECRET_KEY}\nJWT_SECRET_KEY=${STRONG.JWT_SECRET_KEY}\n`);
    const env = {
      NODE_ENV: 'production',
      DATABASE_URL: `postgresql://u:${STRONG.SECRET_KEY}@db.example.com/x?sslmode=require`,
    };
    const config = loadConfig(env, { cwd: dir });
    const r = byId(runChecks(config, { env, cwd: dir }));
    assert.equal(r['secret.SECRET_KEY']!.status, 'pass');
    assert.equal(r['secret.unique']!.status, 'fail');
  });

  it('the command prints a line per item and exits non-zero on a failure, zero otherwise', async () => {
    const bad = await runCli(['check'], { env: BAD, cwd: badRepo });
    assert.equal(bad.code, 1);
    const lines = bad.stdout.trim().split('\n');
    assert.ok(lines.length >= 15);
    assert.ok(
      lines.every((l) => /^(PASS|WARN|FAIL)  /.test(l)),
      bad.stdout,
    );
    assert.match(bad.stdout, /^FAIL {2}CORS is restricted/m);
    assert.match(bad.stderr, /\d+ checks: \d+ pass, \d+ warn, \d+ fail/);
    assert.ok(!bad.stdout.includes('changeme'), 'secret values are never printed');

    const good = await runCli(['check'], { env: GOOD, cwd: goodRepo });
    assert.equal(good.code, 0, good.stdout + good.stderr);
    assert.ok(!good.stdout.includes('FAIL'));
    assert.ok(!good.stdout.includes(STRONG.SECRET_KEY) && !good.stdout.includes('Rq8vT2mW9xL4nB7cY3kJ'));
    const json = await runCli(['check', '--json'], { env: GOOD, cwd: goodRepo });
    assert.ok(
      json.stdout
        .trim()
        .split('\n')
        .every((l) => ['pass', 'warn'].includes(JSON.parse(l).status)),
    );
  });

  it('invalid settings: every checklist item still listed, one FAIL line per invalid setting, exit 1', async () => {
    const env = { ...GOOD, PORT: 'not-a-port', HSTS_MAX_AGE: 'forever', RATE_LIMITS: '{"auth.login": "lots"}' };
    const res = await runCli(['check'], { env, cwd: goodRepo });
    assert.equal(res.code, 1, res.stderr);
    const lines = res.stdout.trim().split('\n');
    assert.ok(
      lines.every((l) => /^(PASS|WARN|FAIL)  /.test(l)),
      res.stdout,
    );
    const good = await runCli(['check'], { env: GOOD, cwd: goodRepo });
    assert.equal(lines.length, good.stdout.trim().split('\n').length + 3, res.stdout);
    assert.match(res.stdout, /^FAIL {2}PORT is valid: PORT must be an integer, got "not-a-port"/m);
    assert.match(res.stdout, /^FAIL {2}HSTS_MAX_AGE is valid: HSTS_MAX_AGE must be an integer/m);
    assert.match(res.stdout, /^FAIL {2}RATE_LIMITS is valid: RATE_LIMITS key "auth.login"/m);
    for (const title of [
      'SECRET_KEY is strong',
      'HTTPS is enforced',
      'CORS is restricted',
      'Rate limits are on',
      'Debug mode is off',
    ])
      assert.match(res.stdout, new RegExp(`^(PASS|WARN|FAIL) {2}${title}`, 'm'), title);
    assert.doesNotMatch(res.stderr, /configuration error/);
    const critical = await runCli(['check', '--critical'], { env, cwd: goodRepo });
    assert.equal(critical.code, 1);
    assert.equal(critical.stdout.trim().split('\n').length, 3, critical.stdout);
  });

  it('a rule the checklist already rates (a production secret, CSRF off) is one FAIL line, not two', () => {
    const env = { ...GOOD, SECRET_KEY: 'changeme', WTF_CSRF_ENABLED: 'false', BCRYPT_ROUNDS: '2' };
    const results = runChecklist(inspectConfig(env, { dotenv: false }), { env, cwd: goodRepo });
    const failing = results.filter((r) => r.status === 'fail').map((r) => r.id);
    assert.deepEqual(failing.sort(), ['config.BCRYPT_ROUNDS', 'network.csrf', 'secret.SECRET_KEY']);
  });

  it('HEALTH_TOKEN, when set, must be a strong secret in production, and the checklist reports it', () => {
    const weak = { ...GOOD, HEALTH_TOKEN: 'monitor-token-0123456789' };
    assert.throws(() => loadConfig(weak, { dotenv: false }), /HEALTH_TOKEN is shorter than 32 bytes/);
    const failing = runChecklist(inspectConfig(weak, { dotenv: false }), { env: weak, cwd: goodRepo }).filter(
      (r) => r.status === 'fail',
    );
    assert.deepEqual(
      failing.map((r) => r.id),
      ['secret.HEALTH_TOKEN'],
    );
    assert.equal(failing[0]!.critical, true);
    const strong = { ...GOOD, HEALTH_TOKEN: randomBytes(32).toString('base64url') };
    const item = byId(runChecks(loadConfig(strong, { dotenv: false }), { env: strong, cwd: goodRepo }))[
      'secret.HEALTH_TOKEN'
    ]!;
    assert.equal(item.status, 'pass');
    const unset = byId(runChecks(loadConfig(GOOD, { dotenv: false }), { env: GOOD, cwd: goodRepo }))[
      'secret.HEALTH_TOKEN'
    ]!;
    assert.deepEqual(
      [unset.status, unset.detail],
      ['pass', 'not set: the operator health views open to admin tokens only'],
    );
  });

  it('the HSTS line says where HSTS is sent, in development and in production', () => {
    const dev = byId(
      runChecks(loadConfig({ ...GOOD, NODE_ENV: 'development' }, { dotenv: false }), { env: GOOD, cwd: goodRepo }),
    );
    assert.equal(dev['network.hsts']!.status, 'pass');
    assert.match(
      dev['network.hsts']!.detail,
      /^max-age=31536000, on HTTPS requests only \(NODE_ENV=development; production sends it on every answer\)$/,
    );
    assert.doesNotMatch(dev['debug.off']!.detail, /no HSTS/);
    const prod = byId(runChecks(loadConfig(GOOD, { dotenv: false }), { env: GOOD, cwd: goodRepo }));
    assert.equal(prod['network.hsts']!.detail, 'max-age=31536000, on every answer');
    const off = byId(
      runChecks(loadConfig({ ...GOOD, HSTS_MAX_AGE: '0' }, { dotenv: false }), { env: GOOD, cwd: goodRepo }),
    );
    assert.deepEqual(
      [off['network.hsts']!.status, off['network.hsts']!.detail],
      ['fail', 'HSTS_MAX_AGE=0: never sent'],
    );
  });

  it('reports alerting, metrics, backups and one retention line per growing table (operations items)', () => {
    const ops = (env: Record<string, string>) =>
      byId(runChecks(loadConfig(env, { dotenv: false }), { env, cwd: goodRepo }));
    const unset = ops(GOOD);
    assert.equal(unset['alerts.configured']!.status, 'warn');
    assert.match(unset['alerts.configured']!.detail, /neither ALERT_WEBHOOK_URL nor ALERT_EMAIL_TO is set/);
    assert.equal(unset['metrics.exposed']!.status, 'warn');
    assert.equal(unset['backup.recipient']!.status, 'warn');
    const retention = Object.keys(unset).filter((id) => id.startsWith('retention.'));
    assert.deepEqual(
      retention,
      RETENTION.map((p) => `retention.${p.table.split(' ')[0]}`),
    );
    for (const table of ['security_events', 'sessions', 'revoked_tokens', 'login_attempts', 'one_time_tokens'])
      assert.ok(retention.includes(`retention.${table}`), table);
    assert.ok(retention.includes('retention.alert_outbox') && retention.includes('retention.users'));
    assert.match(unset['retention.security_events']!.detail, /^90 days \(SECURITY_EVENT_RETENTION_DAYS\)$/);
    assert.match(unset['retention.users']!.detail, /^forever \(0 = keep\) \(DEACTIVATED_USER_RETENTION_DAYS\)$/);

    const set = ops({
      ...GOOD,
      ALERT_WEBHOOK_URL: 'https://hooks.example.com/flokie',
      ALERT_WEBHOOK_SECRET: generateSecret(),
      METRICS_PORT: '9464',
      BACKUP_RECIPIENT: 'age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p',
      SECURITY_EVENT_RETENTION_DAYS: '30',
    });
    assert.equal(set['alerts.configured']!.status, 'pass', set['alerts.configured']!.detail);
    assert.match(set['alerts.configured']!.detail, /to webhook https:\/\/hooks\.example\.com/);
    assert.equal(set['metrics.exposed']!.status, 'pass', set['metrics.exposed']!.detail);
    assert.equal(set['backup.recipient']!.status, 'pass');
    assert.match(set['retention.security_events']!.detail, /^30 days/);

    // Development accepts a weak webhook secret (production refuses to start): the checklist fails it.
    const weak = ops({
      ...GOOD,
      NODE_ENV: 'development',
      ALERT_WEBHOOK_URL: 'http://hooks.example.com/flokie',
      ALERT_WEBHOOK_SECRET: 'short',
      METRICS_PORT: '9464',
      METRICS_HOST: '0.0.0.0',
    });
    assert.equal(weak['alerts.configured']!.status, 'fail', weak['alerts.configured']!.detail);
    assert.match(weak['alerts.configured']!.detail, /plain http:\/\//);
    assert.equal(weak['metrics.exposed']!.status, 'warn');
    assert.match(weak['metrics.exposed']!.detail, /listens on 0\.0\.0\.0 without authentication/);
  });

  it('the critical part: what a production start refuses', () => {
    const cors = { ...GOOD, CORS_ORIGINS: '*', CORS_SUPPORTS_CREDENTIALS: 'false' };
    assert.deepEqual(
      criticalFailures(loadConfig(cors, { dotenv: false }), { env: cors }).map((f) => f.id),
      ['network.cors'],
    );
    assert.deepEqual(criticalFailures(loadConfig(GOOD, { dotenv: false }), { env: GOOD }), []);
    // Advice (no Sentry, long tokens) never blocks a start.
    const advice = { ...GOOD, SENTRY_DSN: '', JWT_ACCESS_TOKEN_EXPIRES_HOURS: '8' };
    assert.deepEqual(criticalFailures(loadConfig(advice, { dotenv: false }), { env: advice }), []);
  });

  it('npm start in production refuses to start on a critical failure', async () => {
    const env = {
      ...GOOD,
      CORS_ORIGINS: '*',
      CORS_SUPPORTS_CREDENTIALS: 'false',
      DATABASE_URL: 'postgresql://flokie:Rq8vT2mW9xL4nB7cY3kJ@db.example.com/flokie',
      PORT: '0',
    };
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
      cwd: ROOT,
      env: cliEnv(env),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const code = await new Promise((resolve) => child.once('exit', resolve));
    assert.equal(code, 1);
    assert.match(stderr, /refusing to start: CORS is restricted/);
    assert.match(stderr, /refusing to start: Database connections use TLS/);
  });
});
