/**
 * The service's version, read once from its own package.json (found by walking up from this
 * file, so it works from src/, dist/ and the Docker image alike). Not npm_package_version: that is
 * set only under `npm run`, so `node`, `npx flokie` and the test runner would report another
 * version than `npm start`, and the generated client would look stale after a version bump.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function readVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const file = join(dir, 'package.json');
    // eslint-disable-next-line security/detect-non-literal-fs-filename -- an ancestor of this file
    if (existsSync(file)) {
      // eslint-disable-next-line security/detect-non-literal-fs-filename -- an ancestor of this file
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === 'flokie' && typeof pkg.version === 'string') return pkg.version;
    }
    const parent = dirname(dir);
    if (parent === dir) return '0.0.0';
    dir = parent;
  }
}

export const VERSION = readVersion();
