/**
 * Cross-process cache invalidation. Whoever changes a fact that other processes cache (a session
 * revoked, a user deactivated, a setting changed) publishes it here; the change is written to the
 * `change_log` table and applied locally at once, and sent on the buses at once: to the sibling
 * workers of a node:cluster through the primary (src/state/cluster-bus.ts) and, with Redis, to
 * every instance by pub/sub. Every process also polls `change_log` every CACHE_SYNC_INTERVAL_MS:
 * that is how other instances without Redis (or while it is down) and the CLI's changes arrive —
 * within CACHE_SYNC_INTERVAL_MS plus one poll query after the commit (docs/security.md).
 */
import type { Kysely } from 'kysely';
import { isDatabaseUnavailable } from '../db/availability.js';
import type { Database } from '../db/types.js';

export type ChangeKind = 'session' | 'user' | 'jti' | 'setting';
/** A listener that must read something first (the emergency limit) returns its promise; it handles its own errors. */
export type ChangeListener = (kind: ChangeKind, key: string) => void | Promise<void>;

/** Rows may commit out of id order, so each poll re-reads this much history. */
const OVERLAP_MS = 10_000;
const RETAIN_MS = 60 * 60 * 1000;

export interface ChangeBus {
  publish(message: string): Promise<void>;
  subscribe(onMessage: (message: string) => void): Promise<void>;
  close(): Promise<void>;
}

/** One bus out of several (each may be absent): publishes on all, listens on all. */
export function combineBuses(...buses: (ChangeBus | undefined)[]): ChangeBus | undefined {
  const present = buses.filter((bus): bus is ChangeBus => bus !== undefined);
  if (present.length <= 1) return present[0];
  return {
    publish: async (message) => void (await Promise.all(present.map((bus) => bus.publish(message)))),
    subscribe: async (onMessage) => void (await Promise.all(present.map((bus) => bus.subscribe(onMessage)))),
    close: async () => void (await Promise.all(present.map((bus) => bus.close()))),
  };
}

export class ChangeFeed {
  private readonly listeners = new Set<ChangeListener>();
  private readonly seen = new Map<number, number>();
  private since = Date.now();
  private timer: NodeJS.Timeout | undefined;
  private polling = false;
  private lastPurge = 0;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly intervalMs: number,
    private readonly bus?: ChangeBus,
    private readonly onError: (error: unknown) => void = () => {},
  ) {}

  async start(): Promise<void> {
    this.since = Date.now();
    this.timer = setInterval(() => void this.poll(), this.intervalMs);
    this.timer.unref();
    await this.bus?.subscribe((message) => {
      const [kind, ...rest] = message.split(':');
      void this.apply(kind as ChangeKind, rest.join(':'));
    });
  }

  subscribe(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Records a change (pass the transaction to make it part of the same commit) and applies it here. */
  async publish(kind: ChangeKind, key: string, db: Kysely<Database> = this.db): Promise<void> {
    await db.insertInto('change_log').values({ kind, key, created_at: Date.now() }).execute();
    // In force on this process when publish returns: the next request here sees the change.
    await this.apply(kind, key);
    if (this.bus) void this.bus.publish(`${kind}:${key}`).catch(this.onError);
  }

  private async apply(kind: ChangeKind, key: string): Promise<void> {
    const pending: Promise<void>[] = [];
    for (const listener of this.listeners) {
      const result = listener(kind, key);
      if (result) pending.push(result);
    }
    await Promise.all(pending);
  }

  /** Reads changes made by other processes since the last poll. */
  async poll(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      const now = Date.now();
      const from = this.since - OVERLAP_MS;
      const rows = await this.db
        .selectFrom('change_log')
        .select(['id', 'kind', 'key', 'created_at'])
        .where('created_at', '>=', from)
        .orderBy('id')
        .execute();
      for (const row of rows) {
        if (this.seen.has(row.id)) continue;
        this.seen.set(row.id, row.created_at);
        void this.apply(row.kind as ChangeKind, row.key);
      }
      for (const [id, createdAt] of this.seen) if (createdAt < from) this.seen.delete(id);
      this.since = now;
      if (now - this.lastPurge > 10 * 60 * 1000) {
        this.lastPurge = now;
        await this.db
          .deleteFrom('change_log')
          .where('created_at', '<', now - RETAIN_MS)
          .execute();
      }
    } catch (error) {
      // An unreachable database is logged once per outage (src/db/availability.ts), not every poll.
      if (!isDatabaseUnavailable(error)) this.onError(error);
    } finally {
      this.polling = false;
    }
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.bus?.close();
  }
}
