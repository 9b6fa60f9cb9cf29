/**
 * Entry point: reads the environment, listens, and shuts down gracefully on SIGTERM/SIGINT
 * (stops accepting connections, finishes in-flight requests, flushes events, closes the database).
 * With WEB_CONCURRENCY > 1 this process becomes the cluster primary (src/cluster.ts) and each
 * forked worker runs serve() below on the shared port.
 */
import { buildApp } from './app.js';
import { runPrimary, shouldRunPrimary } from './cluster.js';
import { criticalFailures } from './cli/check.js';
import { loadConfig, SettingError, type Config } from './config/index.js';

let config: Config;
try {
  config = loadConfig();
} catch (error) {
  if (error instanceof SettingError) {
    console.error(`flokie: configuration error: ${error.message}`);
    process.exit(1);
  }
  throw error;
}

// Production refuses to start on a failed critical item of `flokie check` (weak or shared secrets,
// CORS "*", a remote database without TLS, HSTS off, rate limits or CSRF off).
if (config.isProduction) {
  const failures = criticalFailures(config);
  if (failures.length) {
    for (const f of failures) console.error(`flokie: refusing to start: ${f.title}: ${f.detail}`);
    console.error('flokie: run `npx flokie check` for the full pre-deployment checklist');
    process.exit(1);
  }
}

async function serve(config: Config): Promise<void> {
  const app = await buildApp(config).catch((error: unknown) => {
    console.error(`flokie: could not start: ${(error as Error).message}`);
    process.exit(1);
  });

  let closing = false;
  async function shutdown(signal: string) {
    if (closing) return;
    closing = true;
    app.log.info({ signal }, 'shutting down: finishing in-flight requests');
    const force = setTimeout(() => {
      app.log.error('shutdown took too long; exiting');
      process.exit(1);
    }, 15_000);
    force.unref();
    // Keep-alive connections whose last request finishes after close() began become idle then;
    // close them as they do, instead of waiting out the keep-alive timeout.
    const reaper = setInterval(() => app.server.closeIdleConnections(), 100);
    reaper.unref();
    try {
      await app.close();
      process.exit(0);
    } catch (error) {
      app.log.error({ err: error }, 'error during shutdown');
      process.exit(1);
    }
  }
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));

  try {
    await app.listen({ port: config.PORT, host: config.HOST });
  } catch (error) {
    app.log.fatal({ err: error }, 'could not listen');
    await app.close().catch(() => {});
    process.exit(1);
  }
}

if (shouldRunPrimary(config)) {
  await runPrimary(config).catch((error: unknown) => {
    console.error(`flokie: could not start: ${(error as Error).message}`);
    process.exit(1);
  });
} else {
  await serve(config);
}
