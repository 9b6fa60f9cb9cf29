#!/usr/bin/env node
// Runs node:test over *.test.ts files (Node 20's --test takes no globs).
// Usage: node scripts/run-tests.mjs [dir-or-file ...] [--exclude dir ...]
// Default: everything under test/ except test/attacks and test/integration (they need extra services and run via
// `npm run test:attacks` and .ci/run).
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, normalize } from 'node:path';

const args = process.argv.slice(2);
const roots = [];
const excludes = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--exclude') excludes.push(normalize(args[++i]));
  else roots.push(normalize(args[i]));
}
if (roots.length === 0) {
  roots.push('test');
  excludes.push('test/attacks', 'test/integration');
}

function collect(path, out) {
  if (excludes.some((e) => path === e || path.startsWith(e + '/'))) return;
  if (statSync(path).isDirectory()) {
    for (const name of readdirSync(path).sort()) collect(join(path, name), out);
  } else if (path.endsWith('.test.ts')) {
    out.push(path);
  }
}
const files = [];
for (const root of roots) collect(root, files);
if (files.length === 0) {
  console.error(`no test files under ${roots.join(', ')}`);
  process.exit(1);
}
const result = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', ...files], {
  stdio: 'inherit',
});
process.exit(result.status ?? 1);
