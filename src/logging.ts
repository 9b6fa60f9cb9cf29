/**
 * The service's logger: pino, one JSON object per line. The one place that decides what a log
 * line may not contain.
 */
import pino, { type DestinationStream, type Logger } from 'pino';

/** Keys whose values never reach a log line. */
export const SECRET_KEYS = [
  'password',
  'new_password',
  'current_password',
  'confirm_password',
  'password_hash',
  'token',
  'access_token',
  'refresh_token',
  'secret',
];

/**
 * Any key that looks as if it could carry a secret. Security-event details (written to the
 * database and the log) drop every such key, whoever put it there; every name in SECRET_KEYS
 * matches it (test/http/logging.test.ts).
 */
export const SECRET_KEY_PATTERN = /pass|token|secret|hash|authorization|cookie|jwt/i;

/** Logged objects that can hold request data or rows: secret keys inside them are censored too. */
const CONTAINERS = ['body', 'data', 'details', 'user', 'err'];

/**
 * Named paths only, no leading wildcard: a `*.password` path makes pino run the redaction over
 * every key of every line and of every request's child logger, about 12 µs a request, a sixth
 * of an authenticated call (docs/benchmarks.md); named paths cost only the lines that have them.
 */
export const LOG_REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-csrf-token"]',
  'res.headers["set-cookie"]',
  ...SECRET_KEYS,
  ...CONTAINERS.flatMap((container) => SECRET_KEYS.map((key) => `${container}.${key}`)),
];

export const REDACTED = '[redacted]';

/** How long a buffered line may wait before it is written. */
export const LOG_FLUSH_INTERVAL_MS = 1000;

/** One stdout stream per buffer size, shared by every logger of the process: lines stay in order. */
const stdoutStreams = new Map<number, DestinationStream>();

/**
 * Standard output, written from the event loop. pino's default destination writes through
 * libuv's thread pool (one job per write, queued behind password hashing during a login flood);
 * here each write is a direct write(2), as Node's own process.stdout does. With bufferBytes > 0,
 * lines are collected until that many bytes wait or LOG_FLUSH_INTERVAL_MS has passed (one system
 * call for about sixteen access lines, docs/benchmarks.md) and flushed when the process exits,
 * crashes included; only a SIGKILL loses the last second.
 */
export function standardOutput(bufferBytes: number): DestinationStream {
  const existing = stdoutStreams.get(bufferBytes);
  if (existing) return existing;
  const stream =
    bufferBytes > 0
      ? pino.destination({ dest: 1, sync: true, minLength: bufferBytes, periodicFlush: LOG_FLUSH_INTERVAL_MS })
      : pino.destination({ dest: 1, sync: true });
  if (bufferBytes > 0) {
    process.once('exit', () => {
      try {
        stream.flushSync();
      } catch {
        // stdout already closed: nothing left to write to
      }
    });
  }
  stdoutStreams.set(bufferBytes, stream);
  return stream;
}

/** Without a destination: standard output, buffered by bufferBytes (LOG_BUFFER_BYTES). */
export function createLogger(level: string, destination?: DestinationStream | { bufferBytes: number }): Logger {
  const options = { level, redact: { paths: LOG_REDACT_PATHS, censor: REDACTED } };
  const stream = destination === undefined ? standardOutput(0) : 'bufferBytes' in destination ? standardOutput(destination.bufferBytes) : destination;
  return pino(options, stream);
}
