/** TRUSTED_PROXIES: forwarded headers believed only from listed peers; spoofing is logged and cannot dodge limits. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileTrustedProxies } from '../../src/plugins/client-address.js';
import { createLoggedApp } from './support.js';

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

  it('untrusted X-Forwarded-For: the socket address is used, the guide warning is logged and a suspicious_header event recorded', async () => {
    const t = await createLoggedApp({ TRUSTED_PROXIES: '10.0.0.1' }, undefined, (app) =>
      app.get('/api/test-ip', async (request) => ({ ip: request.ip, protocol: request.protocol })),
    );
    const events: { type: string; ip: string | null }[] = [];
    t.container.events.onEvent((e) => events.push(e));
    try {
      const spoofed = await t.app.inject({ method: 'GET', url: '/api/test-ip', remoteAddress: '198.51.100.9', headers: { 'x-forwarded-for': '1.2.3.4', 'x-forwarded-proto': 'https' } });
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

      const viaProxy = await t.app.inject({ method: 'GET', url: '/api/test-ip', remoteAddress: '10.0.0.1', headers: { 'x-forwarded-for': '203.0.113.5', 'x-forwarded-proto': 'https' } });
      assert.deepEqual(JSON.parse(viaProxy.body), { ip: '203.0.113.5', protocol: 'https' });
      // A client-supplied entry to the left of what the proxy appended is not believed either.
      const chained = await t.app.inject({ method: 'GET', url: '/api/test-ip', remoteAddress: '10.0.0.1', headers: { 'x-forwarded-for': '6.6.6.6, 203.0.113.5' } });
      assert.equal(JSON.parse(chained.body).ip, '203.0.113.5');
      assert.equal(events.filter((e) => e.type === 'suspicious_header').length, 1, 'no event for the trusted proxy');
    } finally {
      await t.close();
    }
  });

  it('X-Request-ID is our id only from a trusted proxy; a client\'s is logged apart and never reaches a security event', async () => {
    const t = await createLoggedApp({ TRUSTED_PROXIES: '10.0.0.1', NODE_ENV: 'development' });
    const events: { type: string; request_id: string | null }[] = [];
    t.container.events.onEvent((e) => events.push(e));
    try {
      const login = (remoteAddress: string, id: string) =>
        t.app.inject({ method: 'POST', url: '/api/auth/login', remoteAddress, headers: { 'x-request-id': id }, payload: { username: 'nobody-here', password: 'Not-The-Password-1' } });
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
});
