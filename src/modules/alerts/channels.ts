/**
 * Where an alert goes: a signed webhook (ALERT_WEBHOOK_URL) and e-mail (ALERT_EMAIL_TO, through
 * the service's Mailer). Each channel throws on failure; the dispatcher retries what failed.
 */
import type { Mailer } from '../../mail/mailer.js';
import { SIGNATURE_HEADER, signWebhook, TIMESTAMP_HEADER } from './signature.js';
import type { OutboxRow } from './outbox.js';

/** One send may take this long before it counts as failed (shorter than the dispatcher's lease). */
export const SEND_TIMEOUT_MS = 10_000;

export interface AlertMessage {
  id: string;
  type: string;
  severity: string;
  summary: string;
  subject: string;
  occurrences: number;
  first_seen: string;
  last_seen: string;
  environment: string;
  service: string;
  test: boolean;
  event: Record<string, unknown>;
}

export function toMessage(row: OutboxRow, service: { environment: string; url: string }): AlertMessage {
  let details: Record<string, unknown> = {};
  try {
    details = JSON.parse(row.details ?? '{}') as Record<string, unknown>;
  } catch {
    /* stored by us; never fails in practice */
  }
  const { subject, ...event } = details;
  return {
    id: String(row.id),
    type: row.type,
    severity: row.severity,
    summary: row.summary,
    subject: String(subject ?? ''),
    occurrences: row.occurrences,
    first_seen: new Date(Number(row.created_at)).toISOString(),
    last_seen: new Date(Number(row.last_seen_at)).toISOString(),
    environment: service.environment,
    service: service.url,
    test: row.type === 'alert_test',
    event,
  };
}

export interface Channel {
  name: 'webhook' | 'email';
  /** Resolves with a short description of what happened ("HTTP 200"). */
  send(message: AlertMessage): Promise<string>;
}

export class WebhookChannel implements Channel {
  readonly name = 'webhook';
  constructor(
    private readonly url: string,
    private readonly secret: string,
  ) {}

  async send(message: AlertMessage): Promise<string> {
    const body = JSON.stringify(message);
    const timestamp = Math.floor(Date.now() / 1000);
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'user-agent': 'Flokie-Alerts/1',
      'x-flokie-alert-id': message.id,
      [TIMESTAMP_HEADER]: String(timestamp),
    };
    if (this.secret) headers[SIGNATURE_HEADER] = signWebhook(this.secret, timestamp, body);
    // Redirects are not followed: the signed alert goes to the configured URL or nowhere.
    const response = await fetch(this.url, {
      method: 'POST',
      body,
      headers,
      redirect: 'manual',
      signal: AbortSignal.timeout(SEND_TIMEOUT_MS),
    });
    await response.arrayBuffer().catch(() => undefined);
    if (response.status < 200 || response.status > 299) throw new Error(`webhook answered HTTP ${response.status}`);
    return `HTTP ${response.status}`;
  }
}

export class EmailChannel implements Channel {
  readonly name = 'email';
  constructor(
    private readonly mailer: Mailer,
    private readonly to: string[],
  ) {}

  async send(message: AlertMessage): Promise<string> {
    const count = message.occurrences > 1 ? ` (${message.occurrences} times)` : '';
    const lines = [
      `${message.summary}${count}`,
      '',
      `type:        ${message.type}`,
      `severity:    ${message.severity}`,
      `about:       ${message.subject}`,
      `first seen:  ${message.first_seen}`,
      `last seen:   ${message.last_seen}`,
      `service:     ${message.service} (${message.environment})`,
      `alert id:    ${message.id}`,
      '',
      JSON.stringify(message.event, null, 2),
      '',
      'Runbook: docs/incident-response.md',
    ];
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.mailer.sendNow({
          to: this.to.join(', '),
          subject: `[Flokie ${message.severity.toUpperCase()}] ${message.type}: ${message.summary}${count}`.slice(
            0,
            200,
          ),
          text: lines.join('\n'),
        }),
        new Promise<never>(
          (_, reject) =>
            (timer = setTimeout(() => reject(new Error('mail server did not answer in time')), SEND_TIMEOUT_MS * 3)),
        ),
      ]);
    } finally {
      clearTimeout(timer);
    }
    return `mailed to ${this.to.join(', ')}`;
  }
}
