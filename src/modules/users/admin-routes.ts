/**
 * /api/users — administration (docs/api.md "Administration"). Admin only: every route here checks the
 * token and the admin flag in onRequest, before the body is even parsed, so a non-admin learns
 * nothing (403) and an anonymous caller gets 401. Bodies are strict (unknown fields are a 400), so
 * no flag can be mass-assigned; the admin flag changes only through POST /{id}/admin.
 * The rules themselves live in admin-service.ts.
 */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { RequestContext } from '../../core/request-context.js';
import { requestContext } from '../../http/request-context.js';
import type { Config } from '../../config/index.js';
import type { Container } from '../../container.js';
import { Envelope, MessageEnvelope, ok, PaginationSchema } from '../../http/envelope.js';
import { Bio, Email, NewPassword, PersonName, Username } from '../../http/fields.js';
import { defaultsOptional, errorResponses as errors } from '../../http/openapi.js';
import { SORT_FIELDS } from './user-queries.js';
import { AdminUserSchema, type UserRow } from './user-view.js';

const strict = { additionalProperties: false } as const;

const ListQuery = defaultsOptional(
  Type.Object(
    {
      page: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 1 }),
      per_page: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
      search: Type.Optional(
        Type.String({ maxLength: 254, description: 'Prefix of a username or e-mail address (case-insensitive)' }),
      ),
      include_inactive: Type.Boolean({ default: false }),
      sort_by: Type.Union(
        SORT_FIELDS.map((f) => Type.Literal(f)),
        { default: 'created_at' },
      ),
      sort_order: Type.Union([Type.Literal('asc'), Type.Literal('desc')], { default: 'desc' }),
    },
    strict,
  ),
);

const SearchQuery = defaultsOptional(
  Type.Object(
    {
      q: Type.String({
        minLength: 2,
        maxLength: 254,
        description: 'Prefix of a username or e-mail address (case-insensitive)',
      }),
      limit: Type.Integer({ minimum: 1, maximum: 50, default: 10 }),
      include_inactive: Type.Boolean({ default: false }),
    },
    strict,
  ),
);

const IdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) }, strict);
const DeleteQuery = defaultsOptional(Type.Object({ hard_delete: Type.Boolean({ default: false }) }, strict));

const NullableName = Type.Union([PersonName, Type.Null()]);
const createBody = (config: Config) =>
  Type.Object(
    {
      username: Username,
      email: Email,
      password: NewPassword(config),
      first_name: Type.Optional(NullableName),
      last_name: Type.Optional(NullableName),
      bio: Type.Optional(Type.Union([Bio, Type.Null()])),
      is_admin: Type.Optional(Type.Boolean()),
      is_active: Type.Optional(Type.Boolean()),
      is_verified: Type.Optional(Type.Boolean()),
    },
    strict,
  );
const UpdateBody = Type.Object(
  {
    username: Type.Optional(Username),
    email: Type.Optional(Email),
    first_name: Type.Optional(NullableName),
    last_name: Type.Optional(NullableName),
    bio: Type.Optional(Type.Union([Bio, Type.Null()])),
    is_verified: Type.Optional(Type.Boolean()),
  },
  {
    ...strict,
    description:
      'Admin rights change only through POST /api/users/{id}/admin; activation through /activate and /deactivate.',
  },
);
const AdminBody = Type.Object({ is_admin: Type.Boolean() }, strict);
/** No body (or no `minutes`): locked until unlocked. At most ten years. */
const LockBody = Type.Union(
  [Type.Object({ minutes: Type.Optional(Type.Integer({ minimum: 1, maximum: 5_256_000 })) }, strict), Type.Null()],
  {
    description: 'Optional: no body (or no `minutes`) locks until POST /api/users/{id}/unlock.',
  },
);

const UserData = Envelope(Type.Object({ user: AdminUserSchema }));
const UsersData = Envelope(Type.Object({ users: Type.Array(AdminUserSchema), pagination: PaginationSchema }));

