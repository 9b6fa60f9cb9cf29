/**
 * ChangeFeed messages between the workers of one node:cluster (WEB_CONCURRENCY > 1), through the
 * primary's IPC channels: a worker sends each change it publishes to the primary, which passes it
 * to every other worker. The message travels the same channel, ahead of any connection the
 * primary hands a worker afterwards, so a token revoked on one worker is refused by its siblings
 * on the very next request — with or without Redis, and while Redis is down.
 */
import cluster, { type Worker } from 'node:cluster';
import type { ChangeBus } from './change-feed.js';

const TYPE = 'flokie:change';
const MAX_MESSAGE_LENGTH = 512;

interface ChangeMessage {
  type: typeof TYPE;
  message: string;
}

function isChangeMessage(value: unknown): value is ChangeMessage {
  const m = value as Partial<ChangeMessage> | null;
  return (
    typeof m === 'object' &&
    m !== null &&
    m.type === TYPE &&
    typeof m.message === 'string' &&
    m.message.length <= MAX_MESSAGE_LENGTH
  );
}

/** The worker's side: publish to the primary, receive what siblings published. */
export class WorkerChangeBus implements ChangeBus {
  private listener: ((value: unknown) => void) | undefined;

  async publish(message: string): Promise<void> {
    // A channel closing during shutdown is not an error worth reporting: the database poll still delivers.
    if (process.connected)
      process.send?.({ type: TYPE, message } satisfies ChangeMessage, undefined, undefined, () => {});
  }

  async subscribe(onMessage: (message: string) => void): Promise<void> {
    this.listener = (value) => {
      if (isChangeMessage(value)) onMessage(value.message);
    };
    process.on('message', this.listener);
  }

  async close(): Promise<void> {
    if (this.listener) process.off('message', this.listener);
  }
}

/** A WorkerChangeBus when this process is a cluster worker, else nothing. */
export function clusterWorkerBus(): WorkerChangeBus | undefined {
  return cluster.isWorker && process.send ? new WorkerChangeBus() : undefined;
}

/** The primary's side: passes each change from `from` to every other worker. */
export function relayChanges(from: Worker, workers: () => Iterable<Worker | undefined>): void {
  from.on('message', (value: unknown) => {
    if (!isChangeMessage(value)) return;
    for (const worker of workers()) {
      if (worker && worker !== from && worker.isConnected()) worker.send(value, undefined, () => {});
    }
  });
}
