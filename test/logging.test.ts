/** What reaches the logs: the access line's fields, and secrets censored wherever they are logged. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import {
  createLogger,
  isSecretKey,
  LineBatch,
  LOG_FLUSH_INTERVAL_MS,
  PIPE_BUF,
  REDACTED,
  SECRET_KEYS,
} from '../src/logging.js';
import { createLoggedApp } from './helpers/app.js';

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
      // Sent by a client, not a trusted proxy: logged apart, never as our id.
      assert.notEqual(first!.request_id, 'req-logging-1');
      assert.equal(first!.client_request_id, 'req-logging-1');
      assert.equal(first!.method, 'GET');
      assert.equal(first!.path, '/api/auth/me');
      assert.equal(first!.status, 401);
      assert.equal(first!.ip, '198.51.100.7');
      assert.equal(typeof first!.ms, 'number');
      assert.equal(second!.client_request_id, 'req-logging-2');
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
        req: {
          headers: {
            authorization: 'Bearer header-token',
            cookie: 'refresh=cookie-value',
            'x-csrf-token': 'csrf-value',
          },
        },
      },
      'logged by mistake',
    );
    log.child({ token: 'binding-token' }).warn('child binding');
    const text = out.join('');
    for (const secret of [
      'top-password',
      'top-refresh',
      'body-password',
      'body-new',
      'details-secret',
      'details-access',
      '$2b$12$hash',
      'header-token',
      'cookie-value',
      'csrf-value',
      'binding-token',
    ]) {
      assert.ok(!text.includes(secret), `${secret} reached the log: ${text}`);
    }
    assert.ok(text.includes(REDACTED));
    assert.match(text, /"username":"alice"/, 'other fields stay');
  });

  /** Secret keys are censored in the log line and the stored row; information keys stay as they are. */
  const SECRET_DETAIL_KEYS = [
    'password',
    'token',
    'refresh_token',
    'access_token',
    'current_password',
    'new_password',
    'authorization',
    'Authorization',
    'cookie',
    'Set-Cookie',
    'secrets',
    'secret',
    'password_hash',
    'csrf_token',
    'jwt',
    'refreshToken',
    'newPassword',
    'X-CSRF-Token',
  ];
  const INFORMATION_KEYS = [
    'password_upgraded',
    'username',
    'jti',
    'session_id',
    'token_type',
    'hash_algorithm',
    'cookie_mode',
    'passwordless',
    'secret_rotation_due',
    'passwordUpgraded',
  ];

  it('redaction by key is exact: secret keys always censored, information keys (password_upgraded) never', async () => {
    for (const key of SECRET_KEYS) assert.ok(isSecretKey(key), key);
    for (const key of SECRET_DETAIL_KEYS) assert.ok(isSecretKey(key), key);
    for (const key of INFORMATION_KEYS) assert.ok(!isSecretKey(key), key);
    const t = await createLoggedApp();
    try {
      const details: Record<string, unknown> = {};
      for (const key of SECRET_DETAIL_KEYS) details[key] = `value-of-${key}`;
      INFORMATION_KEYS.forEach((key, i) => (details[key] = i % 2 === 0 ? true : `info-${key}`));
      t.container.events.emit({ type: 'admin_action', userId: null, details });
      await t.container.events.flush();
      const row = await t.container.db
        .selectFrom('security_events')
        .select('details')
        .where('type', '=', 'admin_action')
        .executeTakeFirstOrThrow();
      const stored = JSON.parse(row.details ?? '{}') as Record<string, unknown>;
      // The log line carries the details at its top level.
      const logged = t.lines.find((l) => l.security_event === 'admin_action');
      assert.ok(logged, 'the event was logged');
      for (const key of SECRET_DETAIL_KEYS) {
        assert.equal(stored[key], REDACTED, `stored ${key}`);
        assert.equal(logged[key], REDACTED, `logged ${key}`);
      }
      INFORMATION_KEYS.forEach((key, i) => {
        const value = i % 2 === 0 ? true : `info-${key}`;
        assert.equal(stored[key], value, `stored ${key}`);
        assert.equal(logged[key], value, `logged ${key}`);
      });
    } finally {
      await t.close();
    }
  });

  it('a real login event says whether the password hash was upgraded (a boolean, not "[redacted]")', async () => {
    const t = await createLoggedApp();
    try {
      const user = { username: 'upgrader', email: 'upgrader@example.com', password: 'Velvet-Orbit-Harbor-42' };
      assert.equal((await t.app.inject({ method: 'POST', url: '/api/auth/register', payload: user })).statusCode, 201);
      assert.equal(
        (
          await t.app.inject({
            method: 'POST',
            url: '/api/auth/login',
            payload: { username: user.username, password: user.password },
          })
        ).statusCode,
        200,
      );
      await t.container.events.flush();
      const row = await t.container.db
        .selectFrom('security_events')
        .select('details')
        .where('type', '=', 'login_success')
        .executeTakeFirstOrThrow();
      assert.equal(typeof JSON.parse(row.details ?? '{}').password_upgraded, 'boolean');
    } finally {
      await t.close();
    }
  });

  describe('standard output (LOG_BUFFER_BYTES)', () => {
    // A child process logs through createLogger exactly as the service does, then ends as given.
    function runChild(bufferBytes: number, ending: string): { stdout: string; status: number | null } {
      const script = [
        "import { createLogger } from './src/logging.ts';",
        `const log = createLogger('info', { bufferBytes: ${bufferBytes} });`,
        "log.info({ n: 1 }, 'first line');",
        "log.warn({ n: 2 }, 'second line');",
        ending,
      ].join('\n');
      const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
        cwd: fileURLToPath(new URL('..', import.meta.url)),
        encoding: 'utf8',
        timeout: 30_000,
      });
      return { stdout: child.stdout, status: child.status };
    }
    const messages = (stdout: string) =>
      stdout
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line).msg);

    it('buffered lines are written when the process exits', () => {
      const child = runChild(4096, 'process.exit(0);');
      assert.equal(child.status, 0);
      assert.deepEqual(messages(child.stdout), ['first line', 'second line']);
    });

    it('buffered lines are written when the process dies of an uncaught error', () => {
      const child = runChild(4096, "setImmediate(() => { throw new Error('boom'); });");
      assert.notEqual(child.status, 0);
      assert.deepEqual(messages(child.stdout), ['first line', 'second line']);
    });

    it('with 0, each line is written at once: nothing waits for the exit', () => {
      // SIGKILL skips every exit handler: only lines already written survive.
      const child = runChild(0, "process.kill(process.pid, 'SIGKILL');");
      assert.equal(child.status, null);
      assert.deepEqual(messages(child.stdout), ['first line', 'second line']);
    });

    it('with a buffer, a SIGKILL loses the lines still waiting (the documented cost)', () => {
      const child = runChild(4096, "process.kill(process.pid, 'SIGKILL');");
      assert.deepEqual(messages(child.stdout), []);
    });

    it('writes whole lines in chunks of at most the limit, counted in bytes, in order', () => {
      const chunks: string[] = [];
      const batch = new LineBatch({ write: (chunk: string) => void chunks.push(chunk) }, PIPE_BUF);
      // Lines of 1 to 3 bytes a character: a character count would let a chunk outgrow PIPE_BUF.
      const lines = Array.from(
        { length: 400 },
        (_, i) => `{"n":${i},"name":"${['ascii', 'é', '€'][i % 3]!.repeat(20 + (i % 50))}"}\n`,
      );
      for (const line of lines) batch.write(line);
      assert.equal(chunks.length > 0, true, 'full chunks are written without waiting for the timer');
      batch.close();
      assert.equal(chunks.join(''), lines.join(''), 'every line, in order, nothing added');
      for (const chunk of chunks) {
        assert.ok(Buffer.byteLength(chunk) <= PIPE_BUF, `chunk of ${Buffer.byteLength(chunk)} bytes`);
        assert.ok(chunk.endsWith('\n'), 'a chunk ends where a line ends');
      }
      const full = chunks.slice(0, -1).map((chunk) => Buffer.byteLength(chunk));
      const longestLine = Math.max(...lines.map((line) => Buffer.byteLength(line)));
      assert.ok(
        Math.min(...full) > PIPE_BUF - longestLine,
        `a chunk is written only when the next line would not fit: ${Math.min(...full)} bytes`,
      );
    });

    it('a waiting line is written after LOG_FLUSH_INTERVAL_MS even when no other line follows', (ctx) => {
      ctx.mock.timers.enable({ apis: ['setInterval'] });
      const chunks: string[] = [];
      const batch = new LineBatch({ write: (chunk: string) => void chunks.push(chunk) }, PIPE_BUF);
      batch.write('{"msg":"lonely"}\n');
      ctx.mock.timers.tick(LOG_FLUSH_INTERVAL_MS - 1);
      assert.deepEqual(chunks, []);
      ctx.mock.timers.tick(1);
      assert.deepEqual(chunks, ['{"msg":"lonely"}\n']);
      batch.close();
    });
  });
});
