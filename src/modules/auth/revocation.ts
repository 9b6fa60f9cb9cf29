/**
 * Revocation: the one owner of the revoked-token list (`revoked_tokens`: read, write, purge) and
 * of the emergency revocations of docs/incident-response.md (one token by its jti, every session
 * of a user). Ending sessions in the ordinary flows (logout, password change, deactivation) is
 * sessions.ts's; token-guard.ts checks the list through `revokedJti`, inside its one lookup.
 */
import type { Kysely } from 'kysely';
import type { Config } from '../../config/index.js';
import type { RequestContext } from '../../core/request-context.js';
import { notFound } from '../../core/errors.js';
import { isUniqueViolation } from '../../db/index.js';
import type { Database } from '../../db/types.js';
import type { ChangeFeed } from '../../state/change-feed.js';
import type { SecurityEvents } from '../security/events.js';
import { actorLabel, recordAdminAction } from '../users/admin-action.js';
import type { UserRepository } from '../users/user-repository.js';
import type { SessionStore } from './sessions.js';

export interface RevocationDeps {
  config: Config;
  db: Kysely<Database>;
  users: UserRepository;
  sessions: SessionStore;
  changes: ChangeFeed;
  events: SecurityEvents;
}

export interface RevokedToken {
  session_revoked: boolean;
  already_revoked: boolean;
  session: { id: string; user_id: string; username: string | null; ended_before: boolean } | null;
}

/** The jti itself when it is on the revoked list, else null: a subquery for token-guard.ts's lookup. */
export function revokedJti(db: Kysely<Database>, jti: string) {
  return db.selectFrom('revoked_tokens').select('jti').where('jti', '=', jti);
}

/** Drops entries whose token would have expired anyway (it then fails verification on its own). */
export async function purgeExpiredRevocations(db: Kysely<Database>, now: number): Promise<number> {
  const result = await db.deleteFrom('revoked_tokens').where('expires_at', '<', now).executeTakeFirst();
  return Number(result.numDeletedRows);
}

export class Revocation {
  constructor(private readonly d: RevocationDeps) {}

  async isRevoked(jti: string): Promise<boolean> {
    return (await revokedJti(this.d.db, jti).executeTakeFirst()) !== undefined;
  }

  /**
   * Revokes one token by its jti (access or refresh); it fails everywhere at once. Says what the
   * jti belonged to: a refresh token's session (revoked with it) and user, or nothing known (an
   * access token's jti is not stored; it is refused by jti all the same).
   */
  async revokeToken(jti: string, context: RequestContext): Promise<RevokedToken> {
    const now = Date.now();
    // A refresh jti names its session: revoke the session so its access tokens die with it.
    const session = await this.d.sessions.findByRefreshJti(jti);
    // We do not know the token's own expiry from its jti; keep the entry as long as any token can live.
    const keepUntil = session?.expires_at ?? now + this.d.config.SESSION_MAX_LIFETIME_DAYS * 86_400_000;
    let alreadyRevoked = false;
    try {
      await this.d.db
        .insertInto('revoked_tokens')
        .values({ jti, user_id: session?.user_id ?? null, expires_at: keepUntil, revoked_at: now })
        .execute();
    } catch (error) {
      if (!isUniqueViolation(error)) throw error; // already revoked: fine
      alreadyRevoked = true;
    }
    await this.d.changes.publish('jti', jti);
    if (session) await this.d.sessions.revoke(session.id, 'admin');
    const owner = session?.user_id ?? null;
    this.d.events.emit({ type: 'token_revoked', context, userId: owner, details: { jti, by: actorLabel(context) } });
    recordAdminAction(this.d.events, context, 'revoke_token', owner, { jti });
    if (!session) return { session_revoked: false, already_revoked: alreadyRevoked, session: null };
    const user = await this.d.users.findById(session.user_id);
    return {
      session_revoked: true,
      already_revoked: alreadyRevoked,
      session: {
        id: session.id,
        user_id: session.user_id,
        username: user?.username ?? null,
        ended_before: session.revoked_at !== null || session.expires_at <= now,
      },
    };
  }

  /** Revokes every session of a user (every access and refresh token descended from them). */
  async revokeAllSessions(userId: string, context: RequestContext): Promise<number> {
    const user = await this.d.users.findById(userId);
    if (!user) throw notFound('User not found');
    const count = await this.d.sessions.revokeAllForUser(userId, 'admin');
    const by = actorLabel(context);
    this.d.events.emit({ type: 'token_revoked', context, userId, details: { all_sessions: true, count, by } });
    const details = { username: user.username, revoked_sessions: count };
    recordAdminAction(this.d.events, context, 'revoke_all_sessions', userId, details);
    return count;
  }
}
