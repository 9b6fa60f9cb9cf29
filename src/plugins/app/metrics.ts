/**
 * Serves the metrics of src/modules/metrics/metrics.ts (rate-limit refusals included) two ways, both off by default:
 * - METRICS_PORT: a separate plain-HTTP listener on METRICS_HOST (loopback by default) answering
 *   GET /metrics, outside the API (no API route, header or rate limit involved);
 * - METRICS_TOKEN: GET /api/metrics on the API port, for `Authorization: Bearer <METRICS_TOKEN>`
 *   only (compared in constant time). Exempt from rate limits, so a scraper every few seconds is
 *   never refused; the token (≥ 32 random bytes in production) is what keeps others out.
 */
import { timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Container } from '../../container.js';
import { authenticationError } from '../../core/errors.js';
import { createMetrics } from '../../modules/metrics/metrics.js';

function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

export default fp(
  async function metricsPlugin(app: FastifyInstance, { container }: { container: Container }) {
    const { config } = container;
    if (!config.METRICS_PORT && !config.METRICS_TOKEN) return;
    const metrics = createMetrics(container, () => app.rateLimitRefusals);

    app.addHook('onResponse', (request, reply, done) => {
      metrics.observeRequest({
        method: request.method,
        route: request.routeOptions.url,
        status: reply.statusCode,
        seconds: reply.elapsedTime / 1000,
      });
      done();
    });

    if (config.METRICS_TOKEN) {
      app.get('/api/metrics', { schema: { hide: true } }, async (request, reply) => {
        const header = request.headers.authorization ?? '';
        const token = header.startsWith('Bearer ') ? header.slice(7) : '';
        if (!token || !sameSecret(token, config.METRICS_TOKEN))
          throw authenticationError('Metrics need Authorization: Bearer <METRICS_TOKEN>');
        return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
      });
    }

    let server: Server | undefined;
    if (config.METRICS_PORT) {
      server = createServer((request, response) => {
        const path = (request.url ?? '').split('?')[0];
        if (request.method !== 'GET' || path !== '/metrics') {
          response.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
          return;
        }
        metrics.registry.metrics().then(
          (text) =>
            response
              .writeHead(200, { 'content-type': metrics.registry.contentType, 'cache-control': 'no-store' })
              .end(text),
          () => response.writeHead(500, { 'content-type': 'text/plain' }).end('metrics unavailable\n'),
        );
      });
      app.addHook('onReady', async () => {
        await new Promise<void>((resolve, reject) => {
          server!.once('error', reject);
          server!.listen(config.METRICS_PORT, config.METRICS_HOST, () => {
            server!.off('error', reject);
            resolve();
          });
        });
        app.log.info({ address: `http://${config.METRICS_HOST}:${config.METRICS_PORT}/metrics` }, 'metrics listening');
      });
    }
    app.addHook('onClose', async () => {
      if (server?.listening) await new Promise<void>((resolve) => server!.close(() => resolve()));
      server?.closeAllConnections();
      metrics.close();
    });
  },
  { name: 'flokie-metrics', dependencies: ['flokie-rate-limit'] },
);
