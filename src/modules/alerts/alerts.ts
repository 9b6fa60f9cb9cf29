/**
 * Alerts that reach a person (docs/deployment.md, "Alerts"). A listener on SecurityEvents turns
 * each critical event named in catalog.ts into an alert_outbox row (written before anything is
 * sent); the dispatcher that runs in every server process claims due rows with a lease, sends them
 * to every configured channel, and marks them delivered. A failure is retried with exponential
 * back-off and jitter until ALERT_MAX_AGE_HOURS, then given up (logged at error level). A channel
 * that took the alert is not sent it again when another channel failed. Delivery is at least once:
 * a process killed between a send and its mark sends again after the lease, so receivers should
 * ignore an `id` they have seen.
 */
import type { Logger } from 'pino';
import type { Config } from '../../config/index.js';
import type { Kysely } from 'kysely';
import type { Database } from '../../db/types.js';
import type { Mailer } from '../../mail/mailer.js';
import type { SecurityEvents } from '../security/events.js';
import { alertFor, type AlertEvent } from './catalog.js';
import { EmailChannel, SEND_TIMEOUT_MS, toMessage, WebhookChannel, type Channel } from './channels.js';
import { AlertOutbox, type Claim } from './outbox.js';

/** Longer than any send (two channels, each bounded): a row is never sent twice by two live processes. */
const LEASE_MS = SEND_TIMEOUT_MS * 8;
/** How often each process looks for due rows (other processes' alerts, retries). */
const POLL_MS = 1000;

export interface DeliveryReport {
  id: number;
  delivered: boolean;
  channels: { name: string; ok: boolean; detail: string }[];
}

export class Alerts {
  readonly outbox: AlertOutbox;
  readonly channels: Channel[];
  private readonly unsubscribe: () => void;
  private readonly pending = new Set<Promise<unknown>>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | null = null;
  private again = false;
  private stopped = false;
  /** Counters for /metrics. */
  readonly stats = { queued: 0, folded: 0, delivered: 0, failedAttempts: 0, givenUp: 0 };

  constructor(
    db: Kysely<Database>,
    private readonly config: Config,
    mailer: Mailer,
    events: SecurityEvents,
    private readonly log: Logger,
  ) {
    this.outbox = new AlertOutbox(db, config.ALERT_DEDUP_WINDOW_SECONDS * 1000);
    this.channels = [
      ...(config.ALERT_WEBHOOK_URL ? [new WebhookChannel(config.ALERT_WEBHOOK_URL, config.ALERT_WEBHOOK_SECRET)] : []),
      ...(config.ALERT_EMAIL_TO.length ? [new EmailChannel(mailer, config.ALERT_EMAIL_TO)] : []),
    ];
    // Without a channel nothing is queued: critical events still reach the log (and Sentry).
    this.unsubscribe = this.configured ? events.onEvent((event) => this.onEvent(event)) : () => {};
  }

  get configured(): boolean {
    return this.channels.length > 0;
  }

  private onEvent(event: AlertEvent): void {
    const spec = alertFor(event);
    if (!spec || this.stopped) return;
    const alert = {
      ...spec,
      severity: event.severity,
      summary: event.message,
      details: {
        ip: event.ip,
        user_id: event.user_id,
        endpoint: event.endpoint,
        request_id: event.request_id,
        details: event.details,
      },
    };
    const task = this.enqueueWithRetry(alert);
    this.pending.add(task);
    void task.finally(() => this.pending.delete(task));
  }

