import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import * as bcrypt from '@node-rs/bcrypt';
import type { DomainError } from '../../../src/core/errors.js';
import { hashedText, PasswordHasher } from '../../../src/modules/auth/password-hasher.js';
import { PasswordPolicy } from '../../../src/modules/auth/password-policy.js';
import {
  QUEUE_PER_THREAD,
  TASK_TIMEOUT_MS,
  WorkerStrengthEstimator,
  type StrengthEstimator,
} from '../../../src/modules/auth/password-strength.js';
import {
  createTestApp,
  json,
  makeTestConfig,
  register,
  STRONG_PASSWORD,
  uniqueUser,
  type TestApp,
} from '../../helpers/app.js';

describe('password policy', () => {
  const policy = new PasswordPolicy(makeTestConfig());
  const others: PasswordPolicy[] = [];
  const make = (overrides: Record<string, string>, estimator?: StrengthEstimator) => {
    const p = new PasswordPolicy(makeTestConfig(overrides), estimator);
    others.push(p);
    return p;
  };
  after(async () => {
    await policy.close();
    await Promise.all(others.map((p) => p.close()));
  });

  it('accepts a strong password', async () => {
    assert.deepEqual(await policy.check(STRONG_PASSWORD, { username: 'alice', email: 'alice@example.com' }), []);
  });

  it('rejects short and over-long passwords, naming the rule', async () => {
    assert.match((await policy.check('Ab1!xyz')).join(), /at least 8 characters/);
    assert.match((await policy.check('a'.repeat(129))).join(), /at most 128 characters/);
  });

  it('rejects common passwords and ones that are easy to guess', async () => {
    assert.match((await policy.check('password123')).join(), /too common|too easy/);
    assert.match((await policy.check('qwertyuiop')).join(), /too common|too easy/);
    assert.match((await policy.check('aaaaaaaaaaaa')).join(), /too easy/);
  });

  it('rejects passwords containing the username or e-mail', async () => {
    assert.match(
      (await policy.check('Zebra-marvin1983-Kite', { username: 'marvin1983' })).join(),
      /username or e-mail/,
    );
    assert.match(
      (await policy.check('Xk-jdoe-Mountain-88', { email: 'jdoe@example.com' })).join(),
      /username or e-mail/,
    );
  });

  it('enforces optional character classes when configured', async () => {
    const strict = make({
      PASSWORD_REQUIRE_UPPER: 'true',
      PASSWORD_REQUIRE_LOWER: 'true',
      PASSWORD_REQUIRE_DIGIT: 'true',
      PASSWORD_REQUIRE_SYMBOL: 'true',
    });
    const problems = (await strict.check('velvetorbitharbor')).join('|');
    assert.match(problems, /upper-case/);
    assert.match(problems, /digit/);
    assert.match(problems, /symbol/);
    assert.deepEqual(await strict.check('Velvet-Orbit-Harbor-42'), []);
  });

  it('honours PASSWORD_MIN_SCORE', async () => {
    const lenient = make({ PASSWORD_MIN_SCORE: '0' });
    assert.deepEqual(await lenient.check('kitten-lamp'), []);
    assert.notDeepEqual(await policy.check('kitten-lamp'), []);
  });

  it('rejects passwords from BREACHED_PASSWORDS_FILE (plain or SHA-1 lines)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'flokie-breach-'));
    const file = join(dir, 'breached.txt');
    const sha = createHash('sha1').update('Orchid-Saturn-Violin-61').digest('hex').toUpperCase();
    writeFileSync(file, `Velvet-Orbit-Harbor-42\n${sha}:12\n`);
    const withList = make({ BREACHED_PASSWORDS_FILE: file });
    assert.match((await withList.check('Velvet-Orbit-Harbor-42')).join(), /breached/);
    assert.match((await withList.check('Orchid-Saturn-Violin-61')).join(), /breached/);
    assert.deepEqual(await withList.check('Quiet-Lantern-Meadow-77'), []);
  });
});

