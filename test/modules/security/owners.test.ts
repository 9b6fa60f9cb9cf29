/**
 * The security edge's owner boundaries, held by reading the source: each rule is written in one
 * file, the security module knows nothing about Fastify outside its routes, and the CLI and
 * listeners go through services and structured events rather than route modules and JSON text.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sourceFiles } from '../../helpers/source.js';

const files = sourceFiles();
const filesMatching = (pattern: RegExp) =>
  files
    .filter((f) => pattern.test(f.text))
    .map((f) => f.path)
    .sort();

describe('security edge owners', () => {
  it('only the security service sets the emergency limit and records its event', () => {
    assert.deepEqual(filesMatching(/(?<!function )\bsetEmergencyLimit\(/), [
      'src/modules/security/security-service.ts',
    ]);
    assert.deepEqual(filesMatching(/type: 'emergency_action'/), ['src/modules/security/security-service.ts']);
  });

  it('the open health probes (no limit, plain HTTP under FORCE_HTTPS) are listed in one file alone', () => {
    assert.deepEqual(filesMatching(/'\/api\/health\/readiness'/), ['src/modules/health/open-probes.ts']);
  });

  it('the security module imports Fastify only in its routes', () => {
    const withFastify = filesMatching(/from 'fastify(-plugin)?'/).filter((path) =>
      path.startsWith('src/modules/security/'),
    );
    assert.deepEqual(withFastify, ['src/modules/security/routes.ts']);
  });

  it('the CLI imports no route module and no plugin', () => {
    const cli = files.filter((f) => f.path.startsWith('src/cli/'));
    const offending = cli
      .filter((f) => /['"][^'"]*(\/routes|-routes|\/plugins\/)[^'"]*\.js['"]/.test(f.text))
      .map((f) => f.path);
    assert.deepEqual(offending, []);
  });

  it('event listeners read details as an object, never JSON text they parse back', () => {
    assert.deepEqual(filesMatching(/JSON\.parse\(event\.details/), []);
  });
});
