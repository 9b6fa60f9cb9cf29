/**
 * The shared Redis connection (REDIS_URL) and the pub/sub ChangeBus built on it. Redis is a cache
 * and a shared counter here, never the only copy of a fact: if it goes away, the service keeps
 * answering (callers fall back to in-process state and the database) and the client reconnects
 * in the background. Connection errors are logged, never thrown at a request.
 */
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { ChangeBus } from './change-feed.js';

export type RedisClient = Redis;

export function createRedis(url: string, log: Logger, name = 'redis'): Redis {
  const client = new Redis(url, {
    // Fail fast while disconnected instead of queueing commands: callers fall back at once.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2000,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2000),
    lazyConnect: false,
  });
  let down = false;
  client.on('error', (error: Error) => {
    if (!down) log.error({ err: { message: error.message }, client: name }, 'redis unavailable; using in-process fallback');
    down = true;
  });
  client.on('ready', () => {
    if (down) log.warn({ client: name }, 'redis connection restored');
    down = false;
  });
  return client;
}

/** Pub/sub channel carrying ChangeFeed messages between instances. */
export class RedisChangeBus implements ChangeBus {
  private subscriber: Redis | undefined;

  constructor(
    private readonly url: string,
    private readonly publisher: Redis,
    private readonly channel: string,
    private readonly log: Logger,
  ) {}

  async publish(message: string): Promise<void> {
    if (this.publisher.status !== 'ready') return; // the database poll delivers it anyway
    await this.publisher.publish(this.channel, message);
  }

  async subscribe(onMessage: (message: string) => void): Promise<void> {
    // A subscribed connection can do nothing else, so it gets its own; it may queue while connecting.
    this.subscriber = new Redis(this.url, { lazyConnect: false, retryStrategy: (n) => Math.min(n * 200, 2000), maxRetriesPerRequest: null });
    this.subscriber.on('error', () => {});
    this.subscriber.on('message', (channel: string, message: string) => {
      if (channel === this.channel) onMessage(message);
    });
    this.subscriber.subscribe(this.channel).catch((error: unknown) => this.log.warn({ err: error }, 'redis subscribe failed; relying on database poll'));
  }

  async close(): Promise<void> {
    this.subscriber?.disconnect();
  }
}
