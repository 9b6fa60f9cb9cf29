/**
 * How DATABASE_URL's sslmode and DATABASE_SSL_CA_FILE map onto the driver's TLS options
 * (postgresSsl in src/db/index.ts), and that DATABASE_POOL_SIZE sizes the pool. libpq's meaning
 * is the contract: `require` encrypts (verifying only when a CA is given), `verify-ca` and
 * `verify-full` always verify, and no mode silently falls back to plain text.
 * test/integration/database-tls.test.ts proves the same against a real TLS PostgreSQL.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { openDatabase, postgresSsl } from '../../src/db/index.js';

const dir = mkdtempSync(join(tmpdir(), 'flokie-ca-'));
const caFile = join(dir, 'ca.pem');
const CA = '-----BEGIN CERTIFICATE-----\nMIIB-test-only\n-----END CERTIFICATE-----\n';
writeFileSync(caFile, CA);
after(() => rmSync(dir, { recursive: true, force: true }));

const ssl = (query: string, ca?: string) => {
  const url = new URL(`postgresql://flokie_app:pw@db.example.internal:5432/flokie${query}`);
  return { ssl: postgresSsl(url, ca), url };
};

describe('postgresSsl', () => {
  it('no sslmode, disable, allow, prefer: no TLS options', () => {
    for (const query of ['', '?sslmode=disable', '?sslmode=allow', '?sslmode=prefer'])
      assert.equal(ssl(query).ssl, false, query);
  });

  it('require: encrypted; the certificate is verified only when a CA file is given (libpq)', () => {
    assert.deepEqual(ssl('?sslmode=require').ssl, { rejectUnauthorized: false });
    assert.deepEqual(ssl('?sslmode=require', caFile).ssl, { rejectUnauthorized: true, ca: CA });
  });

  it('verify-ca and verify-full: always verified, against the CA file when given', () => {
    for (const mode of ['verify-ca', 'verify-full']) {
      assert.deepEqual(ssl(`?sslmode=${mode}`).ssl, { rejectUnauthorized: true }, mode);
      assert.deepEqual(ssl(`?sslmode=${mode}`, caFile).ssl, { rejectUnauthorized: true, ca: CA }, mode);
    }
  });

  it('removes sslmode from the URL so the driver cannot reinterpret it, and keeps everything else', () => {
    const { url } = ssl('?sslmode=verify-full&application_name=flokie');
    assert.equal(url.searchParams.get('sslmode'), null);
    assert.equal(url.searchParams.get('application_name'), 'flokie');
    assert.equal(url.hostname, 'db.example.internal');
  });

  it('refuses an unknown mode and an unreadable CA file instead of connecting in clear text', () => {
    assert.throws(() => ssl('?sslmode=verify_full'), /sslmode "verify_full" is not one of/);
    assert.throws(() => ssl('?sslmode=require', join(dir, 'missing.pem')), /ENOENT/);
  });
});

describe('connection pool', () => {
  it('DATABASE_POOL_SIZE is the pool size for PostgreSQL and MySQL', async () => {
    // Pools connect lazily: nothing is contacted here.
    for (const url of ['postgresql://u@127.0.0.1:1/db', 'mysql://u@127.0.0.1:1/db']) {
      const handle = openDatabase({ url, poolSize: 7 });
      assert.equal(handle.poolStats().size, 7, url);
      await handle.close();
    }
  });
});
