/**
 * Security events: one vocabulary, written two ways — a structured pino log line at once, and a
 * row in `security_events` through a queue flushed in batches, so recording an event never slows
 * or fails the request that caused it. `close()` flushes what is queued (clean shutdown loses
 * nothing). Never put a password, token or hash into `details`: the logger redacts known
 * secret-bearing keys as a second line of defence.
 */
import type { Kysely } from 'kysely';
import type { BaseLogger } from 'pino';
import { isDatabaseUnavailable } from '../../db/availability.js';
import type { RequestContext } from '../../core/request-context.js';
import type { Database } from '../../db/types.js';
import { isSecretKey, REDACTED } from '../../logging.js';

export const EVENT_TYPES = {
  login_success: 'info',
  login_failure: 'warning',
  account_locked: 'warning',
  account_unlocked: 'info',
  registration: 'info',
  email_verified: 'info',
  password_changed: 'info',
  password_reset_requested: 'info',
  password_reset: 'warning',
  token_refreshed: 'info',
  refresh_token_reuse: 'critical',
  token_revoked: 'warning',
  session_revoked: 'info',
  logout: 'info',
  rate_limit_exceeded: 'warning',
  csrf_failure: 'warning',
  admin_action: 'warning',
  emergency_action: 'critical',
  suspicious_header: 'warning',
  brute_force_detected: 'critical',
  credential_stuffing_detected: 'critical',
  distributed_attack_detected: 'critical',
  ip_blocked: 'warning',
  device_locked: 'warning',
  account_locked_by_admin: 'warning',
  email_change_requested: 'warning',
  email_changed: 'warning',
  email_change_failed: 'warning',
} as const;

export type SecurityEventType = keyof typeof EVENT_TYPES;
export type Severity = 'info' | 'warning' | 'critical';

export interface SecurityEventInput {
  type: SecurityEventType;
  message?: string;
  userId?: string | null;
  /** Who asked, from where (src/core/request-context.ts); absent for background work. */
  context?: RequestContext | null;
  ip?: string | null;
  severity?: Severity;
  details?: Record<string, unknown>;
}

type Row = Omit<Database['security_events'], 'id'>;

/** A stored row as read back (the id assigned). */
export type StoredEventRow = Row & { id: number };

/** One event as its readers see it (listeners, the log line, the API): details as an object; the row stores JSON. */
export interface SecurityEvent extends Omit<Row, 'details'> {
  details: Record<string, unknown> | null;
}

/**
 * The one mapper from an event to what people read: the API and `flokie events` answer this view
 * (with the row id in front), and the log line is the same fields under log-friendly names.
 */
export function eventView(event: SecurityEvent) {
  return {
    type: event.type,
    severity: event.severity,
    user_id: event.user_id,
    ip: event.ip,
    user_agent: event.user_agent,
    request_id: event.request_id,
    endpoint: event.endpoint,
    details: event.details,
    created_at: new Date(Number(event.created_at)).toISOString(),
  };
}

/** The fields of the event's log line: the view, its details spread at the top level for log search. */
export function eventLogFields(event: SecurityEvent): Record<string, unknown> {
  const { type, created_at, details, ...who } = eventView(event);
  return { security_event: type, ...who, timestamp: created_at, ...details };
}

/** A stored row as the API and the CLI show it; details that are not JSON are shown raw rather than lost. */
export function storedEventView(row: StoredEventRow) {
  let details: Record<string, unknown> | null = null;
  try {
    details = row.details ? (JSON.parse(row.details) as Record<string, unknown>) : null;
  } catch {
    details = { raw: row.details };
  }
  return { id: Number(row.id), ...eventView({ ...row, details }) };
}

export type SecurityEventView = ReturnType<typeof storedEventView>;

/** Censors every secret key (logging.ts SECRET_KEYS), however it got here. */
function scrub(details: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (!details) return undefined;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(details)) out[k] = isSecretKey(k) ? REDACTED : v;
  return out;
}

export type EventListener = (event: SecurityEvent & { message: string }) => void;

export class SecurityEvents {
  private queue: Row[] = [];
  private flushing: Promise<void> | null = null;
  private readonly timer: NodeJS.Timeout;
  private readonly listeners = new Set<EventListener>();

  constructor(
    private readonly db: Kysely<Database>,
    private readonly log: BaseLogger,
    private readonly options: { batchSize?: number; flushIntervalMs?: number } = {},
  ) {
    this.timer = setInterval(() => void this.flush(), options.flushIntervalMs ?? 250);
    this.timer.unref();
  }

  /** Listeners see every event as it is emitted (intrusion detection, Sentry, alerts, metrics). */
  onEvent(listener: EventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(input: SecurityEventInput): void {
    const context = input.context;
    const severity = input.severity ?? EVENT_TYPES[input.type];
    const details = scrub(input.details);
    const row: Row = {
      type: input.type,
      severity,
      user_id: input.userId ?? context?.actor?.userId ?? null,
      ip: input.ip ?? context?.ip ?? null,
      user_agent: context?.userAgent ?? null,
      request_id: context?.requestId ?? null,
      endpoint: context?.endpoint ?? null,
      details: details ? JSON.stringify(details) : null,
      created_at: Date.now(),
    };
    const message = input.message ?? input.type.replace(/_/g, ' ');
    // Frozen: every listener reads the same object, and none may change what the next one sees.
    const event = { ...row, details: details ? Object.freeze(details) : null };
    const level = severity === 'critical' ? 'fatal' : severity === 'warning' ? 'warn' : 'info';
    this.log[level](eventLogFields(event), message);
    this.queue.push(row);
    for (const listener of this.listeners) {
      try {
        listener({ ...event, message });
      } catch (error) {
        this.log.error({ err: error }, 'security event listener failed');
      }
    }
    if (this.queue.length >= (this.options.batchSize ?? 100)) void this.flush();
  }

  /** Writes queued events; a failed batch is retried on the next flush rather than dropped. */
  flush(): Promise<void> {
    // Wait for the write in flight, then flush again: that also waits for a write another caller
    // started meanwhile, so `await flush()` (and close()) returns only when nothing is pending.
    if (this.flushing) return this.flushing.then(() => this.flush());
    if (this.queue.length === 0) return Promise.resolve();
    const batch = this.queue;
    this.queue = [];
    this.flushing = this.db
      .insertInto('security_events')
      .values(batch)
      .execute()
      .then(() => undefined)
      .catch((error: unknown) => {
        // An unreachable database is logged once per outage (src/db/availability.ts), not every 250 ms.
        if (!isDatabaseUnavailable(error))
          this.log.error({ err: error, count: batch.length }, 'could not write security events; will retry');
        this.queue = batch.concat(this.queue).slice(-10_000);
      })
      .finally(() => {
        this.flushing = null;
      });
    return this.flushing;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
    if (this.queue.length) await this.flush();
  }

  async purgeOlderThan(days: number): Promise<number> {
    const result = await this.db
      .deleteFrom('security_events')
      .where('created_at', '<', Date.now() - days * 86_400_000)
      .executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}
