/**
 * /api/security — security operations for administrators (docs/api.md "Security operations"):
 * the security event log, token revocation, and the emergency global rate limit. Admin only,
 * checked in onRequest before anything is parsed. The rules live in admin-service.ts (revocation)
 * and state/emergency-limit.ts (the limit).
 */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import { SettingError } from '../../config/index.js';
import type { Container } from '../../container.js';
import type { Database } from '../../db/types.js';
import { Envelope, ok } from '../../http/envelope.js';
import { validationError } from '../../core/errors.js';
import { NO_NUL } from '../../http/fields.js';
import { getEmergencyLimit, setEmergencyLimit } from '../../state/emergency-limit.js';
import { defaultsOptional, errorResponses as errors } from '../../http/openapi.js';
import { pagination } from '../users/user-queries.js';
import { PaginationSchema } from '../users/admin-routes.js';
import { EVENT_TYPES } from './events.js';
import { requestContext } from '../../http/request-context.js';

const strict = { additionalProperties: false } as const;
const DateTime = Type.String({ format: 'date-time', description: 'ISO 8601, e.g. 2026-01-01T00:00:00Z' });

const EventsQuery = defaultsOptional(Type.Object(
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
));

export const SecurityEventSchema = Type.Object({
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
}, { $id: 'SecurityEvent' });

const RevokeBody = Type.Object(
  {
    jti: Type.Optional(Type.String({ minLength: 1, maxLength: 64, pattern: NO_NUL, description: 'Revoke one access or refresh token by its jti claim' })),
    user_id: Type.Optional(Type.String({ minLength: 1, maxLength: 64, pattern: NO_NUL, description: 'Revoke every session (all tokens) of this user' })),
  },
  { ...strict, description: 'Exactly one of jti or user_id.' },
);

const LimitBody = Type.Object({ limit: Type.Union([Type.String({ minLength: 1, maxLength: 50 }), Type.Null()], { description: 'e.g. "1 per minute", or null to lift it' }) }, strict);
const LimitData = Type.Object({
  limit: Type.Union([Type.String(), Type.Null()]),
  points: Type.Union([Type.Integer(), Type.Null()]),
  duration_seconds: Type.Union([Type.Integer(), Type.Null()]),
}, { $id: 'EmergencyRateLimit' });

export interface EventFilter {
  type?: string;
  severity?: string;
  user_id?: string;
  ip?: string;
  since?: number;
  until?: number;
}

/** Filtered events, newest first. Shared by the API and `flokie events export`. */
export function eventQuery(db: Kysely<Database>, filter: EventFilter) {
  let q = db.selectFrom('security_events');
  if (filter.type) q = q.where('type', '=', filter.type);
  if (filter.severity) q = q.where('severity', '=', filter.severity);
  if (filter.user_id) q = q.where('user_id', '=', filter.user_id);
  if (filter.ip) q = q.where('ip', '=', filter.ip);
  if (filter.since !== undefined) q = q.where('created_at', '>=', filter.since);
  if (filter.until !== undefined) q = q.where('created_at', '<=', filter.until);
  return q;
}

type EventRow = Database['security_events'] extends infer T ? { [K in keyof T]: T[K] extends import('kysely').Generated<infer U> ? U : T[K] } : never;

export function toEventView(row: EventRow) {
  let details: Record<string, unknown> | null = null;
  try {
    details = row.details ? (JSON.parse(row.details) as Record<string, unknown>) : null;
  } catch {
    details = { raw: row.details };
  }
  return {
    id: Number(row.id),
    type: row.type,
    severity: row.severity,
    user_id: row.user_id,
    ip: row.ip,
    user_agent: row.user_agent,
    request_id: row.request_id,
    endpoint: row.endpoint,
    details,
    created_at: new Date(Number(row.created_at)).toISOString(),
  };
}

const limitView = (spec: { points: number; durationSeconds: number; text: string } | null) => ({
  limit: spec?.text ?? null,
  points: spec?.points ?? null,
  duration_seconds: spec?.durationSeconds ?? null,
});

export default async function securityRoutes(fastify: FastifyInstance, { container }: { container: Container }) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const tags = ['Security operations'];
  const security = [{ bearerAuth: [] }];
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
        response: { 200: Envelope(Type.Object({ events: Type.Array(SecurityEventSchema), pagination: PaginationSchema })), ...errors(403) },
      },
    },
    async (request) => {
      const { page, per_page, since, until, ...rest } = request.query;
      const filter: EventFilter = { ...rest, since: since ? Date.parse(since) : undefined, until: until ? Date.parse(until) : undefined };
      if (filter.since !== undefined && filter.until !== undefined && filter.since > filter.until) {
        throw validationError('since must not be after until', { since: ['Must not be after until'] });
      }
      await container.events.flush(); // what just happened is visible at once
      const total = Number((await eventQuery(container.db, filter).select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
      const rows = await eventQuery(container.db, filter)
        .selectAll()
        .orderBy('created_at', 'desc')
        .orderBy('id', 'desc')
        .limit(per_page)
        .offset((page - 1) * per_page)
        .execute();
      return ok('Security events', { events: rows.map(toEventView), pagination: pagination(page, per_page, total) });
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
        response: { 200: Envelope(Type.Object({ jti: Type.Optional(Type.String()), user_id: Type.Optional(Type.String()), revoked_sessions: Type.Integer() })), ...errors(403, 404) },
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
    { schema: { tags, operationId: 'getEmergencyRateLimit', security, summary: 'The emergency global rate limit (null when off)', response: { 200: Envelope(LimitData), ...errors(403) } } },
    async () => ok('Emergency rate limit', limitView(await getEmergencyLimit(container.db))),
  );

  app.put(
    '/emergency-rate-limit',
    {
      schema: {
        tags,
        operationId: 'setEmergencyRateLimit',
        security,
        summary: 'Set or lift the emergency global rate limit',
        description: 'Every running instance applies it within CACHE_SYNC_INTERVAL_MS (immediately with Redis), without a restart.',
        body: LimitBody,
        response: { 200: Envelope(LimitData), ...errors(403) },
      },
    },
    async (request) => {
      let spec;
      try {
        spec = await setEmergencyLimit(container.db, container.changes, request.body.limit);
      } catch (error) {
        if (error instanceof SettingError) throw validationError('Invalid rate', { limit: [error.message] });
        throw error;
      }
      container.events.emit({
        type: 'emergency_action',
        context: requestContext(request),
        message: spec ? `Emergency rate limit set to ${spec.text}` : 'Emergency rate limit lifted',
        details: { action: 'emergency_rate_limit', limit: spec?.text ?? null, via: 'api' },
      });
      return ok(spec ? 'Emergency rate limit on' : 'Emergency rate limit off', limitView(spec));
    },
  );
}
