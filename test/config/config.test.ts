import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, inspectConfig, loadConfig, SettingError } from '../../src/config/index.js';
import { generateSecret } from '../../src/config/secret-strength.js';
import { SETTINGS } from '../../src/config/settings.js';

// Generated per run: a secret written in the repository is public, so production refuses it.
const STRONG_A = generateSecret();
const STRONG_B = generateSecret();
const tmp = () => mkdtempSync(join(tmpdir(), 'flokie-config-'));

describe('configuration', () => {
  it('runs with no settings at all in development, generating secrets under var/', () => {
    const cwd = tmp();
    const config = loadConfig({}, { cwd });
    assert.equal(config.PORT, 5000);
    assert.equal(config.HOST, '127.0.0.1');
    assert.equal(config.DATABASE_URL, 'sqlite:var/flokie.db');
    assert.ok(config.SECRET_KEY.length >= 32);
    assert.notEqual(config.SECRET_KEY, config.JWT_SECRET_KEY);
    assert.ok(existsSync(join(cwd, 'var', 'dev-secrets.json')));
    // Stable across restarts, so tokens survive.
    assert.equal(loadConfig({}, { cwd }).JWT_SECRET_KEY, config.JWT_SECRET_KEY);
  });

  it('reads .env, with real environment variables winning', () => {
    const cwd = tmp();
    writeFileSync(join(cwd, '.env'), 'PORT=6001\nMIN_PASSWORD_LENGTH=12\n');
    const config = loadConfig({ PORT: '6002' }, { cwd });
    assert.equal(config.PORT, 6002);
    assert.equal(config.MIN_PASSWORD_LENGTH, 12);
  });

  it('a bad value names the variable and what is wrong', () => {
    const cases: [Record<string, string>, RegExp][] = [
      [{ PORT: 'abc' }, /^PORT must be an integer/],
      [{ PORT: '70000' }, /^PORT must be between 0 and 65535/],
      [{ BCRYPT_ROUNDS: '3' }, /^BCRYPT_ROUNDS must be between 4 and 16/],
      [{ PASSWORD_HASHER: 'md5' }, /^PASSWORD_HASHER must be one of bcrypt, argon2id/],
      [{ RATE_LIMITS: '{"auth.login": "lots"}' }, /^RATE_LIMITS key "auth.login": "lots" is not a rate/],
      [{ RATE_LIMITS: 'nope' }, /^RATE_LIMITS is not valid JSON/],
      [{ RATE_LIMITS: '{"default": "5 per 3 days"}' }, /"5 per 3 days" has a period over 2 days/],
      [{ DATABASE_URL: 'oracle://x' }, /^DATABASE_URL must start with/],
      [{ CORS_ORIGINS: '*', CORS_SUPPORTS_CREDENTIALS: 'true' }, /CORS_ORIGINS cannot contain "\*"/],
      [{ WTF_CSRF_ENABLED: 'maybe' }, /^WTF_CSRF_ENABLED must be true or false/],
    ];
    for (const [env, pattern] of cases) {
      assert.throws(
        () => loadConfig(env, { cwd: tmp(), dotenv: false }),
        (e: unknown) => e instanceof SettingError && pattern.test((e as Error).message),
        JSON.stringify(env),
      );
    }
  });

  it('every problem is reported, not only the first; a refused value falls back to its default for the rest', () => {
    const env = {
      NODE_ENV: 'production',
      PORT: 'abc',
      BCRYPT_ROUNDS: '3',
      HSTS_MAX_AGE: '-1',
      SECRET_KEY: STRONG_A,
      JWT_SECRET_KEY: STRONG_A,
      TLS_CERT_FILE: '/x.pem',
    };
    const { config, problems } = inspectConfig(env, { cwd: tmp(), dotenv: false });
    assert.deepEqual(
      problems.map((p) => p.setting),
      ['PORT', 'BCRYPT_ROUNDS', 'HSTS_MAX_AGE', 'JWT_SECRET_KEY', 'TLS_KEY_FILE'],
    );
    assert.equal(problems.find((p) => p.setting === 'JWT_SECRET_KEY')!.check, 'secret.unique');
    assert.equal(config.PORT, 5000);
    assert.equal(config.BCRYPT_ROUNDS, 12);
    assert.throws(
      () => loadConfig(env, { cwd: tmp(), dotenv: false }),
      (e: unknown) =>
        e instanceof ConfigError &&
        e.problems.length === 5 &&
        e.message ===
          'PORT must be an integer, got "abc"; ' +
            'BCRYPT_ROUNDS must be between 4 and 16, got 3; ' +
            'HSTS_MAX_AGE must be between 0 and 63072000, got -1; ' +
            'JWT_SECRET_KEY must differ from SECRET_KEY; ' +
            'TLS_CERT_FILE and TLS_KEY_FILE must be set together',
    );
  });

  it('production refuses missing, example, short or shared secrets', () => {
    const prod = (env: Record<string, string>) => () =>
      loadConfig({ NODE_ENV: 'production', ...env }, { cwd: tmp(), dotenv: false });
    assert.throws(prod({}), /SECRET_KEY is not set/);
    assert.throws(prod({ SECRET_KEY: 'short', JWT_SECRET_KEY: STRONG_B }), /SECRET_KEY is shorter than 32 bytes/);
    assert.throws(
      prod({ SECRET_KEY: STRONG_A, JWT_SECRET_KEY: 'your-cryptographically-secure-secret-key' }),
      /JWT_SECRET_KEY is a known example value/,
    );
    assert.throws(prod({ SECRET_KEY: STRONG_A, JWT_SECRET_KEY: STRONG_A }), /must differ/);
    assert.throws(
      prod({ SECRET_KEY: STRONG_A, JWT_SECRET_KEY: STRONG_B, RATE_LIMIT_ENABLED: 'false' }),
      /RATE_LIMIT_ENABLED cannot be false in production/,
    );
    assert.throws(
      prod({ SECRET_KEY: STRONG_A, JWT_SECRET_KEY: STRONG_B, WTF_CSRF_ENABLED: 'false' }),
      /WTF_CSRF_ENABLED cannot be false in production/,
    );
    assert.equal(prod({ SECRET_KEY: STRONG_A, JWT_SECRET_KEY: STRONG_B })().isProduction, true);
  });

  it('RATE_LIMITS: a partial object overrides only the keys it names', () => {
    const config = loadConfig({ RATE_LIMITS: '{"auth.login": "10 per 5 minutes"}' }, { cwd: tmp(), dotenv: false });
    assert.deepEqual(config.RATE_LIMITS['auth.login'], { points: 10, durationSeconds: 300, text: '10 per 5 minutes' });
    assert.deepEqual(config.RATE_LIMITS.default, { points: 100, durationSeconds: 3600, text: '100 per hour' });
    assert.equal(config.RATE_LIMITS['auth.register']!.points, 3);
  });

  it('list settings accept a JSON array or a comma-separated string', () => {
    const a = loadConfig({ CORS_ORIGINS: '["https://a.example", "https://b.example"]' }, { cwd: tmp(), dotenv: false });
    const b = loadConfig({ CORS_ORIGINS: 'https://a.example, https://b.example' }, { cwd: tmp(), dotenv: false });
    assert.deepEqual(a.CORS_ORIGINS, ['https://a.example', 'https://b.example']);
    assert.deepEqual(b.CORS_ORIGINS, a.CORS_ORIGINS);
  });

  it('.env.example and the README document every setting', () => {
    const example = readFileSync('.env.example', 'utf8');
    const readme = readFileSync('README.md', 'utf8');
    for (const s of Object.values(SETTINGS)) {
      assert.match(example, new RegExp(`^#? ?${s.env}=`, 'm'), `.env.example lacks ${s.env}`);
      assert.ok(readme.includes(`\`${s.env}\``), `README lacks ${s.env}`);
    }
  });

  it('the server exits with one line naming every bad variable', () => {
    const result = spawnSync(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
      env: { ...process.env, PORT: 'not-a-port', BCRYPT_ROUNDS: '99', NODE_ENV: 'development' },
      encoding: 'utf8',
      timeout: 20_000,
    });
    assert.equal(result.status, 1);
    assert.equal(
      result.stderr.trim(),
      'flokie: configuration error: PORT must be an integer, got "not-a-port"; ' +
        'BCRYPT_ROUNDS must be between 4 and 16, got 99',
    );
  });

  it('the server exits with one line naming the bad variable', () => {
    const result = spawnSync(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
      env: { ...process.env, PORT: 'not-a-port', NODE_ENV: 'development' },
      encoding: 'utf8',
      timeout: 20_000,
    });
    assert.equal(result.status, 1);
    assert.equal(result.stderr.trim(), 'flokie: configuration error: PORT must be an integer, got "not-a-port"');
  });
});
