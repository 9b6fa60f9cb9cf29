/**
 * CSRF in a real browser. The victim uses the web app on an allowed origin and logs in in cookie
 * mode; a page on another origin of the same site (another port of localhost, so SameSite=Lax
 * still sends the cookie and only the CSRF token stands in the way) and a page on another site
 * try to refresh the session and change the password with the victim's cookie. All refused; the
 * victim's own refresh, with the token, works.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext } from 'playwright-core';
import { createLoggedApp, type LoggedApp, register, STRONG_PASSWORD } from '../helpers/app.js';
import { browserSkip, launchChromium, serveHtml } from './support.js';

const skip = browserSkip();

describe('CSRF in headless Chromium', { skip }, () => {
  let t: LoggedApp;
  /** What the server answered, by Origin header ('none' for navigations without one): the ground truth. */
  const answered: { origin: string; method: string; url: string; status: number }[] = [];
  let api: string;
  let browser: Browser;
  let context: BrowserContext;
  let frontend: Awaited<ReturnType<typeof serveHtml>>;
  let attacker: Awaited<ReturnType<typeof serveHtml>>;
  const events: { type: string }[] = [];

  before(async () => {
    frontend = await serveHtml('<!doctype html><title>app</title><p>the web app</p>');
    attacker = await serveHtml('<!doctype html><title>cute cats</title><p>nothing to see</p>');
    t = await createLoggedApp(
      { CORS_ORIGINS: `http://localhost:${frontend.port}`, LOG_LEVEL: 'silent' },
      undefined,
      (app) =>
        app.addHook('onResponse', async (request, reply) => {
          answered.push({
            origin: String(request.headers.origin ?? 'none'),
            method: request.method,
            url: request.url,
            status: reply.statusCode,
          });
        }),
    );
    t.container.events.onEvent((e) => events.push(e));
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    api = `http://localhost:${(t.app.server.address() as { port: number }).port}`;
    browser = await launchChromium();
    context = await browser.newContext();
  });
  after(async () => {
    await context?.close();
    await browser?.close();
    await t?.close();
    await frontend?.close();
    await attacker?.close();
  });

  it('a foreign page cannot refresh the session or change the password with the victim’s cookie', async () => {
    const user = await register(t.app);
    const victim = await context.newPage();
    await victim.goto(`http://localhost:${frontend.port}/`);

    const login = await victim.evaluate(
      async ({ api, username, password }) => {
        const res = await fetch(`${api}/api/auth/login`, {
          method: 'POST',
          credentials: 'include',
          headers: { 'content-type': 'application/json', 'x-auth-mode': 'cookie' },
          body: JSON.stringify({ username, password }),
        });
        const body = (await res.json()) as { data: Record<string, unknown> };
        return {
          status: res.status,
          hasRefreshInBody: 'refresh_token' in body.data,
          access: body.data.access_token as string,
        };
      },
      { api, username: user.username, password: STRONG_PASSWORD },
    );
    assert.equal(login.status, 200);
    assert.equal(login.hasRefreshInBody, false);
    const cookies = await context.cookies();
    const refresh = cookies.find((c) => c.name === 'flokie_refresh');
    assert.ok(refresh, 'the browser kept the refresh cookie');
    assert.equal(refresh.httpOnly, true);
    assert.equal(refresh.secure, true);
    assert.equal(refresh.sameSite, 'Lax');

    // Same-site attacker (cookie is sent): a bodiless no-cors POST, a form POST, a CORS request with a guessed token.
    const evil = await context.newPage();
    const evilOrigin = `http://localhost:${attacker.port}`;
    await evil.goto(`http://localhost:${attacker.port}/`);
    const attempts = await evil.evaluate(async (api) => {
      const out: Record<string, string> = {};
      // Cross-Origin-Resource-Policy: same-origin makes these opaque answers fail in the page; the requests
      // still reach the server.
      // (No named helper functions in here: the test transpiler would decorate them with a __name the page lacks.)
      out.noCorsRefresh = await fetch(`${api}/api/auth/refresh`, {
        method: 'POST',
        mode: 'no-cors',
        credentials: 'include',
      }).then(
        () => 'answered',
        (error: Error) => `failed: ${error.name}`,
      );
      out.noCorsPassword = await fetch(`${api}/api/auth/password/change`, {
        method: 'POST',
        mode: 'no-cors',
        credentials: 'include',
        body: JSON.stringify({
          current_password: 'x',
          new_password: 'Pwned-Password-123456',
          confirm_password: 'Pwned-Password-123456',
        }),
      }).then(
        () => 'answered',
        (error: Error) => `failed: ${error.name}`,
      );
      try {
        const res = await fetch(`${api}/api/auth/refresh`, {
          method: 'POST',
          credentials: 'include',
          headers: { 'x-csrf-token': 'guess' },
        });
        out.cors = `read ${res.status}`;
      } catch (error) {
        out.cors = `blocked: ${(error as Error).name}`;
      }
      try {
        const res = await fetch(`${api}/api/auth/csrf-token`, { credentials: 'include' });
        out.steal = `read ${res.status}`;
      } catch (error) {
        out.steal = `blocked: ${(error as Error).name}`;
      }
      return out;
    }, api);
    assert.equal(attempts.cors, 'blocked: TypeError', 'the preflight for a foreign origin fails');
    assert.equal(attempts.steal, 'blocked: TypeError', 'a foreign page cannot read a CSRF token');

    // A classic auto-submitting form (top-level navigation) against the refresh endpoint.
    await evil.setContent(`<form id="f" method="POST" action="${api}/api/auth/refresh"></form>`);
    await Promise.all([
      evil.waitForNavigation(),
      evil.locator('#f').evaluate((form) => (form as unknown as { submit(): void }).submit()),
    ]);

    const evilHits = answered.filter((a) => a.origin === evilOrigin || a.origin === 'null');
    // The no-cors refresh carried the cookie and no token: refused by the CSRF check. The no-cors
    // password change (text/plain body) and the form (urlencoded body) never got past the body
    // check. The request with a guessed X-CSRF-Token needed a preflight, which was refused, so it
    // was never sent. The token request was answered, but without CORS headers the page could not read it.
    assert.deepEqual(evilHits.map((a) => `${a.method} ${a.url} ${a.status}`).sort(), [
      'GET /api/auth/csrf-token 200',
      'OPTIONS /api/auth/refresh 404',
      'POST /api/auth/password/change 415',
      'POST /api/auth/refresh 403',
      'POST /api/auth/refresh 415',
    ]);
    assert.ok(events.some((e) => e.type === 'csrf_failure'));
    assert.equal(events.filter((e) => e.type === 'token_refreshed').length, 0, 'no refresh happened');
    assert.ok(events.every((e) => e.type !== 'password_changed'));

    // Cross-site attacker (127.0.0.1 is another site): SameSite=Lax keeps the cookie home.
    const crossSite = await context.newPage();
    await crossSite.goto(`http://127.0.0.1:${attacker.port}/`);
    await crossSite.evaluate(async (api) => {
      await fetch(`${api}/api/auth/refresh`, { method: 'POST', mode: 'no-cors', credentials: 'include' }).catch(
        () => undefined,
      );
    }, api);
    const crossHits = answered.filter((a) => a.origin === `http://127.0.0.1:${attacker.port}`);
    assert.deepEqual(
      crossHits.map((a) => `${a.method} ${a.url} ${a.status}`),
      ['POST /api/auth/refresh 401'],
      'no cookie sent cross-site',
    );

    // The victim's own app: fetch a token, refresh with it — works, with the same cookie the attacker could not use.
    const legit = await victim.evaluate(async (api) => {
      const tokenRes = await fetch(`${api}/api/auth/csrf-token`, { credentials: 'include' });
      const token = ((await tokenRes.json()) as { data: { csrf_token: string } }).data.csrf_token;
      const res = await fetch(`${api}/api/auth/refresh`, {
        method: 'POST',
        credentials: 'include',
        headers: { 'x-csrf-token': token },
      });
      return { status: res.status, body: (await res.json()) as { data: Record<string, unknown> } };
    }, api);
    assert.equal(legit.status, 200, JSON.stringify(legit.body));
    assert.equal(legit.body.data.refresh_token, undefined);
    assert.ok(legit.body.data.access_token);

    // And the password was never changed.
    const relogin = await t.app.inject({
      method: 'POST',
      url: '/api/auth/login',
      payload: { username: user.username, password: STRONG_PASSWORD },
    });
    assert.equal(relogin.statusCode, 200);
  });
});
