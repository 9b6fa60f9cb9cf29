import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import * as bcrypt from '@node-rs/bcrypt';
import { PasswordHasher } from '../../src/modules/auth/password-hasher.js';
import { PasswordPolicy } from '../../src/modules/auth/password-policy.js';
import { createTestApp, json, makeTestConfig, register, STRONG_PASSWORD, uniqueUser, type TestApp } from '../helpers/app.js';

describe('password policy', () => {
  const policy = new PasswordPolicy(makeTestConfig());

  it('accepts a strong password', () => {
    assert.deepEqual(policy.check(STRONG_PASSWORD, { username: 'alice', email: 'alice@example.com' }), []);
  });

  it('rejects short and over-long passwords, naming the rule', () => {
    assert.match(policy.check('Ab1!xyz').join(), /at least 8 characters/);
    assert.match(policy.check('a'.repeat(129)).join(), /at most 128 characters/);
  });

  it('rejects common passwords and ones that are easy to guess', () => {
    assert.match(policy.check('password123').join(), /too common|too easy/);
    assert.match(policy.check('qwertyuiop').join(), /too common|too easy/);
    assert.match(policy.check('aaaaaaaaaaaa').join(), /too easy/);
  });

  it('rejects passwords containing the username or e-mail', () => {
    assert.match(policy.check('Zebra-marvin1983-Kite', { username: 'marvin1983' }).join(), /username or e-mail/);
    assert.match(policy.check('Xk-jdoe-Mountain-88', { email: 'jdoe@example.com' }).join(), /username or e-mail/);
  });

  it('enforces optional character classes when configured', () => {
    const strict = new PasswordPolicy(
      makeTestConfig({ PASSWORD_REQUIRE_UPPER: 'true', PASSWORD_REQUIRE_LOWER: 'true', PASSWORD_REQUIRE_DIGIT: 'true', PASSWORD_REQUIRE_SYMBOL: 'true' }),
    );
    const problems = strict.check('velvetorbitharbor').join('|');
    assert.match(problems, /upper-case/);
    assert.match(problems, /digit/);
    assert.match(problems, /symbol/);
    assert.deepEqual(strict.check('Velvet-Orbit-Harbor-42'), []);
  });

  it('honours PASSWORD_MIN_SCORE', () => {
    const lenient = new PasswordPolicy(makeTestConfig({ PASSWORD_MIN_SCORE: '0' }));
    assert.deepEqual(lenient.check('kitten-lamp'), []);
    assert.notDeepEqual(policy.check('kitten-lamp'), []);
  });

  it('rejects passwords from BREACHED_PASSWORDS_FILE (plain or SHA-1 lines)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'flokie-breach-'));
    const file = join(dir, 'breached.txt');
    const sha = createHash('sha1').update('Orchid-Saturn-Violin-61').digest('hex').toUpperCase();
    writeFileSync(file, `Velvet-Orbit-Harbor-42\n${sha}:12\n`);
    const withList = new PasswordPolicy(makeTestConfig({ BREACHED_PASSWORDS_FILE: file }));
    assert.match(withList.check('Velvet-Orbit-Harbor-42').join(), /breached/);
    assert.match(withList.check('Orchid-Saturn-Violin-61').join(), /breached/);
    assert.deepEqual(withList.check('Quiet-Lantern-Meadow-77'), []);
  });
});

