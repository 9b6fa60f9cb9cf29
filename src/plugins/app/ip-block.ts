/**
 * Refuses every request from an address intrusion detection blocked (src/modules/security/intrusion.ts):
 * 429 with Retry-After, before any other work. The health checks no limit applies to stay open, so a
 * load balancer never drops the instance. Registered only when BRUTE_FORCE_BLOCK_MINUTES is set, so it
 * costs nothing otherwise.
 */
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { rateLimited } from '../../core/errors.js';
import type { IntrusionDetector } from '../../modules/security/intrusion.js';
import { isOpenHealthProbe } from '../../modules/health/open-probes.js';

export default fp(
  async function ipBlock(app: FastifyInstance, { detector }: { detector: IntrusionDetector }) {
    if (!detector.blocking) return;
    app.addHook('onRequest', async (request) => {
      if (isOpenHealthProbe(request.routeOptions.url)) return;
      let seconds = 0;
      try {
        seconds = await detector.blockedFor(request.ip);
      } catch {
        return; // a counter store failure must not take the API down
      }
      if (seconds > 0) throw rateLimited(seconds, 'Too many failed logins from your address; try again later');
    });
  },
  { name: 'flokie-ip-block', dependencies: ['flokie-error-handler'] },
);
