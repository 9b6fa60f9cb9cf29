/**
 * Every setting Flokie reads, in one table. Each entry names its environment variable, default,
 * parser and a one-line description. The same table validates the environment at start, is
 * printed into README.md / .env.example (`npm run docs:config`), and is what `flokie check` reads.
 */

export class SettingError extends Error {}

type Parser<T> = (raw: string) => T;

export interface Setting<T> {
  env: string;
  /** Default as the user would write it in .env ('' = unset). */
  default: string;
  doc: string;
  group: string;
  parse: Parser<T>;
  /** Never printed back (secrets, URLs with passwords). */
  secret?: boolean;
}

function fail(message: string): never {
  throw new SettingError(message);
}

const int =
  (min: number, max: number): Parser<number> =>
  (raw) => {
    if (!/^-?\d+$/.test(raw.trim())) fail(`must be an integer, got "${raw}"`);
    const n = Number(raw);
    if (n < min || n > max) fail(`must be between ${min} and ${max}, got ${n}`);
    return n;
  };

const num =
  (min: number, max: number): Parser<number> =>
  (raw) => {
    const n = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(n)) fail(`must be a number, got "${raw}"`);
    if (n < min || n > max) fail(`must be between ${min} and ${max}, got ${n}`);
    return n;
  };

const bool: Parser<boolean> = (raw) => {
  const v = raw.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(v)) return true;
  if (['0', 'false', 'no', 'off'].includes(v)) return false;
  return fail(`must be true or false, got "${raw}"`);
};

const str: Parser<string> = (raw) => raw;

const oneOf =
  <T extends string>(...values: T[]): Parser<T> =>
  (raw) => {
    const v = raw.trim() as T;
    if (!values.includes(v)) fail(`must be one of ${values.join(', ')}, got "${raw}"`);
    return v;
  };

/** A list as a JSON array or a comma-separated string. */
export const list: Parser<string[]> = (raw) => {
  const text = raw.trim();
  if (text === '') return [];
  if (text.startsWith('[')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      fail('is not a valid JSON array');
    }
    if (!Array.isArray(parsed) || !parsed.every((x) => typeof x === 'string')) fail('must be a JSON array of strings');
    return (parsed as string[]).map((s) => s.trim()).filter(Boolean);
  }
  return text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
};

const url =
  (...protocols: string[]): Parser<string> =>
  (raw) => {
    if (raw === '') return '';
    let u: URL;
    try {
      u = new URL(raw);
    } catch {
      fail('is not a valid URL');
    }
    if (protocols.length && !protocols.includes(u.protocol)) fail(`must start with ${protocols.join(' or ')}`);
    return raw;
  };

/** An e-mailed link: an http(s) URL with `{token}` where the token goes ('' = the default on PUBLIC_URL). */
const linkTemplate: Parser<string> = (raw) => {
  const text = raw.trim();
  if (text === '') return '';
  if (!text.includes('{token}')) fail('must contain {token} where the token goes');
  url('http:', 'https:')(text.replaceAll('{token}', 'TOKEN'));
  return text;
};

const databaseUrl: Parser<string> = (raw) => {
  if (/^sqlite:/.test(raw)) {
    if (raw.length <= 'sqlite:'.length) fail('needs a file path after sqlite:');
    return raw;
  }
  return url('postgres:', 'postgresql:', 'mysql:', 'mariadb:')(raw) || fail('must not be empty');
};

/** "5 per minute", "100/hour", "10 per 30 seconds". */
export interface RateSpec {
  points: number;
  durationSeconds: number;
  text: string;
}
const UNIT_SECONDS: Record<string, number> = { second: 1, minute: 60, hour: 3600, day: 86400 };
/** Each letter in either case: a JSON Schema pattern has no flags. */
const caseless = (word: string) => [...word].map((c) => `[${c}${c.toUpperCase()}]`).join('');
/**
 * The rate format, the one rule for it: parseRate's, and the `pattern` of the emergency limit in
 * the request schema and the OpenAPI document. Anchored, linear (no nested repetition).
 */
export const RATE_PATTERN =
  `^\\s*(\\d+)\\s*(?:${caseless('per')}|/)\\s*(\\d+\\s+)?` +
  `(${Object.keys(UNIT_SECONDS).map(caseless).join('|')})[sS]?\\s*$`;
// eslint-disable-next-line security/detect-non-literal-regexp -- a constant, above
const RATE = new RegExp(RATE_PATTERN, 'u');
/**
 * The longest period a rate may have. In-process counters expire through Node timers, which cannot
 * wait longer than 2^31 ms (about 24.8 days: a longer wait fires at once, resetting the count on
 * every request), and a bucket's burst refills over 10 periods (src/state/rate-limiter.ts).
 */
