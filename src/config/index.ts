import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse as parseDotenv } from 'dotenv';
import { secretProblem } from './secret-strength.js';
import { SETTINGS, SettingError, type SettingKey, type Settings } from './settings.js';

export { RATE_PATTERN, SETTINGS, SettingError, parseRate, type RateSpec } from './settings.js';
export { secretProblem } from './secret-strength.js';

export type Config = Settings & {
  isProduction: boolean;
  /** Base URL for links in e-mails, without a trailing slash. */
  publicUrl: string;
};

/** Development convenience: secrets generated once and kept in var/ so tokens survive restarts. */
function developmentSecrets(dir: string): { SECRET_KEY: string; JWT_SECRET_KEY: string } {
  const file = resolve(dir, 'var', 'dev-secrets.json');
  // eslint-disable-next-line security/detect-non-literal-fs-filename -- under the working directory, not from a request
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

/** One thing wrong with the configuration. */
export interface ConfigProblem {
  /** The variable at fault (the first, when a rule ties several). */
  setting: string;
  /** One line naming the variable, e.g. `PORT must be an integer, got "x"`. */
  message: string;
  /** The `flokie check` item that already reports this rule (src/cli/check.ts), if any. */
  check?: string;
}

/** Every problem of a configuration; the message names them all, on one line. */
export class ConfigError extends SettingError {
  constructor(readonly problems: ConfigProblem[]) {
    super(problems.map((p) => p.message).join('; '));
  }
}

/**
 * Reads the environment (and .env) into the typed config and collects every problem instead of
 * stopping at the first: a value the parser refuses is reported and replaced by its default, so
 * `flokie check` can still rate everything else. `loadConfig` is this plus a throw.
 */
export function inspectConfig(
  env: NodeJS.ProcessEnv = process.env,
  options: LoadOptions = {},
): { config: Config; problems: ConfigProblem[] } {
  const cwd = options.cwd ?? process.cwd();
  const fromFile: Record<string, string> = {};
  const envFile = resolve(cwd, '.env');
  // eslint-disable-next-line security/detect-non-literal-fs-filename -- the .env beside the service
  if (options.dotenv !== false && existsSync(envFile)) Object.assign(fromFile, parseDotenv(readFileSync(envFile)));
  const source = { ...fromFile, ...env };
  const problems: ConfigProblem[] = [];
  const problem = (setting: string, message: string, check?: string) =>
    problems.push({ setting, message, ...(check ? { check } : {}) });

  const values = {} as Record<SettingKey, unknown>;
  for (const [key, setting] of Object.entries(SETTINGS) as [SettingKey, (typeof SETTINGS)[SettingKey]][]) {
    const raw = source[setting.env] ?? setting.default;
    try {
      values[key] = setting.parse(raw);
    } catch (e) {
      if (!(e instanceof SettingError)) throw e;
      problem(setting.env, `${setting.env} ${e.message}`);
      values[key] = setting.parse(setting.default);
    }
  }
  const settings = values as Settings;
  const isProduction = settings.NODE_ENV === 'production';

  if (isProduction) {
    for (const key of ['SECRET_KEY', 'JWT_SECRET_KEY'] as const) {
      const trouble = secretProblem(settings[key]);
      if (trouble)
        problem(key, `${key} ${trouble}; generate one with \`npx flokie secrets generate\``, `secret.${key}`);
    }
    if (settings.SECRET_KEY && settings.SECRET_KEY === settings.JWT_SECRET_KEY)
      problem('JWT_SECRET_KEY', 'JWT_SECRET_KEY must differ from SECRET_KEY', 'secret.unique');
    if (!settings.WTF_CSRF_ENABLED)
      problem('WTF_CSRF_ENABLED', 'WTF_CSRF_ENABLED cannot be false in production', 'network.csrf');
    if (!settings.RATE_LIMIT_ENABLED)
      problem('RATE_LIMIT_ENABLED', 'RATE_LIMIT_ENABLED cannot be false in production', 'ratelimit.enabled');
    // Alert receivers and metrics scrapers trust what these keys sign or open (docs/deployment.md).
    const webhookSecret = settings.ALERT_WEBHOOK_URL ? secretProblem(settings.ALERT_WEBHOOK_SECRET) : null;
    if (webhookSecret)
      problem(
        'ALERT_WEBHOOK_SECRET',
        `ALERT_WEBHOOK_SECRET ${webhookSecret}; it signs every alert sent to ALERT_WEBHOOK_URL ` +
          `(\`npx flokie secrets generate\` makes one)`,
      );
    // HEALTH_TOKEN opens the operators' health views (internals, load, pool): a secret like the others.
    const healthToken = settings.HEALTH_TOKEN ? secretProblem(settings.HEALTH_TOKEN) : null;
    if (healthToken)
      problem(
        'HEALTH_TOKEN',
        `HEALTH_TOKEN ${healthToken}; generate one with \`npx flokie secrets generate\``,
        'secret.HEALTH_TOKEN',
      );
    const metricsToken = settings.METRICS_TOKEN ? secretProblem(settings.METRICS_TOKEN) : null;
    if (metricsToken) problem('METRICS_TOKEN', `METRICS_TOKEN ${metricsToken}`);
  } else if (!settings.SECRET_KEY || !settings.JWT_SECRET_KEY) {
    const generated = developmentSecrets(cwd);
    settings.SECRET_KEY ||= generated.SECRET_KEY;
    settings.JWT_SECRET_KEY ||= generated.JWT_SECRET_KEY;
  }
  if (settings.CORS_SUPPORTS_CREDENTIALS && settings.CORS_ORIGINS.includes('*')) {
    problem('CORS_ORIGINS', 'CORS_ORIGINS cannot contain "*" while CORS_SUPPORTS_CREDENTIALS is true', 'network.cors');
  }
  if (Boolean(settings.TLS_CERT_FILE) !== Boolean(settings.TLS_KEY_FILE)) {
    problem(
      settings.TLS_CERT_FILE ? 'TLS_KEY_FILE' : 'TLS_CERT_FILE',
      'TLS_CERT_FILE and TLS_KEY_FILE must be set together',
    );
  }
  if (settings.HEADERS_TIMEOUT_SECONDS > settings.REQUEST_TIMEOUT_SECONDS) {
    problem('HEADERS_TIMEOUT_SECONDS', 'HEADERS_TIMEOUT_SECONDS must not exceed REQUEST_TIMEOUT_SECONDS');
  }
  // The redirect's target is never taken from the request's Host header (anyone can send one).
  if (settings.FORCE_HTTPS && !settings.PUBLIC_URL.startsWith('https://')) {
    problem(
      'PUBLIC_URL',
      'FORCE_HTTPS=true needs PUBLIC_URL set to the https:// address of the service: redirects go only to its host',
    );
  }
  if (settings.MIN_PASSWORD_LENGTH > settings.MAX_PASSWORD_LENGTH) {
    problem('MIN_PASSWORD_LENGTH', 'MIN_PASSWORD_LENGTH must not exceed MAX_PASSWORD_LENGTH');
  }
  const scheme = settings.TLS_CERT_FILE ? 'https' : 'http';
  const publicUrl = (settings.PUBLIC_URL || `${scheme}://${settings.HOST}:${settings.PORT}`).replace(/\/+$/, '');
  return { config: { ...settings, isProduction, publicUrl }, problems };
}

/**
 * Builds the typed config from the environment (and .env). Throws ConfigError (a SettingError)
 * naming every bad variable, on one line, when anything is wrong.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, options: LoadOptions = {}): Config {
  const { config, problems } = inspectConfig(env, options);
  if (problems.length) throw new ConfigError(problems);
  return config;
}
