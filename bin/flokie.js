#!/usr/bin/env node
// `npx flokie …` from a checkout. Runs the compiled CLI (dist/cli/index.js, written after `npm ci`
// by scripts/compile.mjs, or by `npm run build`) when it is at least as new as every file under
// src/; otherwise the TypeScript sources through tsx's loader, so an edit is never run stale.
/* eslint-disable security/detect-non-literal-fs-filename -- paths inside this checkout, never from input */
import { existsSync, readdirSync, statSync } from 'node:fs';

const root = new URL('..', import.meta.url);
const compiled = new URL('dist/cli/index.js', root);

/** Newest modification time (ms) of any file under a folder. */
function newest(dir) {
  let latest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = new URL(`${entry.name}${entry.isDirectory() ? '/' : ''}`, dir);
    latest = Math.max(latest, entry.isDirectory() ? newest(path) : statSync(path).mtimeMs);
  }
  return latest;
}

const sources = new URL('src/', root);
if (existsSync(compiled) && (!existsSync(sources) || newest(sources) <= statSync(compiled).mtimeMs)) {
  await import(compiled.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import(new URL('src/cli/index.ts', root).href);
}
