/**
 * Single-use, time-limited tokens for password reset and e-mail verification. Only the SHA-256
 * of a token is stored, so a database leak yields no usable link. Consuming is a conditional
 * UPDATE (`used_at IS NULL AND expires_at > now`), so a token works exactly once even when
 * presented twice at the same moment.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import { withConflictRetry } from '../../db/index.js';
import type { Database, OneTimeTokensTable } from '../../db/types.js';

export type Purpose = OneTimeTokensTable['purpose'];

export const hashToken = (token: string) => createHash('sha256').update(token).digest('hex');

export class OneTimeTokens {
  constructor(private readonly db: Kysely<Database>) {}

  /** Issues a new token; earlier unused tokens of the same purpose for the user stop working. */
  async issue(userId: string, purpose: Purpose, ttlMs: number): Promise<string> {
    const token = randomBytes(32).toString('base64url');
    const now = Date.now();
    // Two requests for the same user can deadlock on MySQL/MariaDB's index locks; the loser retries.
    await withConflictRetry(() => this.db.transaction().execute(async (trx) => {
      await trx.updateTable('one_time_tokens').set({ used_at: now }).where('user_id', '=', userId).where('purpose', '=', purpose).where('used_at', 'is', null).execute();
      await trx.insertInto('one_time_tokens').values({ token_hash: hashToken(token), user_id: userId, purpose, expires_at: now + ttlMs, used_at: null, created_at: now }).execute();
    }));
    return token;
  }

  /** Spends a token; returns its user id, or null if unknown, used or expired. */
  async consume(token: string, purpose: Purpose, db: Kysely<Database> = this.db): Promise<string | null> {
    if (token.length < 20 || token.length > 200) return null;
    const tokenHash = hashToken(token);
    const now = Date.now();
    const row = await db.selectFrom('one_time_tokens').select(['user_id']).where('token_hash', '=', tokenHash).where('purpose', '=', purpose).executeTakeFirst();
    if (!row) return null;
    const result = await db
      .updateTable('one_time_tokens')
      .set({ used_at: now })
      .where('token_hash', '=', tokenHash)
      .where('used_at', 'is', null)
      .where('expires_at', '>', now)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1 ? row.user_id : null;
  }

  /** The user a token belongs to if it could still be spent, without spending it. */
  async peek(token: string, purpose: Purpose): Promise<string | null> {
    if (token.length < 20 || token.length > 200) return null;
    const row = await this.db
      .selectFrom('one_time_tokens')
      .select('user_id')
      .where('token_hash', '=', hashToken(token))
      .where('purpose', '=', purpose)
      .where('used_at', 'is', null)
      .where('expires_at', '>', Date.now())
      .executeTakeFirst();
    return row?.user_id ?? null;
  }

  async purgeExpired(): Promise<void> {
    await this.db.deleteFrom('one_time_tokens').where('expires_at', '<', Date.now() - 24 * 3600 * 1000).execute();
  }
}
