/**
 * Which SQL do the admin list/search requests run, and does SQLite answer them from an index?
 * Builds the real app in this process on the given SQLite file, records every statement the
 * requests prepare (by wrapping better-sqlite3's prepare, in this process only), then asks
 * SQLite for EXPLAIN QUERY PLAN of each statement that reads the users table, with the same
 * parameters. A plan is "indexed" when every step on the users table is a SEARCH: any SCAN is a
 * full table read or a full index walk, both of which grow with the table.
 */
import SQLite from 'better-sqlite3';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config/index.js';

export interface PlanReport {
  request: string;
  status: number;
  indexed: boolean;
  queries: { sql: string; plan: string[] }[];
}

interface Captured {
  sql: string;
  params: unknown[];
}

export async function explainAdminQueries(
  file: string,
  secrets: { SECRET_KEY: string; JWT_SECRET_KEY: string },
  adminToken: string,
  term: string,
): Promise<PlanReport[]> {
  const captured: Captured[] = [];
  let recording = false;
  const proto = SQLite.prototype as unknown as {
    prepare: (source: string) => Record<string, (...params: unknown[]) => unknown>;
  };
  const originalPrepare = proto.prepare;
  proto.prepare = function (this: unknown, source: string) {
    const statement = originalPrepare.call(this, source);
    for (const method of ['all', 'get', 'iterate'] as const) {
      const original = statement[method]!;
      statement[method] = (...params: unknown[]) => {
        if (recording) captured.push({ sql: source, params });
        return original.apply(statement, params);
      };
    }
    return statement;
  };

  const reports: PlanReport[] = [];
  const config = loadConfig(
    {
      NODE_ENV: 'production',
      DATABASE_URL: `sqlite:${file}`,
      LOG_LEVEL: 'silent',
      ...secrets,
      RATE_LIMITS: JSON.stringify({ default: '100000000 per minute' }),
    },
    { dotenv: false },
  );
  const app = await buildApp(config);
  const reader = new SQLite(file, { readonly: true });
  try {
    await app.ready();
    for (const url of [`/api/users?search=${term}`, `/api/users/search?q=${term}`]) {
      captured.length = 0;
      recording = true;
      const res = await app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${adminToken}` } });
      recording = false;
      if (res.statusCode === 404) continue;
      const queries = captured
        .filter((q) => /\bfrom\s+"?users"?/i.test(q.sql))
        .map((q) => ({
          sql: q.sql,
          plan: (
            reader.prepare(`EXPLAIN QUERY PLAN ${q.sql}`).all(...(q.params as never[])) as { detail: string }[]
          ).map((r) => r.detail),
        }));
      const scansUsers = queries.some((q) => q.plan.some((step) => /^SCAN (users|"users")\b/.test(step)));
      reports.push({
        request: `GET ${url}`,
        status: res.statusCode,
        indexed: queries.length > 0 && !scansUsers,
        queries,
      });
    }
  } finally {
    proto.prepare = originalPrepare;
    reader.close();
    await app.close();
  }
  return reports;
}