describe('password hasher', () => {
  it('bcrypt: hashes at the configured cost and verifies', async () => {
    const hasher = new PasswordHasher('bcrypt', 5);
    const hash = await hasher.hash('secret-value');
    assert.match(hash, /^\$2b\$05\$/);
    assert.equal(await hasher.verify('secret-value', hash), true);
    assert.equal(await hasher.verify('other', hash), false);
    assert.equal(hasher.needsRehash(hash), false);
    assert.equal(new PasswordHasher('bcrypt', 6).needsRehash(hash), true);
  });

  it('argon2id: hashes, verifies, and flags bcrypt hashes for upgrade', async () => {
    const hasher = new PasswordHasher('argon2id', 12);
    const hash = await hasher.hash('secret-value');
    assert.match(hash, /^\$argon2id\$/);
    assert.equal(await hasher.verify('secret-value', hash), true);
    assert.equal(hasher.needsRehash(hash), false);
    assert.equal(hasher.needsRehash(await bcrypt.hash('x', 4)), true);
    // Either algorithm always verifies, whichever is configured.
    assert.equal(await new PasswordHasher('bcrypt', 4).verify('secret-value', hash), true);
  });

  it('runs at most PASSWORD_HASH_CONCURRENCY hashes at once; the rest wait their turn', async () => {
    const hasher = new PasswordHasher('bcrypt', 6, 2);
    const hash = await hasher.hash('secret-value');
    const checks = Array.from({ length: 6 }, (_, i) => hasher.verify(i % 2 ? 'secret-value' : 'other', hash));
    await Promise.resolve();
    assert.deepEqual(hasher.load, { active: 2, waiting: 4 });
    assert.deepEqual(await Promise.all(checks), [false, true, false, true, false, true]);
    assert.deepEqual(hasher.load, { active: 0, waiting: 0 });
  });

  it('a malformed stored hash is a failed verification, not a crash', async () => {
    const hasher = new PasswordHasher('bcrypt', 4);
    assert.equal(await hasher.verify('x', 'not-a-hash'), false);
    assert.equal(await hasher.verify('x', '$2b$04$short'), false);
    assert.equal(await hasher.verifyDummy('x'), false);
  });
});

describe('passwords over HTTP', () => {
  let t: TestApp;
  before(async () => {
    t = await createTestApp({ BCRYPT_ROUNDS: '5' });
  });
  after(() => t.close());

  it("the guide's test_weak_password: registration with '123' is 400 naming the rule", async () => {
    const res = await t.app.inject({ method: 'POST', url: '/api/auth/register', payload: { ...uniqueUser(), password: '123' } });
    assert.equal(res.statusCode, 400);
    const body = json(res);
    assert.equal(body.error.code, 'VALIDATION_ERROR');
    assert.match(body.error.details.password.join(), /at least 8 characters/);
  });

  it('stores only a hash, never the password', async () => {
    const u = await register(t.app);
    const row = await t.app.container.db.selectFrom('users').selectAll().where('id', '=', u.id).executeTakeFirstOrThrow();
    assert.notEqual(row.password_hash, u.password);
    assert.match(row.password_hash, /^\$2b\$05\$/);
  });

  it('re-hashes a weaker or foreign stored hash on the next successful login', async () => {
    const u = await register(t.app);
    const weak = await bcrypt.hash(u.password, 4);
    await t.app.container.users.update(u.id, { password_hash: weak });
    const res = await t.app.inject({ method: 'POST', url: '/api/auth/login', payload: { username: u.username, password: u.password } });
    assert.equal(res.statusCode, 200);
    const row = await t.app.container.db.selectFrom('users').select('password_hash').where('id', '=', u.id).executeTakeFirstOrThrow();
    assert.match(row.password_hash, /^\$2b\$05\$/);

    const argon = await new PasswordHasher('argon2id', 4).hash(u.password);
    await t.app.container.users.update(u.id, { password_hash: argon });
    assert.equal((await t.app.inject({ method: 'POST', url: '/api/auth/login', payload: { username: u.username, password: u.password } })).statusCode, 200);
    const after = await t.app.container.db.selectFrom('users').select('password_hash').where('id', '=', u.id).executeTakeFirstOrThrow();
    assert.match(after.password_hash, /^\$2b\$05\$/);
  });
});

describe('PASSWORD_HASHER=argon2id', () => {
  let t: TestApp;
  before(async () => {
    t = await createTestApp({ PASSWORD_HASHER: 'argon2id' });
  });
  after(() => t.close());

  it('new accounts get argon2id hashes and can log in', async () => {
    const u = await register(t.app);
    const row = await t.app.container.db.selectFrom('users').select('password_hash').where('id', '=', u.id).executeTakeFirstOrThrow();
    assert.match(row.password_hash, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    const res = await t.app.inject({ method: 'POST', url: '/api/auth/login', payload: { username: u.email, password: u.password } });
    assert.equal(res.statusCode, 200);
  });
});
