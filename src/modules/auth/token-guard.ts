/**
 * The authenticated request path: access token → user. The one place that decides whether an
 * access token is still good.
 *
 * A token is good when its signature and claims verify (tokens.ts), its session is not revoked
 * or past its end, its jti is not on the revocation list, and its user is active. The database
 * is the truth; the first use of a token checks it with one indexed query and the answer is
 * cached by jti, so later requests with the same token cost no query. Anything that revokes or
 * changes a user publishes to the ChangeFeed, which evicts the affected entries here and in
 * every other process.
 */
import type { Kysely } from 'kysely';
import type { Database } from '../../db/types.js';
import { authenticationError } from '../../http/errors.js';
import type { ChangeFeed, ChangeKind } from '../../state/change-feed.js';
import type { UserRow } from '../users/user-view.js';
import type { TokenClaims, TokenService } from './tokens.js';

export interface Principal {
  user: UserRow;
  claims: TokenClaims;
}

interface Entry extends Principal {
  cachedAt: number;
}

/** Bounds how long a missed invalidation (say, a crashed writer) could go unseen. */
const ENTRY_TTL_MS = 60_000;
const MAX_ENTRIES = 20_000;

export class TokenGuard {
  private readonly cache = new Map<string, Entry>();
  /** Bumped on every invalidation so a check that raced one is not cached. */
  private generation = 0;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly tokens: TokenService,
    changes: ChangeFeed,
  ) {
    changes.subscribe((kind, key) => this.invalidate(kind, key));
  }

  async authenticate(token: string): Promise<Principal> {
    const claims = await this.tokens.verify(token, 'access');
    const now = Date.now();
    const hit = this.cache.get(claims.jti);
    // The cache is keyed by jti, so a hit must also match the session and user the token names.
    if (hit && now - hit.cachedAt < ENTRY_TTL_MS && hit.claims.sid === claims.sid && hit.claims.sub === claims.sub) return hit;

    const generation = this.generation;
    const row = await this.db
      .selectFrom('sessions')
      .innerJoin('users', 'users.id', 'sessions.user_id')
      .leftJoin('revoked_tokens', (join) => join.on('revoked_tokens.jti', '=', claims.jti))
      .selectAll('users')
      .select(['sessions.revoked_at as session_revoked_at', 'sessions.expires_at as session_expires_at', 'revoked_tokens.jti as revoked_jti'])
      .where('sessions.id', '=', claims.sid)
      .where('sessions.user_id', '=', claims.sub)
      .executeTakeFirst();
    if (!row || row.session_revoked_at !== null || row.revoked_jti !== null || row.session_expires_at <= now) {
      throw authenticationError('Token has been revoked');
    }
    if (!row.is_active) throw authenticationError('Account is deactivated');
    const { session_revoked_at: _r, session_expires_at: _e, revoked_jti: _j, ...user } = row;
    const entry: Entry = { user, claims, cachedAt: now };
    if (generation === this.generation) {
      if (this.cache.size >= MAX_ENTRIES) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(claims.jti, entry);
    }
    return entry;
  }

  private invalidate(kind: ChangeKind, key: string): void {
    this.generation++;
    if (kind === 'jti') {
      this.cache.delete(key);
      return;
    }
    if (kind !== 'session' && kind !== 'user') return;
    for (const [jti, entry] of this.cache) {
      if ((kind === 'session' && entry.claims.sid === key) || (kind === 'user' && entry.user.id === key)) this.cache.delete(jti);
    }
  }
}
