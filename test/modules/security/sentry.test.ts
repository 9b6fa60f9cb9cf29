/**
 * Sentry reporting against a local HTTP server posing as the Sentry ingest endpoint: unhandled
 * errors and critical security events arrive with request context, and nothing secret does.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import * as Sentry from '@sentry/node';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../../src/app.js';
import { bearer, makeAdmin, makeTestConfig, registerAndLogin, STRONG_PASSWORD, uniqueUser } from '../../helpers/app.js';

interface Received {
  path: string;
  body: string;
}

describe('Sentry error tracking', () => {
  let ingest: Server;
  const received: Received[] = [];
  let app: FastifyInstance;

  before(async () => {
    ingest = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        let raw = Buffer.concat(chunks);
        if (req.headers['content-encoding'] === 'gzip') raw = gunzipSync(raw);
        received.push({ path: req.url ?? '', body: raw.toString('utf8') });
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => ingest.listen(0, '127.0.0.1', resolve));
    const port = (ingest.address() as AddressInfo).port;
    const config = makeTestConfig({
      SENTRY_DSN: `http://publickey@127.0.0.1:${port}/1`,
      SENTRY_ENVIRONMENT: 'sentry-test',
    });
    app = await buildApp(config);
    app.post('/api/test-boom', { preHandler: app.authenticate }, async () => {
      throw new Error('kaboom from a handler');
    });
    await app.ready();
  });
  after(async () => {
    await app.close();
    await Sentry.close(2000);
    await new Promise((resolve) => ingest.close(resolve));
  });

  it('reports an unhandled error with request context, no secrets; the client still gets a clean 500', async () => {
    const user = await registerAndLogin(app, uniqueUser('sentry'));
    const res = await app.inject({
      method: 'POST',
      url: '/api/test-boom?token=query-secret-value',
      headers: {
        ...bearer(user.access),
        cookie: 'flokie_refresh=cookie-secret-value',
        'user-agent': 'sentry-test-agent',
        'x-request-id': 'req-sentry-1',
      },
      payload: { password: STRONG_PASSWORD, note: 'body-secret-value' },
    });
    assert.equal(res.statusCode, 500);
    assert.ok(!res.body.includes('kaboom'));
    await Sentry.flush(5000);

    const envelopes = received.filter((r) => r.path.startsWith('/api/1/envelope'));
    const errorEnvelope = envelopes.find((e) => e.body.includes('kaboom from a handler'));
    assert.ok(errorEnvelope, `the error reached the ingest endpoint (got ${received.length} requests)`);
    const body = errorEnvelope.body;
    assert.match(body, /"environment":"sentry-test"/);
    assert.ok(body.includes(String(res.headers['x-request-id'])), 'our request id in the context');
    assert.match(body, /\/api\/test-boom/, 'route in the context');
    assert.ok(body.includes(user.id), 'user id in the context');
    for (const secret of [
      user.access,
      'cookie-secret-value',
      'query-secret-value',
      'body-secret-value',
      STRONG_PASSWORD,
      'Bearer ',
    ]) {
      assert.ok(!body.includes(secret), `leaked to Sentry: ${secret.slice(0, 16)}`);
    }
  });

  it('reports critical security events, not routine ones', async () => {
    const before = received.length;
    app.container.events.emit({ type: 'login_success', ip: '192.0.2.7', details: { note: 'routine' } });
    app.container.events.emit({
      type: 'refresh_token_reuse',
      ip: '192.0.2.8',
      message: 'Refresh token reused: session revoked',
      details: { session_id: 's-1' },
    });
    await Sentry.flush(5000);
    const fresh = received.slice(before).map((r) => r.body);
    assert.ok(
      fresh.some((b) => b.includes('Refresh token reused: session revoked') && b.includes('refresh_token_reuse')),
      'critical event arrived',
    );
    assert.ok(!fresh.some((b) => b.includes('routine')), 'routine event not sent');
  });

  it('a brute force alert raised by real failed logins reaches Sentry', async () => {
    const admin = await registerAndLogin(app, uniqueUser('sentryadmin'));
    await makeAdmin(app, admin.id);
    const before = received.length;
    for (let i = 0; i < app.container.config.BRUTE_FORCE_ALERT_THRESHOLD + 2; i++) {
      await app.inject({
        method: 'POST',
        url: '/api/auth/login',
        remoteAddress: '192.0.2.99',
        payload: { username: `nobody${i}`, password: 'Not-The-Password-1' },
      });
    }
    await app.container.intrusion.settle();
    await Sentry.flush(5000);
    const fresh = received.slice(before).map((r) => r.body);
    const alerts = fresh.filter((b) => b.includes('Potential brute force attack'));
    assert.equal(alerts.length, 1);
    assert.ok(!alerts[0]!.includes('Not-The-Password-1'));
  });
});
