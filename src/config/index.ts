import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse as parseDotenv } from 'dotenv';
import { SETTINGS, SettingError, type SettingKey, type Settings } from './settings.js';

export { SETTINGS, SettingError, parseRate, type RateSpec } from './settings.js';

export type Config = Settings & {
  isProduction: boolean;
  /** Base URL for links in e-mails, without a trailing slash. */
  publicUrl: string;
};

/** Values that must never be accepted as secrets (examples from docs, the guide, placeholders). */
const KNOWN_WEAK_SECRETS = new Set([
  'your-cryptographically-secure-secret-key',
  'change-me',
  'changeme',
  'secret',
  'dev',
  'development',
  'replace-me-with-a-long-random-value',
]);

/** Why a secret is unfit for production, or null. Shared with `flokie check`. */
export function secretProblem(value: string): string | null {
  if (!value) return 'is not set';
  if (KNOWN_WEAK_SECRETS.has(value.trim().toLowerCase())) return 'is a known example value';
  if (Buffer.byteLength(value) < 32) return 'is shorter than 32 bytes';
  if (new Set(value).size < 8) return 'has too little variety to be random';
  return null;
}

/** Development convenience: secrets generated once and kept in var/ so tokens survive restarts. */
function developmentSecrets(dir: string): { SECRET_KEY: string; JWT_SECRET_KEY: string } {
  const file = resolve(dir, 'var', 'dev-secrets.json');
  // eslint-disable-next-line security/detect-non-literal-fs-filename -- paths under the working directory, never from a request
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8'));
  const secrets = { SECRET_KEY: randomBytes(32).toString('hex'), JWT_SECRET_KEY: randomBytes(32).toString('hex') };
  // eslint-disable-next-line security/detect-non-literal-fs-filename -- same folder
  mkdirSync(dirname(file), { recursive: true });
  // eslint-disable-next-line security/detect-non-literal-fs-filename -- same file
  writeFileSync(file, JSON.stringify(secrets), { mode: 0o600 });
  return secrets;
}

export interface LoadOptions {
  /** Folder holding .env and var/ (default: the working directory). */
  cwd?: string;
  /** Read .env (default true). Real environment variables always win over .env. */
  dotenv?: boolean;
}

/**
 * Builds the typed config from the environment (and .env). Throws SettingError with one line
 * naming the variable on any bad value.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, options: LoadOptions = {}): Config {
  const cwd = options.cwd ?? process.cwd();
  const fromFile: Record<string, string> = {};
  const envFile = resolve(cwd, '.env');
  // eslint-disable-next-line security/detect-non-literal-fs-filename -- the .env beside the service
  if (options.dotenv !== false && existsSync(envFile)) Object.assign(fromFile, parseDotenv(readFileSync(envFile)));
  const source = { ...fromFile, ...env };

  const values = {} as Record<SettingKey, unknown>;
  for (const [key, setting] of Object.entries(SETTINGS) as [SettingKey, (typeof SETTINGS)[SettingKey]][]) {
    const raw = source[setting.env] ?? setting.default;
    try {
      values[key] = setting.parse(raw);
    } catch (e) {
      if (e instanceof SettingError) throw new SettingError(`${setting.env} ${e.message}`);
      throw e;
    }
  }
  const settings = values as Settings;
  const isProduction = settings.NODE_ENV === 'production';

  if (isProduction) {
    for (const key of ['SECRET_KEY', 'JWT_SECRET_KEY'] as const) {
      const problem = secretProblem(settings[key]);
      if (problem) throw new SettingError(`${key} ${problem}; generate one with \`npx flokie secrets generate\``);
    }
    if (settings.SECRET_KEY === settings.JWT_SECRET_KEY) throw new SettingError('JWT_SECRET_KEY must differ from SECRET_KEY');
    if (!settings.WTF_CSRF_ENABLED) throw new SettingError('WTF_CSRF_ENABLED cannot be false in production');
    if (!settings.RATE_LIMIT_ENABLED) throw new SettingError('RATE_LIMIT_ENABLED cannot be false in production');
    // Alert receivers and metrics scrapers trust what these keys sign or open (docs/deployment.md).
    const webhookSecret = settings.ALERT_WEBHOOK_URL ? secretProblem(settings.ALERT_WEBHOOK_SECRET) : null;
    if (webhookSecret) throw new SettingError(`ALERT_WEBHOOK_SECRET ${webhookSecret}; it signs every alert sent to ALERT_WEBHOOK_URL (\`npx flokie secrets generate\` makes one)`);
    const metricsToken = settings.METRICS_TOKEN ? secretProblem(settings.METRICS_TOKEN) : null;
    if (metricsToken) throw new SettingError(`METRICS_TOKEN ${metricsToken}`);
  } else if (!settings.SECRET_KEY || !settings.JWT_SECRET_KEY) {
    const generated = developmentSecrets(cwd);
    settings.SECRET_KEY ||= generated.SECRET_KEY;
    settings.JWT_SECRET_KEY ||= generated.JWT_SECRET_KEY;
  }
  if (settings.CORS_SUPPORTS_CREDENTIALS && settings.CORS_ORIGINS.includes('*')) {
    throw new SettingError('CORS_ORIGINS cannot contain "*" while CORS_SUPPORTS_CREDENTIALS is true');
  }
  if (Boolean(settings.TLS_CERT_FILE) !== Boolean(settings.TLS_KEY_FILE)) {
    throw new SettingError('TLS_CERT_FILE and TLS_KEY_FILE must be set together');
  }
  if (settings.MIN_PASSWORD_LENGTH > settings.MAX_PASSWORD_LENGTH) {
    throw new SettingError('MIN_PASSWORD_LENGTH must not exceed MAX_PASSWORD_LENGTH');
  }
  const scheme = settings.TLS_CERT_FILE ? 'https' : 'http';
  const publicUrl = (settings.PUBLIC_URL || `${scheme}://${settings.HOST}:${settings.PORT}`).replace(/\/+$/, '');
  return { ...settings, isProduction, publicUrl };
}
