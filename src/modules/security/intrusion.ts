/**
 * Intrusion detection (its alerts: docs/incident-response.md), fed by `login_failure` security events:
 *
 * - brute force: failed logins per address (an IPv6 client by its network, see
 *   clientAddressKey) over an hour; the first failure above
 *   BRUTE_FORCE_ALERT_THRESHOLD logs one critical "Potential brute force attack" event for that
 *   window (not one per request) and, with BRUTE_FORCE_BLOCK_MINUTES, blocks the IP;
 * - credential stuffing: many distinct usernames failing from one IP;
 * - distributed attack: one username failing from many distinct IPs.
 *
 * Counters are rate-limiter-flexible counters: atomic in Redis (shared by every instance) when
 * REDIS_URL is set, in-process otherwise, with an in-process insurance counter while Redis is down.
 * "Distinct" is counted with a per-pair counter: a pair (ip, account or keyed name hash) seen first in
 * its window adds one to the IP's (and the username's) distinct counter.
 */
import type { Logger } from 'pino';
import { RateLimiterMemory, RateLimiterRedis, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Config } from '../../config/index.js';
import { clientAddressKey } from '../../core/client-address.js';
import type { RedisClient } from '../../state/redis.js';
import type { SecurityEvents } from './events.js';

const WINDOW_SECONDS = 3600;

/** Whom a failed login was aimed at: the account, or the keyed hash of an unknown name (login-name.ts). */
export interface FailureSubject {
  key: string;
  details: { user_id: string; username?: string } | { login_hash: string };
}

/**
 * Reads the subject from a login_failure event: the lockout records `username` or `login_hash`, never the typed text.
 */
export function failureSubject(userId: string | null, details: Record<string, unknown> | null): FailureSubject | null {
  const username = details?.username;
  const loginHash = details?.login_hash;
  if (userId) {
    return {
      key: `user:${userId}`,
      details: { user_id: userId, ...(typeof username === 'string' ? { username } : {}) },
    };
  }
  if (typeof loginHash === 'string' && loginHash) {
    return { key: `name:${loginHash}`, details: { login_hash: loginHash } };
  }
  return null;
}

export class IntrusionDetector {
  private readonly failuresPerIp: RateLimiterAbstract;
  private readonly pairs: RateLimiterAbstract;
  private readonly namesPerIp: RateLimiterAbstract;
  private readonly ipsPerName: RateLimiterAbstract;
  private readonly blocked: RateLimiterAbstract | null;
  private readonly pending = new Set<Promise<void>>();
  private readonly unsubscribe: () => void;

  constructor(
    private readonly config: Config,
    redis: RedisClient | null,
    private readonly events: SecurityEvents,
    private readonly log: Logger,
  ) {
    const counter = (name: string, points = 1, duration = WINDOW_SECONDS): RateLimiterAbstract => {
      const memory = new RateLimiterMemory({ points, duration, keyPrefix: `ids:${name}` });
      if (!redis) return memory;
      return new RateLimiterRedis({
        storeClient: redis,
        points,
        duration,
        keyPrefix: `${config.REDIS_KEY_PREFIX}ids:${name}`,
        rejectIfRedisNotReady: true,
        insuranceLimiter: memory,
      });
    };
    this.failuresPerIp = counter('fail-ip');
    this.pairs = counter('pair');
    this.namesPerIp = counter('names-ip');
    this.ipsPerName = counter('ips-name');
    this.blocked =
      config.BRUTE_FORCE_BLOCK_MINUTES > 0 ? counter('blocked', 1, config.BRUTE_FORCE_BLOCK_MINUTES * 60) : null;
    this.unsubscribe = events.onEvent((event) => {
      if (event.type !== 'login_failure' || !event.ip) return;
      const task = this.recordFailure(event.ip, failureSubject(event.user_id, event.details)).catch((error: unknown) =>
        this.log.warn({ err: error }, 'intrusion detection failed'),
      );
      this.pending.add(task);
      void task.finally(() => this.pending.delete(task));
    });
  }

  /** Counts one failed login; raises each alert on the first count above its threshold in a window. */
  async recordFailure(ip: string, subject: FailureSubject | null): Promise<void> {
    const { BRUTE_FORCE_ALERT_THRESHOLD, CREDENTIAL_STUFFING_THRESHOLD, DISTRIBUTED_ATTACK_THRESHOLD } = this.config;
    const address = this.addressKey(ip);
    const attempts = (await this.failuresPerIp.penalty(address)).consumedPoints;
    if (attempts === BRUTE_FORCE_ALERT_THRESHOLD + 1) {
      this.events.emit({
        type: 'brute_force_detected',
        ip,
        message: 'Potential brute force attack',
        details: { ip_address: ip, ...subject?.details, attempts, window_seconds: WINDOW_SECONDS },
      });
      await this.block(ip);
    }
    if (!subject) return;
    const firstTimePair = (await this.pairs.penalty(`${address}|${subject.key}`)).consumedPoints === 1;
    if (!firstTimePair) return;
    const [names, ips] = await Promise.all([this.namesPerIp.penalty(address), this.ipsPerName.penalty(subject.key)]);
    if (names.consumedPoints === CREDENTIAL_STUFFING_THRESHOLD + 1) {
      this.events.emit({
        type: 'credential_stuffing_detected',
        ip,
        message: 'Potential credential stuffing: many usernames from one address',
        details: { ip_address: ip, distinct_usernames: names.consumedPoints, window_seconds: WINDOW_SECONDS },
      });
    }
    if (ips.consumedPoints === DISTRIBUTED_ATTACK_THRESHOLD + 1) {
      this.events.emit({
        type: 'distributed_attack_detected',
        ip,
        message: 'Potential distributed attack on one account',
        details: { ...subject.details, distinct_ips: ips.consumedPoints, window_seconds: WINDOW_SECONDS },
      });
    }
  }

  /** Counters key an address as every per-address limit does (an IPv6 client by its network). */
  private addressKey(ip: string): string {
    return clientAddressKey(ip, this.config.RATE_LIMIT_IPV6_PREFIX);
  }

  private async block(ip: string): Promise<void> {
    if (!this.blocked) return;
    const seconds = this.config.BRUTE_FORCE_BLOCK_MINUTES * 60;
    await this.blocked.block(this.addressKey(ip), seconds);
    this.events.emit({
      type: 'ip_blocked',
      ip,
      message: 'Address blocked after a brute force alert',
      details: { ip_address: ip, minutes: this.config.BRUTE_FORCE_BLOCK_MINUTES },
    });
  }

  /** Seconds the address stays blocked, or 0. */
  async blockedFor(ip: string): Promise<number> {
    if (!this.blocked) return 0;
    const res = await this.blocked.get(this.addressKey(ip));
    return res && res.consumedPoints > 1 && res.msBeforeNext > 0 ? Math.ceil(res.msBeforeNext / 1000) : 0;
  }

  get blocking(): boolean {
    return this.blocked !== null;
  }

  /** Waits for counting in flight (tests, shutdown). */
  async settle(): Promise<void> {
    while (this.pending.size) await Promise.allSettled([...this.pending]);
  }

  close(): void {
    this.unsubscribe();
  }
}
