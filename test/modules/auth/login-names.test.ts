/**
 * What a user types as the login name (src/modules/auth/login-name.ts): never stored or logged as
 * typed — a failed login names the account when the name matches one, else only a keyed hash —
 * and one normalisation for lockout, rate limits and intrusion detection.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { normalizeLoginName } from '../../../src/modules/auth/login-name.js';
import { createLoggedApp, STRONG_PASSWORD } from '../../helpers/app.js';

const TYPED_SECRET = 'My-Secret-Passw0rd-Typed-As-Name';

describe('login names in events, counters and logs', () => {
  it('normalises once: trim, NFKC, lower case', () => {
    assert.equal(normalizeLoginName('  Alice\t'), 'alice');
    assert.equal(normalizeLoginName('\uff21\uff4c\uff49\uff43\uff45'), 'alice');
    assert.equal(normalizeLoginName('ALICE@Example.COM '), 'alice@example.com');
  });

  it('a failed login records the account (id, username) or a keyed hash, never the typed text, anywhere', async () => {
    const t = await createLoggedApp({
      NODE_ENV: 'development',
      RATE_LIMIT_ENABLED: 'true',
      DISTRIBUTED_ATTACK_THRESHOLD: '3',
      BRUTE_FORCE_ALERT_THRESHOLD: '3',
    });
    try {
      const user = { username: 'NameOwner', email: 'nameowner@example.com', password: STRONG_PASSWORD };
      assert.equal((await t.app.inject({ method: 'POST', url: '/api/auth/register', payload: user })).statusCode, 201);
      const id = (await t.container.users.findByLogin('nameowner'))!.id;
      const login = (username: string, ip: string, password = 'Wrong-Password-99') =>
        t.app.inject({ method: 'POST', url: '/api/auth/login', remoteAddress: ip, payload: { username, password } });
      // A password typed into the username field, from several addresses and with stray spaces.
      for (const [i, typed] of [
        TYPED_SECRET,
        ` ${TYPED_SECRET}`,
        `${TYPED_SECRET} `,
        TYPED_SECRET.toUpperCase(),
        `\t${TYPED_SECRET}`,
      ].entries()) {
        assert.equal((await login(typed, `203.0.113.${i + 1}`)).statusCode, 401);
      }
      // The account's own name, typed with spaces: counted on the account.
      assert.equal((await login(' nameowner ', '203.0.113.50')).statusCode, 401);
      await t.container.intrusion.settle();
      await t.container.events.flush();

      const rows = await t.container.db.selectFrom('security_events').selectAll().execute();
      const keys = (await t.container.db.selectFrom('login_attempts').select('key').execute()).map((r) => r.key);
      const everything = JSON.stringify({ rows, keys, lines: t.lines }).toLowerCase();
      assert.ok(!everything.includes(TYPED_SECRET.toLowerCase()), 'the typed text is nowhere');

      const failures = rows
        .filter((r) => r.type === 'login_failure')
        .map((r) => ({ ...r, details: JSON.parse(r.details ?? '{}') }));
      const unknown = failures.filter((f) => f.user_id === null);
      assert.equal(unknown.length, 5);
      const tag = t.container.lockout.names.tag(TYPED_SECRET);
      assert.match(tag, /^[0-9a-f]{32}$/);
      for (const f of unknown) {
        assert.equal(f.details.login_hash, tag, 'every spelling is one name');
        assert.equal(f.details.login, undefined);
      }
      const known = failures.find((f) => f.user_id === id);
      assert.equal(known?.details.username, 'NameOwner');
      assert.equal(known?.details.login_hash, undefined);
      // One lockout counter for every spelling of the unknown name.
      assert.deepEqual(
        keys.filter((k) => k.startsWith('name:')),
        [`name:${tag}`],
      );
      // Correlation still works on the hash: five addresses on one name pass the threshold of 3.
      const distributed = rows
        .filter((r) => r.type === 'distributed_attack_detected')
        .map((r) => JSON.parse(r.details ?? '{}'));
      assert.equal(distributed.length, 1, JSON.stringify(rows.map((r) => r.type)));
      assert.equal(distributed[0].login_hash, tag);
    } finally {
      await t.close();
    }
  });

  it('the hash is keyed: another SECRET_KEY gives another hash of the same name', async () => {
    const a = await createLoggedApp({ SECRET_KEY: 'first-secret-key-0123456789abcdefghijklmnopqrstuv' });
    const b = await createLoggedApp({ SECRET_KEY: 'other-secret-key-0123456789abcdefghijklmnopqrstuv' });
    try {
      assert.notEqual(a.container.lockout.names.tag('alice'), b.container.lockout.names.tag('alice'));
      assert.equal(a.container.lockout.names.tag('alice'), a.container.lockout.names.tag(' ALICE '));
    } finally {
      await a.close();
      await b.close();
    }
  });
});
