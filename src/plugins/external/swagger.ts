/**
 * @fastify/swagger: the OpenAPI document of every route (served at /api/openapi.json and by the
 * Swagger UI, both registered in app.ts under /api). Registered only when DOCS_ENABLED; our
 * conventions on each route (src/http/openapi.ts) are applied before it sees them.
 */
import swagger from '@fastify/swagger';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { Config } from '../../config/index.js';
import { componentName, finishDocument } from '../../http/openapi.js';
import { VERSION } from '../../core/version.js';

export default fp(
  async function swaggerPlugin(app: FastifyInstance, { config }: { config: Config }) {
    await app.register(swagger, {
      openapi: {
        openapi: '3.0.3',
        info: {
          title: 'Flokie API',
          version: VERSION,
          description:
            'Secure-by-default account and session API. Every error uses the envelope ' +
            '`{success:false, error:{code,message,details}, timestamp, request_id}` (the Error schema).',
          license: { name: 'MIT', url: 'https://opensource.org/licenses/MIT' },
        },
        servers: [{ url: config.publicUrl, description: 'PUBLIC_URL' }],
        tags: [
          { name: 'Health', description: "Probes and operators' health views" },
          { name: 'Authentication', description: 'Accounts, logins, tokens and sessions' },
          { name: 'Profile', description: "The authenticated user's own profile" },
          { name: 'Administration', description: 'User administration (admin token)' },
          {
            name: 'Security operations',
            description: 'Security events, token revocation, emergency rate limit (admin token)',
          },
        ],
        components: {
          securitySchemes: {
            bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
            healthToken: { type: 'apiKey', in: 'header', name: 'X-Health-Token' },
          },
        },
      },
      refResolver: { buildLocalReference: componentName },
      transformObject: (documents) =>
        finishDocument((documents as { openapiObject: Record<string, never> }).openapiObject),
    });
  },
  { name: 'flokie-swagger' },
);
