/**
 * Which security events are alerts: the one place that decides what reaches a person (webhook,
 * e-mail) besides the log and Sentry. Each alert names its subject, the address or account it is
 * about: alerts of one type about one subject within ALERT_DEDUP_WINDOW_SECONDS fold into one row.
 * docs/deployment.md ("Alerts") lists the same table for operators.
 */
import type { EventListener } from '../security/events.js';

export type AlertEvent = Parameters<EventListener>[0];

export interface AlertSpec {
  type: string;
  /** The address, account or action the alert is about (folding key). */
  subject: string;
}

const text = (value: unknown) => (value === undefined || value === null ? '-' : String(value).slice(0, 200));

/**
 * admin_action details.action values that are alerts: someone became an administrator, or lost every session at
 * once.
 */
const ALERTING_ADMIN_ACTIONS = new Set(['grant_admin', 'revoke_all_sessions']);

/** Event type → subject of the alert, or null when this occurrence is not an alert. */
const ALERTS: Record<string, (event: AlertEvent, details: Record<string, unknown>) => string | null> = {
  brute_force_detected: (e) => text(e.ip),
  credential_stuffing_detected: (e) => text(e.ip),
  distributed_attack_detected: (_e, d) => text(d.username),
  refresh_token_reuse: (e) => text(e.user_id),
  emergency_action: (_e, d) => `${text(d.action)}:${text(d.limit ?? 'off')}`,
  admin_action: (_e, d) => {
    const action = String(d.action ?? '');
    // A new account created with administrator rights is an administrator granted, too.
    if (ALERTING_ADMIN_ACTIONS.has(action) || (action === 'create_user' && d.is_admin === true))
      return `${action}:${text(d.target_user_id)}`;
    return null;
  },
};

export function alertFor(event: AlertEvent): AlertSpec | null {
  const subjectOf = ALERTS[event.type];
  if (!subjectOf) return null;
  const subject = subjectOf(event, event.details ?? {});
  return subject === null ? null : { type: event.type, subject };
}
