/**
 * Builds the Fastify app from a typed config. Tests build it in-process; server.ts only listens.
 *
 * Where things are: every URL under /api/<area> is registered below from
 * src/modules/<area>/routes.ts (users: profile-routes.ts and admin-routes.ts). Cross-cutting HTTP
 * concerns are plugins: src/plugins/external/ wraps third-party plugins (CORS, headers, cookies,
 * Sentry, OpenAPI), src/plugins/app/ holds our own (errors, request ids, CSRF, rate limits, the IP block…),
 * and src/plugins/authenticate.ts checks tokens. Each declares the plugins it depends on.
 */
import AjvCompiler from '@fastify/ajv-compiler';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Config } from './config/index.js';
import { createContainer, type Container } from './container.js';
import { createLogger } from './logging.js';
import './http/route-config.js';
import authRoutes, { REFRESH_COOKIE, REFRESH_COOKIE_PATH } from './modules/auth/routes.js';
import healthRoutes from './modules/health/routes.js';
import linkPageRoutes from './modules/link-pages/routes.js';
import securityRoutes from './modules/security/routes.js';
import adminRoutes from './modules/users/admin-routes.js';
import profileRoutes from './modules/users/profile-routes.js';
import { fastifyTimeouts, serverTimeouts } from './http/connections.js';
import { httpServerOptions } from './http/tls.js';
import { openApiConventions } from './http/openapi.js';
import { acceptQueryBooleans } from './http/validation.js';
import cookie from './plugins/external/cookie.js';
import corsPlugin from './plugins/external/cors.js';
import securityHeaders, { DOCS_CSP } from './plugins/external/security-headers.js';
import sentry from './plugins/external/sentry.js';
import swagger from './plugins/external/swagger.js';
import clientAddress, { compileTrustedProxies, trustProxyOption } from './plugins/app/client-address.js';
import csrf from './plugins/app/csrf.js';
import errorHandler from './plugins/app/error-handler.js';
import forceHttps from './plugins/app/force-https.js';
import httpBasics, { requestIdGenerator } from './plugins/app/http-basics.js';
import ipBlock from './plugins/app/ip-block.js';
import metricsPlugin from './plugins/app/metrics.js';
import rateLimit from './plugins/app/rate-limit.js';
import { isOpenHealthProbe } from './modules/health/open-probes.js';
import requestGuard, { clientErrorHandler, frameworkErrors, MAX_HEADER_BYTES } from './plugins/app/request-guard.js';
import authenticate from './plugins/authenticate.js';

declare module 'fastify' {
  interface FastifyInstance {
    container: Container;
  }
}

export interface BuildOptions {
  /** Reuse an existing container (tests sharing one database between two apps). */
  container?: Container;
}

/**
 * Bodies are validated strictly: no type coercion, no silently removed fields, so a wrong type
 * or an unknown field is a 400. Query strings and params are text on the wire and are coerced
 * (query booleans also from True/False/1/0, see http/validation.ts). Every failing field is
 * reported (allErrors): our request schemas use only keywords whose cost stays linear in the
 * input (the allow-list in http/validation.ts), and the answer is capped there.
 */
function validatorFactory() {
  const pool = AjvCompiler();
  const shared = { useDefaults: true, allErrors: true, removeAdditional: false as const };
  return (
    externalSchemas: Parameters<AjvCompiler.BuildCompilerFromPool>[0],
    options: { customOptions?: Record<string, unknown> },
  ) => {
    const body = pool(externalSchemas, {
      ...options,
      customOptions: { ...options.customOptions, ...shared, coerceTypes: false },
    });
    const text = pool(externalSchemas, {
      ...options,
      customOptions: { ...options.customOptions, ...shared, coerceTypes: 'array' },
    });
    return (route: AjvCompiler.RouteDefinition) =>
      route.httpPart === 'body'
        ? body(route)
        : route.httpPart === 'querystring'
          ? acceptQueryBooleans(route.schema, text(route))
          : text(route);
  };
}

