/**
 * Rate-limit counters (rate-limiter-flexible): in-process by default, in Redis when REDIS_URL is
 * set so every instance shares one count per key (atomic Lua increments, no read-modify-write).
 * If Redis is unreachable, each Redis limiter falls back to an in-process "insurance" limiter with
 * the same rate: limits keep holding (per instance), the switch is logged once per outage and its
 * end once; the request never fails and the limit never silently falls open.
 *
 * Also holds the emergency global limit (src/state/emergency-limit.ts): read at start and again
 * whenever a 'setting' change for it arrives through the ChangeFeed, from this or any process.
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { RateSpec } from '../config/index.js';
import type { Database } from '../db/types.js';
import type { ChangeFeed } from './change-feed.js';
import { EMERGENCY_LIMIT_KEY, getEmergencyLimit } from './emergency-limit.js';
import type { RedisClient } from './redis.js';

export interface LimitDecision {
  allowed: boolean;
  /** Requests allowed per window. */
  limit: number;
  remaining: number;
  /** Seconds until the window resets (at least 1). */
  resetSeconds: number;
  /** True for exactly the first refused request of a window (cluster-wide with Redis): report it once. */
  firstRefusal: boolean;
}

export interface RateLimitStoreOptions {
  redis: RedisClient | null;
  /** Prefix for Redis keys (REDIS_KEY_PREFIX + "rl:"). */
  keyPrefix: string;
  log: Logger;
}

/** The memory limiter used while Redis is down; tells its owner when it is used. */
class InsuranceLimiter extends RateLimiterMemory {
  constructor(
    options: ConstructorParameters<typeof RateLimiterMemory>[0],
    private readonly onUse: () => void,
  ) {
    super(options);
  }

  override consume(key: string | number, points?: number, options?: Record<string, unknown>) {
    this.onUse();
    return super.consume(key, points, options);
  }
}

export class RateLimitStore {
  private readonly limiters = new Map<string, RateLimiterAbstract>();
  private usingFallback = false;
  private emergency: RateSpec | null = null;

  constructor(private readonly options: RateLimitStoreOptions) {}

  get backend(): 'redis' | 'memory' {
    return this.options.redis ? 'redis' : 'memory';
  }

  private limiterFor(name: string, spec: RateSpec): RateLimiterAbstract {
    // The rate is part of the identity: a changed limit starts with fresh counters.
    const id = `${name}:${spec.points}/${spec.durationSeconds}`;
    let limiter = this.limiters.get(id);
    if (limiter) return limiter;
    const base = { points: spec.points, duration: spec.durationSeconds, keyPrefix: id };
    const { redis } = this.options;
    limiter = redis
      ? new RateLimiterRedis({
          ...base,
          storeClient: redis,
          keyPrefix: `${this.options.keyPrefix}${id}`,
          rejectIfRedisNotReady: true,
          insuranceLimiter: new InsuranceLimiter(base, () => this.fallbackUsed()),
        })
      : new RateLimiterMemory(base);
    this.limiters.set(id, limiter);
    return limiter;
  }

  private fallbackUsed(): void {
    if (this.usingFallback) return;
    this.usingFallback = true;
    this.options.log.error('rate limiter: Redis unavailable; enforcing limits with in-process counters (per instance) until it returns');
  }

  /** Counts one request against `name`'s limit for `key` (e.g. "ip:203.0.113.9"). Never throws. */
  async consume(name: string, spec: RateSpec, key: string): Promise<LimitDecision> {
    const limiter = this.limiterFor(name, spec);
    let res: RateLimiterRes;
    let allowed = true;
    try {
      res = await limiter.consume(key);
    } catch (error) {
      if (!(error instanceof RateLimiterRes)) {
        // Both Redis and the insurance failed: say so loudly and let the request through.
        this.options.log.error({ err: error, limit: name }, 'rate limiter failed; request not counted');
        return { allowed: true, limit: spec.points, remaining: spec.points, resetSeconds: spec.durationSeconds, firstRefusal: false };
      }
      res = error;
      allowed = false;
    }
    if (this.usingFallback && this.options.redis?.status === 'ready') {
      this.usingFallback = false;
      this.options.log.warn('rate limiter: Redis is back; limits are shared again');
    }
    return {
      allowed,
      limit: spec.points,
      remaining: Math.max(0, res.remainingPoints),
      resetSeconds: Math.max(1, Math.ceil(res.msBeforeNext / 1000)),
      firstRefusal: !allowed && res.consumedPoints === spec.points + 1,
    };
  }

  /** The emergency global limit in force, or null. */
  get emergencyLimit(): RateSpec | null {
    return this.emergency;
  }

  async reloadEmergencyLimit(db: Kysely<Database>): Promise<void> {
    const next = await getEmergencyLimit(db);
    if (next?.text !== this.emergency?.text) {
      this.options.log.warn({ emergency_rate_limit: next?.text ?? null }, next ? 'emergency rate limit in force' : 'emergency rate limit lifted');
    }
    this.emergency = next;
  }

  /** Reads the emergency limit now and whenever it changes; returns a function that stops following. */
  async followEmergencyLimit(db: Kysely<Database>, changes: ChangeFeed): Promise<() => void> {
    await this.reloadEmergencyLimit(db);
    return changes.subscribe((kind, key) => {
      if (kind !== 'setting' || key !== EMERGENCY_LIMIT_KEY) return;
      this.reloadEmergencyLimit(db).catch((error: unknown) => this.options.log.error({ err: error }, 'could not read the emergency rate limit'));
    });
  }
}
