/**
 * /api/security — security operations for administrators (docs/api.md "Security operations"):
 * the security event log, token revocation, and the emergency global rate limit. Admin only,
 * checked in onRequest before anything is parsed. The rules live in admin-service.ts (revocation)
 * and security-service.ts (the event log, the limit).
 */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { Container } from '../../container.js';
import { Envelope, ok, PaginationSchema } from '../../http/envelope.js';
import { validationError } from '../../core/errors.js';
import { NO_NUL, Rate } from '../../http/fields.js';
import { defaultsOptional, errorResponses as errors } from '../../http/openapi.js';
import { EVENT_TYPES } from './events.js';
import { requestContext } from '../../http/request-context.js';
import { SecurityService } from './security-service.js';

const strict = { additionalProperties: false } as const;
const DateTime = Type.String({ format: 'date-time', description: 'ISO 8601, e.g. 2026-01-01T00:00:00Z' });

const EventsQuery = defaultsOptional(
  Type.Object(
    {
      type: Type.Optional(Type.Union(Object.keys(EVENT_TYPES).map((t) => Type.Literal(t)))),
      severity: Type.Optional(Type.Union([Type.Literal('info'), Type.Literal('warning'), Type.Literal('critical')])),
      user_id: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
      ip: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
      since: Type.Optional(DateTime),
      until: Type.Optional(DateTime),
      page: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 1 }),
      per_page: Type.Integer({ minimum: 1, maximum: 100, default: 50 }),
    },
    strict,
  ),
);

export const SecurityEventSchema = Type.Object(
  {
    id: Type.Integer(),
    type: Type.String(),
    severity: Type.String(),
    user_id: Type.Union([Type.String(), Type.Null()]),
    ip: Type.Union([Type.String(), Type.Null()]),
    user_agent: Type.Union([Type.String(), Type.Null()]),
    request_id: Type.Union([Type.String(), Type.Null()]),
    endpoint: Type.Union([Type.String(), Type.Null()]),
    details: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()]),
    created_at: Type.String({ format: 'date-time' }),
  },
  { $id: 'SecurityEvent' },
);

const RevokeBody = Type.Object(
  {
    jti: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 64,
        pattern: NO_NUL,
        description: 'Revoke one access or refresh token by its jti claim',
      }),
    ),
    user_id: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 64,
        pattern: NO_NUL,
        description: 'Revoke every session (all tokens) of this user',
      }),
    ),
  },
  { ...strict, description: 'Exactly one of jti or user_id.' },
);

const LimitBody = Type.Object(
  {
    limit: Type.Union([Rate, Type.Null()], {
      description:
        'A rate like "1 per minute", "100/hour" or "10 per 30 seconds" (at least 1 a period, ' +
        'a period of at most 2 days), or null to lift it',
    }),
  },
  strict,
);
const LimitData = Type.Object(
  {
    limit: Type.Union([Type.String(), Type.Null()]),
    points: Type.Union([Type.Integer(), Type.Null()]),
    duration_seconds: Type.Union([Type.Integer(), Type.Null()]),
  },
  { $id: 'EmergencyRateLimit' },
);

const limitView = (spec: { points: number; durationSeconds: number; text: string } | null) => ({
  limit: spec?.text ?? null,
  points: spec?.points ?? null,
  duration_seconds: spec?.durationSeconds ?? null,
});

export default async function securityRoutes(fastify: FastifyInstance, { container }: { container: Container }) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const tags = ['Security operations'];
  const security = [{ bearerAuth: [] }];
  const service = new SecurityService(container);
  app.addHook('onRequest', app.requireAdmin);

  app.get(
    '/events',
    {
      schema: {
        tags,
        operationId: 'listSecurityEvents',
        security,
        summary: 'Security events, newest first',
        querystring: EventsQuery,
        response: {
          200: Envelope(Type.Object({ events: Type.Array(SecurityEventSchema), pagination: PaginationSchema })),
          ...errors(403),
        },
      },
    },
    async (request) => {
      const { page, per_page, since, until, ...rest } = request.query;
      const range = { since: since ? Date.parse(since) : undefined, until: until ? Date.parse(until) : undefined };
      const filter = { ...rest, ...range };
      return ok('Security events', await service.listEvents(filter, page, per_page));
    },
  );

  app.post(
    '/tokens/revoke',
    {
      schema: {
        tags,
        operationId: 'revokeTokens',
        security,
        summary: 'Revoke a token (by jti) or every session of a user',
        body: RevokeBody,
        response: {
          200: Envelope(
            Type.Object({
              jti: Type.Optional(Type.String()),
              user_id: Type.Optional(Type.String()),
              revoked_sessions: Type.Integer(),
            }),
          ),
          ...errors(403, 404),
        },
      },
    },
    async (request) => {
      const { jti, user_id } = request.body;
      if ((jti === undefined) === (user_id === undefined)) {
        throw validationError('Send exactly one of jti or user_id', { body: ['Send exactly one of jti or user_id'] });
      }
      if (jti !== undefined) {
        const { session_revoked } = await container.revocation.revokeToken(jti, requestContext(request));
        return ok('Token revoked', { jti, revoked_sessions: session_revoked ? 1 : 0 });
      }
      const count = await container.revocation.revokeAllSessions(user_id!, requestContext(request));
      return ok('Every session of the user was revoked', { user_id: user_id!, revoked_sessions: count });
    },
  );

  app.get(
    '/emergency-rate-limit',
    {
      schema: {
        tags,
        operationId: 'getEmergencyRateLimit',
        security,
        summary: 'The emergency global rate limit (null when off)',
        response: { 200: Envelope(LimitData), ...errors(403) },
      },
    },
    async () => ok('Emergency rate limit', limitView(await service.emergencyLimit())),
  );

  app.put(
    '/emergency-rate-limit',
    {
      schema: {
        tags,
        operationId: 'setEmergencyRateLimit',
        security,
        summary: 'Set or lift the emergency global rate limit',
        description:
          'Every running instance applies it within CACHE_SYNC_INTERVAL_MS (immediately with Redis), without a ' +
          'restart.',
        body: LimitBody,
        response: { 200: Envelope(LimitData), ...errors(403) },
      },
    },
    async (request) => {
      const spec = await service.changeEmergencyLimit(request.body.limit, requestContext(request));
      return ok(spec ? 'Emergency rate limit on' : 'Emergency rate limit off', limitView(spec));
    },
  );
}
