/**
 * Login sessions and refresh-token rotation: the one place that decides whether a refresh token
 * may be spent.
 *
 * Each login creates a session row holding the jti of the one refresh token that may still be
 * spent. Refreshing is a compare-and-swap on that column (`UPDATE … WHERE refresh_jti = :presented`),
 * so of two concurrent uses exactly one changes a row, on every database, with no lock held across
 * the request. The session's absolute end (`expires_at`) is set at login and never moves.
 *
 * A presented refresh token whose jti is no longer current has been spent before. Within
 * REFRESH_REUSE_GRACE_SECONDS of that rotation, while its successor is still unused (still the
 * current jti), it is a retry after a lost answer: the session gets a fresh pair and the unused
 * successor stops working — a compare-and-swap on the successor, served once per rotation, so of
 * several retries racing exactly one gets the pair and the others a plain 401 (the session lives).
 * Otherwise — after the window, or once the successor was used — it is theft: the whole session
 * (every token descended from that login) is revoked. A thief replaying within the window does not
 * escape: the successor it replaced is the one the real client holds, and that client's next
 * refresh is then a reuse (docs/security.md).
 *
 * "Served once" is recorded without a column of its own: a rotation sets last_used_at = rotated_at,
 * a served retry moves last_used_at past it.
 */
import { randomUUID } from 'node:crypto';
import type { Kysely, Selectable } from 'kysely';
import type { Database, SessionsTable } from '../../db/types.js';
import { authenticationError } from '../../core/errors.js';
import type { ChangeFeed } from '../../state/change-feed.js';
import { newJti, type TokenClaims } from './tokens.js';

export type SessionRow = Selectable<SessionsTable>;

export type RevokeReason =
  | 'logout'
  | 'logout_all'
  | 'user_revoked'
  | 'password_change'
  | 'password_reset'
  | 'deactivated'
  | 'refresh_reuse'
  | 'admin'
  | 'email_change';

export type RotateResult =
  | {
      ok: true;
      session: SessionRow;
      refreshJti: string;
      /** The unused successor a retry replaced. */ replacedJti?: string;
    }
  | { ok: false; reason: 'unknown' | 'revoked' | 'expired' | 'reuse' | 'grace' };

