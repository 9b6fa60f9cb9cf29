/** TRUSTED_PROXIES: forwarded headers believed only from listed peers; spoofing is logged and cannot dodge limits. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { clientAddressKey } from '../../src/core/client-address.js';
import { compileTrustedProxies } from '../../src/plugins/app/client-address.js';
import { setEmergencyLimit } from '../../src/state/emergency-limit.js';
import { createLoggedApp } from '../helpers/app.js';
import { sleep } from '../helpers/server.js';

describe('client address', () => {
  it('compiles addresses, CIDRs and aliases, and refuses garbage', () => {
    const trusted = compileTrustedProxies(['10.0.0.0/8', '192.0.2.7', '2001:db8::/32', 'loopback']);
    assert.equal(trusted('10.1.2.3'), true);
    assert.equal(trusted('::ffff:10.1.2.3'), true);
    assert.equal(trusted('192.0.2.7'), true);
    assert.equal(trusted('192.0.2.8'), false);
    assert.equal(trusted('2001:db8::1'), true);
    assert.equal(trusted('127.0.0.1'), true);
    assert.equal(trusted('11.0.0.1'), false);
    assert.equal(trusted('not-an-ip'), false);
    assert.throws(() => compileTrustedProxies(['10.0.0.0/33']), /TRUSTED_PROXIES/);
    assert.throws(() => compileTrustedProxies(['proxy.example.com']), /TRUSTED_PROXIES/);
  });

  it('untrusted X-Forwarded-For: socket address used, warning logged, suspicious_header event recorded', async () => {
    const t = await createLoggedApp({ TRUSTED_PROXIES: '10.0.0.1' }, undefined, (app) =>
      app.get('/api/test-ip', async (request) => ({ ip: request.ip, protocol: request.protocol })),
    );
    const events: { type: string; ip: string | null }[] = [];
    t.container.events.onEvent((e) => events.push(e));
    try {
      const spoofed = await t.app.inject({
        method: 'GET',
        url: '/api/test-ip',
        remoteAddress: '198.51.100.9',
        headers: { 'x-forwarded-for': '1.2.3.4', 'x-forwarded-proto': 'https' },
      });
      assert.deepEqual(JSON.parse(spoofed.body), { ip: '198.51.100.9', protocol: 'http' });
      const warning = t.lines.find((l) => l.msg === 'Request with X-Forwarded-For header');
      assert.ok(warning, 'warning logged');
      assert.equal(warning.level, 40);
      assert.equal(warning.ip_address, '198.51.100.9');
      assert.equal(warning.forwarded_for, '1.2.3.4');
      assert.deepEqual(
        events.filter((e) => e.type === 'suspicious_header').map((e) => e.ip),
        ['198.51.100.9'],
      );

      const viaProxy = await t.app.inject({
        method: 'GET',
        url: '/api/test-ip',
        remoteAddress: '10.0.0.1',
        headers: { 'x-forwarded-for': '203.0.113.5', 'x-forwarded-proto': 'https' },
      });
      assert.deepEqual(JSON.parse(viaProxy.body), { ip: '203.0.113.5', protocol: 'https' });
      // A client-supplied entry to the left of what the proxy appended is not believed either.
      const chained = await t.app.inject({
        method: 'GET',
        url: '/api/test-ip',
        remoteAddress: '10.0.0.1',
        headers: { 'x-forwarded-for': '6.6.6.6, 203.0.113.5' },
      });
      assert.equal(JSON.parse(chained.body).ip, '203.0.113.5');
      assert.equal(events.filter((e) => e.type === 'suspicious_header').length, 1, 'no event for the trusted proxy');
    } finally {
      await t.close();
    }
  });

  it("only a trusted proxy's X-Request-ID is adopted; a client's is logged apart, not in security events", async () => {
    const t = await createLoggedApp({ TRUSTED_PROXIES: '10.0.0.1', NODE_ENV: 'development' });
    const events: { type: string; request_id: string | null }[] = [];
    t.container.events.onEvent((e) => events.push(e));
    try {
      const login = (remoteAddress: string, id: string) =>
        t.app.inject({
          method: 'POST',
          url: '/api/auth/login',
          remoteAddress,
          headers: { 'x-request-id': id },
          payload: { username: 'nobody-here', password: 'Not-The-Password-1' },
        });
      const direct = await login('198.51.100.30', 'client-chosen-1');
      assert.equal(direct.statusCode, 401);
      const ours = String(direct.headers['x-request-id']);
      assert.match(ours, /^[0-9a-f-]{36}$/);
      assert.equal(JSON.parse(direct.body).request_id, ours);
      const viaProxy = await login('10.0.0.1', 'proxy-set-1');
      assert.equal(viaProxy.headers['x-request-id'], 'proxy-set-1');
      // IPv4-mapped spelling of the proxy is the proxy; a neighbour is not.
      assert.equal((await login('::ffff:10.0.0.1', 'proxy-set-2')).headers['x-request-id'], 'proxy-set-2');
      assert.notEqual((await login('10.0.0.2', 'client-chosen-2')).headers['x-request-id'], 'client-chosen-2');
      await t.container.events.flush();
      const ids = events.map((e) => e.request_id);
      assert.ok(ids.includes(ours) && ids.includes('proxy-set-1'), JSON.stringify(ids));
      assert.ok(!ids.includes('client-chosen-1') && !ids.includes('client-chosen-2'), JSON.stringify(ids));
      const rows = await t.container.db.selectFrom('security_events').select('request_id').execute();
      assert.ok(!rows.some((r) => r.request_id?.startsWith('client-chosen')));
      const access = t.lines.find((l) => l.msg === 'request completed' && l.request_id === ours);
      assert.equal(access?.client_request_id, 'client-chosen-1');
      assert.ok(!t.lines.some((l) => l.request_id === 'client-chosen-1'));
    } finally {
      await t.close();
    }
  });

  it('a spoofed X-Forwarded-For cannot dodge a rate limit', async () => {
    const t = await createLoggedApp({ RATE_LIMIT_ENABLED: 'true', RATE_LIMITS: '{"auth.login": "3 per minute"}' });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) {
        const res = await t.app.inject({
          method: 'POST',
          url: '/api/auth/login',
          remoteAddress: '198.51.100.20',
          headers: { 'x-forwarded-for': `203.0.113.${i}`, 'x-real-ip': `203.0.113.${i}` },
          payload: { username: `someone${i}`, password: 'wrong-password' },
        });
        statuses.push(res.statusCode);
      }
      assert.deepEqual(statuses, [401, 401, 401, 429, 429, 429]);
    } finally {
      await t.close();
    }
  });

  it('one function keys a client: IPv4 as is, IPv6 by network (RATE_LIMIT_IPV6_PREFIX), ::ffff:a.b.c.d as IPv4', () => {
    assert.equal(clientAddressKey('203.0.113.9', 64), '203.0.113.9');
    assert.equal(clientAddressKey('::ffff:203.0.113.9', 64), '203.0.113.9');
    assert.equal(clientAddressKey('::FFFF:cb00:7109', 64), '203.0.113.9', 'hex spelling of a mapped address');
    const key = clientAddressKey('2001:db8:1:2::1', 64);
    assert.equal(key, '2001:db8:1:2::/64');
    for (const other of [
      '2001:db8:1:2:ffff:ffff:ffff:ffff',
      '2001:0db8:0001:0002:0000:0000:0000:0abc',
      '2001:DB8:1:2:a:b:c:d',
    ]) {
      assert.equal(clientAddressKey(other, 64), key, other);
    }
    assert.notEqual(clientAddressKey('2001:db8:1:3::1', 64), key, 'another /64');
    assert.equal(clientAddressKey('2001:db8:1:3::1', 48), clientAddressKey('2001:db8:1:2::1', 48));
    assert.notEqual(clientAddressKey('2001:db8::1', 128), clientAddressKey('2001:db8::2', 128));
    assert.equal(clientAddressKey('not-an-ip', 64), 'not-an-ip');
    // Legacy inet_aton spellings are not read as someone else's address (octal 010 is 8).
    assert.equal(clientAddressKey('010.0.0.1', 64), '010.0.0.1');
    assert.equal(clientAddressKey('10.1', 64), '10.1');
  });

  it('X-Forwarded-For in one IPv6 /64 shares a limit; other /64s and IPv4-mapped spellings as expected', async () => {
    const t = await createLoggedApp({
      RATE_LIMIT_ENABLED: 'true',
      TRUSTED_PROXIES: '10.0.0.1',
      RATE_LIMITS: '{"auth.login": "3 per minute"}',
    });
    try {
      const attempt = (forwardedFor: string, i: number) =>
        t.app.inject({
          method: 'POST',
          url: '/api/auth/login',
          remoteAddress: '10.0.0.1',
          headers: { 'x-forwarded-for': forwardedFor },
          payload: { username: `rotating${i}`, password: 'wrong-password' },
        });
      const rotating: number[] = [];
      for (let i = 0; i < 6; i++)
        rotating.push((await attempt(`2001:db8:aa:bb:${i + 1}:${i}::${i + 7}`, i)).statusCode);
      assert.deepEqual(rotating, [401, 401, 401, 429, 429, 429], 'one /64 is one client');
      // Other /64s (even the neighbouring one) have their own counts.
      for (let i = 0; i < 3; i++) assert.equal((await attempt(`2001:db8:aa:${i + 0xc0}::1`, 10 + i)).statusCode, 401);
      // An IPv4 client and its IPv4-mapped IPv6 spelling are one client.
      const mapped: number[] = [];
      for (let i = 0; i < 4; i++)
        mapped.push((await attempt(i % 2 ? '::ffff:198.51.100.77' : '198.51.100.77', 20 + i)).statusCode);
      assert.deepEqual(mapped, [401, 401, 401, 429]);
    } finally {
      await t.close();
    }
  });

  it('the emergency limit and the brute-force block also key an IPv6 client by its /64', async () => {
    const t = await createLoggedApp({
      TRUSTED_PROXIES: '10.0.0.1',
      BRUTE_FORCE_ALERT_THRESHOLD: '3',
      BRUTE_FORCE_BLOCK_MINUTES: '5',
    });
    try {
      const via = (forwardedFor: string) => ({
        remoteAddress: '10.0.0.1',
        headers: { 'x-forwarded-for': forwardedFor },
      });
      for (let i = 0; i < 5; i++) {
        await t.app.inject({
          method: 'POST',
          url: '/api/auth/login',
          ...via(`2001:db8:5:6::${i + 1}`),
          payload: { username: `bf${i}`, password: 'wrong-password' },
        });
      }
      await t.container.intrusion.settle();
      const blocked = await t.app.inject({ method: 'GET', url: '/api/auth/me', ...via('2001:db8:5:6:dead:beef::99') });
      assert.equal(blocked.statusCode, 429, 'a fresh address in the blocked /64 is blocked too');
      assert.equal(
        (await t.app.inject({ method: 'GET', url: '/api/auth/me', ...via('2001:db8:5:7::1') })).statusCode,
        401,
        'the next /64 is not',
      );

      await setEmergencyLimit(t.container.db, t.container.changes, '2 per minute');
      for (let i = 0; i < 50 && !t.app.rateLimits.emergencyLimit; i++) await sleep(20);
      const codes: number[] = [];
      for (let i = 0; i < 3; i++)
        codes.push(
          (await t.app.inject({ method: 'GET', url: '/api/auth/me', ...via(`2001:db8:9:9::${i + 1}`) })).statusCode,
        );
      assert.deepEqual(codes, [401, 401, 429]);
    } finally {
      await t.close();
    }
  });
});
