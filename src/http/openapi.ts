/**
 * The OpenAPI contract's conventions, in one place (docs/api.md is its human-readable form):
 * - the standard error answers every route can give, added to each route's response schemas by
 *   the `openApiConventions` plugin from what the route is (its method, whether it is rate
 *   limited, whether it needs a token); routes list only the errors of their own logic
 *   (`errorResponses(403, 404)`), all with the Error schema;
 * - named component schemas: every schema with an `$id` becomes `#/components/schemas/<$id>`
 *   (`componentName`, swagger's refResolver), never def-0;
 * - `security: []` on public operations, a description on every answer;
 * - document-only facts the validator cannot say in its own keywords (`finishDocument`).
 *
 * Response schemas also drive serialisation (fast-json-stringify): a wrapper here only adds
 * `description`, `headers` (ignored by the serialiser) or an `allOf` of exactly one schema, which
 * serialises the same fields as that schema.
 */
import type { TObject } from '@sinclair/typebox';
import type { FastifyInstance, RouteOptions } from 'fastify';
import fp from 'fastify-plugin';
import { ErrorEnvelope } from './envelope.js';

const RETRY_AFTER = {
  'Retry-After': { type: 'integer', minimum: 1, description: 'Seconds to wait before trying again' },
};

/** What each error status means in this API; also the response description in the document. */
export const ERROR_STATUSES = {
  400: { description: 'Invalid request (VALIDATION_ERROR): `error.details` names each failing field' },
  401: {
    description: 'Missing, invalid, expired or revoked token (AUTHENTICATION_ERROR)',
    headers: { 'WWW-Authenticate': { type: 'string', description: 'Bearer' } },
  },
  403: { description: 'Authenticated but not allowed (AUTHORIZATION_ERROR)' },
  404: { description: 'No such resource (NOT_FOUND)' },
  409: { description: 'Conflicts with existing data, e.g. a username or e-mail address in use (CONFLICT)' },
  413: { description: 'Request body larger than BODY_LIMIT (PAYLOAD_TOO_LARGE)' },
  415: { description: 'Request body is not application/json (UNSUPPORTED_MEDIA_TYPE)' },
  423: { description: 'Logins for this account (or device) are locked for now (LOCKED)', headers: RETRY_AFTER },
  429: { description: 'Rate limit exceeded (RATE_LIMIT_EXCEEDED)', headers: RETRY_AFTER },
  503: {
    description:
      'Temporarily unavailable: database unreachable, server shutting down or overloaded (SERVICE_UNAVAILABLE)',
    headers: { 'Retry-After': { ...RETRY_AFTER['Retry-After'], description: 'Seconds to wait, when known' } },
  },
} as const;
export type ErrorStatus = keyof typeof ERROR_STATUSES;

/** Answers with a schema of their own (not Error): success, and the health checks' 503. */
const OWN_SHAPE_DESCRIPTIONS: Record<string, string> = {
  200: 'OK',
  201: 'Created',
  202: 'Accepted',
  503: 'Unhealthy or not ready: the same shape as the 200 answer',
};

/** A schema as a response: its description, headers, and a $ref (allOf) when it is a named schema. */
type Schema = Record<string, unknown>;

function describedResponse(schema: Schema, description: string, headers?: object): Schema {
  const extra = headers ? { headers } : {};
  // A named root schema would be inlined by swagger; inside allOf it stays a $ref to its component.
  if (typeof schema.$id === 'string') return { description, ...extra, allOf: [schema] };
  return { ...schema, description: (schema.description as string | undefined) ?? description, ...extra };
}

export function errorResponse(status: ErrorStatus): Schema {
  const { description, ...rest } = ERROR_STATUSES[status];
  return describedResponse(ErrorEnvelope, description, 'headers' in rest ? rest.headers : undefined);
}

/** The errors of a route's own logic (401 on a public route, 403, 404, 409, 423), for its `response`. */
export function errorResponses(...statuses: ErrorStatus[]): Record<number, Schema> {
  return Object.fromEntries(statuses.map((status) => [status, errorResponse(status)]));
}

/**
 * A querystring schema whose defaulted fields are not `required` in the document: the validator
 * fills them in (useDefaults) before it checks `required`, so the handler's type stays exact
 * while clients may leave them out.
 */
