/**
 * The in-process rate counter: each limit name counts on its own, even when several names share
 * one parsed spec (a limit without a setting of its own uses the default's object).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { parseRate } from '../../src/config/index.js';
import { RateLimitStore } from '../../src/state/rate-limiter.js';

const store = () => new RateLimitStore({ redis: null, keyPrefix: 'test:', log: pino({ level: 'silent' }) });

describe('RateLimitStore (in memory)', () => {
  it('two names sharing one spec keep separate counts, however their requests interleave', async () => {
    const limits = store();
    const shared = parseRate('3 per hour');
    const allowed = { a: 0, b: 0 };
    for (let i = 0; i < 10; i++) {
      if ((await limits.consume('a', shared, 'ip:198.51.100.7')).allowed) allowed.a++;
      if ((await limits.consume('b', shared, 'ip:198.51.100.7')).allowed) allowed.b++;
    }
    assert.deepEqual(allowed, { a: 3, b: 3 });
  });

  it('one name counts each key apart, and a changed rate starts fresh counters', async () => {
    const limits = store();
    const spec = parseRate('2 per hour');
    const results: boolean[] = [];
    for (const key of ['ip:a', 'ip:a', 'ip:a', 'ip:b']) results.push((await limits.consume('x', spec, key)).allowed);
    assert.deepEqual(results, [true, true, false, true]);
    assert.equal((await limits.consume('x', parseRate('5 per hour'), 'ip:a')).allowed, true);
  });

  it('the longest period a rate may have still counts (its timers fit in a Node timer)', async () => {
    const limits = store();
    const results: boolean[] = [];
    for (let i = 0; i < 7; i++) results.push((await limits.consume('long', parseRate('5 per 2 days'), 'ip:a')).allowed);
    assert.deepEqual(results, [true, true, true, true, true, false, false]);
    assert.throws(() => parseRate('1 per 3 days'), /period over 2 days/);
    assert.throws(() => parseRate('1 per 99999999999 days'), /period over 2 days/);
  });
});
