/**
 * Durability: a real server process is killed with SIGKILL in the middle of a burst of
 * registrations and password changes. After a restart on the same database, every write the
 * server acknowledged (2xx) is there — the user exists and logs in, the new password works and the
 * old one does not — and the database passes its integrity check (SQLite: PRAGMA integrity_check;
 * PostgreSQL: every table readable and no duplicate of a unique key). PostgreSQL runs when it is
 * reachable, otherwise that case is skipped with a message.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import SQLite from 'better-sqlite3';
import pg from 'pg';
import { OTHER_STRONG_PASSWORD, STRONG_PASSWORD, uniqueUser } from '../helpers/app.js';
import { startServer } from '../helpers/server.js';
import { ATTACK_SERVER, freshDatabase, http, postgresReachable } from './support.js';

const REGISTRATIONS = 120;
const CHANGERS = 30;

for (const engine of ['sqlite', 'postgres'] as const) {
  describe(`durability under kill -9 on ${engine}`, () => {
    it('every acknowledged registration and password change survives, and the database is intact', async (t) => {
      if (engine === 'postgres' && !(await postgresReachable())) return t.skip('PostgreSQL is not reachable');
      const dir = mkdtempSync(join(tmpdir(), 'flokie-durability-'));
      const database =
        engine === 'postgres'
          ? await freshDatabase('postgres')
          : { url: `sqlite:${join(dir, 'flokie.db')}`, drop: async () => {} };
      const env = {
        DATABASE_URL: database.url,
        RATE_LIMIT_ENABLED: 'false',
        BRUTE_FORCE_BLOCK_MINUTES: '0',
        LOG_LEVEL: 'info',
      };
      let server = await startServer(env, ATTACK_SERVER);
      try {
        // Accounts whose password will change during the burst.
        const changers: Array<{ username: string; access: string }> = [];
        for (let i = 0; i < CHANGERS; i++) {
          const u = uniqueUser('durable');
          assert.equal((await http(server.url, 'POST', '/api/auth/register', { body: u })).statusCode, 201);
          const login = await http(server.url, 'POST', '/api/auth/login', {
            body: { username: u.username, password: STRONG_PASSWORD },
          });
          changers.push({ username: u.username, access: JSON.parse(login.body).data.access_token });
        }

        const ackedUsers: string[] = [];
        const ackedChanges: string[] = [];
        let failed = 0;
        const url = server.url;
        const registrations = Array.from({ length: REGISTRATIONS }, () => uniqueUser('burst'));
        const jobs: Array<() => Promise<void>> = [
          ...registrations.map((u) => async () => {
            const res = await http(url, 'POST', '/api/auth/register', { body: u });
            if (res.statusCode === 201) ackedUsers.push(u.username);
          }),
          ...changers.map((c) => async () => {
            const res = await http(url, 'POST', '/api/auth/password/change', {
              body: {
                current_password: STRONG_PASSWORD,
                new_password: OTHER_STRONG_PASSWORD,
                confirm_password: OTHER_STRONG_PASSWORD,
              },
              headers: { authorization: `Bearer ${c.access}` },
            });
            if (res.statusCode === 200) ackedChanges.push(c.username);
          }),
        ].sort(() => Math.random() - 0.5);

        const burst = Promise.all(jobs.map((job) => job().catch(() => void failed++)));
        // Kill once a good part of the burst is acknowledged, with the rest still in flight.
        const target = Math.floor((REGISTRATIONS + CHANGERS) / 3);
        const deadline = Date.now() + 60_000;
        while ((ackedUsers.length + ackedChanges.length < target || ackedChanges.length === 0) && Date.now() < deadline)
          await new Promise((r) => setTimeout(r, 5));
        const ackedAtKill = ackedUsers.length + ackedChanges.length;
        await server.stop('SIGKILL');
        await burst;
        // Only what was acknowledged before the kill counts (an answer cannot arrive after it).
        t.diagnostic(
          `${engine}: killed with ${ackedAtKill} writes acknowledged (${ackedUsers.length} registrations, ` +
            `${ackedChanges.length} password changes), ${failed} requests cut off`,
        );
        assert.ok(failed > 0, 'the kill happened mid-burst (some requests were cut off)');
        assert.ok(
          ackedUsers.length > 0 && ackedChanges.length > 0 && ackedUsers.length + ackedChanges.length >= target,
          'enough writes of both kinds were acknowledged to mean something',
        );

        server = await startServer(env, ATTACK_SERVER);
        for (const username of ackedUsers) {
          const res = await http(server.url, 'POST', '/api/auth/login', {
            body: { username, password: STRONG_PASSWORD },
          });
          assert.equal(res.statusCode, 200, `acknowledged registration of ${username} lost: ${res.body.slice(0, 200)}`);
        }
        for (const username of ackedChanges) {
          const res = await http(server.url, 'POST', '/api/auth/login', {
            body: { username, password: OTHER_STRONG_PASSWORD },
          });
          assert.equal(
            res.statusCode,
            200,
            `acknowledged password change of ${username} lost: ${res.body.slice(0, 200)}`,
          );
          const old = await http(server.url, 'POST', '/api/auth/login', {
            body: { username, password: STRONG_PASSWORD },
          });
          assert.equal(old.statusCode, 401, `the old password of ${username} still works`);
        }
        await server.stop();

        if (engine === 'sqlite') {
          const db = new SQLite(database.url.slice('sqlite:'.length), { readonly: true });
          try {
            const result = db.pragma('integrity_check', { simple: true });
            assert.equal(result, 'ok', `PRAGMA integrity_check: ${String(result)}`);
            const fk = db.pragma('foreign_key_check') as unknown[];
            assert.deepEqual(fk, [], 'no dangling foreign keys');
          } finally {
            db.close();
          }
        } else {
          const client = new pg.Client({ connectionString: database.url });
          await client.connect();
          try {
            for (const table of [
              'users',
              'password_history',
              'sessions',
              'login_attempts',
              'revoked_tokens',
              'one_time_tokens',
              'security_events',
              'change_log',
            ]) {
              await client.query(`select count(*) from ${table}`);
            }
            const dup = await client.query(
              'select username_lower, count(*) from users group by username_lower having count(*) > 1',
            );
            assert.equal(dup.rowCount, 0, 'no duplicate usernames');
            const orphan = await client.query(
              'select count(*)::int as n from password_history h left join users u on u.id = h.user_id ' +
                'where u.id is null',
            );
            assert.equal(orphan.rows[0].n, 0, 'no orphaned password history');
          } finally {
            await client.end();
          }
        }
      } finally {
        await server.stop('SIGKILL');
        await database.drop();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}