export async function buildApp(config: Config, options: BuildOptions = {}): Promise<FastifyInstance> {
  if (options.container) return assembleApp(config, options.container, false);
  const container = await createContainer(config, {
    log: createLogger(config.LOG_LEVEL, { bufferBytes: config.LOG_BUFFER_BYTES }),
  });
  try {
    return await assembleApp(config, container, true);
  } catch (error) {
    // A bad TLS file or proxy list fails here: release the database and timers we opened.
    await container.close().catch(() => {});
    throw error;
  }
}

async function assembleApp(config: Config, container: Container, ownsContainer: boolean): Promise<FastifyInstance> {
  const log = container.log;

  const app = Fastify({
    loggerInstance: log as FastifyBaseLogger,
    bodyLimit: config.BODY_LIMIT,
    genReqId: requestIdGenerator(compileTrustedProxies(config.TRUSTED_PROXIES)),
    requestIdHeader: false,
    logController: new LogController({ requestIdLogLabel: 'request_id', disableRequestLogging: true }) as never,
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    return503OnClosing: true,
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 200 },
    ajv: { customOptions: {}, plugins: [(await import('ajv-formats')).default as never] },
    schemaController: { compilersFactory: { buildValidator: validatorFactory() as never } },
    // HTTP protection layer (docs/security.md): proxies believed only from TRUSTED_PROXIES, HTTPS, raw-socket errors.
    trustProxy: trustProxyOption(config.TRUSTED_PROXIES),
    ...httpServerOptions(config, MAX_HEADER_BYTES, serverTimeouts(config)),
    // No request holds a connection forever (src/http/connections.ts).
    ...fastifyTimeouts(config),
    clientErrorHandler: clientErrorHandler(config),
    frameworkErrors: frameworkErrors(config),
  });
  app.server.maxConnections = config.MAX_CONNECTIONS;
  app.decorate('container', container);

  await app.register(errorHandler);
  await app.register(httpBasics, { accessLog: config.NODE_ENV !== 'test' });
  await app.register(securityHeaders, { config });
  await app.register(forceHttps, { config });
  await app.register(requestGuard, { config });
  await app.register(corsPlugin, { config });
  await app.register(clientAddress, { container });
  await app.register(cookie, { config });
  await app.register(csrf, { container, cookiePath: REFRESH_COOKIE_PATH, refreshCookie: REFRESH_COOKIE });
  await app.register(authenticate, { container });
  await app.register(sentry, { container });
  await app.register(ipBlock, { detector: container.intrusion });
  await app.register(rateLimit, { container, docsPrefix: '/api/docs' });
  // Prometheus metrics on METRICS_PORT and/or /api/metrics (off unless configured).
  await app.register(metricsPlugin, { container });

  if (config.DOCS_ENABLED) {
    // The contract (docs/api.md): standard errors, security and descriptions on every route (src/http/openapi.ts).
    await app.register(openApiConventions, { isUnlimited: isOpenHealthProbe });
    await app.register(swagger, { config });
  }

  await app.register(
    async (api) => {
      await api.register(healthRoutes, { prefix: '/health', container });
      await api.register(authRoutes, { prefix: '/auth', container });
      await api.register(profileRoutes, { prefix: '/users', container });
      await api.register(adminRoutes, { prefix: '/users', container });
      await api.register(securityRoutes, { prefix: '/security', container });
      if (config.DOCS_ENABLED) {
        api.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
        // indexPrefix: the page's asset links must carry the outer /api prefix.
        await api.register(swaggerUi, {
          routePrefix: '/docs',
          indexPrefix: '/api',
          staticCSP: DOCS_CSP,
          uiConfig: { deepLinking: false },
        });
        // The original Flokie's documentation paths (docs/migrating-from-flokie-python.md).
        api.get('/doc', { schema: { hide: true } }, (_request, reply) => reply.redirect('/api/docs/', 301));
        api.get('/swagger.json', { schema: { hide: true } }, (_request, reply) =>
          reply.redirect('/api/openapi.json', 301),
        );
      }
    },
    { prefix: '/api' },
  );
  // The pages the e-mailed links open (src/mail/links.ts), outside /api.
  await app.register(linkPageRoutes);

  app.addHook('onReady', async () => {
    await container.start();
  });
  app.addHook('onClose', async () => {
    if (ownsContainer) await container.close();
  });
  return app;
}
