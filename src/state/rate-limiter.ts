/**
 * Rate-limit counters (rate-limiter-flexible): in-process by default, in Redis when REDIS_URL is
 * set so every instance shares one count per key (atomic Lua increments, no read-modify-write).
 * If Redis is unreachable, each Redis limiter falls back to an in-process "insurance" limiter with
 * the same rate: limits keep holding (per instance), the switch is logged once per outage and its
 * end once; the request never fails and the limit never silently falls open.
 *
 * A limit "N per D" is a bucket, after the library's BurstyRateLimiter pattern: a steady limiter
 * gives one request every D/N seconds (at least 1 s) and a burst limiter holds the other N - 1,
 * refilled every BURST_REFILL_PERIODS × D. So a client may send N at once, and once it has, the
 * next request is allowed as soon as the steady limiter frees (36 s for 100 per hour): that is
 * what Retry-After says, instead of the end of a fixed window. Sustained, a key gets at most
 * N + (N - 1) / BURST_REFILL_PERIODS requests per D.
 *
 * Also holds the emergency global limit (src/state/emergency-limit.ts): read at start and again
 * whenever a 'setting' change for it arrives through the ChangeFeed, from this or any process.
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import {
  RateLimiterMemory,
  RateLimiterRedis,
  type RateLimiterAbstract,
  type RateLimiterRes,
} from 'rate-limiter-flexible';
import type { RateSpec } from '../config/index.js';
import type { Database } from '../db/types.js';
import type { ChangeFeed } from './change-feed.js';
import { EMERGENCY_LIMIT_KEY, getEmergencyLimit } from './emergency-limit.js';
import type { RedisClient } from './redis.js';

export interface LimitDecision {
  allowed: boolean;
  /** Requests the bucket holds when full (N of "N per D"). */
  limit: number;
  /** Requests left in the bucket after this one. */
  remaining: number;
  /** Seconds until the next request is allowed if the bucket is empty: the steady limiter frees (at least 1). */
  resetSeconds: number;
  /** True for the first refused request per key and period D (cluster-wide with Redis): report it once. */
  firstRefusal: boolean;
}

/** The burst part of a bucket refills every this many periods (see the header). */
export const BURST_REFILL_PERIODS = 10;

/** The limiters behind one "N per D" limit. */
interface Bucket {
  steady: RateLimiterAbstract;
  /** Null when N is 1: no burst. */
  burst: RateLimiterAbstract | null;
  /** One point per key and period: the first refusal consumes it, so it is reported once. */
  reported: RateLimiterAbstract;
}

/**
 * Counts with `penalty`, not `consume`: it counts exactly the same way (atomically, through the insurance
 * limiter when Redis is down) but resolves instead of rejecting when over the limit. A refusal is the
 * common case under load (the steady part of a busy bucket), and a rejected promise per request costs
 * more than the counting.
 */
const fits = (limiter: RateLimiterAbstract, res: RateLimiterRes) => res.consumedPoints <= limiter.points;

function decision(spec: RateSpec, allowed: boolean, remaining: number, waitMs: number): LimitDecision {
  return {
    allowed,
    limit: spec.points,
    remaining: Math.max(0, remaining),
    resetSeconds: Math.max(1, Math.ceil(waitMs / 1000)),
    firstRefusal: false,
  };
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

  override penalty(key: string | number, points?: number, options?: Record<string, unknown>) {
    this.onUse();
    return super.penalty(key, points, options);
  }
}

export class RateLimitStore {
  private readonly buckets = new Map<string, Bucket>();
  private readonly bucketsBySpec = new WeakMap<RateSpec, Map<string, Bucket>>();
  private usingFallback = false;
  private emergency: RateSpec | null = null;
  private emergencyReads: Promise<void> = Promise.resolve();

  constructor(private readonly options: RateLimitStoreOptions) {}

  get backend(): 'redis' | 'memory' {
    return this.options.redis ? 'redis' : 'memory';
  }

  private limiter(id: string, points: number, duration: number): RateLimiterAbstract {
    const base = { points, duration, keyPrefix: id };
    const { redis } = this.options;
    return redis
      ? new RateLimiterRedis({
          ...base,
          storeClient: redis,
          keyPrefix: `${this.options.keyPrefix}${id}`,
          rejectIfRedisNotReady: true,
          insuranceLimiter: new InsuranceLimiter(base, () => this.fallbackUsed()),
        })
      : new RateLimiterMemory(base);
  }

