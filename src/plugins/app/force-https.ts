/**
 * FORCE_HTTPS: a request that arrived over plain HTTP (directly, or as reported by a trusted
 * proxy's X-Forwarded-Proto) is answered 308 to the same path on https://, so even a POST is
 * repeated with its body over TLS. The open health probes are answered as they come (load
 * balancers probe over plain HTTP); the token-taking operators' views are not, so no token travels
 * in clear. The target host is always PUBLIC_URL's (config refuses FORCE_HTTPS without an https
 * PUBLIC_URL): a redirect built from the request's Host header would send users wherever the
 * sender of that header likes.
 */
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Config } from '../../config/index.js';
import { isOpenHealthProbe } from '../../modules/health/open-probes.js';

export default fp(
  async function forceHttps(app: FastifyInstance, { config }: { config: Config }) {
    if (!config.FORCE_HTTPS) return;
    const host = new URL(config.PUBLIC_URL).host;
    app.addHook('onRequest', async (request, reply) => {
      if (request.protocol === 'https' || isOpenHealthProbe(request.routeOptions.url)) return;
      return reply
        .code(308)
        .header('Location', `https://${host}${request.url}`)
        .type('application/json; charset=utf-8')
        .send({
          success: true,
          message: 'Use HTTPS',
          data: { location: `https://${host}${request.url}` },
        });
    });
  },
  { name: 'flokie-force-https' },
);
