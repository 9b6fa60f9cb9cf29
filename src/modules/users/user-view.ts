import { Type, type Static, type TUnsafe } from '@sinclair/typebox';
import type { Selectable } from 'kysely';
import type { UsersTable } from '../../db/types.js';
import { Nullable } from '../../http/envelope.js';
import type { AccountLock } from '../auth/lockout.js';

export type UserRow = Selectable<UsersTable>;

const Timestamp = Nullable(Type.String({ format: 'date-time' }));

/** A user as every response shows it (docs/api.md). Never a hash, token or lockout counter. */
export const UserSchema = Type.Object(
  {
    id: Type.String(),
    username: Type.String(),
    email: Type.String(),
    first_name: Nullable(Type.String()),
    last_name: Nullable(Type.String()),
    bio: Nullable(Type.String()),
    is_active: Type.Boolean(),
    is_verified: Type.Boolean(),
    is_admin: Type.Boolean(),
    created_at: Type.String({ format: 'date-time' }),
    updated_at: Type.String({ format: 'date-time' }),
    last_login_at: Timestamp,
    pending_email: Nullable(
      Type.String({
        description: 'An address asked for and not yet confirmed from the link mailed to it; null when none',
      }),
    ),
  },
  { $id: 'User' },
);
export type UserView = Static<typeof UserSchema>;

/**
 * Admin views add the running account-wide lock: its end, and whether it stops every device or only devices without a
 * trusted credential.
 */
export const AdminUserSchema = Type.Composite(
  [
    Type.Omit(UserSchema, []),
    Type.Object({
      locked_until: Timestamp,
      lock_scope: Nullable(
        Type.String({
          enum: ['all', 'untrusted_devices'],
          description:
            "all: every device (an administrator's lock, or LOCKOUT_MODE=account); untrusted_devices: devices " +
            'without a trusted credential',
        }),
      ) as unknown as TUnsafe<AccountLock['scope'] | null>,
    }),
  ],
  { $id: 'AdminUser' },
);
export type AdminUserView = Static<typeof AdminUserSchema>;

export const iso = (ms: number | null) => (ms == null ? null : new Date(Number(ms)).toISOString());

export function toUserView(row: UserRow): UserView {
  return {
    id: row.id,
    username: row.username,
    email: row.email,
    first_name: row.first_name,
    last_name: row.last_name,
    bio: row.bio,
    is_active: Boolean(row.is_active),
    is_verified: Boolean(row.is_verified),
    is_admin: Boolean(row.is_admin),
    created_at: iso(row.created_at)!,
    updated_at: iso(row.updated_at)!,
    last_login_at: iso(row.last_login_at),
    pending_email: row.pending_email ?? null,
  };
}

/**
 * The view of an authenticated user's row. token-guard.ts hands out the same row object for as
 * long as a token stays cached, so its view is built once, not on every request.
 */
const principalViews = new WeakMap<UserRow, UserView>();
export function principalUserView(row: UserRow): UserView {
  let view = principalViews.get(row);
  if (!view) principalViews.set(row, (view = toUserView(row)));
  return view;
}

export function toAdminUserView(row: UserRow, lock: AccountLock | undefined): AdminUserView {
  const running = lock && lock.until > Date.now() ? lock : undefined;
  return { ...toUserView(row), locked_until: running ? iso(running.until) : null, lock_scope: running?.scope ?? null };
}
