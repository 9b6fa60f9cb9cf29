/**
 * Writes the live OpenAPI document of an in-process app (SQLite in memory, no port) to a file,
 * then, with --lint, runs `redocly lint` on it (rules in redocly.yaml). `npm run lint:api`.
 * Usage: tsx scripts/openapi.ts [--out file] [--lint]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config/index.js';

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
  const result = spawnSync('npx', ['redocly', 'lint', out], { stdio: 'inherit', env });
  if (temporary) rmSync(dirname(out), { recursive: true, force: true });
  process.exit(result.status ?? 1);
}
