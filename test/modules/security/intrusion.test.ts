import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { createContainer, type Container } from '../../../src/container.js';
import { makeTestConfig } from '../../helpers/app.js';
import { createTestDatabase, type TestDatabase } from '../../helpers/database.js';
import { eventRows } from './helpers.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

async function redisAvailable(): Promise<boolean> {
  const probe = new Redis(REDIS_URL, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    connectTimeout: 1000,
    retryStrategy: () => null,
  });
  probe.on('error', () => {});
  try {
    await probe.connect();
    await probe.ping();
    return true;
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

/** A failed login on an unknown name, recorded as the lockout records it (the keyed hash, never the text). */
function fail(c: Container, ip: string, login: string) {
  c.events.emit({
    type: 'login_failure',
    ip,
    details: { reason: 'bad_credentials', login_hash: c.lockout.names.tag(login) },
  });
}

describe('intrusion detection (in-process counters)', () => {
  let database: TestDatabase;
  let c: Container;
  before(async () => {
    database = await createTestDatabase({ file: true });
    c = await createContainer(
      makeTestConfig(
        { BRUTE_FORCE_ALERT_THRESHOLD: '10', CREDENTIAL_STUFFING_THRESHOLD: '5', DISTRIBUTED_ATTACK_THRESHOLD: '5' },
        database.url,
      ),
      { migrate: true },
    );
  });
  after(async () => {
    await c.close();
    await database.drop();
  });

  it('alerts once per window when failures from one IP pass the threshold', async () => {
    for (let i = 0; i < 10; i++) fail(c, '192.0.2.1', 'alice');
    assert.equal((await eventRows(c, 'brute_force_detected')).length, 0, 'at the threshold: no alert yet');
    for (let i = 0; i < 15; i++) fail(c, '192.0.2.1', 'alice');
    const alerts = await eventRows(c, 'brute_force_detected');
    assert.equal(alerts.length, 1);
    assert.equal(alerts[0]!.severity, 'critical');
    assert.equal(alerts[0]!.details!.attempts, 11);
    assert.equal(alerts[0]!.ip, '192.0.2.1');
    // Same username from one IP is not stuffing; no block configured.
    assert.equal((await eventRows(c, 'credential_stuffing_detected')).length, 0);
    assert.equal((await eventRows(c, 'ip_blocked')).length, 0);
    assert.equal(await c.intrusion.blockedFor('192.0.2.1'), 0);
  });

  it('detects credential stuffing (many usernames, one IP) once', async () => {
    for (let round = 0; round < 2; round++) for (let i = 0; i < 8; i++) fail(c, '192.0.2.2', `victim${i}`);
    const alerts = await eventRows(c, 'credential_stuffing_detected');
    assert.equal(alerts.length, 1);
    assert.equal(alerts[0]!.details!.distinct_usernames, 6);
  });

  it('detects a distributed attack (one username, many IPs) once', async () => {
    for (let round = 0; round < 2; round++) for (let i = 0; i < 9; i++) fail(c, `192.0.2.${100 + i}`, 'bob');
    const alerts = await eventRows(c, 'distributed_attack_detected');
    assert.equal(alerts.length, 1);
    assert.equal(alerts[0]!.details!.login_hash, c.lockout.names.tag('bob'));
    assert.equal(alerts[0]!.details!.distinct_ips, 6);
  });

  it('one name however typed: "carol", " Carol ", "CAROL", full-width "ｃａｒｏｌ" are one name across IPs', async () => {
    const spellings = ['carol', ' Carol ', 'CAROL', 'carol ', '\uff43\uff41\uff52\uff4f\uff4c', '\tcarol'];
    for (let i = 0; i < 6; i++) fail(c, `198.51.100.${10 + i}`, spellings[i]!);
    const alerts = (await eventRows(c, 'distributed_attack_detected')).filter(
      (a) => a.details!.login_hash === c.lockout.names.tag('carol'),
    );
    assert.equal(alerts.length, 1, 'six addresses on one name pass the threshold of 5');
    // And from one address, the spellings are one name, not six: no credential stuffing.
    const before = (await eventRows(c, 'credential_stuffing_detected')).length;
    for (const name of spellings) fail(c, '198.51.100.99', name);
    assert.equal((await eventRows(c, 'credential_stuffing_detected')).length, before);
  });
});

describe('intrusion detection shared through Redis', async () => {
  const available = await redisAvailable();
  let database: TestDatabase;
  let a: Container;
  let b: Container;
  const prefix = `flokie-test-${randomBytes(4).toString('hex')}:`;
  before(async () => {
    if (!available) return;
    database = await createTestDatabase({ file: true });
    const config = makeTestConfig(
      { REDIS_URL, REDIS_KEY_PREFIX: prefix, BRUTE_FORCE_ALERT_THRESHOLD: '6', BRUTE_FORCE_BLOCK_MINUTES: '2' },
      database.url,
    );
    a = await createContainer(config, { migrate: true });
    b = await createContainer(config, { migrate: false });
    for (const c of [a, b])
      if (c.redis!.status !== 'ready') await new Promise((resolve) => c.redis!.once('ready', resolve));
  });
  after(async () => {
    if (!available) return;
    const keys = await a.redis!.keys(`${prefix}*`);
    if (keys.length) await a.redis!.del(...keys);
    await a.close();
    await b.close();
    await database.drop();
  });

  it(
    'two instances count into one counter: one alert, and the block applies on both',
    { skip: !available && 'Redis not reachable' },
    async () => {
      for (let i = 0; i < 4; i++) fail(a, '192.0.2.50', 'carol');
      await a.intrusion.settle();
      for (let i = 0; i < 4; i++) fail(b, '192.0.2.50', 'carol');
      await b.intrusion.settle();
      const alerts = [...(await eventRows(a, 'brute_force_detected')), ...(await eventRows(b, 'brute_force_detected'))];
      const unique = new Set(alerts.map((r) => r.id));
      assert.equal(unique.size, 1, 'exactly one alert across both instances');
      assert.ok((await a.intrusion.blockedFor('192.0.2.50')) > 100);
      assert.ok((await b.intrusion.blockedFor('192.0.2.50')) > 100);
      assert.equal(await a.intrusion.blockedFor('192.0.2.51'), 0);
      const keys = await a.redis!.keys(`${prefix}ids:*`);
      assert.ok(keys.length > 0, 'counters live in Redis');
    },
  );
});
