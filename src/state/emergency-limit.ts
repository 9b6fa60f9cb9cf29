/**
 * The emergency global rate limit (docs/incident-response.md, "Containment"): a value in
 * `app_settings` that every running instance applies within CACHE_SYNC_INTERVAL_MS (instantly
 * with Redis), set by `flokie ratelimit emergency …` or PUT /api/security/emergency-rate-limit,
 * both through SecurityService.changeEmergencyLimit (which also records the event). The rate-limit
 * plugin reads it at start and on every 'setting' change.
 */
import type { Kysely } from 'kysely';
import { parseRate, type RateSpec } from '../config/index.js';
import type { Database } from '../db/types.js';
import type { ChangeFeed } from './change-feed.js';

export const EMERGENCY_LIMIT_KEY = 'emergency_rate_limit';

export async function getEmergencyLimit(db: Kysely<Database>): Promise<RateSpec | null> {
  const row = await db
    .selectFrom('app_settings')
    .select('value')
    .where('key', '=', EMERGENCY_LIMIT_KEY)
    .executeTakeFirst();
  if (!row?.value) return null;
  try {
    return parseRate(row.value);
  } catch {
    return null;
  }
}

/** Sets (a rate like "1 per minute") or clears (null) the emergency limit; throws SettingError on a bad rate. */
export async function setEmergencyLimit(
  db: Kysely<Database>,
  changes: ChangeFeed,
  limit: string | null,
): Promise<RateSpec | null> {
  const spec = limit === null ? null : parseRate(limit);
  const now = Date.now();
  await db.transaction().execute(async (trx) => {
    await trx.deleteFrom('app_settings').where('key', '=', EMERGENCY_LIMIT_KEY).execute();
    await trx
      .insertInto('app_settings')
      .values({ key: EMERGENCY_LIMIT_KEY, value: spec?.text ?? null, updated_at: now })
      .execute();
  });
  // Announced only after the commit: an instance told through Redis re-reads the value at once,
  // and inside the transaction it would still read the old one (and then wait for the next poll).
  await changes.publish('setting', EMERGENCY_LIMIT_KEY);
  return spec;
}
