/** What reaches the logs: the access line's fields, and secrets censored wherever they are logged. */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { createLogger, REDACTED } from '../../src/logging.js';
import { createLoggedApp } from './support.js';

describe('logging', () => {
  it('writes one access line per request: method, path without the query, status, ip, time, request id', async () => {
    // The access log is off under NODE_ENV=test; development has it, as production does.
    const t = await createLoggedApp({ NODE_ENV: 'development' });
    try {
      const token = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl';
      const me = await t.app.inject({
        method: 'GET',
        url: '/api/auth/me?search=private-term',
        headers: { authorization: `Bearer ${token}`, 'x-request-id': 'req-logging-1' },
        remoteAddress: '198.51.100.7',
      });
      assert.equal(me.statusCode, 401);
      await t.app.inject({ method: 'GET', url: '/api/health', headers: { 'x-request-id': 'req-logging-2' } });

      const access = t.lines.filter((line) => line.msg === 'request completed');
      assert.equal(access.length, 2, JSON.stringify(access));
      const [first, second] = access;
      assert.equal(first!.request_id, 'req-logging-1');
      assert.equal(first!.method, 'GET');
      assert.equal(first!.path, '/api/auth/me');
      assert.equal(first!.status, 401);
      assert.equal(first!.ip, '198.51.100.7');
      assert.equal(typeof first!.ms, 'number');
      assert.equal(second!.request_id, 'req-logging-2');
      assert.equal(second!.status, 200);

      const everything = JSON.stringify(t.lines);
      assert.doesNotMatch(everything, /private-term/, 'query strings are not logged');
      assert.ok(!everything.includes(token), 'the presented token is not logged');
    } finally {
      await t.close();
    }
  });

  it('censors secret keys at the top of a logged object, inside request data and rows, and in request headers', () => {
    const out: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        out.push(chunk.toString());
        callback();
      },
    });
    const log = createLogger('info', sink);
    log.info(
      {
        password: 'top-password',
        refresh_token: 'top-refresh',
        body: { password: 'body-password', new_password: 'body-new', username: 'alice' },
        details: { secret: 'details-secret', access_token: 'details-access' },
        user: { password_hash: '$2b$12$hash', username: 'alice' },
        req: { headers: { authorization: 'Bearer header-token', cookie: 'refresh=cookie-value', 'x-csrf-token': 'csrf-value' } },
      },
      'logged by mistake',
    );
    log.child({ token: 'binding-token' }).warn('child binding');
    const text = out.join('');
    for (const secret of ['top-password', 'top-refresh', 'body-password', 'body-new', 'details-secret', 'details-access', '$2b$12$hash', 'header-token', 'cookie-value', 'csrf-value', 'binding-token']) {
      assert.ok(!text.includes(secret), `${secret} reached the log: ${text}`);
    }
    assert.ok(text.includes(REDACTED));
    assert.match(text, /"username":"alice"/, 'other fields stay');
  });
});
