/**
 * The signed-in user's own profile (docs/api.md "Own profile"): names and bio change at once; a
 * new e-mail address needs the current password first and then waits for confirmation from the
 * link mailed to it (src/modules/auth/email-change.ts).
 */
import type { RequestContext } from '../../core/request-context.js';
import { authenticationError, validationError } from '../../core/errors.js';
import type { AuthService } from '../auth/auth-service.js';
import type { EmailChanges } from '../auth/email-change.js';
import { normalizeEmail, type UserRepository } from './user-repository.js';
import { toUserView, type UserRow, type UserView } from './user-view.js';
import { cleanPersonFields, type UserChanges, type UsersService } from './users-service.js';

export interface ProfileChange {
  first_name?: string | null;
  last_name?: string | null;
  bio?: string | null;
  email?: string;
  current_password?: string;
}

export interface ProfileDeps {
  users: UserRepository;
  usersService: UsersService;
  auth: AuthService;
  emailChanges: EmailChanges;
}

export class ProfileService {
  constructor(private readonly d: ProfileDeps) {}

  /**
   * Applies `change` to `current` (the signed-in user). `emailChangePending` says a new address
   * now waits for confirmation; the re-authentication it needs counts for lockout like a login,
   * on the device of `deviceCredential` when it is trusted.
   */
  async update(
    current: UserRow,
    change: ProfileChange,
    deviceCredential: string | undefined,
    context: RequestContext,
  ): Promise<{ user: UserView; emailChangePending: boolean }> {
    const changes: UserChanges = cleanPersonFields(change);
    const emailDiffers = change.email !== undefined && normalizeEmail(change.email) !== current.email;
    const newEmail = emailDiffers ? change.email : undefined;
    if (newEmail !== undefined) {
      if (change.current_password === undefined) {
        throw validationError('Your current password is required to change the e-mail address', {
          current_password: ['Required to change the e-mail address'],
        });
      }
      // Re-authenticates before anything is written.
      const password = change.current_password;
      const user = await this.d.auth.reauthenticate(current.id, password, 'email_change', deviceCredential, context);
      await this.d.emailChanges.request(user, newEmail, changes, context);
    } else {
      await this.d.usersService.update(current.id, changes);
    }
    const user = await this.d.users.findById(current.id);
    // Deleted by an administrator while this request ran: the token's account is gone, not a 500.
    if (!user) throw authenticationError('Your account no longer exists');
    return { user: toUserView(user), emailChangePending: newEmail !== undefined };
  }
}