  private bucketFor(name: string, spec: RateSpec): Bucket {
    // Settings are parsed once, so the same spec object comes back on every request: no key to build.
    // Several names can share one spec (a limit without its own setting uses the default's).
    let byName = this.bucketsBySpec.get(spec);
    const known = byName?.get(name);
    if (known) return known;
    if (!byName) this.bucketsBySpec.set(spec, (byName = new Map()));
    // The rate is part of the identity: a changed limit starts with fresh counters.
    const id = `${name}:${spec.points}/${spec.durationSeconds}`;
    let bucket = this.buckets.get(id);
    if (bucket) {
      byName.set(name, bucket);
      return bucket;
    }
    const interval = Math.max(1, Math.round(spec.durationSeconds / spec.points));
    const refill = spec.durationSeconds * BURST_REFILL_PERIODS;
    bucket = {
      steady: this.limiter(`${id}:steady`, 1, interval),
      burst: spec.points > 1 ? this.limiter(`${id}:burst`, spec.points - 1, refill) : null,
      reported: this.limiter(`${id}:reported`, 1, spec.durationSeconds),
    };
    this.buckets.set(id, bucket);
    byName.set(name, bucket);
    return bucket;
  }

  private fallbackUsed(): void {
    if (this.usingFallback) return;
    this.usingFallback = true;
    this.options.log.error(
      'rate limiter: Redis unavailable; enforcing limits with in-process counters (per instance) until it returns',
    );
  }

  /** Counts one request against `name`'s limit for `key` (e.g. "ip:203.0.113.9"). Never throws. */
  async consume(name: string, spec: RateSpec, key: string): Promise<LimitDecision> {
    const { steady, burst, reported } = this.bucketFor(name, spec);
    let decided: LimitDecision;
    try {
      // With Redis the burst's level is read alongside (one round trip); in memory, only when the steady
      // part allowed the request (a refused one goes on to consume the burst instead).
      const parallelRead = burst && this.options.redis ? burst.get(key) : null;
      parallelRead?.catch(() => {}); // awaited below, or not needed when the steady consume fails
      const first = await steady.penalty(key);
      const untilSteady = first.msBeforeNext;
      if (fits(steady, first)) {
        const level = burst ? await (parallelRead ?? burst.get(key)) : null;
        decided = decision(spec, true, burst ? spec.points - 1 - (level?.consumedPoints ?? 0) : 0, untilSteady);
      } else if (burst) {
        const second = await burst.penalty(key);
        decided = fits(burst, second)
          ? decision(spec, true, second.remainingPoints, untilSteady)
          : decision(spec, false, 0, Math.min(untilSteady, second.msBeforeNext));
      } else {
        decided = decision(spec, false, 0, untilSteady);
      }
      if (!decided.allowed) decided.firstRefusal = fits(reported, await reported.penalty(key));
    } catch (error) {
      // Both Redis and the insurance failed: say so loudly and let the request through.
      this.options.log.error({ err: error, limit: name }, 'rate limiter failed; request not counted');
      return decision(spec, true, spec.points, spec.durationSeconds * 1000);
    }
    if (this.usingFallback && this.options.redis?.status === 'ready') {
      this.usingFallback = false;
      this.options.log.warn('rate limiter: Redis is back; limits are shared again');
    }
    return decided;
  }

  /** The emergency global limit in force, or null. */
  get emergencyLimit(): RateSpec | null {
    return this.emergency;
  }

  /**
   * Reads the emergency limit again. Reads run one after another: a read that began before a change
   * could otherwise finish after the read that saw it, and put the old limit back in force.
   */
  reloadEmergencyLimit(db: Kysely<Database>): Promise<void> {
    const read = this.emergencyReads.then(() => this.readEmergencyLimit(db));
    this.emergencyReads = read.catch(() => {});
    return read;
  }

  private async readEmergencyLimit(db: Kysely<Database>): Promise<void> {
    const next = await getEmergencyLimit(db);
    if (next?.text !== this.emergency?.text) {
      this.options.log.warn(
        { emergency_rate_limit: next?.text ?? null },
        next ? 'emergency rate limit in force' : 'emergency rate limit lifted',
      );
    }
    this.emergency = next;
  }

  /** Reads the emergency limit now and whenever it changes; returns a function that stops following. */
  async followEmergencyLimit(db: Kysely<Database>, changes: ChangeFeed): Promise<() => void> {
    await this.reloadEmergencyLimit(db);
    return changes.subscribe((kind, key) => {
      if (kind !== 'setting' || key !== EMERGENCY_LIMIT_KEY) return;
      return this.reloadEmergencyLimit(db).catch((error: unknown) =>
        this.options.log.error({ err: error }, 'could not read the emergency rate limit'),
      );
    });
  }
}
