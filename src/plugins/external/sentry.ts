/**
 * Error tracking with Sentry (SENTRY_DSN, SENTRY_ENVIRONMENT, SENTRY_TRACES_SAMPLE_RATE).
 *
 * Reported: every unhandled error (5xx, through the error handler's `app.reportError` hook) and
 * every critical security event (brute force, refresh-token reuse, emergency actions…).
 * Never reported: request bodies, query strings (reset links carry tokens), cookies, the
 * Authorization header, or any other header but the user agent. The SDK runs without the
 * integrations that read requests on their own, and `beforeSend` strips whatever still arrives.
 *
 * The SDK is imported only when SENTRY_DSN is set: loading it (and OpenTelemetry) costs seconds
 * of start-up and tens of megabytes that a service without Sentry should not pay.
 */
import type * as SentrySdk from '@sentry/node';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { Config } from '../../config/index.js';
import type { Container } from '../../container.js';
import { VERSION } from '../../core/version.js';

type SentryEvent = SentrySdk.Event;
let Sentry: typeof SentrySdk;

/** Last line of defence: drop anything from the request that could carry a secret or personal data. */
export function scrubEvent<T extends SentryEvent>(event: T): T {
  if (event.request) {
    const userAgent = event.request.headers?.['user-agent'];
    event.request = {
      method: event.request.method,
      url: event.request.url?.split('?')[0],
      headers: userAgent ? { 'user-agent': userAgent } : undefined,
    };
  }
  if (event.user) event.user = { id: event.user.id };
  delete event.breadcrumbs;
  return event;
}

/** Loads and initialises the SDK once per process; returns false when no DSN is configured. */
export async function initSentry(config: Config): Promise<boolean> {
  if (!config.SENTRY_DSN) return false;
  Sentry ??= await import('@sentry/node');
  if (Sentry.isInitialized()) return true;
  Sentry.init({
    dsn: config.SENTRY_DSN,
    environment: config.SENTRY_ENVIRONMENT || config.NODE_ENV,
    release: VERSION,
    tracesSampleRate: config.SENTRY_TRACES_SAMPLE_RATE,
    dataCollection: {
      userInfo: false,
      cookies: false,
      httpHeaders: { request: { allow: ['user-agent'] }, response: false },
      httpBodies: [],
      urlQueryParams: false,
    },
    defaultIntegrations: false,
    integrations: [
      Sentry.linkedErrorsIntegration(),
      Sentry.dedupeIntegration(),
      Sentry.nodeContextIntegration(),
      Sentry.onUnhandledRejectionIntegration({ mode: 'warn' }),
      ...(config.SENTRY_TRACES_SAMPLE_RATE > 0 ? [Sentry.httpIntegration()] : []),
    ],
    beforeSend: (event) => scrubEvent(event),
    beforeSendTransaction: (event) => scrubEvent(event),
  });
  return true;
}

/** What we tell Sentry about a request: where, which request, who — nothing sent by the client. */
function requestContext(request: FastifyRequest) {
  return {
    method: request.method,
    route: request.routeOptions.url ?? null,
    path: request.url.split('?')[0],
    request_id: String(request.id),
  };
}

export function reportToSentry(error: unknown, request?: FastifyRequest): void {
  Sentry.withScope((scope) => {
    if (request) {
      scope.setContext('request', requestContext(request));
      scope.setTag('request_id', String(request.id));
      if (request.principal) scope.setUser({ id: request.principal.user.id });
    }
    Sentry.captureException(error);
  });
}

/**
 * Registered by app.ts: wires `app.reportError` and critical security events to Sentry, and
 * flushes pending reports when the app closes.
 */
export default fp(
  async function sentryPlugin(app: FastifyInstance, { container }: { container: Container }) {
    if (!(await initSentry(container.config))) return;
    const previous = app.reportError;
    app.reportError = (error, request) => {
      previous(error, request);
      reportToSentry(error, request);
    };
    const unsubscribe = container.events.onEvent((event) => {
      if (event.severity !== 'critical') return;
      Sentry.withScope((scope) => {
        scope.setLevel('error');
        scope.setTag('security_event', event.type);
        if (event.request_id) scope.setTag('request_id', event.request_id);
        if (event.user_id) scope.setUser({ id: event.user_id });
        scope.setContext('security_event', {
          type: event.type,
          severity: event.severity,
          ip: event.ip,
          endpoint: event.endpoint,
          request_id: event.request_id,
          details: event.details,
        });
        Sentry.captureMessage(event.message);
      });
    });
    app.addHook('onClose', async () => {
      unsubscribe();
      await Sentry.flush(2000);
    });
  },
  { name: 'flokie-sentry', dependencies: ['flokie-error-handler'] },
);
