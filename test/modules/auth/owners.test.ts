/**
 * Owner boundaries of the auth and users modules (docs: README "one owner per rule"): each table
 * or rule below is spelled in its owner's file only, and the services know nothing about HTTP.
 * A plain text scan of src/, so a new file that breaks a boundary fails here, not in review.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sourceFiles } from '../../helpers/source.js';

const files = sourceFiles();

/** Files that name every table by design: the schema, its types, backups and the retention table of contents. */
const SCHEMA_FILES = ['src/db/migrations/', 'src/db/types.ts', 'src/modules/backup/backup.ts'];
const isSchemaFile = (path: string) => SCHEMA_FILES.some((prefix) => path.startsWith(prefix));

function filesMatching(pattern: RegExp): string[] {
  return files.filter((f) => !isSchemaFile(f.path) && pattern.test(f.text)).map((f) => f.path);
}

describe('owners of the auth and users rules', () => {
  it('only the lockout reads or writes the login counters', () => {
    const queries = /(selectFrom|insertInto|updateTable|deleteFrom)\(\s*'login_(attempts|reservations)'/;
    assert.deepEqual(filesMatching(queries), ['src/modules/auth/lockout.ts']);
  });

  it('only the revocation module reads or writes the revoked-token list', () => {
    const queries = /(selectFrom|insertInto|updateTable|deleteFrom|leftJoin|innerJoin)\(\s*'revoked_tokens'/;
    assert.deepEqual(filesMatching(queries), ['src/modules/auth/revocation.ts']);
  });

  it('only the users service (and its repository) writes user rows and password history', () => {
    const writes = /(insertInto|updateTable|deleteFrom)\(\s*'(users|password_history)'/;
    // Retention deletes accounts deactivated long ago; nothing caches them any more.
    const writers = filesMatching(writes).filter((path) => path !== 'src/modules/retention/retention.ts');
    assert.deepEqual(writers.sort(), ['src/modules/users/user-repository.ts', 'src/modules/users/users-service.ts']);
    const publishers = files.filter((f) => /publish\(\s*'user'/.test(f.text)).map((f) => f.path);
    // sessions.ts publishes the user whose sessions it ends (the token guard drops them by user).
    assert.deepEqual(publishers.sort(), ['src/modules/auth/sessions.ts', 'src/modules/users/users-service.ts']);
  });

  it('no service of the auth and users modules knows about HTTP', () => {
    const services = files.filter((f) => /^src\/modules\/(auth|users)\//.test(f.path) && !f.path.endsWith('routes.ts'));
    // The HTTP edge's own modules read requests; plain helpers of src/http/ (fields.ts) are fine.
    const httpEdge =
      /from '(fastify|@fastify\/[^']+)'|http\/(request-context|bearer-token|device-credential|errors)\.js'/;
    const offenders = services.filter((f) => httpEdge.test(f.text)).map((f) => f.path);
    assert.deepEqual(offenders, []);
  });

  it('the core imports nothing from the HTTP edge or a framework', () => {
    const core = files.filter((f) => f.path.startsWith('src/core/'));
    assert.ok(core.length > 0);
    const outward = /from '(fastify|@fastify\/[^']+)'|from '\.\.\/http\//;
    assert.deepEqual(
      core.filter((f) => outward.test(f.text)).map((f) => f.path),
      [],
    );
  });
});
