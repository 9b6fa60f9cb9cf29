/**
 * The alert outbox table (migration 004_operations): rows are written before anything is sent and
 * leave the queue only when every channel took them, or when they are too old to matter. Claims
 * are leases taken with a conditional UPDATE (`… WHERE claimed_until < now`), which is atomic on
 * SQLite, PostgreSQL and MariaDB alike: several server processes share one queue and each row is
 * sent by one of them at a time.
 */
import { randomUUID } from 'node:crypto';
import type { Kysely, Selectable } from 'kysely';
import { isUniqueViolation } from '../../db/index.js';
import type { AlertOutboxTable, Database } from '../../db/types.js';

export type OutboxRow = Selectable<AlertOutboxTable>;

export interface NewAlert {
  type: string;
  subject: string;
  severity: string;
  summary: string;
  details: Record<string, unknown>;
}

export interface Claim {
  row: OutboxRow;
  token: string;
}

export class AlertOutbox {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly foldWindowMs: number,
  ) {}

  /** Queues an alert, or counts it on the open row of the same type and subject. */
  async add(alert: NewAlert, now = Date.now()): Promise<{ id: number; folded: boolean }> {
    const foldKey = `${alert.type}|${alert.subject}`.slice(0, 250);
    // A row whose window is over stops taking duplicates (frees the unique open_key).
    await this.db
      .updateTable('alert_outbox')
      .set({ open_key: null })
      .where('open_key', '=', foldKey)
      .where('fold_until', '<=', now)
      .execute();
    for (let attempt = 0; ; attempt++) {
      if (this.foldWindowMs > 0) {
        const open = await this.db
          .selectFrom('alert_outbox')
          .select('id')
          .where('open_key', '=', foldKey)
          .where('fold_until', '>', now)
          .executeTakeFirst();
        if (open) {
          await this.db
            .updateTable('alert_outbox')
            .set((eb) => ({ occurrences: eb('occurrences', '+', 1), last_seen_at: now }))
            .where('id', '=', open.id)
            .execute();
          return { id: Number(open.id), folded: true };
        }
      }
      try {
        return { id: await this.insert(alert, foldKey, now), folded: false };
      } catch (error) {
        // Another process opened the row first: fold into it.
        if (attempt < 3 && isUniqueViolation(error)) continue;
        throw error;
      }
    }
  }

  /** Inserts a new row; its id from RETURNING on PostgreSQL, from the driver's insert id elsewhere. */
  private async insert(alert: NewAlert, foldKey: string, now: number): Promise<number> {
    const query = this.db.insertInto('alert_outbox').values({
      type: alert.type,
      fold_key: foldKey,
      open_key: this.foldWindowMs > 0 ? foldKey : null,
      severity: alert.severity,
      summary: alert.summary.slice(0, 300),
      details: JSON.stringify({ subject: alert.subject, ...alert.details }),
      occurrences: 1,
      created_at: now,
      last_seen_at: now,
      fold_until: now + this.foldWindowMs,
      attempts: 0,
      next_attempt_at: now,
      claimed_until: 0,
    });
    if (this.db.getExecutor().adapter.constructor.name.startsWith('Postgres')) {
      return Number((await query.returning('id').executeTakeFirstOrThrow()).id);
    }
    return Number((await query.executeTakeFirstOrThrow()).insertId);
  }

  /** Leases up to `limit` due rows (or the one row `onlyId`) for `leaseMs`. */
  async claimDue(leaseMs: number, limit = 10, onlyId?: number, now = Date.now()): Promise<Claim[]> {
    let candidates = this.db
      .selectFrom('alert_outbox')
      .select('id')
      .where('delivered_at', 'is', null)
      .where('given_up_at', 'is', null)
      .where('claimed_until', '<', now);
    candidates =
      onlyId === undefined
        ? candidates.where('next_attempt_at', '<=', now).orderBy('id').limit(limit)
        : candidates.where('id', '=', onlyId);
    const claims: Claim[] = [];
    for (const { id } of await candidates.execute()) {
      const token = randomUUID();
      const taken = await this.db
        .updateTable('alert_outbox')
        .set({ claimed_until: now + leaseMs, claim_token: token })
        .where('id', '=', id)
        .where('claimed_until', '<', now)
        .where('delivered_at', 'is', null)
        .where('given_up_at', 'is', null)
        .executeTakeFirst();
      if (Number(taken.numUpdatedRows) !== 1) continue; // another process got it first
      const row = await this.db.selectFrom('alert_outbox').selectAll().where('id', '=', id).executeTakeFirst();
      if (row) claims.push({ row, token });
    }
    return claims;
  }

  /** Records one channel's success; the row stays claimed. */
  async markChannel(claim: Claim, channel: 'webhook' | 'email', now = Date.now()): Promise<void> {
    const column = channel === 'webhook' ? 'webhook_sent_at' : 'email_sent_at';
    await this.db
      .updateTable('alert_outbox')
      .set({ [column]: now })
      .where('id', '=', claim.row.id)
      .where('claim_token', '=', claim.token)
      .execute();
  }

  async markDelivered(claim: Claim, now = Date.now()): Promise<void> {
    await this.db
      .updateTable('alert_outbox')
      .set({
        delivered_at: now,
        claimed_until: 0,
        claim_token: null,
        attempts: claim.row.attempts + 1,
        last_error: null,
      })
      .where('id', '=', claim.row.id)
      .where('claim_token', '=', claim.token)
      .execute();
  }

  /** Releases the row for a later attempt, or gives it up. */
  async markFailed(
    claim: Claim,
    error: string,
    next: { at: number } | { givenUp: true },
    now = Date.now(),
  ): Promise<void> {
    await this.db
      .updateTable('alert_outbox')
      .set({
        attempts: claim.row.attempts + 1,
        last_error: error.slice(0, 500),
        claimed_until: 0,
        claim_token: null,
        ...('at' in next ? { next_attempt_at: next.at } : { given_up_at: now }),
      })
      .where('id', '=', claim.row.id)
      .where('claim_token', '=', claim.token)
      .execute();
  }

  /** Alerts not yet delivered and not given up (metrics, `flokie check`). */
  async pending(): Promise<number> {
    const row = await this.db
      .selectFrom('alert_outbox')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('delivered_at', 'is', null)
      .where('given_up_at', 'is', null)
      .executeTakeFirst();
    return Number(row?.n ?? 0);
  }
}
