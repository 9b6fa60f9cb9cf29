import { Type } from '@sinclair/typebox';
import type { Config } from '../../config/index.js';
import { Envelope, MessageEnvelope } from '../../http/envelope.js';
import { Email, NewPassword, NO_NUL, OpaqueToken, Password, PersonName, Username } from '../../http/fields.js';
import { UserSchema } from '../users/user-view.js';

const strict = { additionalProperties: false } as const;

export const registerBody = (config: Config) =>
  Type.Object(
    {
      username: Username,
      email: Email,
      password: NewPassword(config),
      first_name: Type.Optional(PersonName),
      last_name: Type.Optional(PersonName),
    },
    strict,
  );
const LoginName = { minLength: 1, maxLength: 254, pattern: NO_NUL };
export const LoginBody = Type.Object(
  {
    username: Type.String({
      ...LoginName,
      description: 'Username or e-mail address. The alias `username_or_email` is read as this field.',
    }),
    username_or_email: Type.Optional(
      Type.String({
        ...LoginName,
        description:
          "Alias of `username` (the original Flokie's name for it): send one of the two, not both. Read as " +
          '`username`, so errors name `username`.',
      }),
    ),
    password: Password,
    remember_me: Type.Optional(
      Type.Boolean({
        description:
          'Cookie mode only. false: the refresh cookie ends with the browser session (no Max-Age). true or absent: ' +
          'it lasts as long as the refresh token.',
      }),
    ),
  },
  strict,
);
export const RefreshBody = Type.Union(
  [Type.Object({ refresh_token: Type.Optional(OpaqueToken) }, strict), Type.Null()],
  {
    description: 'Optional: the refresh token may come instead as `Authorization: Bearer` or as the refresh cookie.',
  },
);
export const changePasswordBody = (config: Config) =>
  Type.Object(
    { current_password: Password, new_password: NewPassword(config), confirm_password: NewPassword(config) },
    strict,
  );
export const ResetRequestBody = Type.Object({ email: Email }, strict);
export const resetBody = (config: Config) =>
  Type.Object({ token: OpaqueToken, new_password: NewPassword(config), confirm_password: NewPassword(config) }, strict);
export const VerifyEmailBody = Type.Object({ token: OpaqueToken }, strict);
export const ConfirmEmailChangeBody = Type.Object({ token: OpaqueToken }, strict);
export const SessionParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) }, strict);

export const TokenData = Type.Object(
  {
    access_token: Type.String(),
    refresh_token: Type.Optional(
      Type.String({ description: 'Absent in cookie mode (X-Auth-Mode: cookie): it is set as an HttpOnly cookie.' }),
    ),
    token_type: Type.Literal('Bearer'),
    expires_in: Type.Integer({ description: 'Access token lifetime in seconds' }),
  },
  { $id: 'TokenPair' },
);
export const LoginData = Type.Composite(
  [
    TokenData,
    Type.Object({
      device_token: Type.Optional(
        Type.String({
          description:
            'Device credential for non-browser clients (LOCKOUT_MODE=device; absent in cookie mode, where it is ' +
            'the flokie_device cookie): send it back as X-Device-Token on later logins.',
        }),
      ),
      user: UserSchema,
    }),
  ],
  { $id: 'LoginResult' },
);
export const UserData = Type.Object({ user: UserSchema });
export const SessionSchema = Type.Object(
  {
    id: Type.String(),
    created_at: Type.String({ format: 'date-time' }),
    last_used_at: Type.String({ format: 'date-time' }),
    expires_at: Type.String({ format: 'date-time' }),
    ip: Type.Union([Type.String(), Type.Null()]),
    user_agent: Type.Union([Type.String(), Type.Null()]),
    current: Type.Boolean(),
  },
  { $id: 'Session' },
);

export { Envelope, MessageEnvelope };