export function defaultsOptional<T extends TObject>(schema: T): T {
  const hasDefault = (name: string) => (schema.properties[name] as { default?: unknown }).default !== undefined;
  const required = (schema.required ?? []).filter((name) => !hasDefault(name));
  const { required: _all, ...rest } = schema;
  return (required.length > 0 ? { ...rest, required } : rest) as T;
}

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export interface ConventionOptions {
  /** True for route patterns that answer no 429 (exempt from every limit, the emergency one included). */
  isUnlimited: (url: string) => boolean;
}

/** The standard error statuses of a route: what every request can meet before the route's own logic. */
export function standardErrors(
  route: Pick<RouteOptions, 'method' | 'url'>,
  security: unknown[],
  options: ConventionOptions,
): ErrorStatus[] {
  const methods = Array.isArray(route.method) ? route.method : [route.method];
  const statuses: ErrorStatus[] = [400]; // a URL that cannot be decoded or holds a NUL byte; bad JSON; bad fields
  if (methods.some((m) => BODY_METHODS.has(m))) statuses.push(413, 415);
  if (security.length > 0) statuses.push(401);
  if (!options.isUnlimited(route.url)) statuses.push(429);
  statuses.push(503); // database unreachable, or the server is closing
  return statuses;
}

type RouteSchema = Schema & {
  hide?: boolean;
  security?: Record<string, string[]>[];
  response?: Record<string, Schema>;
};

/**
 * Completes each documented route's schema: `security: []` when the route declares none, the
 * standard errors, and a description on every answer. Register before the routes.
 */
export const openApiConventions = fp(
  async function openApiConventions(app: FastifyInstance, options: ConventionOptions) {
    app.addHook('onRoute', (route) => {
      const schema = route.schema as RouteSchema | undefined;
      if (!schema || schema.hide || !schema.response) return;
      const security = schema.security ?? [];
      const response: Record<string, Schema> = {};
      for (const [status, answer] of Object.entries(schema.response)) {
        const described = typeof answer.description === 'string' && answer.$id === undefined;
        response[status] = described ? answer : describedResponse(answer, OWN_SHAPE_DESCRIPTIONS[status] ?? 'Answer');
      }
      for (const status of standardErrors(route, security, options)) response[status] ??= errorResponse(status);
      route.schema = { ...schema, security, response };
    });
  },
  { name: 'flokie-openapi-conventions' },
);

/** Component names: the schema's `$id` (User, Session, Error, …). Swagger's refResolver option. */
export const componentName = (json: { $id?: unknown }, _baseUri: unknown, _fragment: unknown, i: number) =>
  typeof json.$id === 'string' ? json.$id : `def-${i}`;

interface OperationObject {
  operationId?: string;
  requestBody?: { required?: boolean; content?: Record<string, { schema?: Record<string, unknown> }> };
}

/**
 * Facts the document states that the request validator does not express as keywords, so they
 * are written in after swagger built it:
 * - a body that may be null or absent (refresh, lock) is an optional request body;
 * - "exactly one of" rules the route checks itself, with its own message (REQUIRE_ONE_OF).
 */
const REQUIRE_ONE_OF: Record<string, string[]> = {
  revokeTokens: ['jti', 'user_id'],
  login: ['username', 'username_or_email'],
};

export function finishDocument<T extends { paths?: Record<string, Record<string, unknown>> }>(document: T): T {
  for (const item of Object.values(document.paths ?? {})) {
    for (const operation of Object.values(item) as OperationObject[]) {
      const body = operation?.requestBody;
      if (!body) continue;
      const schema = body.content?.['application/json']?.schema;
      if (schema?.nullable === true) body.required = false;
      const oneOf = operation.operationId ? REQUIRE_ONE_OF[operation.operationId] : undefined;
      if (schema && oneOf) {
        schema.required = ((schema.required as string[] | undefined) ?? []).filter((name) => !oneOf.includes(name));
        if ((schema.required as string[]).length === 0) delete schema.required;
        schema.oneOf = oneOf.map((name) => ({ required: [name] }));
      }
    }
  }
  return document;
}
