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

/**
 * The shared client. A Redis that refuses or drops the connection is noticed by ioredis itself; one
 * that stalls (connection open, no answers) is bounded by `commandTimeoutMs`: the first command it
 * leaves unanswered that long closes the connection and opens a new one, and until that one is
 * ready (Redis answers again) every command fails at once, so callers fall back without waiting.
 */
export function createRedis(url: string, log: Logger, name: string, commandTimeoutMs: number): Redis {
  let down = false;
  const markDown = (reason: string) => {
    if (!down) log.error({ err: { message: reason }, client: name }, 'redis unavailable; using in-process fallback');
    down = true;
  };
  const watched = new WeakSet<object>();
  class BoundedRedis extends Redis {
    override sendCommand(...args: Parameters<Redis['sendCommand']>): ReturnType<Redis['sendCommand']> {
      const [command] = args;
      const result = super.sendCommand(...args);
      // Once per command: ioredis hands the same command to sendCommand again when it resends it.
      if (!watched.has(command)) {
        watched.add(command);
        void (result as Promise<unknown> | undefined)?.catch((error: Error) => {
          if (error.message === 'Command timed out' && this.status === 'ready') {
            markDown(`no answer within ${commandTimeoutMs} ms`);
            this.disconnect(true);
          }
        });
      }
      return result;
    }
  }
  const client = new BoundedRedis(url, {
    // Fail fast while disconnected instead of queueing commands: callers fall back at once.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2000,
    commandTimeout: commandTimeoutMs,
    // A command that timed out has been answered (with an error): never send it again later.
    autoResendUnfulfilledCommands: false,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2000),
    lazyConnect: false,
  });
  client.on('error', (error: Error) => markDown(error.message));
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
    this.subscriber = new Redis(this.url, {
      lazyConnect: false,
      retryStrategy: (n) => Math.min(n * 200, 2000),
      maxRetriesPerRequest: null,
    });
    this.subscriber.on('error', () => {});
    this.subscriber.on('message', (channel: string, message: string) => {
      if (channel === this.channel) onMessage(message);
    });
    this.subscriber
      .subscribe(this.channel)
      .catch((error: unknown) => this.log.warn({ err: error }, 'redis subscribe failed; relying on database poll'));
  }

  async close(): Promise<void> {
    this.subscriber?.disconnect();
  }
}