export class SessionStore {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly changes: ChangeFeed,
    private readonly maxLifetimeMs: number,
    private readonly reuseGraceMs: number,
  ) {}

  async create(userId: string, ip: string | null, userAgent: string | null): Promise<SessionRow> {
    const now = Date.now();
    const row: SessionRow = {
      id: randomUUID(),
      user_id: userId,
      created_at: now,
      last_used_at: now,
      expires_at: now + this.maxLifetimeMs,
      ip: ip?.slice(0, 64) ?? null,
      user_agent: userAgent?.slice(0, 512) ?? null,
      refresh_jti: newJti(),
      previous_refresh_jti: null,
      rotated_at: now,
      revoked_at: null,
      revoked_reason: null,
    };
    await this.db.insertInto('sessions').values(row).execute();
    return row;
  }

  /** Spends the presented refresh token and records its successor, atomically. */
  async rotate(claims: TokenClaims): Promise<RotateResult> {
    const now = Date.now();
    const nextJti = newJti();
    const updated = await this.db
      .updateTable('sessions')
      .set({ refresh_jti: nextJti, previous_refresh_jti: claims.jti, rotated_at: now, last_used_at: now })
      .where('id', '=', claims.sid)
      .where('user_id', '=', claims.sub)
      .where('refresh_jti', '=', claims.jti)
      .where('revoked_at', 'is', null)
      .where('expires_at', '>', now)
      .executeTakeFirst();
    const session = await this.find(claims);
    if (!session) return { ok: false, reason: 'unknown' };
    if (Number(updated.numUpdatedRows) === 1) return { ok: true, session, refreshJti: nextJti };
    if (session.revoked_at !== null) return { ok: false, reason: 'revoked' };
    if (session.expires_at <= now) return { ok: false, reason: 'expired' };
    if (this.isRetry(session, claims.jti, now)) {
      if (session.last_used_at === session.rotated_at) {
        // Swap the unused successor for a new one, only if it is still the one we saw and no retry was served.
        const servedAt = Math.max(now, session.rotated_at + 1);
        const retried = await this.db
          .updateTable('sessions')
          .set({ refresh_jti: nextJti, last_used_at: servedAt })
          .where('id', '=', session.id)
          .where('refresh_jti', '=', session.refresh_jti)
          .where('previous_refresh_jti', '=', claims.jti)
          .where('last_used_at', '=', session.rotated_at)
          .where('revoked_at', 'is', null)
          .where('expires_at', '>', now)
          .executeTakeFirst();
        if (Number(retried.numUpdatedRows) === 1) {
          return {
            ok: true,
            session: { ...session, refresh_jti: nextJti, last_used_at: servedAt },
            refreshJti: nextJti,
            replacedJti: session.refresh_jti,
          };
        }
      }
      // A retry of this token was served already (a racing or repeated retry): refused, not theft.
      // Unless the session changed meanwhile by a use of the successor or a revocation: decided below.
      const current = await this.find(claims);
      if (current && current.revoked_at !== null) return { ok: false, reason: 'revoked' };
      if (current && this.isRetry(current, claims.jti, Date.now())) return { ok: false, reason: 'grace' };
    }
    // The token was valid once, its successor has been used or the window is over: theft.
    await this.revoke(session.id, 'refresh_reuse');
    return { ok: false, reason: 'reuse' };
  }

  /**
   * A re-presented token counts as a retry within the grace period of the rotation that spent it, while its successor
   * is unused.
   */
  private isRetry(session: SessionRow, presentedJti: string, now: number): boolean {
    return (
      this.reuseGraceMs > 0 &&
      session.previous_refresh_jti === presentedJti &&
      now - session.rotated_at <= this.reuseGraceMs
    );
  }

  private async find(claims: TokenClaims): Promise<SessionRow | undefined> {
    const session = await this.db.selectFrom('sessions').selectAll().where('id', '=', claims.sid).executeTakeFirst();
    return session && session.user_id === claims.sub ? session : undefined;
  }

  async revoke(sessionId: string, reason: RevokeReason): Promise<boolean> {
    const result = await this.db
      .updateTable('sessions')
      .set({ revoked_at: Date.now(), revoked_reason: reason })
      .where('id', '=', sessionId)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    await this.changes.publish('session', sessionId);
    return Number(result.numUpdatedRows) > 0;
  }

  /** Revokes every session of a user (optionally keeping one); returns how many were live. */
  async revokeAllForUser(userId: string, reason: RevokeReason, exceptSessionId?: string): Promise<number> {
    let query = this.db
      .updateTable('sessions')
      .set({ revoked_at: Date.now(), revoked_reason: reason })
      .where('user_id', '=', userId)
      .where('revoked_at', 'is', null);
    if (exceptSessionId) query = query.where('id', '!=', exceptSessionId);
    const result = await query.executeTakeFirst();
    await this.changes.publish('user', userId);
    return Number(result.numUpdatedRows);
  }

  /** The session a refresh token's jti names, if any (revoked or not). */
  findByRefreshJti(jti: string): Promise<SessionRow | undefined> {
    return this.db.selectFrom('sessions').selectAll().where('refresh_jti', '=', jti).executeTakeFirst();
  }

  listActive(userId: string): Promise<SessionRow[]> {
    return this.db
      .selectFrom('sessions')
      .selectAll()
      .where('user_id', '=', userId)
      .where('revoked_at', 'is', null)
      .where('expires_at', '>', Date.now())
      .orderBy('last_used_at', 'desc')
      .limit(100)
      .execute();
  }

  findForUser(sessionId: string, userId: string): Promise<SessionRow | undefined> {
    return this.db
      .selectFrom('sessions')
      .selectAll()
      .where('id', '=', sessionId)
      .where('user_id', '=', userId)
      .executeTakeFirst();
  }

  /** Deletes sessions that ended long enough ago that none of their tokens can still be valid. */
  async purgeExpired(olderThanMs: number): Promise<void> {
    const cutoff = Date.now() - olderThanMs;
    await this.db.deleteFrom('sessions').where('expires_at', '<', cutoff).execute();
    await this.db.deleteFrom('sessions').where('revoked_at', '<', cutoff).execute();
  }
}

export function requireSession(result: RotateResult): asserts result is Extract<RotateResult, { ok: true }> {
  if (!result.ok)
    throw authenticationError(result.reason === 'expired' ? 'Session has expired' : 'Invalid refresh token');
}
