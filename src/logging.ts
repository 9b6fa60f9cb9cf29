/**
 * The service's logger: pino, one JSON object per line. The one place that decides what a log
 * line may not contain.
 */
import pino, { type DestinationStream, type Logger } from 'pino';

/** Keys whose values never reach a log line. */
const SECRET_KEYS = [
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

export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options = { level, redact: { paths: LOG_REDACT_PATHS, censor: REDACTED } };
  return destination ? pino(options, destination) : pino(options);
}
