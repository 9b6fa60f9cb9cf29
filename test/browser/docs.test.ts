/** Swagger UI at /api/docs renders under its CSP (no 'unsafe-inline' scripts) with zero CSP violations. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { browserSkip, launchChromium } from './support.js';

const skip = browserSkip();

describe('Swagger UI in headless Chromium', { skip }, () => {
  let t: TestApp;
  let browser: Browser;
  let base: string;
  before(async () => {
    t = await createTestApp();
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://localhost:${(t.app.server.address() as { port: number }).port}`;
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await t?.close();
  });

  it('renders the operations with no CSP violation and no script error', async () => {
    const page = await browser.newPage();
    const problems: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error' || /Content Security Policy|Refused to/i.test(message.text()))
        problems.push(`console: ${message.text()}`);
    });
    page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`));
    // Count violations the page itself reports, whatever the console says.
    await page.addInitScript(() => {
      const scope = globalThis as unknown as {
        cspViolations: string[];
        addEventListener(
          type: string,
          listener: (event: { violatedDirective: string; blockedURI: string }) => void,
        ): void;
      };
      scope.cspViolations = [];
      scope.addEventListener('securitypolicyviolation', (event) =>
        scope.cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`),
      );
    });
    const response = await page.goto(`${base}/api/docs`);
    assert.equal(response?.status(), 200);
    assert.doesNotMatch(String(response?.headers()['content-security-policy']), /unsafe-inline/);
    await page.locator('.opblock-summary-path', { hasText: '/api/auth/login' }).first().waitFor({ timeout: 15_000 });
    assert.equal(
      await page
        .locator('.information-container .title')
        .first()
        .textContent()
        .then((s) => s?.includes('Flokie API')),
      true,
    );
    assert.ok((await page.locator('.opblock').count()) > 10);
    // Open one operation: expanding renders schemas and the "Try it out" UI (more DOM, more styles).
    await page.locator('.opblock-summary', { hasText: '/api/auth/login' }).first().click();
    await page.locator('.opblock-body').first().waitFor();
    const violations = await page.evaluate(() => (globalThis as unknown as { cspViolations: string[] }).cspViolations);
    assert.deepEqual(violations, []);
    assert.deepEqual(problems, []);
    if (process.env.FLOKIE_SCREENSHOT) await page.screenshot({ path: process.env.FLOKIE_SCREENSHOT, fullPage: false });
  });
});
