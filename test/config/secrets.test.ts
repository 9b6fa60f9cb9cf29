/**
 * Production refuses secrets that are long but guessable, and every secret-looking value written in
 * this repository; `flokie secrets generate` always passes; the committed list of known values is
 * fresh (src/config/known-secrets.ts, scripts/known-secrets.ts).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { loadConfig, secretProblem } from '../../src/config/index.js';
import {
  estimateSecretEntropyBits,
  generateSecret,
  isKnownSecret,
  randomnessProblem,
  sha256Hex,
} from '../../src/config/secret-strength.js';
import { checkList, knownSecretHashes, renderList, secretLookingValues } from '../../scripts/known-secrets.js';
import { TEST_ENV } from '../helpers/app.js';
import { ROOT, runCli } from '../cli/helpers.js';

const GUESSABLE = [
  'changeme-changeme-changeme-changeme',
  '01234567012345670123456701234567',
  'passwordpasswordpasswordpasswordpassword',
  'abcdefghijklmnopqrstuvwxyz0123456789ABCDEF',
  'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
  'Aa1!Aa1!Aa1!Aa1!Aa1!Aa1!Aa1!Aa1!Aa1!',
  'abcabcabcabcabcabcabcabcabcabcabcXYZ',
  // 16 random bytes as hex are 32 bytes long but hold only 128 bits; the estimate stays below.
  '3f2a9c0d4b1e8f7a6c5d2e1f0a9b8c7d',
];

const production =
  (secret: string, jwtSecret = generateSecret()) =>
  () =>
    loadConfig({ NODE_ENV: 'production', SECRET_KEY: secret, JWT_SECRET_KEY: jwtSecret }, { dotenv: false });

describe('secret strength', () => {
  it('production refuses long but guessable secrets, naming the variable and why', () => {
    for (const value of GUESSABLE) {
      assert.ok(Buffer.byteLength(value) >= 32, value);
      assert.notEqual(secretProblem(value), null, value);
      assert.throws(production(value), /SECRET_KEY (repeats a pattern|looks too little random)/, value);
      assert.throws(
        production(generateSecret(), value),
        /JWT_SECRET_KEY (repeats a pattern|looks too little random)/,
        value,
      );
    }
    assert.match(secretProblem('changeme-changeme-changeme-changeme')!, /repeats a pattern of 9 characters/);
    assert.match(secretProblem('abcdefghijklmnopqrstuvwxyz0123456789ABCDEF')!, /too little random \(about \d+ bits/);
  });

  it("production refuses every secret written in the repository, the test suites' own included", () => {
    const committed = [
      TEST_ENV.SECRET_KEY!,
      TEST_ENV.JWT_SECRET_KEY!,
      'your-cryptographically-secure-secret-key',
      'integration-secret-key-0123456789abcdefghijklmnop',
      'prod-secret-key-9f8e7d6c5b4a39281706f5e4d3c2b1a0',
      'Zt3q9sLx1VbN7mKe4RwPa8YcDf2HgJu6Ti0Oy5Qn',
      'a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4',
    ];
    for (const value of committed) {
      // Listed, unless too little random to pass anyway (the list keeps only values that would pass).
      assert.ok(isKnownSecret(value) || randomnessProblem(value) !== null, value);
      assert.ok(isKnownSecret(` ${value}\n`) || randomnessProblem(value) !== null, 'surrounding blanks change nothing');
      assert.throws(production(value), /SECRET_KEY /, value);
    }
    // Random-looking values that pass every other rule are refused because they are written here.
    for (const value of ['Zt3q9sLx1VbN7mKe4RwPa8YcDf2HgJu6Ti0Oy5Qn', 'Kp7Wn2Xr5Lm9Bq3Vt8Hs1Jd6Fg4Cz0Ya2Ue7Io5P']) {
      assert.match(secretProblem(value)!, /is a known example value \(it is written in this repository/, value);
      assert.throws(production(value), /SECRET_KEY is a known example value/, value);
    }
    // The same values, which look random enough on their own, were accepted before the list existed.
    assert.ok(estimateSecretEntropyBits('Zt3q9sLx1VbN7mKe4RwPa8YcDf2HgJu6Ti0Oy5Qn') >= 128);
  });

  it('refuses the webhook secret and metrics token by the same rule', () => {
    const base = { NODE_ENV: 'production', SECRET_KEY: generateSecret(), JWT_SECRET_KEY: generateSecret() };
    const hook = { ...base, ALERT_WEBHOOK_URL: 'https://hooks.example.com/x' };
    assert.throws(
      () => loadConfig({ ...hook, ALERT_WEBHOOK_SECRET: 'passwordpasswordpasswordpassword' }, { dotenv: false }),
      /ALERT_WEBHOOK_SECRET repeats/,
    );
    assert.throws(
      () => loadConfig({ ...base, METRICS_TOKEN: 'Kp7Wn2Xr5Lm9Bq3Vt8Hs1Jd6Fg4Cz0Ya2Ue7Io5P' }, { dotenv: false }),
      /METRICS_TOKEN is a known/,
    );
    assert.ok(
      loadConfig(
        { ...hook, ALERT_WEBHOOK_SECRET: generateSecret(), METRICS_TOKEN: generateSecret() },
        { dotenv: false },
      ),
    );
  });

  it('every generated secret passes (many runs), as do 32 random bytes in hex (deploy/generate-env.mjs)', async () => {
    fc.assert(
      fc.property(fc.integer(), () => secretProblem(generateSecret()) === null),
      { numRuns: 20_000 },
    );
    const { randomBytes } = await import('node:crypto');
    for (let i = 0; i < 20_000; i++) {
      const value = randomBytes(32).toString('hex');
      assert.equal(secretProblem(value), null, value);
    }
  });

  it('`flokie secrets generate` output passes, every time', async () => {
    for (let i = 0; i < 3; i++) {
      const r = await runCli(['secrets', 'generate'], { env: { PATH: process.env.PATH ?? '' } });
      assert.equal(r.code, 0, r.stderr);
      const values = Object.fromEntries(
        r.stdout
          .trim()
          .split('\n')
          .map((l) => l.split(/=(.*)/s).slice(0, 2)),
      );
      assert.equal(secretProblem(values.SECRET_KEY!), null);
      assert.equal(secretProblem(values.JWT_SECRET_KEY!), null);
      assert.doesNotThrow(production(values.SECRET_KEY!, values.JWT_SECRET_KEY!));
    }
  });
});

describe('the committed list of known secrets', () => {
  it('is fresh: it holds exactly the secret-looking values in the repository now', () => {
    assert.equal(
      checkList(ROOT).fresh,
      true,
      'src/config/known-secrets.ts is out of date: run `npm run known-secrets`',
    );
  });

  it('goes stale when a secret-looking value is added without regenerating', () => {
    const dir = mkdtempSync(join(tmpdir(), 'flokie-known-'));
    try {
      execFileSync('git', ['init', '-q'], { cwd: dir });
      writeFileSync(join(dir, '.gitignore'), '.env\n');
      writeFileSync(join(dir, 'README.md'), 'SECRET_KEY=docs-example-key-that-looks-random-9f8e7d6c5b\n');
      mkdirSync(join(dir, 'src/config'), { recursive: true });
      writeFileSync(join(dir, 'src/config/known-secrets.ts'), renderList(knownSecretHashes(dir)));
      assert.equal(checkList(dir).fresh, true);
      // A new test file with a literal secret, not yet committed, makes the list stale.
      writeFileSync(join(dir, 'new.test.ts'), "const env = { JWT_SECRET_KEY: 'Qm4Vx8Lp2Rt6Wz0Bn3Hc7Jd1Kf5Gs9Ya' };\n");
      assert.equal(checkList(dir).fresh, false);
      // A real .env (ignored by git) never enters the list.
      writeFileSync(join(dir, '.env'), 'SECRET_KEY=the-operators-own-secret-never-committed-00\n');
      const hashes = new Set(knownSecretHashes(dir));
      assert.ok(!hashes.has(sha256Hex('the-operators-own-secret-never-committed-00')));
      assert.ok(hashes.has(sha256Hex('Qm4Vx8Lp2Rt6Wz0Bn3Hc7Jd1Kf5Gs9Ya')));
      assert.ok(hashes.has(sha256Hex('docs-example-key-that-looks-random-9f8e7d6c5b')));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('finds values however they are written: assignments, quotes, YAML, URLs', () => {
    const text = [
      'SECRET_KEY=plain-env-value-0123456789abcdefghij',
      '  JWT_SECRET_KEY: "yaml value with spaces inside it, long"',
      "const x = { token: 'quoted-in-code-0123456789abcdefghijk' };",
      'curl -H "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.abcdefghijk"',
    ].join('\n');
    const values = secretLookingValues(text);
    for (const v of [
      'plain-env-value-0123456789abcdefghij',
      'yaml value with spaces inside it, long',
      'quoted-in-code-0123456789abcdefghijk',
    ]) {
      assert.ok(values.has(v), v);
    }
    assert.ok([...values].some((v) => v.startsWith('eyJhbGciOiJIUzI1NiJ9')));
  });
});
