/** /api/users/profile — the authenticated user's own profile (docs/api.md "Own profile"). */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { Container } from '../../container.js';
import { Envelope, ok } from '../../http/envelope.js';
import { validationError } from '../../core/errors.js';
import { Bio, Email, Password, PersonName, sanitizeText } from '../../http/fields.js';
import { errorResponses as errors } from '../../http/openapi.js';
import { requestContext } from '../../http/request-context.js';
import { deviceCredentialOf } from '../../http/device-credential.js';
import { normalizeEmail } from './user-repository.js';
import { principalUserView, toUserView, UserSchema, type UserRow } from './user-view.js';

/** Only these fields can be changed here: is_admin, is_active and the like are not even accepted. */
const ProfileUpdate = Type.Object(
  {
    first_name: Type.Optional(Type.Union([PersonName, Type.Null()])),
    last_name: Type.Optional(Type.Union([PersonName, Type.Null()])),
    bio: Type.Optional(Type.Union([Bio, Type.Null()])),
    email: Type.Optional(Email),
    current_password: Type.Optional(Password),
  },
  { additionalProperties: false },
);

export default async function profileRoutes(fastify: FastifyInstance, { container }: { container: Container }) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const tags = ['Profile'];
  const security = [{ bearerAuth: [] }];
  const UserData = Envelope(Type.Object({ user: UserSchema }));

  app.get('/profile', { preHandler: app.authenticate, schema: { tags, operationId: 'getProfile', security, summary: 'Your profile', response: { 200: UserData } } }, async (request) =>
    ok('Profile', { user: principalUserView(request.principal!.user) }),
  );

  app.put(
    '/profile',
    {
      preHandler: app.authenticate,
      schema: {
        tags,
        operationId: 'updateProfile',
        security,
        summary: 'Update your profile',
        description:
          'A new `email` needs `current_password` in the same body (a wrong one is a 400 on that field and counts as a failed login for lockout; a locked counter is a 423). ' +
          'The address is not changed yet: it is kept as `pending_email` and the answer is 202. A confirmation link goes to the new address (POST /api/auth/email/confirm) and a notice to the current one; ' +
          'until it is confirmed, the account, login by e-mail, resets and all mail stay on the current address. Every outstanding reset, verification and e-mail change link stops working.',
        body: ProfileUpdate,
        response: { 200: UserData, 202: UserData, ...errors(423) },
      },
    },
    async (request, reply) => {
      const current = request.principal!.user;
      const body = request.body;
      const changes: Partial<UserRow> = {};
      if (body.first_name !== undefined) changes.first_name = body.first_name?.trim() || null;
      if (body.last_name !== undefined) changes.last_name = body.last_name?.trim() || null;
      if (body.bio !== undefined) changes.bio = body.bio === null ? null : sanitizeText(body.bio) || null;
      const newEmail = body.email !== undefined && normalizeEmail(body.email) !== current.email ? body.email : undefined;
      if (newEmail !== undefined) {
        if (body.current_password === undefined) {
          throw validationError('Your current password is required to change the e-mail address', { current_password: ['Required to change the e-mail address'] });
        }
        // Re-authenticates before anything is written (src/modules/auth/auth-service.ts).
        const context = requestContext(request);
        const device = deviceCredentialOf(request);
        const user = await container.auth.reauthenticate(current.id, body.current_password, 'email_change', device, context);
        await container.emailChanges.request(user, newEmail, changes, context);
      } else {
        await container.usersService.update(current.id, changes);
      }
      const user = (await container.users.findById(current.id))!;
      if (newEmail !== undefined) {
        return reply.code(202).send(ok('Confirm the new e-mail address from the link sent to it; until then your current address stays in use', { user: toUserView(user) }));
      }
      return ok('Profile updated', { user: toUserView(user) });
    },
  );
}