  /** A database hiccup must not drop an alert: a few retries, then the log line is all that is left. */
  private async enqueueWithRetry(alert: Parameters<AlertOutbox['add']>[0]): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        const { folded } = await this.outbox.add(alert);
        if (folded) this.stats.folded++;
        else this.stats.queued++;
        this.kick();
        return;
      } catch (error) {
        if (attempt >= 5) {
          this.log.error({ err: error, alert }, 'could not queue an alert');
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
      }
    }
  }

  /** Queues a test alert (never folded) and returns its id. */
  async enqueueTest(actor: string): Promise<number> {
    const { id } = await this.outbox.add({
      type: 'alert_test',
      subject: `${Date.now()}-${Math.random().toString(36).slice(2)}`,
      severity: 'info',
      summary: 'Test alert: if you read this, Flokie alerts reach you',
      details: { requested_by: actor },
    });
    return id;
  }

  /** Starts the dispatcher loop (server processes; the CLI only queues). */
  start(): void {
    if (!this.configured || this.timer) return;
    this.timer = setInterval(() => this.kick(), POLL_MS);
    this.timer.unref();
    this.kick();
  }

  /** Runs a dispatch pass now (or right after the one in progress). */
  kick(): void {
    if (!this.timer || this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.dispatchDue()
      .catch((error: unknown) => this.log.warn({ err: error }, 'alert dispatch failed'))
      .finally(() => {
        this.running = null;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  private async dispatchDue(): Promise<void> {
    for (;;) {
      const claims = await this.outbox.claimDue(LEASE_MS, 10);
      if (claims.length === 0) return;
      await Promise.all(claims.map((claim) => this.deliver(claim)));
      if (this.stopped) return;
    }
  }

  /** Claims one row and delivers it now (`flokie alerts test`). Null when another process holds it or it is done. */
  async deliverNow(id: number): Promise<DeliveryReport | null> {
    const [claim] = await this.outbox.claimDue(LEASE_MS, 1, id);
    return claim ? this.deliver(claim) : null;
  }

  private async deliver(claim: Claim): Promise<DeliveryReport> {
    const message = toMessage(claim.row, { environment: this.config.NODE_ENV, url: this.config.publicUrl });
    const report: DeliveryReport = { id: Number(claim.row.id), delivered: false, channels: [] };
    const errors: string[] = [];
    for (const channel of this.channels) {
      const done = channel.name === 'webhook' ? claim.row.webhook_sent_at : claim.row.email_sent_at;
      if (done !== null) continue;
      try {
        const detail = await channel.send(message);
        await this.outbox.markChannel(claim, channel.name);
        report.channels.push({ name: channel.name, ok: true, detail });
      } catch (error) {
        const detail = describe(error);
        errors.push(`${channel.name}: ${detail}`);
        report.channels.push({ name: channel.name, ok: false, detail });
      }
    }
    if (errors.length === 0) {
      await this.outbox.markDelivered(claim);
      this.stats.delivered++;
      report.delivered = true;
      return report;
    }
    this.stats.failedAttempts++;
    const now = Date.now();
    const attempts = claim.row.attempts + 1;
    if (now - Number(claim.row.created_at) >= this.config.ALERT_MAX_AGE_HOURS * 3_600_000) {
      await this.outbox.markFailed(claim, errors.join('; '), { givenUp: true });
      this.stats.givenUp++;
      this.log.error(
        { alert_id: claim.row.id, alert_type: claim.row.type, attempts, error: errors.join('; ') },
        'alert given up: not delivered within ALERT_MAX_AGE_HOURS',
      );
      return report;
    }
    await this.outbox.markFailed(claim, errors.join('; '), { at: now + retryDelayMs(attempts, this.config) });
    this.log.warn(
      { alert_id: claim.row.id, alert_type: claim.row.type, attempts, error: errors.join('; ') },
      'alert not delivered; will retry',
    );
    return report;
  }

  /** Waits for alerts being queued and the send in progress; stops the loop. */
  async close(): Promise<void> {
    while (this.pending.size) await Promise.allSettled([...this.pending]);
    this.stopped = true;
    this.unsubscribe();
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }
}

/** Exponential back-off with "equal jitter": half the delay fixed, half random, capped. */
export function retryDelayMs(
  attempts: number,
  config: Pick<Config, 'ALERT_RETRY_INITIAL_SECONDS' | 'ALERT_RETRY_MAX_SECONDS'>,
): number {
  const base =
    Math.min(config.ALERT_RETRY_MAX_SECONDS, config.ALERT_RETRY_INITIAL_SECONDS * 2 ** Math.min(attempts - 1, 30)) *
    1000;
  return Math.round(base / 2 + Math.random() * (base / 2));
}

function describe(error: unknown): string {
  const e = error as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError') return 'timed out';
  const cause = e?.cause?.code ?? e?.cause?.message;
  return `${e?.message ?? String(error)}${cause ? ` (${cause})` : ''}`.slice(0, 300);
}
