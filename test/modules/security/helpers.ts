/** An app whose pino output is captured line by line (LOG_LEVEL trace), and the events it stored. */
import type { Container } from '../../../src/container.js';
import { createTestApp, type TestApp } from '../../helpers/app.js';

export interface CapturedApp extends TestApp {
  /** Every log line as written (JSON text). */
  lines: string[];
}

export async function createCapturedApp(
  overrides: Record<string, string> = {},
  options: { fileDatabase?: boolean } = {},
): Promise<CapturedApp> {
  const t = await createTestApp({ LOG_LEVEL: 'trace', ...overrides }, { ...options, captureLogs: true });
  return { ...t, lines: t.logLines };
}

export async function eventRows(container: Container, type?: string) {
  await container.intrusion.settle();
  await container.events.flush();
  let q = container.db.selectFrom('security_events').selectAll();
  if (type) q = q.where('type', '=', type);
  return (await q.orderBy('id').execute()).map((r) => ({
    ...r,
    details: r.details ? (JSON.parse(r.details) as Record<string, unknown>) : null,
  }));
}