describe('bcrypt uses 72 bytes: every rule sees exactly those', () => {
  /** An estimator that records what it was asked to score, and scores everything 4. */
  const recording = () => {
    const seen: string[] = [];
    return {
      seen,
      estimator: {
        score: async (text: string) => (seen.push(text), 4),
        close: async () => {},
      } satisfies StrengthEstimator,
    };
  };
  const policies: PasswordPolicy[] = [];
  after(() => Promise.all(policies.map((p) => p.close())));

  it('hashedText: the longest run of whole characters within 72 UTF-8 bytes; argon2id keeps everything', () => {
    assert.equal(hashedText('a'.repeat(100), 'bcrypt'), 'a'.repeat(72));
    assert.equal(hashedText('€'.repeat(30), 'bcrypt'), '€'.repeat(24), '3-byte characters: 24 fit');
    assert.equal(
      hashedText('a' + '€'.repeat(30), 'bcrypt'),
      'a' + '€'.repeat(23),
      'the character cut by byte 72 is left out',
    );
    assert.equal(hashedText('😀'.repeat(20), 'bcrypt'), '😀'.repeat(18), 'surrogate pairs stay whole');
    assert.equal(hashedText('short', 'bcrypt'), 'short');
    assert.equal(hashedText('a'.repeat(100), 'argon2id'), 'a'.repeat(100));
  });

  it('the strength estimator never gets more than what is hashed (the DoS bound)', async () => {
    const { seen, estimator } = recording();
    const bcryptPolicy = new PasswordPolicy(makeTestConfig(), estimator);
    policies.push(bcryptPolicy);
    await bcryptPolicy.check('p@$$w0rd'.repeat(16));
    await bcryptPolicy.check('Zq-' + '€'.repeat(60));
    assert.equal(seen.length, 2);
    for (const text of seen)
      assert.ok(Buffer.byteLength(text) <= 72, `${Buffer.byteLength(text)} bytes sent to the estimator`);
    assert.equal(seen[0], 'p@$$w0rd'.repeat(9));

    const argon = recording();
    const argonPolicy = new PasswordPolicy(makeTestConfig({ PASSWORD_HASHER: 'argon2id' }), argon.estimator);
    policies.push(argonPolicy);
    await argonPolicy.check('p@$$w0rd'.repeat(16));
    assert.equal(argon.seen[0], 'p@$$w0rd'.repeat(16), 'argon2id hashes all 128 characters, so all are scored');
    assert.match((await argonPolicy.check('x'.repeat(129))).join(), /at most 128/);
    assert.equal(argon.seen.length, 1, 'over-long input never reaches the estimator');
  });

  it("'a' x 72 + a strong tail is refused with bcrypt (the tail is never hashed), accepted with argon2id", async () => {
    const password = 'a'.repeat(72) + STRONG_PASSWORD;
    const bcryptPolicy = new PasswordPolicy(makeTestConfig());
    const argonPolicy = new PasswordPolicy(makeTestConfig({ PASSWORD_HASHER: 'argon2id' }));
    policies.push(bcryptPolicy, argonPolicy);
    const problems = (await bcryptPolicy.check(password)).join('|');
    assert.match(problems, /too easy/);
    assert.match(problems, /first 72 bytes/);
    assert.deepEqual(await argonPolicy.check(password), []);
  });

  it('length, inclusion, classes and breached lists look at the hashed bytes only', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'flokie-breach72-'));
    const file = join(dir, 'breached.txt');
    writeFileSync(file, `${'Zx9-'.repeat(18)}\n`);
    const { estimator } = recording();
    const p = new PasswordPolicy(
      makeTestConfig({ BREACHED_PASSWORDS_FILE: file, PASSWORD_REQUIRE_DIGIT: 'true', MIN_PASSWORD_LENGTH: '30' }),
      estimator,
    );
    policies.push(p);
    // The username after byte 72 is not hashed, so it is not "in" the password.
    assert.deepEqual(
      await p.check('Velvet-Orbit-Harbor-42-'.repeat(4).slice(0, 72) + 'marvin1983', { username: 'marvin1983' }),
      [],
    );
    // A digit only after byte 72 does not count.
    assert.match((await p.check('Velvet-Orbit-Harbor-xx-'.repeat(4).slice(0, 72) + '7')).join(), /digit/);
    // 72 bytes of 3-byte characters are 24 characters: under a minimum of 30.
    assert.match((await p.check('€'.repeat(40) + 'abcdefghij1')).join(), /at least 30/);
    // The breached entry is the 72 hashed bytes; what follows does not make it another password.
    assert.match((await p.check('Zx9-'.repeat(18) + 'Quiet-Lantern-Meadow-77')).join(), /breached/);
  });

  it('runs the estimate in worker threads with a bounded queue: past it, 429 at once', async () => {
    const pool = new WorkerStrengthEstimator(1);
    try {
      assert.equal(await pool.score('aaaaaaaaaaaa', []), 0);
      assert.ok((await pool.score(STRONG_PASSWORD, [])) >= 3);
      const results = await Promise.allSettled(
        Array.from({ length: 1 + QUEUE_PER_THREAD + 9 }, () => pool.score('p@$$w0rd'.repeat(9), [])),
      );
      const refused = results.filter((r) => r.status === 'rejected');
      assert.equal(refused.length, 9, 'one running and 32 waiting per thread; the rest refused at once');
      for (const r of refused) {
        const error = (r as PromiseRejectedResult).reason as DomainError;
        assert.equal(error.code, 'RATE_LIMIT_EXCEEDED');
      }
      assert.ok(results.some((r) => r.status === 'fulfilled'));
    } finally {
      await pool.close();
    }
  });

  it('a check that cannot finish (a worker that cannot start) is a 503, never a hung request', async () => {
    const errors: unknown[] = [];
    const broken = new WorkerStrengthEstimator(1, (e) => errors.push(e), {
      worker: new URL('./no-such-worker.ts', import.meta.url),
      timeoutMs: 300,
    });
    try {
      await assert.rejects(broken.score(STRONG_PASSWORD, []), (e: DomainError) => e.code === 'SERVICE_UNAVAILABLE');
      for (let i = 0; i < 200 && errors.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
      assert.ok(errors.length >= 1, 'the failure reached the error handler (logged by the container)');
      assert.ok(TASK_TIMEOUT_MS <= 60_000);
    } finally {
      await broken.close();
    }
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
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/auth/register',
      payload: { ...uniqueUser(), password: '123' },
    });
    assert.equal(res.statusCode, 400);
    const body = json(res);
    assert.equal(body.error.code, 'VALIDATION_ERROR');
    assert.match(body.error.details.password.join(), /at least 8 characters/);
  });

  it("bcrypt: registering 'a' x 72 + a strong tail is refused (it would log in as 'a' x 72)", async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/auth/register',
      payload: { ...uniqueUser('long72'), password: 'a'.repeat(72) + STRONG_PASSWORD },
    });
    assert.equal(res.statusCode, 400, res.body);
    assert.match(json(res).error.details.password.join(), /too easy/);
  });

  it('stores only a hash, never the password', async () => {
    const u = await register(t.app);
    const row = await t.app.container.db
      .selectFrom('users')
      .selectAll()
      .where('id', '=', u.id)
      .executeTakeFirstOrThrow();
    assert.notEqual(row.password_hash, u.password);
    assert.match(row.password_hash, /^\$2b\$05\$/);
  });

  it('re-hashes a weaker or foreign stored hash on the next successful login', async () => {
    const u = await register(t.app);
    const weak = await bcrypt.hash(u.password, 4);
    await t.app.container.users.update(u.id, { password_hash: weak });
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/auth/login',
      payload: { username: u.username, password: u.password },
    });
    assert.equal(res.statusCode, 200);
    const row = await t.app.container.db
      .selectFrom('users')
      .select('password_hash')
      .where('id', '=', u.id)
      .executeTakeFirstOrThrow();
    assert.match(row.password_hash, /^\$2b\$05\$/);

    const argon = await new PasswordHasher('argon2id', 4).hash(u.password);
    await t.app.container.users.update(u.id, { password_hash: argon });
    assert.equal(
      (
        await t.app.inject({
          method: 'POST',
          url: '/api/auth/login',
          payload: { username: u.username, password: u.password },
        })
      ).statusCode,
      200,
    );
    const after = await t.app.container.db
      .selectFrom('users')
      .select('password_hash')
      .where('id', '=', u.id)
      .executeTakeFirstOrThrow();
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
    const row = await t.app.container.db
      .selectFrom('users')
      .select('password_hash')
      .where('id', '=', u.id)
      .executeTakeFirstOrThrow();
    assert.match(row.password_hash, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/auth/login',
      payload: { username: u.email, password: u.password },
    });
    assert.equal(res.statusCode, 200);
  });

  it("'a' x 72 + a strong tail is a fine password: argon2id hashes all of it", async () => {
    const u = await register(t.app, { ...uniqueUser('argonlong'), password: 'a'.repeat(72) + STRONG_PASSWORD });
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/auth/login',
      payload: { username: u.username, password: 'a'.repeat(72) },
    });
    assert.equal(res.statusCode, 401, 'the first 72 bytes alone are not the password');
  });
});

