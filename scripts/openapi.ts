/**
 * Writes the live OpenAPI document of an in-process app (SQLite in memory, no port) to a file,
 * then, with --lint, runs `redocly lint` on it (rules in redocly.yaml) and fails on any error or
 * warning (Redocly itself fails on errors only). `npm run lint:api`.
 * Usage: tsx scripts/openapi.ts [--out file] [--lint]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config/index.js';

interface LintReport {
  totals: { errors: number; warnings: number };
  problems: { ruleId: string; severity: string; message: string; location: { pointer?: string }[] }[];
}

const args = process.argv.slice(2);
const outIndex = args.indexOf('--out');
const temporary = outIndex < 0;
const out = temporary ? join(mkdtempSync(join(tmpdir(), 'flokie-openapi-')), 'openapi.json') : args[outIndex + 1]!;

const config = loadConfig(
  {
    NODE_ENV: 'test',
    SECRET_KEY: 'openapi-dump-secret-key-0123456789abcdefghijklmnop',
    JWT_SECRET_KEY: 'openapi-dump-jwt-secret-0123456789abcdefghijklmnop',
    DATABASE_URL: 'sqlite::memory:',
    LOG_LEVEL: 'silent',
    ...(process.env.PUBLIC_URL ? { PUBLIC_URL: process.env.PUBLIC_URL } : {}),
  },
  { dotenv: false },
);
const app = await buildApp(config);
await app.ready();
const response = await app.inject({ method: 'GET', url: '/api/openapi.json' });
await app.close();
if (response.statusCode !== 200) {
  console.error(`GET /api/openapi.json answered ${response.statusCode}`);
  process.exit(1);
}
writeFileSync(out, JSON.stringify(JSON.parse(response.body), null, 2) + '\n');
console.log(`OpenAPI document written to ${out}`);
if (args.includes('--lint')) {
  // Telemetry off (also in redocly.yaml): a lint run sends nothing anywhere.
  const env = { ...process.env, REDOCLY_TELEMETRY: 'off' };
  const config = fileURLToPath(new URL('../redocly.yaml', import.meta.url));
  // JSON on stdout (read here), the summary on stderr. Redocly exits 0 on warnings; the contract is
  // 0 errors and 0 warnings (a rule we disagree with is switched off in redocly.yaml, with the reason).
  const result = spawnSync('npx', ['redocly', 'lint', out, '--config', config, '--format', 'json'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (temporary) rmSync(dirname(out), { recursive: true, force: true });
  let report: LintReport;
  try {
    report = JSON.parse(result.stdout) as LintReport;
  } catch {
    console.error(`redocly lint gave no report (exit ${result.status}):\n${result.stdout}`);
    process.exit(1);
  }
  for (const p of report.problems) {
    console.log(`${p.severity} ${p.ruleId} ${p.location[0]?.pointer ?? ''}: ${p.message}`);
  }
  const { errors, warnings } = report.totals;
  console.log(`redocly lint: ${errors} errors, ${warnings} warnings`);
  process.exit(errors + warnings > 0 || result.status !== 0 ? 1 : 0);
}
