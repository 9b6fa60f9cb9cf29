/**
 * The layers of docs/architecture.md, held by a scan of src/: the core imports nothing of ours, the
 * services know nothing about HTTP, and the CLI reaches the services without going through routes
 * or plugins. Owner boundaries of single rules are in test/modules/{auth,security}/owners.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sourceFiles } from './helpers/source.js';

const files = sourceFiles().map(({ path, text }) => ({
  path,
  // Static imports and re-exports, and dynamic `import('…')` (the CLI loads modules when a command runs).
  imports: [...text.matchAll(/^(?:import|export)[^;]*? from '([^']+)'|\bimport\('([^']+)'\)/gms)].map(
    (m) => (m[1] ?? m[2])!,
  ),
}));

/** Files of a module that belong to the HTTP edge: routes and the schemas of their answers. */
const isEdgeFile = (path: string) => /(^|\/|-)routes\.ts$|\/schemas\.ts$|-view\.ts$/.test(path);

function offenders(inScope: (path: string) => boolean, forbidden: RegExp): string[] {
  return files
    .filter((f) => inScope(f.path))
    .flatMap((f) => f.imports.filter((i) => forbidden.test(i)).map((i) => `${f.path} imports ${i}`));
}

describe('layers (docs/architecture.md)', () => {
  it('finds the source files it scans', () => {
    assert.ok(files.length > 50);
    assert.ok(files.some((f) => f.path === 'src/modules/auth/auth-service.ts'));
  });

  it('src/core imports nothing of ours and no framework', () => {
    assert.deepEqual(
      offenders((p) => p.startsWith('src/core/'), /^\.\.?\/|^@?fastify/),
      [],
    );
  });

  it('services (every module file but routes and their schemas) import no framework, HTTP edge or plugin', () => {
    const service = (p: string) => p.startsWith('src/modules/') && !isEdgeFile(p);
    assert.deepEqual(offenders(service, /^@?fastify|\/http\/|\/plugins\//), []);
  });

  it('the CLI uses services, never routes or plugins', () => {
    assert.deepEqual(
      offenders((p) => p.startsWith('src/cli/'), /routes(\.js)?$|\/plugins\//),
      [],
    );
  });

  it('a route module shares nothing with another: shared answer shapes live in src/http', () => {
    assert.deepEqual(offenders(isEdgeFile, /routes\.js$/), []);
  });

  it('nothing outside the HTTP app imports a route module', () => {
    const outside = (p: string) => !isEdgeFile(p) && p !== 'src/app.ts' && !p.startsWith('src/plugins/');
    assert.deepEqual(offenders(outside, /routes\.js$/), []);
  });
});