/**
 * The application's own wiring (src/container.ts) of the estimate: in the worker pool, not on the
 * event loop. No timing: while a worst-case estimate is still running in the pool, another request
 * is answered; and a registration that finds the pool's queue full is refused at once.
 */
describe('the strength estimate of a request runs in the worker pool (issue 12, item 5)', () => {
  let t: TestApp;
  before(async () => {
    t = await createTestApp({ PASSWORD_STRENGTH_WORKERS: '1' });
  });
  after(() => t.close());

  it('/api/health answers while a worst-case estimate runs; a registration past the queue is 429', async () => {
    const policy = t.app.container.policy;
    // One worst-case estimate first (the review's password, bounded to 72 bytes), then cheap ones to fill the queue.
    let worstDone = false;
    const worst = policy.check('p@$$w0rd'.repeat(16)).then((problems) => {
      worstDone = true;
      return problems;
    });
    const fillers = Array.from({ length: QUEUE_PER_THREAD }, (_, i) => policy.check(`Velvet-horse-${i}-lantern`));
    const health = await t.app.inject({ method: 'GET', url: '/api/health' });
    assert.equal(health.statusCode, 200);
    assert.equal(worstDone, false, 'the health check was answered while the estimate was still running');
    const refused = await t.app.inject({
      method: 'POST',
      url: '/api/auth/register',
      payload: { ...uniqueUser('strength'), password: 'p@$$w0rd'.repeat(16) },
    });
    assert.equal(refused.statusCode, 429, refused.body);
    assert.equal(json(refused).error.code, 'RATE_LIMIT_EXCEEDED');
    assert.equal(refused.headers['retry-after'], '1');
    assert.equal(worstDone, false, 'refused at once, not after the queue');
    assert.match((await worst).join(), /too easy/);
    await Promise.all(fillers);
  });
});
