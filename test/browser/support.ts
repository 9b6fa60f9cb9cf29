/**
 * Headless Debian Chromium driven by playwright-core. If /usr/bin/chromium is missing, the test
 * tries scripts/install-chromium.sh (root + apt); if that is impossible the browser tests are
 * skipped with the reason, except under CI, where a missing browser is a failure.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
const ARGS = [
  '--no-sandbox',
  '--headless',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

/** null when Chromium is available, else why the browser tests cannot run here. */
export function chromiumUnavailable(): string | null {
  if (existsSync(CHROMIUM)) return null;
  const install = spawnSync('bash', ['scripts/install-chromium.sh'], { stdio: 'ignore', timeout: 300_000 });
  if (install.status === 0 && existsSync(CHROMIUM)) return null;
  return (
    `Chromium is not installed at ${CHROMIUM} and scripts/install-chromium.sh could not install it ` +
    `(needs root and apt)`
  );
}

/** The skip option for describe(): never skip in CI. */
export function browserSkip(): string | false {
  const reason = chromiumUnavailable();
  if (reason && process.env.CI) throw new Error(reason);
  return reason ?? false;
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
}

/** A tiny static site on its own port: another origin in the browser's eyes. */
export async function serveHtml(html: string): Promise<{ port: number; server: Server; close(): Promise<void> }> {
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(html);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return { port, server, close: () => new Promise((resolve) => server.close(() => resolve())) };
}
