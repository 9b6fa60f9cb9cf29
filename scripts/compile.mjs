#!/usr/bin/env node
// Transpiles src/**/*.ts to dist/ with esbuild, the transform tsx applies when it runs the sources
// (no type check: `npm run typecheck` does that; `npm run build` is the type-checked tsc build the
// Docker image uses). It lets `npx flokie` start from compiled code (bin/flokie.js), about 0.3 s
// instead of over 1 s through tsx. npm runs it after `npm ci` / `npm install` (the "prepare"
// script); after editing src/, `npm run compile` refreshes it (until then bin/flokie.js sees that
// dist/ is older than src/ and runs the sources).
//
// Never fails an install: without src/ (the Docker build's first `npm ci`) or esbuild, it says so
// and exits 0. Usage: node scripts/compile.mjs [--outdir DIR]
import { existsSync, readdirSync, utimesSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const src = join(root, 'src');
const outIndex = process.argv.indexOf('--outdir');
const outdir = outIndex > 0 ? process.argv[outIndex + 1] : join(root, 'dist');

if (!existsSync(src)) {
  console.log('compile: no src/ here yet, nothing to compile');
  process.exit(0);
}
let esbuild;
try {
  esbuild = await import('esbuild');
} catch {
  console.log('compile: esbuild is not installed; `npx flokie` will run the sources through tsx');
  process.exit(0);
}

const entryPoints = [];
(function collect(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) collect(path);
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) entryPoints.push(path);
  }
})(src);

const started = performance.now();
await esbuild.build({
  entryPoints,
  outdir,
  outbase: src,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  bundle: false,
  logLevel: 'warning',
});
// bin/flokie.js compares this file's time with the newest source: mark the whole build as now.
const marker = join(outdir, 'cli', 'index.js');
const now = new Date();
utimesSync(marker, now, now);
console.log(
  `compile: ${entryPoints.length} files to ${relative(process.cwd(), outdir) || '.'} in ` +
    `${Math.round(performance.now() - started)} ms`,
);
