/**
 * The least-privilege SQL of docs/deployment.md (deploy/postgres/roles.sql, quoted verbatim in
 * the guide) run for real against this machine's PostgreSQL: in a fresh database, the roles are
 * created with psql, migrations run as the migration role, the service runs its flows as the
 * limited role with AUTO_MIGRATE=false, and the limited role is shown unable to change the schema.
 * Role names get a random suffix here, because roles are shared by the whole PostgreSQL server.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { createPgDatabase, PG_BASE } from './servers.js';
import { request, ROOT, startServer, type ServerProcess } from '../helpers/server.js';

const PASSWORD = 'Velvet-Orbit-Harbor-42';
const suffix = randomBytes(4).toString('hex');
const APP = `flokie_app_${suffix}`;
const MIGRATOR = `flokie_migrator_${suffix}`;

const rolesSql = readFileSync(join(ROOT, 'deploy/postgres/roles.sql'), 'utf8');
const withRole = (url: string, role: string) => {
  const u = new URL(url);
  u.username = role;
  u.password = 'unused-with-trust-auth';
  return u.toString();
};

describe('least-privilege PostgreSQL roles (docs/deployment.md)', { timeout: 240_000 }, () => {
  let database: Awaited<ReturnType<typeof createPgDatabase>>;
  let server: ServerProcess | undefined;
  let asApp: pg.Client;

  before(async () => {
    database = await createPgDatabase();
  });

  after(async () => {
    await server?.stop();
    await asApp?.end().catch(() => {});
    await database?.drop();
    const admin = new pg.Client({ connectionString: PG_BASE });
    await admin.connect();
    await admin.query(`DROP ROLE IF EXISTS ${APP}`);
    await admin.query(`DROP ROLE IF EXISTS ${MIGRATOR}`);
    await admin.end();
  });

  it('the guide quotes deploy/postgres/roles.sql verbatim', () => {
    const docs = readFileSync(join(ROOT, 'docs/deployment.md'), 'utf8');
    assert.ok(docs.includes(rolesSql.trim()), 'docs/deployment.md contains the SQL of deploy/postgres/roles.sql');
  });

  it('creates both roles with psql as written', () => {
    const sql = rolesSql.replaceAll('flokie_migrator', MIGRATOR).replaceAll('flokie_app', APP);
    const run = spawnSync(
      'psql',
      [
        '-X',
        '-q',
        '-v',
        'ON_ERROR_STOP=1',
        '-v',
        'app_password=app-pw-1',
        '-v',
        'migrator_password=migrator-pw-1',
        '-d',
        database.url,
        '-f',
        '-',
      ],
      { input: sql, encoding: 'utf8' },
    );
    assert.equal(run.status, 0, run.stderr);
  });

  it('migrations run as the migration role, which owns every table', () => {
    const run = spawnSync(
      process.execPath,
      ['--import', import.meta.resolve('tsx'), join(ROOT, 'src/cli/index.ts'), 'migrate', 'up'],
      {
        cwd: ROOT,
        encoding: 'utf8',
        env: {
          PATH: process.env.PATH ?? '',
          NODE_ENV: 'test',
          DATABASE_URL: withRole(database.url, MIGRATOR),
          SECRET_KEY: 'x'.repeat(40) + 'abcdefghij',
          JWT_SECRET_KEY: 'y'.repeat(40) + 'abcdefghij',
        },
      },
    );
    assert.equal(run.status, 0, run.stderr + run.stdout);
    assert.match(run.stdout, /applied 001_initial/);
  });

  it('the service runs its flows as the limited role with AUTO_MIGRATE=false', async () => {
    server = await startServer({
      DATABASE_URL: withRole(database.url, APP),
      AUTO_MIGRATE: 'false',
      DATABASE_POOL_SIZE: '3',
      RATE_LIMIT_ENABLED: 'false',
    });
    const username = `least_${suffix}`;
    const reg = await request('POST', `${server.url}/api/auth/register`, {
      body: { username, email: `${username}@example.com`, password: PASSWORD },
    });
    assert.equal(reg.status, 201, reg.text);
    const login = await request('POST', `${server.url}/api/auth/login`, { body: { username, password: PASSWORD } });
    assert.equal(login.status, 200, login.text);
    const { access_token: access, refresh_token: refresh } = login.body.data;
    assert.equal((await request('GET', `${server.url}/api/auth/me`, { token: access })).status, 200);
    const profile = await request('PUT', `${server.url}/api/users/profile`, {
      token: access,
      body: { bio: 'least privilege' },
    });
    assert.equal(profile.status, 200, profile.text);
    const bad = await request('POST', `${server.url}/api/auth/login`, {
      body: { username, password: 'Wrong-Password-000' },
    });
    assert.equal(bad.status, 401, 'failed logins are counted (insert/update on login_attempts)');
    const refreshed = await request('POST', `${server.url}/api/auth/refresh`, { body: { refresh_token: refresh } });
    assert.equal(refreshed.status, 200, refreshed.text);
    const fresh = refreshed.body.data.access_token;
    const change = await request('POST', `${server.url}/api/auth/password/change`, {
      token: fresh,
      body: {
        current_password: PASSWORD,
        new_password: 'Quiet-Lantern-Meadow-77',
        confirm_password: 'Quiet-Lantern-Meadow-77',
      },
    });
    assert.equal(change.status, 200, change.text);
    assert.equal(
      (
        await request('POST', `${server.url}/api/auth/password/reset-request`, {
          body: { email: `${username}@example.com` },
        })
      ).status,
      202,
    );
    const again = await request('POST', `${server.url}/api/auth/login`, {
      body: { username, password: 'Quiet-Lantern-Meadow-77' },
    });
    assert.equal(again.status, 200);
    assert.equal(
      (await request('POST', `${server.url}/api/auth/logout`, { token: again.body.data.access_token })).status,
      200,
    );
    assert.equal((await request('GET', `${server.url}/api/health`)).body.database.status, 'connected');
  });

  it('the limited role can neither create, alter, drop nor truncate anything', async () => {
    asApp = new pg.Client({ connectionString: withRole(database.url, APP) });
    await asApp.connect();
    const refused = async (statement: string) => {
      await assert.rejects(asApp.query(statement), (error: { code?: string; message: string }) => {
        assert.equal(error.code, '42501', `${statement}: ${error.message}`);
        return true;
      });
    };
    await refused('CREATE TABLE intruder (id int)');
    await refused('CREATE TEMP TABLE intruder (id int)');
    await refused('CREATE SCHEMA intruder');
    await refused('DROP TABLE users');
    await refused('ALTER TABLE users ADD COLUMN intruder int');
    await refused('TRUNCATE security_events');
    await refused('CREATE INDEX intruder ON users (email)');
    await refused('DROP TABLE flokie_migrations');
    const owners = await asApp.query("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'");
    assert.deepEqual(
      owners.rows.map((r) => r.tableowner),
      [MIGRATOR],
    );
    const rows = await asApp.query('SELECT count(*)::int AS n FROM users');
    assert.equal(rows.rows[0].n, 1, 'while reading and writing rows works');
  });
});
