/**
 * DATABASE_URL's sslmode and DATABASE_SSL_CA_FILE against a real TLS PostgreSQL: a throwaway
 * server (initdb from this machine's PostgreSQL packages, run as the postgres user on a free
 * loopback port) with a certificate from deploy/make-certs.sh, whose pg_hba.conf accepts only
 * TLS connections. `require` encrypts, `verify-full` with the right CA connects and with a wrong
 * CA (or none) is refused, plain text is refused, and the service itself started with
 * `sslmode=verify-full` talks to the database over TLS only. Needs root (to act as postgres).
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import pg from 'pg';
import { openDatabase } from '../../src/db/index.js';
import { freePort, request, ROOT, startServer } from '../helpers/server.js';

const versions = existsSync('/usr/lib/postgresql') ? readdirSync('/usr/lib/postgresql').sort() : [];
const bin = versions.length ? `/usr/lib/postgresql/${versions.at(-1)}/bin` : '';
const postgresUser = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
const usable = process.getuid?.() === 0 && bin !== '' && postgresUser.status === 0;

describe(
  'PostgreSQL over TLS (sslmode, DATABASE_SSL_CA_FILE)',
  { timeout: 240_000, skip: !usable && 'needs root and the PostgreSQL server binaries' },
  () => {
    let dir: string;
    let port: number;
    let base: string;
    const uid = Number(postgresUser.stdout.trim());
    const asPostgres = (command: string, args: string[]) =>
      spawnSync('runuser', ['-u', 'postgres', '--', join(bin, command), ...args], { encoding: 'utf8' });

    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'flokie-pgtls-'));
      chmodSync(dir, 0o755);
      for (const [folder, host] of [
        ['certs', 'localhost'],
        ['other', 'localhost'],
      ]) {
        const made = spawnSync('sh', [join(ROOT, 'deploy/make-certs.sh'), join(dir, folder!), host!], {
          encoding: 'utf8',
        });
        assert.equal(made.status, 0, made.stderr);
      }
      for (const file of ['postgres.key', 'postgres.crt']) chownSync(join(dir, 'certs', file), uid, 0);
      mkdirSync(join(dir, 'data'));
      mkdirSync(join(dir, 'socket'));
      chownSync(join(dir, 'data'), uid, 0);
      chownSync(join(dir, 'socket'), uid, 0);
      const init = asPostgres('initdb', ['-D', join(dir, 'data'), '-U', 'postgres', '-A', 'trust', '--no-sync']);
      assert.equal(init.status, 0, init.stderr);
      // Only TLS connections are let in: a client that does not encrypt is refused by the server.
      writeFileSync(
        join(dir, 'data', 'pg_hba.conf'),
        'local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n',
      );
      port = await freePort();
      const options =
        `-p ${port} -k ${join(dir, 'socket')} -c listen_addresses=127.0.0.1 -c ssl=on ` +
        `-c ssl_cert_file=${join(dir, 'certs', 'postgres.crt')} ` +
        `-c ssl_key_file=${join(dir, 'certs', 'postgres.key')} -c fsync=off`;
      const start = asPostgres('pg_ctl', [
        '-D',
        join(dir, 'data'),
        '-o',
        options,
        '-l',
        join(dir, 'socket', 'postgres.log'),
        '-w',
        '-t',
        '60',
        'start',
      ]);
      assert.equal(start.status, 0, start.stderr + start.stdout);
      base = `postgresql://postgres@localhost:${port}/postgres`;
    });

    after(() => {
      if (dir) {
        asPostgres('pg_ctl', ['-D', join(dir, 'data'), '-m', 'immediate', 'stop']);
        rmSync(dir, { recursive: true, force: true });
      }
    });

    /** Connects through openDatabase (the app's own code) and reports whether the session is encrypted. */
    async function encrypted(query: string, caFile?: string): Promise<boolean> {
      const handle = openDatabase({ url: `${base}${query}`, poolSize: 1, sslCaFile: caFile });
      try {
        const { rows } = await sql<{ ssl: boolean }>`select ssl from pg_stat_ssl where pid = pg_backend_pid()`.execute(
          handle.db,
        );
        return rows[0]!.ssl;
      } finally {
        await handle.close();
      }
    }

    it('sslmode=require encrypts', async () => {
      assert.equal(await encrypted('?sslmode=require'), true);
    });

    it('sslmode=verify-full connects with the CA that signed the server certificate', async () => {
      assert.equal(await encrypted('?sslmode=verify-full', join(dir, 'certs', 'ca.pem')), true);
      assert.equal(
        await encrypted('?sslmode=require', join(dir, 'certs', 'ca.pem')),
        true,
        'require with a CA verifies too',
      );
    });

    it('sslmode=verify-full refuses a server not signed by its CA, and uses the system CAs without one', async () => {
      await assert.rejects(
        encrypted('?sslmode=verify-full', join(dir, 'other', 'ca.pem')),
        /self[- ]signed|unable to verify|certificate/i,
      );
      await assert.rejects(encrypted('?sslmode=verify-full'), /self[- ]signed|unable to verify|certificate/i);
      await assert.rejects(
        encrypted('?sslmode=require', join(dir, 'other', 'ca.pem')),
        /self[- ]signed|unable to verify|certificate/i,
      );
    });

    it('no sslmode or sslmode=disable sends plain text, which this server refuses', async () => {
      for (const query of ['', '?sslmode=disable']) {
        await assert.rejects(encrypted(query), /no encryption|pg_hba\.conf rejects/i, query || '(no sslmode)');
      }
    });

    it('the service started with sslmode=verify-full uses TLS for every connection', async () => {
      const admin = new pg.Client({ connectionString: base, ssl: { rejectUnauthorized: false } });
      await admin.connect();
      await admin.query('CREATE DATABASE flokie_tls');
      const server = await startServer({
        DATABASE_URL: `postgresql://postgres@localhost:${port}/flokie_tls?sslmode=verify-full`,
        DATABASE_SSL_CA_FILE: join(dir, 'certs', 'ca.pem'),
      });
      try {
        const health = await request('GET', `${server.url}/api/health`);
        assert.equal(health.body.database.status, 'connected');
        const register = await request('POST', `${server.url}/api/auth/register`, {
          body: { username: 'tls_user', email: 'tls@example.com', password: 'Velvet-Orbit-Harbor-42' },
        });
        assert.equal(register.status, 201, register.text);
        const { rows } = await admin.query(
          'SELECT s.ssl, s.version FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) ' +
            "WHERE a.datname = 'flokie_tls'",
        );
        assert.ok(rows.length >= 1, 'the service has connections open');
        assert.ok(
          rows.every((r) => r.ssl === true && /^TLSv1\.[23]$/.test(r.version)),
          JSON.stringify(rows),
        );
      } finally {
        assert.equal(await server.stop(), 0);
        await admin.end();
      }
    });
  },
);
