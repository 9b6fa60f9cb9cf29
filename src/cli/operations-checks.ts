/**
 * `flokie check` items for operations (docs/deployment.md, "Alerts", "Metrics", "Backups",
 * "Retention"): does a critical event reach a person, are metrics exposed safely, are backups
 * encrypted to a key, and how long each growing table keeps its rows.
 */
import { secretProblem, type Config } from '../config/index.js';
import { RETENTION } from '../modules/retention/retention.js';
import type { CheckResult, Status } from './check.js';

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|\[::1\]|localhost)$/;

export function operationsChecks(config: Config): CheckResult[] {
  const results: CheckResult[] = [];
  const add = (id: string, title: string, status: Status, detail: string) =>
    results.push({ id, title, status, detail, critical: false });

  // Alerts
  const channels: string[] = [];
  const problems: string[] = [];
  const advice: string[] = [];
  if (config.ALERT_WEBHOOK_URL) {
    const url = new URL(config.ALERT_WEBHOOK_URL);
    channels.push(`webhook ${url.protocol}//${url.host}`);
    const secret = secretProblem(config.ALERT_WEBHOOK_SECRET);
    if (secret) problems.push(`ALERT_WEBHOOK_SECRET ${secret} (receivers cannot tell a real alert from a forged one)`);
    if (url.protocol === 'http:' && !LOOPBACK.test(url.hostname))
      advice.push('the webhook is plain http:// (alerts cross the network unencrypted)');
  }
  if (config.ALERT_EMAIL_TO.length) {
    channels.push(`e-mail to ${config.ALERT_EMAIL_TO.join(', ')}`);
    if (!config.SMTP_URL) advice.push(`SMTP_URL is unset: alert e-mails are only written to ${config.MAIL_OUTBOX_DIR}`);
  }
  add(
    'alerts.configured',
    'Critical events alert a person',
    problems.length ? 'fail' : !channels.length || advice.length ? 'warn' : 'pass',
    !channels.length
      ? 'neither ALERT_WEBHOOK_URL nor ALERT_EMAIL_TO is set: critical events only reach the log (and Sentry); try ' +
          '`flokie alerts test` once set'
      : [...problems, ...advice, `to ${channels.join(' and ')}`].join('; '),
  );

  // Metrics
  const metrics: string[] = [];
  let metricsStatus: Status = 'pass';
  if (config.METRICS_PORT) {
    metrics.push(`http://${config.METRICS_HOST}:${config.METRICS_PORT}/metrics`);
    if (!LOOPBACK.test(config.METRICS_HOST)) {
      metricsStatus = 'warn';
      metrics.push(`METRICS_PORT listens on ${config.METRICS_HOST} without authentication: firewall it to the scraper`);
    }
  }
  if (config.METRICS_TOKEN) {
    const problem = secretProblem(config.METRICS_TOKEN);
    if (problem) metricsStatus = 'fail';
    metrics.push(problem ? `METRICS_TOKEN ${problem}` : 'GET /api/metrics with the bearer token');
  }
  add(
    'metrics.exposed',
    'Metrics are exposed to a scraper only',
    metrics.length ? metricsStatus : 'warn',
    metrics.join('; ') || 'METRICS_PORT and METRICS_TOKEN are unset: no Prometheus metrics',
  );

  // Backups
  add(
    'backup.recipient',
    'Backups are encrypted',
    config.BACKUP_RECIPIENT ? 'pass' : 'warn',
    config.BACKUP_RECIPIENT
      ? `\`flokie backup create\` encrypts to ${config.BACKUP_RECIPIENT.slice(0, 12)}…; keep its identity off this ` +
          `host and run \`flokie backup verify\` on each backup`
      : 'BACKUP_RECIPIENT is unset: `flokie backup keygen` makes a key pair, then schedule `flokie backup create`',
  );

  // Retention
  for (const policy of RETENTION) {
    add(
      `retention.${policy.table.split(' ')[0]}`,
      `Retention of ${policy.table}`,
      'pass',
      `${policy.describe(config)}${policy.setting ? ` (${policy.setting})` : ''}`,
    );
  }
  return results;
}