export const MAX_RATE_PERIOD_SECONDS = 2 * 86400;
export function parseRate(raw: string): RateSpec {
  const m = RATE.exec(raw);
  if (!m) return fail(`"${raw}" is not a rate like "5 per minute"`);
  const points = Number(m[1]);
  const count = m[2] ? Number(m[2]) : 1;
  if (points < 1 || count < 1) fail(`"${raw}" must allow at least 1 request per period`);
  const durationSeconds = count * UNIT_SECONDS[m[3]!.toLowerCase()]!;
  if (durationSeconds > MAX_RATE_PERIOD_SECONDS)
    fail(`"${raw}" has a period over 2 days, the longest a limit can count`);
  return { points, durationSeconds, text: raw.trim() };
}

export const DEFAULT_RATE_LIMITS: Record<string, string> = {
  default: '100 per hour',
  'auth.login': '5 per minute',
  'auth.register': '3 per minute',
  'password.reset': '2 per minute',
  'password.reset.complete': '10 per minute',
};

const rateLimits: Parser<Record<string, RateSpec>> = (raw) => {
  let obj: unknown = {};
  if (raw.trim() !== '') {
    try {
      obj = JSON.parse(raw);
    } catch {
      fail('is not valid JSON (expected an object like {"auth.login": "5 per minute"})');
    }
  }
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) fail('must be a JSON object');
  const merged: Record<string, string> = { ...DEFAULT_RATE_LIMITS };
  for (const [key, value] of Object.entries(obj as Record<string, unknown>)) {
    if (typeof value !== 'string') fail(`key "${key}" must be a string like "5 per minute"`);
    merged[key] = value;
  }
  const out: Record<string, RateSpec> = {};
  for (const [key, value] of Object.entries(merged)) {
    try {
      out[key] = parseRate(value);
    } catch (e) {
      fail(`key "${key}": ${(e as Error).message}`);
    }
  }
  return out;
};

const cspMap: Parser<Record<string, string> | null> = (raw) => {
  if (raw.trim() === '') return null;
  let obj: unknown;
  try {
    obj = JSON.parse(raw);
  } catch {
    fail('is not valid JSON (expected an object like {"default-src": "\'none\'"})');
  }
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) fail('must be a JSON object of directives');
  for (const [k, v] of Object.entries(obj as Record<string, unknown>)) {
    if (!/^[a-z-]+$/.test(k)) fail(`directive "${k}" is not a CSP directive name`);
    if (typeof v !== 'string' || /[;\r\n]/.test(v)) fail(`directive "${k}" must be a string without ";"`);
  }
  return obj as Record<string, string>;
};

