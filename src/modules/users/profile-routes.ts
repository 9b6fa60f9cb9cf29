/** /api/users/profile — the authenticated user's own profile (docs/api.md "Own profile"). */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { Container } from '../../container.js';
import { Envelope, ok } from '../../http/envelope.js';
import { Bio, Email, Password, PersonName } from '../../http/fields.js';
import { errorResponses as errors } from '../../http/openapi.js';
import { requestContext } from '../../http/request-context.js';
import { deviceCredentialOf } from '../../http/device-credential.js';
import { principalUserView, UserSchema } from './user-view.js';

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

export default async function profileRoutes(
  fastify: FastifyInstance,
  { container }: { container: Pick<Container, 'profile'> },
) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { profile } = container;
  const tags = ['Profile'];
  const security = [{ bearerAuth: [] }];
  const UserData = Envelope(Type.Object({ user: UserSchema }));

  app.get(
    '/profile',
    {
      preHandler: app.authenticate,
      schema: { tags, operationId: 'getProfile', security, summary: 'Your profile', response: { 200: UserData } },
    },
    async (request) => ok('Profile', { user: principalUserView(request.principal!.user) }),
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
          'A new `email` needs `current_password` in the same body (a wrong one is a 400 on that field and counts ' +
          'as a failed login for lockout; a locked counter is a 423). ' +
          'The address is not changed yet: it is kept as `pending_email` and the answer is 202. A confirmation ' +
          'link goes to the new address (POST /api/auth/email/confirm) and a notice to the current one; ' +
          'until it is confirmed, the account, login by e-mail, resets and all mail stay on the current address. ' +
          'Every outstanding reset, verification and e-mail change link stops working.',
        body: ProfileUpdate,
        response: { 200: UserData, 202: UserData, ...errors(423) },
      },
    },
    async (request, reply) => {
      const device = deviceCredentialOf(request);
      const { user, emailChangePending } = await profile.update(
        request.principal!.user,
        request.body,
        device,
        requestContext(request),
      );
      if (emailChangePending) {
        const message =
          'Confirm the new e-mail address from the link sent to it; until then your current address stays in use';
        return reply.code(202).send(ok(message, { user }));
      }
      return ok('Profile updated', { user });
    },
  );
}
