/**
 * Webhook signatures: `X-Flokie-Signature: v1=<hex HMAC-SHA256(ALERT_WEBHOOK_SECRET,
 * "<X-Flokie-Timestamp>.<raw body>")>`. The timestamp (Unix seconds) is signed with the body so a
 * receiver can refuse replays older than its window. docs/deployment.md ("Alerts") shows a
 * receiver verifying it; verifyWebhookSignature is that receiver's logic, used by the tests.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'x-flokie-signature';
export const TIMESTAMP_HEADER = 'x-flokie-timestamp';

export function signWebhook(secret: string, timestamp: number, body: string): string {
  return `v1=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/** True when the signature matches and the timestamp is within `toleranceSeconds` of now. */
export function verifyWebhookSignature(
  secret: string,
  headers: { timestamp?: string; signature?: string },
  rawBody: string,
  toleranceSeconds = 300,
  now = Date.now(),
): boolean {
  const timestamp = Number(headers.timestamp);
  if (
    !headers.timestamp ||
    !/^\d{1,12}$/.test(headers.timestamp) ||
    Math.abs(now / 1000 - timestamp) > toleranceSeconds
  )
    return false;
  const expected = Buffer.from(signWebhook(secret, timestamp, rawBody));
  const given = Buffer.from(headers.signature ?? '');
  return given.length === expected.length && timingSafeEqual(given, expected);
}
