/** No request holds a connection forever; one process holds at most MAX_CONNECTIONS. Raw sockets, a real port. */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { AddressInfo } from 'node:net';
import { createTestApp, type TestApp } from '../helpers/app.js';

interface Outcome {
  /** What the server wrote before closing. */
  text: string;
  /** Milliseconds from the first byte sent to the close. */
  ms: number;
}

/** Opens a socket, hands it to `drive`, and resolves when the server closes it. */
function session(port: number, drive: (socket: Socket) => void): Promise<Outcome> {
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = connect(port, '127.0.0.1');
    let text = '';
    socket.on('data', (chunk) => (text += chunk.toString()));
    socket.on('error', () => {});
    socket.on('close', () => resolve({ text, ms: Date.now() - started }));
    socket.on('connect', () => drive(socket));
  });
}

describe('connection timeouts and cap', () => {
  let t: TestApp;
  let port: number;
  const timers: NodeJS.Timeout[] = [];
  before(async () => {
    t = await createTestApp(
      {
        REQUEST_TIMEOUT_SECONDS: '2',
        HEADERS_TIMEOUT_SECONDS: '1',
        KEEP_ALIVE_TIMEOUT_SECONDS: '1',
        MAX_CONNECTIONS: '3',
      },
      {
        // An answer that never comes (a handler stuck on something without a time limit of its own).
        prepare: (app) => app.get('/test/never-answers', { config: { rateLimit: false } }, () => new Promise(() => {})),
      },
    );
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    port = (t.app.server.address() as AddressInfo).port;
  });
  after(async () => {
    for (const timer of timers) clearInterval(timer);
    await t.close();
  });

  it('a body sent one byte at a time is answered 408 and closed after REQUEST_TIMEOUT_SECONDS', async () => {
    const outcome = await session(port, (socket) => {
      socket.write(
        'POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{',
      );
      const drip = setInterval(() => socket.writable && socket.write(' '), 400);
      timers.push(drip);
      socket.on('close', () => clearInterval(drip));
    });
    assert.match(outcome.text, /^HTTP\/1\.1 408 /);
    assert.match(outcome.text, /"code":"VALIDATION_ERROR"|"code":"REQUEST_TIMEOUT"|Request timed out/);
    assert.ok(outcome.ms >= 1500 && outcome.ms < 6000, `closed after ${outcome.ms} ms`);
  });

  it('headers sent one byte at a time: 408 after HEADERS_TIMEOUT_SECONDS', async () => {
    const outcome = await session(port, (socket) => {
      socket.write('GET /api/health HTTP/1.1\r\nHost: x\r\n');
      const drip = setInterval(() => socket.writable && socket.write('X-Slow: a\r\n'), 300);
      timers.push(drip);
      socket.on('close', () => clearInterval(drip));
    });
    assert.match(outcome.text, /^HTTP\/1\.1 408 /);
    assert.ok(outcome.ms < 5000, `closed after ${outcome.ms} ms`);
  });

  it('a request whose answer never comes is closed after REQUEST_TIMEOUT_SECONDS without traffic', async () => {
    let client: Socket | undefined;
    const outcome = await Promise.race([
      session(port, (socket) => {
        client = socket;
        socket.write('GET /test/never-answers HTTP/1.1\r\nHost: x\r\n\r\n');
      }),
      new Promise<null>((resolve) => timers.push(setTimeout(() => resolve(null), 8000))),
    ]);
    client?.destroy();
    assert.ok(outcome, 'the connection was still open after 8 s');
    assert.equal(outcome.text, '');
    assert.ok(outcome.ms >= 1500 && outcome.ms < 6000, `closed after ${outcome.ms} ms`);
  });

  it('an idle keep-alive connection is closed after KEEP_ALIVE_TIMEOUT_SECONDS', async () => {
    const outcome = await session(port, (socket) =>
      socket.write('GET /api/health/liveness HTTP/1.1\r\nHost: x\r\n\r\n'),
    );
    assert.match(outcome.text, /^HTTP\/1\.1 200 /);
    assert.ok(outcome.ms >= 900 && outcome.ms < 5000, `closed after ${outcome.ms} ms`);
  });

  it('connections beyond MAX_CONNECTIONS are closed at once; the held ones still work', async () => {
    const held: Socket[] = [];
    for (let i = 0; i < 3; i++) {
      const socket = connect(port, '127.0.0.1');
      socket.on('error', () => {});
      await new Promise((resolve) => socket.once('connect', resolve));
      held.push(socket);
    }
    try {
      await new Promise((resolve) => setTimeout(resolve, 100));
      const extra = await session(port, (socket) =>
        socket.write('GET /api/health/liveness HTTP/1.1\r\nHost: x\r\n\r\n'),
      );
      assert.equal(extra.text, '', 'the fourth connection gets no answer');
      assert.ok(extra.ms < 1000, `closed after ${extra.ms} ms`);
      const answer = await new Promise<string>((resolve) => {
        held[0]!.once('data', (chunk) => resolve(chunk.toString()));
        held[0]!.write('GET /api/health/liveness HTTP/1.1\r\nHost: x\r\n\r\n');
      });
      assert.match(answer, /^HTTP\/1\.1 200 /);
    } finally {
      for (const socket of held) socket.destroy();
    }
  });
});
