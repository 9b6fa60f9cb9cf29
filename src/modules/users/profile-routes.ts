/** /api/users/profile — the authenticated user's own profile (API.md "Own profile"). */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { Container } from '../../container.js';
import { isUniqueViolation } from '../../db/index.js';
import { Envelope, ok } from '../../http/envelope.js';
import { conflict } from '../../http/errors.js';
import { Bio, Email, PersonName, sanitizeText } from '../../http/fields.js';
import { errors } from '../auth/schemas.js';
import { normalizeEmail } from './user-repository.js';
import { principalUserView, toUserView, UserSchema, type UserRow } from './user-view.js';

/** Only these fields can be changed here: is_admin, is_active and the like are not even accepted. */
const ProfileUpdate = Type.Object(
  {
    first_name: Type.Optional(Type.Union([PersonName, Type.Null()])),
    last_name: Type.Optional(Type.Union([PersonName, Type.Null()])),
    bio: Type.Optional(Type.Union([Bio, Type.Null()])),
    email: Type.Optional(Email),
  },
  { additionalProperties: false },
);

export default async function profileRoutes(fastify: FastifyInstance, { container }: { container: Container }) {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const tags = ['Profile'];
  const security = [{ bearerAuth: [] }];
  const UserData = Envelope(Type.Object({ user: UserSchema }));

  app.get('/profile', { preHandler: app.authenticate, schema: { tags, security, summary: 'Your profile', response: { 200: UserData, ...errors(401) } } }, async (request) =>
    ok('Profile', { user: principalUserView(request.principal!.user) }),
  );

  app.put(
    '/profile',
    {
      preHandler: app.authenticate,
      schema: {
        tags,
        security,
        summary: 'Update your profile',
        description: 'Changing the e-mail address marks it unverified and sends a new verification e-mail.',
        body: ProfileUpdate,
        response: { 200: UserData, ...errors(400, 401, 409) },
      },
    },
    async (request) => {
      const current = request.principal!.user;
      const body = request.body;
      const changes: Partial<UserRow> = {};
      if (body.first_name !== undefined) changes.first_name = body.first_name?.trim() || null;
      if (body.last_name !== undefined) changes.last_name = body.last_name?.trim() || null;
      if (body.bio !== undefined) changes.bio = body.bio === null ? null : sanitizeText(body.bio) || null;
      if (body.email !== undefined && normalizeEmail(body.email) !== current.email) {
        if ((await container.users.taken({ email: body.email }, current.id)).email) {
          throw conflict('E-mail address is already registered', { email: ['E-mail address is already registered'] });
        }
        changes.email = normalizeEmail(body.email);
        changes.is_verified = 0;
      }
      try {
        await container.users.update(current.id, changes);
      } catch (error) {
        if (isUniqueViolation(error)) throw conflict('E-mail address is already registered', { email: ['E-mail address is already registered'] });
        throw error;
      }
      await container.changes.publish('user', current.id);
      const user = (await container.users.findById(current.id))!;
      if (changes.email) await container.auth.sendVerification(user);
      return ok('Profile updated', { user: toUserView(user) });
    },
  );
}
