/**
 * The authenticated request path: access token → user. The one place that decides whether an
 * access token is still good.
 *
 * A token is good when its signature and claims verify (tokens.ts), its session is not revoked
 * or past its end, its jti is not on the revocation list, and its user is active. The database
 * is the truth; the first use of a token checks all of that (one HMAC, one indexed query) and the
 * answer is cached for the exact token string, so later requests with the same token cost one
 * map lookup and one string comparison: a different string, however close, is a miss and is
 * verified in full. The map is keyed by the signature segment alone (hashing 43 characters, not
 * the whole token); the comparison with the whole cached string is what proves the match. An
 * entry lives until the token expires or ENTRY_TTL_MS passes, whichever is first. Anything that
 * revokes or changes a user publishes to the ChangeFeed, which evicts the affected entries here
 * and in every other process.
 */
import type { Kysely } from 'kysely';
import { precompile } from '../../db/precompiled.js';
import type { Database } from '../../db/types.js';
import { authenticationError } from '../../core/errors.js';
import type { ChangeFeed, ChangeKind } from '../../state/change-feed.js';
import type { UserRow } from '../users/user-view.js';
import { revokedJti } from './revocation.js';
import type { TokenClaims, TokenService } from './tokens.js';

export interface Principal {
  user: UserRow;
  claims: TokenClaims;
}

interface Entry {
  principal: Principal;
  /** The whole token string this entry was proved for (not on the principal handlers see). */
  token: string;
  /** Epoch ms after which the entry must be checked again. */
  validUntil: number;
}

/** Bounds how long a missed invalidation (say, a crashed writer) could go unseen. */
const ENTRY_TTL_MS = 60_000;
const MAX_ENTRIES = 20_000;

/** A signed token's last segment: its signature. */
function cacheKey(token: string): string {
  return token.slice(token.lastIndexOf('.') + 1);
}

export class TokenGuard {
  /** Signature segment → what its token proved, and jti → signature for revocations by jti. */
  private readonly cache = new Map<string, Entry>();
  private readonly keyByJti = new Map<string, string>();
  /** Bumped on every invalidation so a check that raced one is not cached. */
  private generation = 0;
  /** Cache hits and misses, plain counters read by /metrics at scrape time (nothing else on this path). */
  readonly stats = { hits: 0, misses: 0 };
  /** The token's user with its session's state and the jti's revocation, in one indexed query. */
  private readonly lookup;

  constructor(
    db: Kysely<Database>,
    private readonly tokens: TokenService,
    changes: ChangeFeed,
  ) {
    changes.subscribe((kind, key) => this.invalidate(kind, key));
    this.lookup = precompile(db, ['jti', 'sid', 'sub'], (p) =>
      db
        .selectFrom('sessions')
        .innerJoin('users', 'users.id', 'sessions.user_id')
        .selectAll('users')
        .select([
          'sessions.revoked_at as session_revoked_at',
          'sessions.expires_at as session_expires_at',
          revokedJti(db, p.jti).as('revoked_jti'),
        ])
        .where('sessions.id', '=', p.sid)
        .where('sessions.user_id', '=', p.sub),
    );
  }

  async authenticate(token: string): Promise<Principal> {
    const now = Date.now();
    const key = cacheKey(token);
    const hit = this.cache.get(key);
    if (hit && hit.token === token && now < hit.validUntil) {
      this.stats.hits++;
      return hit.principal;
    }
    this.stats.misses++;

    const claims = await this.tokens.verify(token, 'access');
    const generation = this.generation;
    const [row] = await this.lookup({ jti: claims.jti, sid: claims.sid, sub: claims.sub });
    if (!row || row.session_revoked_at !== null || row.revoked_jti !== null || row.session_expires_at <= now) {
      throw authenticationError('Token has been revoked');
    }
    if (!row.is_active) throw authenticationError('Account is deactivated');
    const { session_revoked_at: _r, session_expires_at: _e, revoked_jti: _j, ...user } = row;
    const entry: Entry = {
      principal: { user, claims },
      token,
      validUntil: Math.min(now + ENTRY_TTL_MS, claims.exp * 1000, row.session_expires_at),
    };
    if (generation === this.generation) this.remember(key, entry);
    return entry.principal;
  }

  private remember(key: string, entry: Entry): void {
    if (this.cache.size >= MAX_ENTRIES) this.forget(this.cache.keys().next().value!);
    this.cache.set(key, entry);
    this.keyByJti.set(entry.principal.claims.jti, key);
  }

  private forget(key: string): void {
    const entry = this.cache.get(key);
    if (!entry) return;
    this.cache.delete(key);
    // Only the signer can make a second string for a jti, so the jti names this entry alone.
    this.keyByJti.delete(entry.principal.claims.jti);
  }

  private invalidate(kind: ChangeKind, key: string): void {
    this.generation++;
    if (kind === 'jti') {
      const cachedAs = this.keyByJti.get(key);
      if (cachedAs) this.forget(cachedAs);
      return;
    }
    if (kind !== 'session' && kind !== 'user') return;
    for (const [cached, entry] of this.cache) {
      const { claims, user } = entry.principal;
      if ((kind === 'session' && claims.sid === key) || (kind === 'user' && user.id === key)) this.forget(cached);
    }
  }
}
