/**
 * Security operations, shared by the admin API (routes.ts) and `flokie`: reading the security
 * event log, and setting or lifting the emergency global rate limit (stored and announced by
 * src/state/emergency-limit.ts) with the emergency_action event that records who did it.
 */
import type { Kysely } from 'kysely';
import { SettingError, type RateSpec } from '../../config/index.js';
import { validationError } from '../../core/errors.js';
import type { RequestContext } from '../../core/request-context.js';
import type { Database } from '../../db/types.js';
import type { ChangeFeed } from '../../state/change-feed.js';
import { getEmergencyLimit, setEmergencyLimit } from '../../state/emergency-limit.js';
import { pagination } from '../users/user-queries.js';
import { storedEventView, type SecurityEvents, type SecurityEventView } from './events.js';

export interface EventFilter {
  type?: string;
  severity?: string;
  user_id?: string;
  ip?: string;
  /** Epoch milliseconds, inclusive. */
  since?: number;
  until?: number;
}

export interface SecurityServiceDeps {
  db: Kysely<Database>;
  events: SecurityEvents;
  changes: ChangeFeed;
}

export class SecurityService {
  constructor(private readonly deps: SecurityServiceDeps) {}

  /** One page of events, newest first, with what was emitted a moment ago already included. */
  async listEvents(filter: EventFilter, page: number, perPage: number) {
    if (filter.since !== undefined && filter.until !== undefined && filter.since > filter.until) {
      throw validationError('since must not be after until', { since: ['Must not be after until'] });
    }
    await this.deps.events.flush();
    const counted = await this.query(filter)
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    const rows = await this.query(filter)
      .selectAll()
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .limit(perPage)
      .offset((page - 1) * perPage)
      .execute();
    return { events: rows.map(storedEventView), pagination: pagination(page, perPage, Number(counted.n)) };
  }

  /** Up to `limit` events with an id above `afterId`, oldest first (`flokie events tail` and `export`). */
  async eventsAfter(filter: EventFilter, afterId: number, limit: number): Promise<SecurityEventView[]> {
    const rows = await this.query(filter).selectAll().where('id', '>', afterId).orderBy('id').limit(limit).execute();
    return rows.map(storedEventView);
  }

  /** The id of the newest stored event, 0 when there is none. */
  async newestEventId(): Promise<number> {
    const newest = await this.deps.db
      .selectFrom('security_events')
      .select((eb) => eb.fn.max('id').as('id'))
      .executeTakeFirst();
    return Number(newest?.id ?? 0);
  }

  emergencyLimit(): Promise<RateSpec | null> {
    return getEmergencyLimit(this.deps.db);
  }

  /**
   * Sets (a rate like "1 per minute") or lifts (null) the emergency limit on every instance and
   * records the emergency_action event; `context.via` names a caller other than the API ("cli").
   */
  async changeEmergencyLimit(limit: string | null, context: RequestContext): Promise<RateSpec | null> {
    let spec: RateSpec | null;
    try {
      spec = await setEmergencyLimit(this.deps.db, this.deps.changes, limit);
    } catch (error) {
      if (error instanceof SettingError) throw validationError('Invalid rate', { limit: [error.message] });
      throw error;
    }
    this.deps.events.emit({
      type: 'emergency_action',
      context,
      message: spec ? `Emergency rate limit set to ${spec.text}` : 'Emergency rate limit lifted',
      details: { action: 'emergency_rate_limit', limit: spec?.text ?? null, via: context.via ?? 'api' },
    });
    return spec;
  }

  private query(filter: EventFilter) {
    let q = this.deps.db.selectFrom('security_events');
    if (filter.type) q = q.where('type', '=', filter.type);
    if (filter.severity) q = q.where('severity', '=', filter.severity);
    if (filter.user_id) q = q.where('user_id', '=', filter.user_id);
    if (filter.ip) q = q.where('ip', '=', filter.ip);
    if (filter.since !== undefined) q = q.where('created_at', '>=', filter.since);
    if (filter.until !== undefined) q = q.where('created_at', '<=', filter.until);
    return q;
  }
}
