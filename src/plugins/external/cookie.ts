/**
 * @fastify/cookie, signing with SECRET_KEY: the refresh-token cookie and the CSRF secret cookie
 * (src/plugins/app/csrf.ts) are read and written through it.
 */
import cookie from '@fastify/cookie';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Config } from '../../config/index.js';

export default fp(
  async function cookiePlugin(app: FastifyInstance, { config }: { config: Config }) {
    await app.register(cookie, { secret: config.SECRET_KEY });
  },
  { name: 'flokie-cookie' },
);