export default async function adminRoutes(
  fastify: FastifyInstance,
  { container }: { container: Pick<Container, 'admin' | 'userQueries' | 'config'> },
) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { admin, userQueries: queries } = container;
  const tags = ['Administration'];
  const security = [{ bearerAuth: [] }];

  // Before parsing and validation: a non-admin gets 403 whatever they sent.
  app.addHook('onRequest', app.requireAdmin);

  app.get(
    '/',
    {
      schema: {
        tags,
        operationId: 'listUsers',
        security,
        summary: 'List users',
        description:
          '`search` matches the start of the username or e-mail address (an index range scan, fast on millions of ' +
          'rows).',
        querystring: ListQuery,
        response: { 200: UsersData, ...errors(403) },
      },
    },
    async (request) => ok('Users', await queries.list(request.query)),
  );

  app.post(
    '/',
    {
      schema: {
        tags,
        operationId: 'createUser',
        security,
        summary: 'Create a user',
        body: createBody(container.config),
        response: { 201: UserData, ...errors(403, 409) },
      },
    },
    async (request, reply) => {
      const user = await admin.create(request.body, requestContext(request));
      return reply.code(201).send(ok('User created', { user: await queries.view(user) }));
    },
  );

  app.get(
    '/search',
    {
      schema: {
        tags,
        operationId: 'searchUsers',
        security,
        summary: 'Search users by username or e-mail prefix',
        querystring: SearchQuery,
        response: { 200: Envelope(Type.Object({ users: Type.Array(AdminUserSchema) })), ...errors(403) },
      },
    },
    async (request) =>
      ok('Search results', {
        users: await queries.search(request.query.q, request.query.limit, request.query.include_inactive),
      }),
  );

  app.get(
    '/statistics',
    {
      schema: {
        tags,
        operationId: 'getUserStatistics',
        security,
        summary: 'User statistics',
        description: '"today", "this week" (from Monday) and "this month" are calendar periods in UTC.',
        response: {
          200: Envelope(
            Type.Object(
              {
                total_users: Type.Integer(),
                active_users: Type.Integer(),
                inactive_users: Type.Integer(),
                verified_users: Type.Integer(),
                unverified_users: Type.Integer(),
                admin_users: Type.Integer(),
                locked_users: Type.Integer(),
                users_created_today: Type.Integer(),
                users_created_this_week: Type.Integer(),
                users_created_this_month: Type.Integer(),
              },
              { $id: 'UserStatistics' },
            ),
          ),
          ...errors(403),
        },
      },
    },
    async () => ok('User statistics', await queries.statistics()),
  );

  app.get(
    '/:id',
    {
      schema: {
        tags,
        operationId: 'getUser',
        security,
        summary: 'Read a user',
        params: IdParams,
        response: { 200: UserData, ...errors(403, 404) },
      },
    },
    async (request) => ok('User', { user: await queries.view(await queries.get(request.params.id)) }),
  );

  app.put(
    '/:id',
    {
      schema: {
        tags,
        operationId: 'updateUser',
        security,
        summary: 'Update a user',
        params: IdParams,
        body: UpdateBody,
        response: { 200: UserData, ...errors(403, 404, 409) },
      },
    },
    async (request) =>
      ok('User updated', {
        user: await queries.view(await admin.update(request.params.id, request.body, requestContext(request))),
      }),
  );

  app.delete(
    '/:id',
    {
      schema: {
        tags,
        operationId: 'deleteUser',
        security,
        summary: 'Delete a user',
        description:
          'Soft delete (default) deactivates the account and revokes its sessions; `hard_delete=true` removes the ' +
          'row and everything that belongs to it.',
        params: IdParams,
        querystring: DeleteQuery,
        response: { 200: MessageEnvelope, ...errors(403, 404) },
      },
    },
    async (request) => {
      await admin.remove(request.params.id, request.query.hard_delete, requestContext(request));
      return ok(request.query.hard_delete ? 'User deleted' : 'User deactivated', {});
    },
  );

  const action = (
    path: string,
    operationId: string,
    summary: string,
    run: (id: string, context: RequestContext) => Promise<UserRow>,
    message: string,
  ) =>
    app.post(
      path,
      {
        schema: {
          tags,
          operationId,
          security,
          summary,
          params: IdParams,
          response: { 200: UserData, ...errors(403, 404) },
        },
      },
      async (request) => {
        const { id } = request.params as { id: string };
        // The service answers with the row as it now is; the view adds the lock state.
        return ok(message, { user: await queries.view(await run(id, requestContext(request))) });
      },
    );

  action(
    '/:id/activate',
    'activateUser',
    'Activate a user',
    (id, context) => admin.activate(id, context),
    'User activated',
  );
  action(
    '/:id/deactivate',
    'deactivateUser',
    'Deactivate a user (revokes every session at once)',
    (id, context) => admin.deactivate(id, context),
    'User deactivated',
  );
  action(
    '/:id/unlock',
    'unlockUser',
    "Clear every login lock (untrusted devices, each trusted device, an administrator's lock)",
    (id, context) => admin.unlock(id, context),
    'User unlocked',
  );

  app.post(
    '/:id/lock',
    {
      schema: {
        tags,
        operationId: 'lockUser',
        security,
        summary: 'Lock logins for every device, trusted ones included',
        description:
          'For `minutes`, or until POST /api/users/{id}/unlock when absent. Logins (and re-authentication) answer ' +
          '423; existing sessions stay (deactivate ends them).',
        params: IdParams,
        body: LockBody,
        response: { 200: UserData, ...errors(403, 404) },
      },
    },
    async (request) => {
      const user = await admin.lock(request.params.id, request.body?.minutes, requestContext(request));
      return ok('User locked', { user: await queries.view(user) });
    },
  );

  app.post(
    '/:id/admin',
    {
      schema: {
        tags,
        operationId: 'setUserAdmin',
        security,
        summary: 'Grant or remove administrator rights',
        params: IdParams,
        body: AdminBody,
        response: { 200: UserData, ...errors(403, 404) },
      },
    },
    async (request) => {
      const user = await admin.setAdmin(request.params.id, request.body.is_admin, requestContext(request));
      return ok(request.body.is_admin ? 'Administrator rights granted' : 'Administrator rights removed', {
        user: await queries.view(user),
      });
    },
  );
}
