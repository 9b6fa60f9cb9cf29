/**
 * Every event of the vocabulary is emitted by the flow that should emit it, as a log line and a
 * security_events row, and no password, token or hash appears in either.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EVENT_TYPES } from '../../../src/modules/security/events.js';
import {
  bearer,
  json,
  login,
  makeAdmin,
  OTHER_STRONG_PASSWORD,
  register,
  registerAndLogin,
  STRONG_PASSWORD,
  uniqueUser,
  waitForLink,
} from '../../helpers/app.js';
import { createCapturedApp, eventRows, type CapturedApp } from './helpers.js';

describe('security events: vocabulary, log lines and rows, no secrets', () => {
  let t: CapturedApp;
  const secrets = new Set<string>([STRONG_PASSWORD, OTHER_STRONG_PASSWORD, 'Wrong-Password-123']);

  before(async () => {
    t = await createCapturedApp({
      NODE_ENV: 'development',
      RATE_LIMIT_ENABLED: 'true',
      RATE_LIMITS: JSON.stringify({
        default: '10000 per hour',
        'auth.login': '1000 per minute',
        'auth.register': '1000 per minute',
        'password.reset': '6 per minute',
      }),
      MAX_LOGIN_ATTEMPTS: '3',
      BRUTE_FORCE_ALERT_THRESHOLD: '4',
      BRUTE_FORCE_BLOCK_MINUTES: '5',
      CREDENTIAL_STUFFING_THRESHOLD: '3',
      DISTRIBUTED_ATTACK_THRESHOLD: '2',
    });
  });
  after(() => t.close());

  it('walks every flow and finds each event type with its context', async () => {
    const { app, container } = t;
    const admin = await registerAndLogin(app, uniqueUser('evadmin'));
    await makeAdmin(app, admin.id);
    [admin.access, admin.refresh].forEach((s) => secrets.add(s));

    const u = await register(app, uniqueUser('ev'));
    const verify = await container.oneTimeTokens.issue(u.id, 'email_verification', 60_000, u.email);
    secrets.add(verify);
    assert.equal(
      (await app.inject({ method: 'POST', url: '/api/auth/verify-email', payload: { token: verify } })).statusCode,
      200,
    );

    const first = await login(app, u.username, STRONG_PASSWORD, { 'user-agent': 'events-test/1.0' });
    secrets.add(first.access).add(first.refresh);
    const refreshed = json(
      await app.inject({ method: 'POST', url: '/api/auth/refresh', payload: { refresh_token: first.refresh } }),
    ).data;
    secrets.add(refreshed.access_token).add(refreshed.refresh_token);
    // The successor is used, so presenting the first token again is theft, not a retry.
    const again = json(
      await app.inject({
        method: 'POST',
        url: '/api/auth/refresh',
        payload: { refresh_token: refreshed.refresh_token },
      }),
    ).data;
    secrets.add(again.access_token).add(again.refresh_token);
    const reuse = await app.inject({
      method: 'POST',
      url: '/api/auth/refresh',
      payload: { refresh_token: first.refresh },
    });
    assert.equal(reuse.statusCode, 401);

    const second = await login(app, u.username);
    secrets.add(second.access).add(second.refresh);
    const changed = await app.inject({
      method: 'POST',
      url: '/api/auth/password/change',
      headers: bearer(second.access),
      payload: {
        current_password: STRONG_PASSWORD,
        new_password: OTHER_STRONG_PASSWORD,
        confirm_password: OTHER_STRONG_PASSWORD,
      },
    });
    assert.equal(changed.statusCode, 200, changed.body);
    const afterChange = json(changed).data;
    secrets.add(afterChange.access_token).add(afterChange.refresh_token);

    assert.equal(
      (await app.inject({ method: 'POST', url: '/api/auth/password/reset-request', payload: { email: u.email } }))
        .statusCode,
      202,
    );
    // The request is handled after the answer; let it finish before issuing our own reset token.
    await waitForLink(container, u.id, 'password_reset');
    const reset = await container.oneTimeTokens.issue(u.id, 'password_reset', 60_000);
    secrets.add(reset);
    const resetRes = await app.inject({
      method: 'POST',
      url: '/api/auth/password/reset',
      payload: { token: reset, new_password: STRONG_PASSWORD + 'x', confirm_password: STRONG_PASSWORD + 'x' },
    });
    assert.equal(resetRes.statusCode, 200, resetRes.body);
    secrets.add(STRONG_PASSWORD + 'x');

    const s1 = await login(app, u.username, STRONG_PASSWORD + 'x');
    const s2 = await login(app, u.username, STRONG_PASSWORD + 'x');
    secrets.add(s1.access).add(s1.refresh).add(s2.access).add(s2.refresh);
    const sessions = json(await app.inject({ method: 'GET', url: '/api/auth/sessions', headers: bearer(s1.access) }))
      .data.sessions;
    const other = sessions.find((s: { current: boolean }) => !s.current);
    assert.equal(
      (await app.inject({ method: 'DELETE', url: `/api/auth/sessions/${other.id}`, headers: bearer(s1.access) }))
        .statusCode,
      200,
    );
    assert.equal(
      (await app.inject({ method: 'POST', url: '/api/auth/logout', headers: bearer(s1.access) })).statusCode,
      200,
    );

    // Lockout, then an admin unlock.
    for (let i = 0; i < 4; i++)
      await app.inject({
        method: 'POST',
        url: '/api/auth/login',
        payload: { username: u.username, password: 'Wrong-Password-123' },
      });
    assert.equal(
      (await app.inject({ method: 'POST', url: `/api/users/${u.id}/unlock`, headers: bearer(admin.access) }))
        .statusCode,
      200,
    );

    // Token revocation and the emergency switch through the admin API.
    const s3 = await login(app, u.username, STRONG_PASSWORD + 'x');
    secrets.add(s3.access).add(s3.refresh);
    assert.equal(
      (
        await app.inject({
          method: 'POST',
          url: '/api/security/tokens/revoke',
          headers: bearer(admin.access),
          payload: { user_id: u.id },
        })
      ).statusCode,
      200,
    );
    assert.equal(
      (
        await app.inject({
          method: 'PUT',
          url: '/api/security/emergency-rate-limit',
          headers: bearer(admin.access),
          payload: { limit: '100000 per minute' },
        })
      ).statusCode,
      200,
    );
    assert.equal(
      (
        await app.inject({
          method: 'PUT',
          url: '/api/security/emergency-rate-limit',
          headers: bearer(admin.access),
          payload: { limit: null },
        })
      ).statusCode,
      200,
    );

    // CSRF: a cookie-mode refresh without the token.
    const cookieLogin = await app.inject({
      method: 'POST',
      url: '/api/auth/login',
      headers: { 'x-auth-mode': 'cookie' },
      payload: { username: u.username, password: STRONG_PASSWORD + 'x' },
    });
    const cookie = String(cookieLogin.headers['set-cookie']).split(';')[0]!;
    secrets.add(cookie.split('=')[1]!);
    secrets.add(json(cookieLogin).data.access_token);
    const csrf = await app.inject({
      method: 'POST',
      url: '/api/auth/refresh',
      headers: { cookie, 'x-auth-mode': 'cookie' },
    });
    assert.equal(csrf.statusCode, 403);

    // A forwarded-for header from an untrusted peer.
    await app.inject({ method: 'GET', url: '/api/health', headers: { 'x-forwarded-for': '6.6.6.6' } });

    // Rate limit: password.reset allows 6 per minute; two were used.
    let limited = 0;
    for (let i = 0; i < 6; i++) {
      const r = await app.inject({
        method: 'POST',
        url: '/api/auth/password/reset-request',
        payload: { email: 'nobody@example.com' },
      });
      if (r.statusCode === 429) limited++;
    }
    assert.ok(limited > 0);

    // Attacks come from other addresses so the block does not hit the rest of the test.
    for (let i = 0; i < 5; i++) {
      await app.inject({
        method: 'POST',
        url: '/api/auth/login',
        remoteAddress: '203.0.113.9',
        payload: { username: `stuffed${i}`, password: `Guess-${i}-Password` },
      });
      secrets.add(`Guess-${i}-Password`);
    }
    for (const ip of ['198.51.100.1', '198.51.100.2', '198.51.100.3']) {
      await app.inject({
        method: 'POST',
        url: '/api/auth/login',
        remoteAddress: ip,
        payload: { username: 'targeted', password: 'Spray-Password-1' },
      });
    }
    secrets.add('Spray-Password-1');
    const blocked = await app.inject({ method: 'GET', url: '/api/auth/me', remoteAddress: '203.0.113.9' });
    assert.equal(blocked.statusCode, 429);
    assert.ok(Number(blocked.headers['retry-after']) > 0);
    assert.equal(
      (await app.inject({ method: 'GET', url: '/api/health', remoteAddress: '203.0.113.9' })).statusCode,
      200,
    );

    // Device credentials: failures with one deny-list it (from an address of its own, below the brute-force threshold).
    const d = await register(app, uniqueUser('evdevice'));
    const dLogin = await app.inject({
      method: 'POST',
      url: '/api/auth/login',
      payload: { username: d.username, password: STRONG_PASSWORD },
    });
    const deviceToken = json(dLogin).data.device_token as string;
    secrets.add(deviceToken).add(json(dLogin).data.access_token).add(json(dLogin).data.refresh_token);
    for (let i = 0; i < 3; i++) {
      await app.inject({
        method: 'POST',
        url: '/api/auth/login',
        remoteAddress: '192.0.2.50',
        headers: { 'x-device-token': deviceToken },
        payload: { username: d.username, password: 'Wrong-Password-123' },
      });
    }
    // An administrator's lock for every device.
    assert.equal(
      (
        await app.inject({
          method: 'POST',
          url: `/api/users/${d.id}/lock`,
          headers: bearer(admin.access),
          payload: { minutes: 5 },
        })
      ).statusCode,
      200,
    );

    // E-mail change: requested, confirmed, and refused when the address was taken meanwhile.
    const changeTo = async (who: { id: string; access: string }, to: string) => {
      assert.equal(
        (
          await app.inject({
            method: 'PUT',
            url: '/api/users/profile',
            headers: bearer(who.access),
            payload: { email: to, current_password: STRONG_PASSWORD },
          })
        ).statusCode,
        202,
      );
      // The link is issued after the answer; replace it with one whose text the test knows.
      await waitForLink(container, who.id, 'email_change');
      const token = await container.oneTimeTokens.issue(who.id, 'email_change', 60_000, to);
      secrets.add(token);
      return token;
    };
    const e1 = await registerAndLogin(app, uniqueUser('evmail'));
    secrets.add(e1.access).add(e1.refresh);
    const e1Token = await changeTo(e1, `evmail-new-${Date.now()}@example.org`);
    assert.equal(
      (await app.inject({ method: 'POST', url: '/api/auth/email/confirm', payload: { token: e1Token } })).statusCode,
      200,
    );
    const e2 = await registerAndLogin(app, uniqueUser('evmail2'));
    secrets.add(e2.access).add(e2.refresh);
    const contested = `evmail-contested-${Date.now()}@example.org`;
    const e2Token = await changeTo(e2, contested);
    await register(app, { ...uniqueUser('evsnatch'), email: contested });
    assert.equal(
      (await app.inject({ method: 'POST', url: '/api/auth/email/confirm', payload: { token: e2Token } })).statusCode,
      409,
    );

    const rows = await eventRows(container);
    const seen = new Set(rows.map((r) => r.type));
    const missing = Object.keys(EVENT_TYPES).filter((type) => !seen.has(type));
    assert.deepEqual(missing, [], `never emitted: ${missing.join(', ')}`);

    const loginOk = rows.find((r) => r.type === 'login_success' && r.user_agent === 'events-test/1.0')!;
    assert.equal(loginOk.user_id, u.id);
    assert.equal(loginOk.endpoint, 'POST /api/auth/login');
    assert.ok(loginOk.request_id && loginOk.ip);
    const brute = rows.filter((r) => r.type === 'brute_force_detected');
    assert.equal(brute.length, 1, 'one alert per window, not one per request');
    assert.equal(brute[0]!.severity, 'critical');
    assert.equal(brute[0]!.ip, '203.0.113.9');
    assert.equal(rows.filter((r) => r.type === 'credential_stuffing_detected').length, 1);
    const distributed = rows.filter((r) => r.type === 'distributed_attack_detected');
    assert.equal(distributed.length, 1);
    // An unknown name: only its keyed hash, never the typed text.
    assert.equal(distributed[0]!.details!.login_hash, container.lockout.names.tag('targeted'));
    assert.equal(distributed[0]!.details!.username, undefined);
    const emergency = rows.filter((r) => r.type === 'emergency_action');
    assert.equal(emergency.length, 2);
    assert.equal(emergency[0]!.user_id, admin.id);

    // The log lines carry the same events with their context.
    const logged = t.lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.security_event);
    const bruteLine = logged.find((l) => l.security_event === 'brute_force_detected')!;
    assert.equal(bruteLine.msg, 'Potential brute force attack');
    assert.equal(bruteLine.level, 60);
    const successLine = logged.find((l) => l.security_event === 'login_success' && l.user_agent === 'events-test/1.0')!;
    for (const key of ['endpoint', 'ip', 'user_agent', 'user_id', 'request_id', 'timestamp'])
      assert.ok(successLine[key], `log line has ${key}`);

    // No secret anywhere: not in a log line, not in an event row.
    const hashes = (await container.db.selectFrom('password_history').select('password_hash').execute()).map(
      (r) => r.password_hash,
    );
    for (const h of hashes) secrets.add(h);
    const logText = t.lines.join('\n');
    const rowText = JSON.stringify(rows);
    assert.ok(t.lines.length > 50);
    for (const secret of secrets) {
      assert.ok(!logText.includes(secret), `a secret leaked into the logs: ${secret.slice(0, 12)}…`);
      assert.ok(!rowText.includes(secret), `a secret leaked into security_events: ${secret.slice(0, 12)}…`);
    }
  });

  it('GET /api/security/events filters and paginates', async () => {
    const { app, container } = t;
    const admin = await registerAndLogin(app, uniqueUser('evq'));
    await makeAdmin(app, admin.id);
    const get = (qs: string) =>
      app.inject({ method: 'GET', url: `/api/security/events${qs}`, headers: bearer(admin.access) });

    const all = json(await get('?per_page=5'));
    assert.equal(all.data.events.length, 5);
    const total = (await eventRows(container)).length;
    assert.ok(all.data.pagination.total >= total - 5);
    assert.equal(all.data.pagination.per_page, 5);
    assert.equal(all.data.pagination.has_next, true);
    assert.equal(all.data.pagination.prev_num, null);
    const times = all.data.events.map((e: { created_at: string }) => Date.parse(e.created_at));
    assert.deepEqual(
      [...times].sort((a, b) => b - a),
      times,
      'newest first',
    );

    const byType = json(await get('?type=brute_force_detected')).data;
    assert.equal(byType.events.length, 1);
    assert.equal(byType.events[0].details.ip_address, '203.0.113.9');
    const byIp = json(await get('?ip=203.0.113.9&per_page=100')).data;
    assert.ok(byIp.events.length >= 5 && byIp.events.every((e: { ip: string }) => e.ip === '203.0.113.9'));
    const byUser = json(await get(`?user_id=${admin.id}`)).data;
    assert.ok(byUser.events.length >= 1 && byUser.events.every((e: { user_id: string }) => e.user_id === admin.id));
    const future = json(await get(`?since=${new Date(Date.now() + 3_600_000).toISOString()}`)).data;
    assert.equal(future.events.length, 0);
    assert.equal(future.pagination.total, 0);
    const past = json(await get(`?until=2000-01-01T00:00:00Z`)).data;
    assert.equal(past.pagination.total, 0);
    const page2 = json(await get('?per_page=5&page=2')).data;
    assert.equal(page2.pagination.page, 2);
    assert.equal(page2.pagination.prev_num, 1);
    assert.notEqual(page2.events[0].id, all.data.events[0].id);

    for (const bad of [
      '?type=nope',
      '?since=yesterday',
      '?per_page=101',
      '?page=0',
      `?since=2030-01-01T00:00:00Z&until=2020-01-01T00:00:00Z`,
      '?password=x',
    ]) {
      const res = await get(bad);
      assert.equal(res.statusCode, 400, bad);
      assert.equal(json(res).error.code, 'VALIDATION_ERROR');
    }
  });

  it('details keys that look secret are dropped from the row and the log line, whoever emits them', async () => {
    const { container } = t;
    const leaked = ['leak-pw-5f1c', 'leak-token-9a2e', 'leak-hash-33b0', 'leak-cookie-77d4'];
    container.events.emit({
      type: 'suspicious_header',
      ip: '192.0.2.55',
      details: {
        new_password: leaked[0],
        refreshToken: leaked[1],
        password_hash: leaked[2],
        Cookie: leaked[3],
        header: 'x-probe',
      },
    });
    const [row] = (await eventRows(container, 'suspicious_header')).filter((r) => r.ip === '192.0.2.55');
    assert.ok(row, 'the event was recorded');
    assert.deepEqual(row.details, {
      new_password: '[redacted]',
      refreshToken: '[redacted]',
      password_hash: '[redacted]',
      Cookie: '[redacted]',
      header: 'x-probe',
    });
    const everything = JSON.stringify(t.lines);
    for (const secret of leaked) assert.ok(!everything.includes(secret), `${secret} reached a log line`);
  });
});
