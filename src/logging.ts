/**
 * The service's logger: pino, one JSON object per line. The one place that decides what a log
 * line may not contain.
 */
import pino, { type DestinationStream, type Logger } from 'pino';

/**
 * Keys whose values never reach a log line or a security event's details. Matching is exact (after
 * reading camelCase, `-` and upper case as snake_case): a flag such as `password_upgraded` or an id such as `jti`
 * is information, not a secret, and stays readable.
 */
export const SECRET_KEYS = [
  'password',
  'new_password',
  'current_password',
  'confirm_password',
  'password_hash',
  'token',
  'access_token',
  'refresh_token',
  'device_token',
  'csrf_token',
  'health_token',
  'secret',
  'secrets',
  'client_secret',
  'api_key',
  'private_key',
  'jwt',
  'authorization',
  'cookie',
  'set_cookie',
  'x_csrf_token',
  'x_health_token',
  'x_device_token',
];

const SECRET_KEY_SET = new Set(SECRET_KEYS);

/** True for a key whose value is a secret: exact match once camelCase, `-` and case are read as snake_case. */
export function isSecretKey(key: string): boolean {
  return SECRET_KEY_SET.has(
    key
      .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
      .toLowerCase()
      .replaceAll('-', '_'),
  );
}

/** Logged objects that can hold request data or rows: secret keys inside them are censored too. */
const CONTAINERS = ['body', 'data', 'details', 'user', 'err'];

/**
 * Named paths only, no leading wildcard: a `*.password` path makes pino run the redaction over
 * every key of every line and of every request's child logger, a large share of an authenticated
 * call (docs/benchmarks.md, section 2); named paths cost only the lines that have them.
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

/**
 * POSIX writes up to PIPE_BUF (4096 on Linux) bytes to a pipe at once, never interleaved with
 * another writer's. Workers (WEB_CONCURRENCY) share one stdout, so no write carries more.
 */
export const PIPE_BUF = 4096;

/**
 * Collects whole log lines and hands them on as one chunk of at most `limit` bytes. Writing
 * each line to sonic-boom with its own minLength buffering costs more than the line: it
 * re-measures its whole buffer on every line, and its chunks can outgrow PIPE_BUF.
 */
export class LineBatch implements DestinationStream {
  private lines: string[] = [];
  private bytes = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly out: DestinationStream,
    private readonly limit: number,
  ) {
    this.timer = setInterval(() => this.flushSync(), LOG_FLUSH_INTERVAL_MS).unref();
  }

  write(line: string): void {
    const bytes = Buffer.byteLength(line);
    if (this.bytes + bytes > this.limit) this.flushSync();
    this.lines.push(line);
    this.bytes += bytes;
  }

  flushSync(): void {
    if (this.lines.length === 0) return;
    const chunk = this.lines.join('');
    this.lines = [];
    this.bytes = 0;
    this.out.write(chunk);
  }

  /** Writes what waits and stops the timer (tests: the service's stream lives with the process). */
  close(): void {
    clearInterval(this.timer);
    this.flushSync();
  }
}

/** One stdout stream per buffer size, shared by every logger of the process: lines keep order. */
const stdoutStreams = new Map<number, DestinationStream>();

/**
 * Standard output, written from the event loop. pino's default destination writes through
 * libuv's thread pool (one job per write, queued behind password hashing during a login flood);
 * here each write is a direct write(2), as Node's own process.stdout does. With bufferBytes > 0,
 * whole lines are collected until the next one would take the batch past bufferBytes (at most
 * PIPE_BUF) or LOG_FLUSH_INTERVAL_MS has passed (one system call for many access lines,
 * docs/benchmarks.md section 4), and flushed when the process exits, crashes included; only a SIGKILL
 * loses the last second.
 */
export function standardOutput(bufferBytes: number): DestinationStream {
  const existing = stdoutStreams.get(bufferBytes);
  if (existing) return existing;
  const direct = pino.destination({ dest: 1, sync: true });
  let stream: DestinationStream = direct;
  if (bufferBytes > 0) {
    const batch = new LineBatch(direct, Math.min(bufferBytes, PIPE_BUF));
    process.once('exit', () => {
      try {
        batch.flushSync();
      } catch {
        // stdout already closed: nothing left to write to
      }
    });
    stream = batch;
  }
  stdoutStreams.set(bufferBytes, stream);
  return stream;
}

/** Without a destination: standard output, buffered by bufferBytes (LOG_BUFFER_BYTES). */
export function createLogger(level: string, destination?: DestinationStream | { bufferBytes: number }): Logger {
  const options = { level, redact: { paths: LOG_REDACT_PATHS, censor: REDACTED } };
  const stream =
    destination === undefined
      ? standardOutput(0)
      : 'bufferBytes' in destination
        ? standardOutput(destination.bufferBytes)
        : destination;
  return pino(options, stream);
}
