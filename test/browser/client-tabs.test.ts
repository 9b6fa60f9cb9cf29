/**
 * The session wrapper (client/session.ts) in real Chromium: a web app on its own origin, bundled
 * with esbuild, open in two tabs that share the refresh cookie. Their access tokens expire
 * together (the server's clock — node:test's Date mock in this process — moves two hours on);
 * each tab then makes calls at the same moment. One tab refreshes (Web Lock), the other takes its
 * token (BroadcastChannel): one refresh reaches the server, every call succeeds, and the server
 * records no `refresh_token_reuse`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it, mock } from 'node:test';
import { build } from 'esbuild';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { createLoggedApp, type LoggedApp, register, STRONG_PASSWORD } from '../helpers/app.js';
import { browserSkip, launchChromium, serveHtml } from './support.js';

const skip = browserSkip();
const TWO_HOURS = 2 * 3600 * 1000;

async function bundleClient(): Promise<string> {
  const result = await build({
    entryPoints: ['client/index.ts'],
    bundle: true,
    format: 'iife',
    globalName: 'Flokie',
    platform: 'browser',
    target: 'chrome120',
    write: false,
  });
  const code = result.outputFiles[0]!.text;
  assert.ok(!code.includes('</script'), 'the bundle can be inlined');
  return code;
}

/** In the page: `window.session` from the bundle; these run there. */
type PageGlobals = {
  Flokie: typeof import('../../client/index.js');
  session: import('../../client/index.js').FlokieSession;
};

describe('client session in two Chromium tabs', { skip }, () => {
  let t: LoggedApp;
  let api: string;
  let browser: Browser;
  let context: BrowserContext;
  let frontend: Awaited<ReturnType<typeof serveHtml>>;
  const refreshes: number[] = [];
  const events: { type: string }[] = [];

  before(async () => {
    const bundle = await bundleClient();
    frontend = await serveHtml(`<!doctype html><title>app</title><script>${bundle}</script><p>the web app</p>`);
    const settings = { CORS_ORIGINS: `http://localhost:${frontend.port}`, LOG_LEVEL: 'silent' };
    t = await createLoggedApp(settings, undefined, (app) =>
      app.addHook('onResponse', async (request, reply) => {
        if (request.method === 'POST' && request.url.startsWith('/api/auth/refresh')) refreshes.push(reply.statusCode);
      }),
    );
    t.container.events.onEvent((e) => events.push(e));
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    api = `http://localhost:${(t.app.server.address() as { port: number }).port}`;
    browser = await launchChromium();
    context = await browser.newContext();
  });
  after(async () => {
    mock.timers.reset();
    await context?.close();
    await browser?.close();
    await t?.close();
    await frontend?.close();
  });

  /** Five calls at once from one tab; their statuses and the tab's token afterwards. */
  const burst = (page: Page) =>
    page.evaluate(async () => {
      const w = globalThis as unknown as PageGlobals;
      // (No named helper functions in here: the test transpiler would decorate them with a __name the page lacks.)
      const results = await Promise.all(
        Array.from({ length: 5 }, () => w.session.api.GET('/api/auth/me').then((r) => r.response.status)),
      );
      return { statuses: results, token: w.session.accessToken };
    });

  it('tokens expiring together in two tabs: one refresh, both tabs keep working, no reuse event', async () => {
    const user = await register(t.app);
    const first = await context.newPage();
    const second = await context.newPage();
    for (const page of [first, second]) await page.goto(`http://localhost:${frontend.port}/`);

    const login = await first.evaluate(
      async ({ api, username, password }) => {
        const w = globalThis as unknown as PageGlobals;
        w.session = w.Flokie.createFlokieSession({ baseUrl: api });
        const data = await w.session.login({ username, password });
        const me = await w.session.api.GET('/api/auth/me');
        return { mode: w.session.mode, refreshInBody: 'refresh_token' in data, status: me.response.status };
      },
      { api, username: user.username, password: STRONG_PASSWORD },
    );
    assert.deepEqual(login, { mode: 'cookie', refreshInBody: false, status: 200 });
    // The second tab starts from the shared cookie, like a page opened later.
    const resumed = await second.evaluate(async (api) => {
      const w = globalThis as unknown as PageGlobals;
      w.session = w.Flokie.createFlokieSession({ baseUrl: api });
      return w.session.resume();
    }, api);
    assert.equal(resumed, true);
    assert.deepEqual(refreshes, [200]);

    for (let round = 1; round <= 3; round++) {
      refreshes.length = 0;
      if (round === 1) mock.timers.enable({ apis: ['Date'], now: Date.now() });
      mock.timers.tick(TWO_HOURS);
      const [a, b] = await Promise.all([burst(first), burst(second)]);
      const everyCall = [Array(5).fill(200), Array(5).fill(200)];
      assert.deepEqual([a.statuses, b.statuses], everyCall, `round ${round}: every call succeeded`);
      assert.deepEqual(refreshes, [200], `round ${round}: exactly one refresh reached the server`);
      assert.equal(a.token, b.token, `round ${round}: both tabs hold the one new token`);
    }
    assert.deepEqual(
      events.filter((e) => e.type === 'refresh_token_reuse' || e.type === 'csrf_failure').map((e) => e.type),
      [],
    );
    const sessions = await t.container.sessions.listActive(user.id);
    assert.equal(sessions.length, 1, 'the one session is alive');

    // Revoked (say by an administrator): one refused refresh, and every call in both tabs ends in SessionEndedError.
    await t.container.sessions.revokeAllForUser(user.id, 'admin');
    refreshes.length = 0;
    mock.timers.tick(TWO_HOURS);
    const ended = await Promise.all(
      [first, second].map((page) =>
        page.evaluate(async () => {
          const w = globalThis as unknown as PageGlobals;
          const outcomes = await Promise.allSettled([0, 1].map(() => w.session.api.GET('/api/auth/me')));
          return outcomes.map((o) => (o.status === 'rejected' ? (o.reason as Error).name : o.value.response.status));
        }),
      ),
    );
    assert.deepEqual(ended, [Array(2).fill('SessionEndedError'), Array(2).fill('SessionEndedError')]);
    // Usually one refused refresh serves both tabs; a tab whose 401 comes back after the other tab's
    // refusal but before its "ended" message may try once itself (a revoked token: refused, no event).
    const refused = refreshes.length >= 1 && refreshes.length <= 2 && refreshes.every((s) => s === 401);
    assert.ok(refused, JSON.stringify(refreshes));
    assert.deepEqual(
      events.filter((e) => e.type === 'refresh_token_reuse'),
      [],
    );
  });
});