/** E-mail addresses for alerts: a list, each one plain address (no name, no header-breaking characters). */
const emailList: Parser<string[]> = (raw) => {
  const addresses = list(raw);
  for (const a of addresses)
    if (!/^[^\s@,;<>"()\\]+@[^\s@,;<>"()\\]+\.[^\s@,;<>"()\\]+$/.test(a))
      fail(`"${a.slice(0, 100)}" is not a plain e-mail address`);
  return addresses;
};

/** An age X25519 recipient (Bech32, "age1" + 58 characters). */
const ageRecipient: Parser<string> = (raw) => {
  const value = raw.trim();
  if (value !== '' && !/^age1[02-9ac-hj-np-z]{58}$/.test(value))
    fail('must be an age public key (age1… , 62 characters), e.g. from `flokie backup keygen`');
  return value;
};

const S = <T>(s: Setting<T>) => s;

export const SETTINGS = {
  NODE_ENV: S({
    env: 'NODE_ENV',
    default: 'development',
    group: 'Server',
    doc: 'development, test or production. Production refuses weak secrets and enables HSTS.',
    parse: oneOf('development', 'test', 'production'),
  }),
  HOST: S({
    env: 'HOST',
    default: '127.0.0.1',
    group: 'Server',
    doc: 'Interface to listen on (0.0.0.0 in containers).',
    parse: str,
  }),
  PORT: S({ env: 'PORT', default: '5000', group: 'Server', doc: 'TCP port to listen on.', parse: int(0, 65535) }),
  PUBLIC_URL: S({
    env: 'PUBLIC_URL',
    default: '',
    group: 'Server',
    doc: 'Base URL used in e-mailed links and as the FORCE_HTTPS redirect target (default http://HOST:PORT).',
    parse: url('http:', 'https:'),
  }),
  WEB_CONCURRENCY: S({
    env: 'WEB_CONCURRENCY',
    default: '1',
    group: 'Server',
    doc: 'Worker processes sharing the port (node:cluster).',
    parse: int(1, 64),
  }),
  BODY_LIMIT: S({
    env: 'BODY_LIMIT',
    default: '102400',
    group: 'Server',
    doc: 'Largest accepted request body in bytes; larger bodies get 413.',
    parse: int(1024, 10 * 1024 * 1024),
  }),
  REQUEST_TIMEOUT_SECONDS: S({
    env: 'REQUEST_TIMEOUT_SECONDS',
    default: '30',
    group: 'Server',
    doc:
      'A request (headers and body) must arrive within this long; otherwise 408 and the connection is closed. A ' +
      'connection on which nothing moves for this long while a request is served is closed too.',
    parse: int(1, 3600),
  }),
  HEADERS_TIMEOUT_SECONDS: S({
    env: 'HEADERS_TIMEOUT_SECONDS',
    default: '10',
    group: 'Server',
    doc: 'The request line and headers must arrive within this long (at most REQUEST_TIMEOUT_SECONDS); otherwise 408.',
    parse: int(1, 3600),
  }),
  KEEP_ALIVE_TIMEOUT_SECONDS: S({
    env: 'KEEP_ALIVE_TIMEOUT_SECONDS',
    default: '72',
    group: 'Server',
    doc:
      "An idle keep-alive connection is closed after this long (keep it above the proxy's upstream keep-alive, 60 s " +
      'in nginx).',
    parse: int(1, 3600),
  }),
  MAX_CONNECTIONS: S({
    env: 'MAX_CONNECTIONS',
    default: '10000',
    group: 'Server',
    doc: 'Open connections per process; further ones are closed at once.',
    parse: int(1, 1000000),
  }),
  LOG_LEVEL: S({
    env: 'LOG_LEVEL',
    default: 'info',
    group: 'Server',
    doc: 'pino log level (fatal, error, warn, info, debug, trace, silent).',
    parse: oneOf('fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'),
  }),
  LOG_BUFFER_BYTES: S({
    env: 'LOG_BUFFER_BYTES',
    default: '4096',
    group: 'Server',
    doc:
      'Log lines are written to stdout in batches of up to this many bytes (at most 4096, so a write to a pipe ' +
      'shared by workers is never split), at the latest after 1 s and always on exit (a SIGKILL loses at most that ' +
      'second). 0 writes each line at once.',
    parse: int(0, 4096),
  }),
  DOCS_ENABLED: S({
    env: 'DOCS_ENABLED',
    default: 'true',
    group: 'Server',
    doc: 'Serve OpenAPI at /api/openapi.json and Swagger UI at /api/docs.',
    parse: bool,
  }),
  HEALTH_TOKEN: S({
    env: 'HEALTH_TOKEN',
    default: '',
    group: 'Server',
    doc:
      'Token (header X-Health-Token) that opens /api/health/detailed, /database and /system to monitors outside ' +
      'development (≥ 32 random bytes in production, same rule as SECRET_KEY; `flokie check` reports it).',
    parse: str,
    secret: true,
  }),

  SECRET_KEY: S({
    env: 'SECRET_KEY',
    default: '',
    group: 'Secrets',
    doc:
      'Signs CSRF tokens, cookies and device credentials. ≥ 32 random bytes (`npx flokie secrets generate`; ' +
      'guessable or repository values are refused); required in production (development generates one in var/).',
    parse: str,
    secret: true,
  }),
  JWT_SECRET_KEY: S({
    env: 'JWT_SECRET_KEY',
    default: '',
    group: 'Secrets',
    doc:
      'HS256 key for access and refresh tokens. ≥ 32 random bytes, same rule as SECRET_KEY, distinct from it; ' +
      'required in production.',
    parse: str,
    secret: true,
  }),

  DATABASE_URL: S({
    env: 'DATABASE_URL',
    default: 'sqlite:var/flokie.db',
    group: 'Database',
    doc: 'sqlite:path, postgresql://… (sslmode=require|verify-full honoured) or mysql://…',
    parse: databaseUrl,
    secret: true,
  }),
  DATABASE_POOL_SIZE: S({
    env: 'DATABASE_POOL_SIZE',
    default: '10',
    group: 'Database',
    doc: 'Connections per process for PostgreSQL/MySQL.',
    parse: int(1, 500),
  }),
  DATABASE_SSL_CA_FILE: S({
    env: 'DATABASE_SSL_CA_FILE',
    default: '',
    group: 'Database',
    doc: 'CA bundle for sslmode=verify-full.',
    parse: str,
  }),
  AUTO_MIGRATE: S({
    env: 'AUTO_MIGRATE',
    default: 'true',
    group: 'Database',
    doc: 'Apply pending migrations at start (else run `npx flokie migrate`).',
    parse: bool,
  }),
  DATABASE_CONNECT_TIMEOUT_MS: S({
    env: 'DATABASE_CONNECT_TIMEOUT_MS',
    default: '5000',
    group: 'Database',
    doc: 'Longest wait to open a PostgreSQL/MySQL connection; then the request gets 503.',
    parse: int(100, 600000),
  }),
  DATABASE_STATEMENT_TIMEOUT_MS: S({
    env: 'DATABASE_STATEMENT_TIMEOUT_MS',
    default: '5000',
    group: 'Database',
    doc:
      'Longest statement: the server cancels it (statement_timeout, max_statement_time) and the client gives up 1 s ' +
      'later, even on a silent network; then 503. Migrations are exempt.',
    parse: int(100, 3600000),
  }),
  DATABASE_POOL_TIMEOUT_MS: S({
    env: 'DATABASE_POOL_TIMEOUT_MS',
    default: '5000',
    group: 'Database',
    doc: 'Longest wait for a free pooled connection (opening one included); then 503.',
    parse: int(100, 600000),
  }),
  DATABASE_BUSY_TIMEOUT_MS: S({
    env: 'DATABASE_BUSY_TIMEOUT_MS',
    default: '5000',
    group: 'Database',
    doc: 'SQLite: longest wait for another process holding the write lock (it blocks the process meanwhile); then 503.',
    parse: int(0, 60000),
  }),

  REDIS_URL: S({
    env: 'REDIS_URL',
    default: '',
    group: 'Shared state',
    doc: 'Redis for rate limits, brute-force counters and instant cross-instance invalidation. Unset: in-process.',
    parse: url('redis:', 'rediss:'),
    secret: true,
  }),
  REDIS_KEY_PREFIX: S({
    env: 'REDIS_KEY_PREFIX',
    default: 'flokie:',
    group: 'Shared state',
    doc: 'Prefix for every Redis key and channel.',
    parse: str,
  }),
  REDIS_COMMAND_TIMEOUT_MS: S({
    env: 'REDIS_COMMAND_TIMEOUT_MS',
    default: '1000',
    group: 'Shared state',
    doc:
      'Longest wait for a Redis answer; a Redis that stalls without closing the connection is then treated as down ' +
      '(in-process fallback).',
    parse: int(50, 60000),
  }),
  CACHE_SYNC_INTERVAL_MS: S({
    env: 'CACHE_SYNC_INTERVAL_MS',
    default: '1000',
    group: 'Shared state',
    doc: 'How often each instance reads revocations and settings written by others.',
    parse: int(50, 60000),
  }),

  JWT_ACCESS_TOKEN_EXPIRES_HOURS: S({
    env: 'JWT_ACCESS_TOKEN_EXPIRES_HOURS',
    default: '1',
    group: 'Tokens',
    doc: 'Access token lifetime in hours.',
    parse: num(0.01, 24),
  }),
  JWT_REFRESH_TOKEN_EXPIRES_DAYS: S({
    env: 'JWT_REFRESH_TOKEN_EXPIRES_DAYS',
    default: '30',
    group: 'Tokens',
    doc: 'Refresh token lifetime in days (each refresh issues a new one).',
    parse: num(0.001, 365),
  }),
  SESSION_MAX_LIFETIME_DAYS: S({
    env: 'SESSION_MAX_LIFETIME_DAYS',
    default: '90',
    group: 'Tokens',
    doc: 'Absolute session lifetime; refreshing cannot extend a session past it.',
    parse: num(0.001, 3650),
  }),
  REFRESH_REUSE_GRACE_SECONDS: S({
    env: 'REFRESH_REUSE_GRACE_SECONDS',
    default: '10',
    group: 'Tokens',
    doc:
      'A refresh token presented again within this many seconds of its rotation, while its successor is unused, gets ' +
      'a fresh pair and the successor is revoked (a retry after a lost answer); later, or once the successor was ' +
      'used, it is theft. 0: always theft.',
    parse: int(0, 300),
  }),
  JWT_ISSUER: S({
    env: 'JWT_ISSUER',
    default: 'flokie',
    group: 'Tokens',
    doc: 'iss claim issued and required.',
    parse: str,
  }),
  JWT_AUDIENCE: S({
    env: 'JWT_AUDIENCE',
    default: 'flokie-api',
    group: 'Tokens',
    doc: 'aud claim issued and required.',
    parse: str,
  }),

  PASSWORD_HASH_CONCURRENCY: S({
    env: 'PASSWORD_HASH_CONCURRENCY',
    default: '0',
    group: 'Passwords',
    doc:
      'Hashes computed at once (0: one per CPU core); the rest wait in order, so hashing never holds every ' +
      'thread-pool thread.',
    parse: int(0, 256),
  }),
  PASSWORD_HASHER: S({
    env: 'PASSWORD_HASHER',
    default: 'bcrypt',
    group: 'Passwords',
    doc: 'bcrypt or argon2id for new hashes; both always verify.',
    parse: oneOf('bcrypt', 'argon2id'),
  }),
  BCRYPT_ROUNDS: S({
    env: 'BCRYPT_ROUNDS',
    default: '12',
    group: 'Passwords',
    doc: 'bcrypt cost; weaker stored hashes are upgraded at the next login.',
    parse: int(4, 16),
  }),
  MIN_PASSWORD_LENGTH: S({
    env: 'MIN_PASSWORD_LENGTH',
    default: '8',
    group: 'Passwords',
    doc: 'Minimum password length.',
    parse: int(4, 128),
  }),
  MAX_PASSWORD_LENGTH: S({
    env: 'MAX_PASSWORD_LENGTH',
    default: '128',
    group: 'Passwords',
    doc: 'Maximum password length.',
    parse: int(8, 1024),
  }),
  PASSWORD_REQUIRE_UPPER: S({
    env: 'PASSWORD_REQUIRE_UPPER',
    default: 'false',
    group: 'Passwords',
    doc: 'Require an upper-case letter.',
    parse: bool,
  }),
  PASSWORD_REQUIRE_LOWER: S({
    env: 'PASSWORD_REQUIRE_LOWER',
    default: 'false',
    group: 'Passwords',
    doc: 'Require a lower-case letter.',
    parse: bool,
  }),
  PASSWORD_REQUIRE_DIGIT: S({
    env: 'PASSWORD_REQUIRE_DIGIT',
    default: 'false',
    group: 'Passwords',
    doc: 'Require a digit.',
    parse: bool,
  }),
  PASSWORD_REQUIRE_SYMBOL: S({
    env: 'PASSWORD_REQUIRE_SYMBOL',
    default: 'false',
    group: 'Passwords',
    doc: 'Require a character that is not a letter or digit.',
    parse: bool,
  }),
  PASSWORD_MIN_SCORE: S({
    env: 'PASSWORD_MIN_SCORE',
    default: '3',
    group: 'Passwords',
    doc: 'Minimum zxcvbn score (0–4).',
    parse: int(0, 4),
  }),
  PASSWORD_STRENGTH_WORKERS: S({
    env: 'PASSWORD_STRENGTH_WORKERS',
    default: '1',
    group: 'Passwords',
    doc:
      'Worker threads that run the zxcvbn estimate off the event loop; ' +
      'at most 32 checks per thread wait, more get 429.',
    parse: int(1, 64),
  }),
  BREACHED_PASSWORDS_FILE: S({
    env: 'BREACHED_PASSWORDS_FILE',
    default: '',
    group: 'Passwords',
    doc: 'Extra breached-password list: one password or SHA-1 hex (HIBP format, ":count" allowed) per line.',
    parse: str,
  }),
  MAX_LOGIN_ATTEMPTS: S({
    env: 'MAX_LOGIN_ATTEMPTS',
    default: '5',
    group: 'Passwords',
    doc:
      'Failed logins before a lock: per trusted device, and per account for attempts without a device credential ' +
      '(LOCKOUT_MODE). Also the most password checks in flight per counter.',
    parse: int(1, 1000),
  }),
  ACCOUNT_LOCKOUT_DURATION: S({
    env: 'ACCOUNT_LOCKOUT_DURATION',
    default: '30',
    group: 'Passwords',
    doc: 'Lockout length in minutes (also the window failures are counted in).',
    parse: num(0.05, 10080),
  }),
  LOCKOUT_MODE: S({
    env: 'LOCKOUT_MODE',
    default: 'device',
    group: 'Passwords',
    doc:
      'device: failures lock the device credential (flokie_device cookie / X-Device-Token) they came with, or the ' +
      'account for devices without one, so trusted devices keep logging in; account: every failure counts against ' +
      'the account (no device credentials).',
    parse: oneOf('device', 'account'),
  }),
  LOGIN_QUEUE_TIMEOUT: S({
    env: 'LOGIN_QUEUE_TIMEOUT',
    default: '5',
    group: 'Passwords',
    doc:
      'Seconds a login waits for a free slot when MAX_LOGIN_ATTEMPTS checks are already in flight on its counter; ' +
      'then 429 with Retry-After.',
    parse: num(0, 60),
  }),
  PASSWORD_HISTORY_COUNT: S({
    env: 'PASSWORD_HISTORY_COUNT',
    default: '5',
    group: 'Passwords',
    doc: 'Previous passwords that may not be reused.',
    parse: int(0, 50),
  }),
  PASSWORD_RESET_EXPIRES_MINUTES: S({
    env: 'PASSWORD_RESET_EXPIRES_MINUTES',
    default: '30',
    group: 'Passwords',
    doc: 'Lifetime of a password-reset link.',
    parse: int(1, 1440),
  }),
  EMAIL_VERIFICATION_EXPIRES_HOURS: S({
    env: 'EMAIL_VERIFICATION_EXPIRES_HOURS',
    default: '48',
    group: 'Passwords',
    doc: 'Lifetime of an e-mail verification link.',
    parse: int(1, 720),
  }),
  EMAIL_CHANGE_EXPIRES_HOURS: S({
    env: 'EMAIL_CHANGE_EXPIRES_HOURS',
    default: '24',
    group: 'Passwords',
    doc: 'Lifetime of the link that confirms a new e-mail address.',
    parse: int(1, 720),
  }),

  SMTP_URL: S({
    env: 'SMTP_URL',
    default: '',
    group: 'Mail',
    doc: 'smtp(s)://user:pass@host:port. Unset: messages are written as .eml files to MAIL_OUTBOX_DIR.',
    parse: url('smtp:', 'smtps:'),
    secret: true,
  }),
  MAIL_FROM: S({
    env: 'MAIL_FROM',
    default: 'Flokie <no-reply@localhost>',
    group: 'Mail',
    doc: 'From address of outgoing mail.',
    parse: str,
  }),
  MAIL_OUTBOX_DIR: S({
    env: 'MAIL_OUTBOX_DIR',
    default: 'var/outbox',
    group: 'Mail',
    doc: 'Folder for .eml files when SMTP_URL is unset.',
    parse: str,
  }),
  EMAIL_VERIFY_URL: S({
    env: 'EMAIL_VERIFY_URL',
    default: '',
    group: 'Mail',
    doc:
      'Link in verification mails, with {token} where the token goes ' +
      '(default PUBLIC_URL/verify-email?token={token}).',
    parse: linkTemplate,
  }),
  PASSWORD_RESET_URL: S({
    env: 'PASSWORD_RESET_URL',
    default: '',
    group: 'Mail',
    doc: 'Link in password-reset mails, with {token} (default PUBLIC_URL/reset-password?token={token}).',
    parse: linkTemplate,
  }),
  EMAIL_CHANGE_CONFIRM_URL: S({
    env: 'EMAIL_CHANGE_CONFIRM_URL',
    default: '',
    group: 'Mail',
    doc:
      'Link that confirms a new e-mail address, with {token} (default ' +
      'PUBLIC_URL/confirm-email-change?token={token}); the page posts the token to POST /api/auth/email/confirm.',
    parse: linkTemplate,
  }),

  CORS_ORIGINS: S({
    env: 'CORS_ORIGINS',
    default: '',
    group: 'HTTP protection',
    doc: 'Allowed origins (JSON array or comma list). Empty: no cross-origin access.',
    parse: list,
  }),
  CORS_METHODS: S({
    env: 'CORS_METHODS',
    default: 'GET,POST,PUT,DELETE,OPTIONS',
    group: 'HTTP protection',
    doc: 'Methods allowed cross-origin.',
    parse: list,
  }),
  CORS_ALLOW_HEADERS: S({
    env: 'CORS_ALLOW_HEADERS',
    default: 'Content-Type,Authorization,X-CSRF-Token,X-Auth-Mode,X-Request-ID,X-Device-Token',
    group: 'HTTP protection',
    doc: 'Request headers allowed cross-origin.',
    parse: list,
  }),
  CORS_SUPPORTS_CREDENTIALS: S({
    env: 'CORS_SUPPORTS_CREDENTIALS',
    default: 'true',
    group: 'HTTP protection',
    doc: 'Send Access-Control-Allow-Credentials (refused with a * origin).',
    parse: bool,
  }),
  CONTENT_SECURITY_POLICY: S({
    env: 'CONTENT_SECURITY_POLICY',
    default: '',
    group: 'HTTP protection',
    doc: "CSP directive map as JSON; default \"default-src 'none'; frame-ancestors 'none'\".",
    parse: cspMap,
  }),
  X_XSS_PROTECTION: S({
    env: 'X_XSS_PROTECTION',
    default: '0',
    group: 'HTTP protection',
    doc: 'X-XSS-Protection value: 0 (modern advice, see docs/security.md) or "1; mode=block".',
    parse: oneOf('0', '1; mode=block'),
  }),
  HSTS_MAX_AGE: S({
    env: 'HSTS_MAX_AGE',
    default: '31536000',
    group: 'HTTP protection',
    doc: 'Strict-Transport-Security max-age (seconds); sent over HTTPS and in production.',
    parse: int(0, 63072000),
  }),
  WTF_CSRF_ENABLED: S({
    env: 'WTF_CSRF_ENABLED',
    default: 'true',
    group: 'HTTP protection',
    doc: 'Require X-CSRF-Token on cookie-authenticated state changes (cannot be off in production).',
    parse: bool,
  }),
  WTF_CSRF_TIME_LIMIT: S({
    env: 'WTF_CSRF_TIME_LIMIT',
    default: '3600',
    group: 'HTTP protection',
    doc: 'CSRF token lifetime in seconds.',
    parse: int(60, 86400),
  }),
  SESSION_COOKIE_SAMESITE: S({
    env: 'SESSION_COOKIE_SAMESITE',
    default: 'Lax',
    group: 'HTTP protection',
    doc: 'SameSite of the refresh cookie: Strict, Lax (or None, which needs HTTPS).',
    parse: oneOf('Strict', 'Lax', 'None'),
  }),
  RATE_LIMIT_ENABLED: S({
    env: 'RATE_LIMIT_ENABLED',
    default: 'true',
    group: 'HTTP protection',
    doc: 'Per-route rate limits (cannot be off in production).',
    parse: bool,
  }),
  RATE_LIMITS: S({
    env: 'RATE_LIMITS',
    default: '',
    group: 'HTTP protection',
    doc:
      'JSON object of per-route limits; keys named override the defaults default=100 per hour (per user when ' +
      'authenticated, else per address), auth.login=5 per minute (per address, and per username), auth.register=3 ' +
      'per minute, password.reset=2 per minute (reset requests), password.reset.complete=10 per minute (setting the ' +
      'new password with a token). Each is a bucket: N at once, then one every D/N (docs/security.md).',
    parse: rateLimits,
  }),
  RATE_LIMIT_IPV6_PREFIX: S({
    env: 'RATE_LIMIT_IPV6_PREFIX',
    default: '64',
    group: 'HTTP protection',
    doc:
      'Every per-address counter (rate limits, emergency limit, intrusion detection, IP block) counts an IPv6 client ' +
      'by its network of this many bits (IPv4: the address; ::ffff:a.b.c.d: as a.b.c.d).',
    parse: int(32, 128),
  }),
  TRUSTED_PROXIES: S({
    env: 'TRUSTED_PROXIES',
    default: '',
    group: 'HTTP protection',
    doc: 'Proxy addresses/CIDRs whose X-Forwarded-For/-Proto are believed.',
    parse: list,
  }),
  TLS_CERT_FILE: S({
    env: 'TLS_CERT_FILE',
    default: '',
    group: 'HTTP protection',
    doc: 'Serve HTTPS with this certificate (PEM).',
    parse: str,
  }),
  TLS_KEY_FILE: S({
    env: 'TLS_KEY_FILE',
    default: '',
    group: 'HTTP protection',
    doc: 'Private key for TLS_CERT_FILE.',
    parse: str,
  }),
  FORCE_HTTPS: S({
    env: 'FORCE_HTTPS',
    default: 'false',
    group: 'HTTP protection',
    doc: 'Redirect plain-HTTP requests (308) to the same path on the host of PUBLIC_URL, which must then be https://.',
    parse: bool,
  }),

  SENTRY_DSN: S({
    env: 'SENTRY_DSN',
    default: '',
    group: 'Monitoring',
    doc: 'Report unhandled errors and critical security events to Sentry.',
    parse: str,
    secret: true,
  }),
  SENTRY_ENVIRONMENT: S({
    env: 'SENTRY_ENVIRONMENT',
    default: '',
    group: 'Monitoring',
    doc: 'Sentry environment (default NODE_ENV).',
    parse: str,
  }),
  SENTRY_TRACES_SAMPLE_RATE: S({
    env: 'SENTRY_TRACES_SAMPLE_RATE',
    default: '0',
    group: 'Monitoring',
    doc: 'Fraction of requests traced (0–1).',
    parse: num(0, 1),
  }),
  SECURITY_EVENT_RETENTION_DAYS: S({
    env: 'SECURITY_EVENT_RETENTION_DAYS',
    default: '90',
    group: 'Monitoring',
    doc: 'Security events older than this are purged.',
    parse: int(1, 3650),
  }),
  BRUTE_FORCE_ALERT_THRESHOLD: S({
    env: 'BRUTE_FORCE_ALERT_THRESHOLD',
    default: '10',
    group: 'Monitoring',
    doc: 'Failed logins per IP per hour before a critical alert.',
    parse: int(1, 100000),
  }),
  BRUTE_FORCE_BLOCK_MINUTES: S({
    env: 'BRUTE_FORCE_BLOCK_MINUTES',
    default: '0',
    group: 'Monitoring',
    doc: 'Block an IP over the threshold for this long (0 = alert only).',
    parse: int(0, 10080),
  }),
  CREDENTIAL_STUFFING_THRESHOLD: S({
    env: 'CREDENTIAL_STUFFING_THRESHOLD',
    default: '10',
    group: 'Monitoring',
    doc: 'Distinct usernames failing from one IP per hour before a credential-stuffing alert.',
    parse: int(1, 100000),
  }),
  DISTRIBUTED_ATTACK_THRESHOLD: S({
    env: 'DISTRIBUTED_ATTACK_THRESHOLD',
    default: '10',
    group: 'Monitoring',
    doc: 'Distinct IPs failing on one username per hour before a distributed-attack alert.',
    parse: int(1, 100000),
  }),

  ALERT_WEBHOOK_URL: S({
    env: 'ALERT_WEBHOOK_URL',
    default: '',
    group: 'Alerts',
    doc:
      'POST every alert (critical security events, admin grants, mass revocations) here as signed JSON ' +
      '(docs/deployment.md, "Alerts"); queued in the database, retried until delivered or ALERT_MAX_AGE_HOURS.',
    parse: url('http:', 'https:'),
    secret: true,
  }),
  ALERT_WEBHOOK_SECRET: S({
    env: 'ALERT_WEBHOOK_SECRET',
    default: '',
    group: 'Alerts',
    doc:
      'HMAC-SHA256 key for X-Flokie-Signature; ≥ 32 random bytes (same rule as SECRET_KEY), required in production ' +
      'when ALERT_WEBHOOK_URL is set.',
    parse: str,
    secret: true,
  }),
  ALERT_EMAIL_TO: S({
    env: 'ALERT_EMAIL_TO',
    default: '',
    group: 'Alerts',
    doc: 'Also e-mail every alert to these addresses (JSON array or comma list), through SMTP_URL.',
    parse: emailList,
  }),
  ALERT_DEDUP_WINDOW_SECONDS: S({
    env: 'ALERT_DEDUP_WINDOW_SECONDS',
    default: '300',
    group: 'Alerts',
    doc: 'Alerts of one kind about the same address or account within this window are folded into one, with a count.',
    parse: int(0, 86400),
  }),
  ALERT_RETRY_INITIAL_SECONDS: S({
    env: 'ALERT_RETRY_INITIAL_SECONDS',
    default: '5',
    group: 'Alerts',
    doc: 'First retry delay of an undelivered alert; doubles (with jitter) on each failure.',
    parse: num(0.05, 3600),
  }),
  ALERT_RETRY_MAX_SECONDS: S({
    env: 'ALERT_RETRY_MAX_SECONDS',
    default: '900',
    group: 'Alerts',
    doc: 'Longest delay between two delivery attempts.',
    parse: num(0.1, 86400),
  }),
  ALERT_MAX_AGE_HOURS: S({
    env: 'ALERT_MAX_AGE_HOURS',
    default: '24',
    group: 'Alerts',
    doc: 'An alert still undelivered after this long is given up (logged at error level, kept in alert_outbox).',
    parse: num(0.0002, 720),
  }),

  METRICS_PORT: S({
    env: 'METRICS_PORT',
    default: '0',
    group: 'Metrics',
    doc:
      'Serve Prometheus metrics at http://METRICS_HOST:METRICS_PORT/metrics, unauthenticated (0 = off). With ' +
      'WEB_CONCURRENCY > 1 each scrape reaches one worker (docs/deployment.md, "Metrics").',
    parse: int(0, 65535),
  }),
  METRICS_HOST: S({
    env: 'METRICS_HOST',
    default: '127.0.0.1',
    group: 'Metrics',
    doc: 'Interface for METRICS_PORT (loopback unless a scraper on another host needs it).',
    parse: str,
  }),
  METRICS_TOKEN: S({
    env: 'METRICS_TOKEN',
    default: '',
    group: 'Metrics',
    doc:
      'Serve metrics at GET /api/metrics to `Authorization: Bearer <METRICS_TOKEN>` (≥ 32 random bytes in ' +
      'production, same rule as SECRET_KEY). Unset: no such route.',
    parse: str,
    secret: true,
  }),

  BACKUP_RECIPIENT: S({
    env: 'BACKUP_RECIPIENT',
    default: '',
    group: 'Backups and retention',
    doc:
      'age public key (age1…) that `flokie backup create` encrypts to; its identity (secret key) is kept off this ' +
      'host. `flokie backup keygen` makes a pair.',
    parse: ageRecipient,
  }),
  SESSION_RETENTION_DAYS: S({
    env: 'SESSION_RETENTION_DAYS',
    default: '30',
    group: 'Backups and retention',
    doc: 'Ended sessions (expired or revoked) are deleted this many days after they ended.',
    parse: int(1, 3650),
  }),
  ALERT_OUTBOX_RETENTION_DAYS: S({
    env: 'ALERT_OUTBOX_RETENTION_DAYS',
    default: '30',
    group: 'Backups and retention',
    doc: 'Delivered or given-up alerts are deleted after this many days.',
    parse: int(1, 3650),
  }),
  DEACTIVATED_USER_RETENTION_DAYS: S({
    env: 'DEACTIVATED_USER_RETENTION_DAYS',
    default: '0',
    group: 'Backups and retention',
    doc:
      'Deactivated (soft-deleted) accounts not changed for this many days are deleted with their sessions and ' +
      'history (0 = keep them).',
    parse: int(0, 36500),
  }),
} as const;

export type SettingKey = keyof typeof SETTINGS;
export type Settings = { [K in SettingKey]: ReturnType<(typeof SETTINGS)[K]['parse']> };
