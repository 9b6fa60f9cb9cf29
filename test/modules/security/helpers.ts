/** An app whose pino output is captured line by line, for tests that read the logs. */
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../../src/app.js';
import { createContainer, type Container } from '../../../src/container.js';
import { createLogger } from '../../../src/logging.js';
import { makeTestConfig } from '../../helpers/app.js';
import { createTestDatabase, type TestDatabase } from '../../helpers/database.js';
import type { Config } from '../../../src/config/index.js';

export interface CapturedApp {
  app: FastifyInstance;
  container: Container;
  config: Config;
  database: TestDatabase;
  lines: string[];
  close(): Promise<void>;
}

export async function createCapturedApp(overrides: Record<string, string> = {}, options: { fileDatabase?: boolean } = {}): Promise<CapturedApp> {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, callback) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      callback();
    },
  });
  const database = await createTestDatabase({ file: options.fileDatabase });
  const config = makeTestConfig({ LOG_LEVEL: 'trace', ...overrides }, database.url);
  const log = createLogger(config.LOG_LEVEL, stream);
  const container = await createContainer(config, { log });
  const app = await buildApp(config, { container });
  await app.ready();
  return {
    app,
    container,
    config,
    database,
    lines,
    async close() {
      await app.close();
      await container.close();
      await database.drop();
    },
  };
}

export async function eventRows(container: Container, type?: string) {
  await container.intrusion.settle();
  await container.events.flush();
  let q = container.db.selectFrom('security_events').selectAll();
  if (type) q = q.where('type', '=', type);
  return (await q.orderBy('id').execute()).map((r) => ({ ...r, details: r.details ? (JSON.parse(r.details) as Record<string, any>) : null }));
}
