/**
 * The e-mailed links in a real browser: the link is taken from the message the in-process SMTP
 * server received (decoded by mailparser, as `flokie mail show` does) and opened in Chromium.
 * Verification, password reset (typed twice, mismatch and policy refusal shown) and e-mail change
 * complete; the token leaves the address bar; no CSP violation, no script error.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { parseMessage } from '../../src/mail/outbox.js';
import {
  bearer,
  createTestApp,
  OTHER_STRONG_PASSWORD,
  register,
  registerAndLogin,
  STRONG_PASSWORD,
  uniqueUser,
  type TestApp,
} from '../helpers/app.js';
import { startSmtpServer } from '../helpers/smtp.js';
import { browserSkip, launchChromium } from './support.js';

const skip = browserSkip();

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('e-mailed links in headless Chromium', { skip }, () => {
  let smtp: Awaited<ReturnType<typeof startSmtpServer>>;
  let t: TestApp;
  let base: string;
  let browser: Browser;
  /** Every POST the pages made, with its answer status (as the browser saw it). */
  const posts: { path: string; status: number }[] = [];

  before(async () => {
    smtp = await startSmtpServer();
    const port = await freePort();
    base = `http://localhost:${port}`;
    t = await createTestApp({ SMTP_URL: smtp.url, PUBLIC_URL: base });
    await t.app.listen({ port, host: '127.0.0.1' });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await t?.close();
    await smtp?.close();
  });

  /** The link to `path` in a message to `address`, decoded from the MIME message. */
  async function linkFromMail(address: string, path: string): Promise<string> {
    const deadline = Date.now() + 5000;
    for (;;) {
      for (const message of smtp.messages.filter((m) => m.to.includes(address))) {
        const link = (await parseMessage(message.raw)).links.find((l) => new URL(l).pathname === path);
        if (link) return link;
      }
      if (Date.now() > deadline) throw new Error(`no ${path} link mailed to ${address}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** A page that records CSP violations, console errors and script errors. */
  async function openPage(): Promise<{ page: Page; problems: () => Promise<string[]> }> {
    const page = await browser.newPage();
    const problems: string[] = [];
    page.on('response', (response) => {
      if (response.request().method() !== 'POST') return;
      posts.push({ path: new URL(response.url()).pathname, status: response.status() });
    });
    page.on('console', (message) => {
      // A refused token or password is a 400 the page expects; Chromium logs every 4xx fetch.
      const text = message.text();
      if (message.type() === 'error' && !/status of 4\d\d/.test(text)) problems.push(`console: ${text}`);
    });
    page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`));
    page.on('dialog', (dialog) => {
      problems.push(`dialog: ${dialog.message()}`);
      void dialog.dismiss();
    });
    await page.addInitScript(() => {
      type Violation = { violatedDirective: string; blockedURI: string };
      const scope = globalThis as unknown as {
        cspViolations: string[];
        addEventListener(type: string, listener: (event: Violation) => void): void;
      };
      scope.cspViolations = [];
      scope.addEventListener('securitypolicyviolation', (e) => {
        scope.cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`);
      });
    });
    return {
      page,
      problems: async () => [...problems, ...((await page.evaluate('globalThis.cspViolations')) as string[])],
    };
  }

  const settled = (page: Page) =>
    page.waitForSelector('#flokie-link:not([data-state="loading"]):not([data-state="pending"])', { timeout: 10_000 });
  const status = (page: Page) => page.locator('#status').textContent();
  const state = (page: Page) => page.locator('#flokie-link').getAttribute('data-state');

  it('verification: the link from the mail verifies the account and leaves the address bar', async () => {
    const user = await register(t.app, uniqueUser('pageverify'));
    const link = await linkFromMail(user.email, '/verify-email');
    assert.ok(link.startsWith(`${base}/verify-email?token=`), link);
    assert.equal(Boolean((await t.app.container.users.findById(user.id))!.is_verified), false);

    const { page, problems } = await openPage();
    const response = await page.goto(link);
    assert.equal(response?.status(), 200);
    assert.equal(response?.headers()['referrer-policy'], 'no-referrer');
    await settled(page);
    assert.equal(await state(page), 'success');
    assert.match(String(await status(page)), /verified/i);
    assert.equal(await page.evaluate('location.href'), `${base}/verify-email`);
    assert.equal(Boolean((await t.app.container.users.findById(user.id))!.is_verified), true);
    assert.deepEqual(await problems(), []);

    // The same link again: the server's refusal is shown, not a success.
    const again = await openPage();
    await again.page.goto(link);
    await settled(again.page);
    assert.equal(await state(again.page), 'error');
    assert.match(String(await status(again.page)), /invalid|expired/i);
    await page.close();
    await again.page.close();
  });

  it('reset: mismatch refused in the page, policy messages shown, then the new password works', async () => {
    const user = await register(t.app, uniqueUser('pagereset'));
    const payload = { email: user.email };
    const requested = await t.app.inject({ method: 'POST', url: '/api/auth/password/reset-request', payload });
    assert.equal(requested.statusCode, 202);
    const link = await linkFromMail(user.email, '/reset-password');

    const { page, problems } = await openPage();
    await page.goto(link);
    await page.locator('#reset-form').waitFor({ state: 'visible' });
    assert.equal(await page.evaluate('location.href'), `${base}/reset-password`);

    // Two different passwords: refused before anything is sent.
    const before = posts.length;
    await page.fill('#new-password', OTHER_STRONG_PASSWORD);
    await page.fill('#confirm-password', `${OTHER_STRONG_PASSWORD}x`);
    await page.click('#submit');
    await page.waitForSelector('#flokie-link[data-state="error"]');
    assert.match(String(await status(page)), /do not match/);
    assert.equal(posts.length, before, 'nothing was posted');

    // A password the policy refuses: the server's messages are listed; the link still works afterwards.
    await page.fill('#new-password', 'password');
    await page.fill('#confirm-password', 'password');
    await page.click('#submit');
    await page.waitForSelector('#details li');
    assert.equal(await state(page), 'error');
    const lines = await page.locator('#details li').allTextContents();
    assert.ok(lines.length >= 1 && lines.every((l) => l.length > 0), JSON.stringify(lines));
    assert.equal(posts.at(-1)?.status, 400);
    assert.equal(await page.locator('#submit').isDisabled(), false);

    await page.fill('#new-password', OTHER_STRONG_PASSWORD);
    await page.fill('#confirm-password', OTHER_STRONG_PASSWORD);
    await page.click('#submit');
    await page.waitForSelector('#flokie-link[data-state="success"]');
    assert.match(String(await status(page)), /reset/i);
    assert.equal(await page.locator('#reset-form').isVisible(), false);
    assert.deepEqual(await problems(), []);
    await page.close();

    const login = (password: string) =>
      t.app.inject({ method: 'POST', url: '/api/auth/login', payload: { username: user.username, password } });
    assert.equal((await login(OTHER_STRONG_PASSWORD)).statusCode, 200);
    assert.equal((await login(STRONG_PASSWORD)).statusCode, 401);
  });

  it('e-mail change: the confirmation link applies the new address', async () => {
    const user = await registerAndLogin(t.app, uniqueUser('pagechange'));
    const to = `new-${user.username}@example.org`;
    const payload = { email: to, current_password: STRONG_PASSWORD };
    const headers = bearer(user.access);
    const change = await t.app.inject({ method: 'PUT', url: '/api/users/profile', headers, payload });
    assert.equal(change.statusCode, 202, change.body);
    const link = await linkFromMail(to, '/confirm-email-change');

    const { page, problems } = await openPage();
    await page.goto(link);
    await settled(page);
    assert.equal(await state(page), 'success', String(await status(page)));
    assert.equal(await page.evaluate('location.href'), `${base}/confirm-email-change`);
    assert.equal((await t.app.container.users.findById(user.id))!.email, to);
    assert.deepEqual(await problems(), []);
    await page.close();
  });

  it('a link without a token, or with markup in it, shows a clear message and runs nothing', async () => {
    for (const path of ['/verify-email', '/reset-password', '/confirm-email-change']) {
      const { page, problems } = await openPage();
      const before = posts.length;
      await page.goto(`${base}${path}?utm_source=mail&other=1`);
      await settled(page);
      assert.equal(await state(page), 'error', path);
      assert.match(String(await status(page)), /no token/, path);
      assert.equal(await page.locator('#reset-form').isVisible(), false);
      assert.equal(posts.length, before, 'nothing was posted');
      assert.equal(await page.evaluate('location.href'), `${base}${path}`);
      assert.deepEqual(await problems(), []);
      await page.close();
    }
    const { page, problems } = await openPage();
    const markup = '"><img src=x onerror=alert(1)><script>alert(2)</script>';
    await page.goto(`${base}/verify-email?token=${encodeURIComponent(markup)}`);
    await settled(page);
    assert.equal(await state(page), 'error');
    assert.equal(await page.locator('img, #details script, #status *').count(), 0);
    assert.deepEqual(await problems(), []);
    await page.close();
  });
});
