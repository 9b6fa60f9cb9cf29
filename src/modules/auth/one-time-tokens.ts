/**
 * Single-use, time-limited tokens e-mailed as links: password reset, e-mail verification and
 * e-mail change (which also records the address it confirms). Only the SHA-256 of a token is
 * stored, so a database leak yields no usable link. Consuming is a conditional UPDATE
 * (`used_at IS NULL AND expires_at > now`), so a token works exactly once even when presented
 * twice at the same moment.
 *
 * Also the one place that kills a user's links: every flow that changes what a link was for
 * (password change and reset, e-mail change requested and confirmed, deactivation, deletion) calls
 * `invalidateAllForUser` inside its own transaction (docs/security.md "Links").
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { UserWriter } from '../users/users-service.js';
import { withConflictRetry } from '../../db/index.js';
import type { Database, OneTimeTokensTable } from '../../db/types.js';

export type Purpose = OneTimeTokensTable['purpose'];

export const hashToken = (token: string) => createHash('sha256').update(token).digest('hex');

/** What a spent token stood for. */
export interface SpentToken {
  userId: string;
  targetEmail: string | null;
}

const plausible = (token: string) => token.length >= 20 && token.length <= 200;

export class OneTimeTokens {
  constructor(private readonly db: Kysely<Database>) {}

  /** Issues a new token; earlier unused tokens of the same purpose for the user stop working. */
  async issue(userId: string, purpose: Purpose, ttlMs: number, targetEmail: string | null = null): Promise<string> {
    const token = randomBytes(32).toString('base64url');
    const now = Date.now();
    // Two requests for the same user can deadlock on MySQL/MariaDB's index locks; the loser retries.
    await withConflictRetry(() =>
      this.db.transaction().execute(async (trx) => {
        await trx
          .updateTable('one_time_tokens')
          .set({ used_at: now })
          .where('user_id', '=', userId)
          .where('purpose', '=', purpose)
          .where('used_at', 'is', null)
          .execute();
        await trx
          .insertInto('one_time_tokens')
          .values({
            token_hash: hashToken(token),
            user_id: userId,
            purpose,
            expires_at: now + ttlMs,
            used_at: null,
            created_at: now,
            target_email: targetEmail,
          })
          .execute();
      }),
    );
    return token;
  }

  /** Spends a token; returns what it stood for, or null if unknown, used or expired. */
  async spend(token: string, purpose: Purpose, db: Kysely<Database> = this.db): Promise<SpentToken | null> {
    if (!plausible(token)) return null;
    const tokenHash = hashToken(token);
    const now = Date.now();
    const row = await db
      .selectFrom('one_time_tokens')
      .select(['user_id', 'target_email'])
      .where('token_hash', '=', tokenHash)
      .where('purpose', '=', purpose)
      .executeTakeFirst();
    if (!row) return null;
    const result = await db
      .updateTable('one_time_tokens')
      .set({ used_at: now })
      .where('token_hash', '=', tokenHash)
      .where('used_at', 'is', null)
      .where('expires_at', '>', now)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1 ? { userId: row.user_id, targetEmail: row.target_email } : null;
  }

  /** Spends a token; returns its user id, or null if unknown, used or expired. */
  async consume(token: string, purpose: Purpose, db: Kysely<Database> = this.db): Promise<string | null> {
    return (await this.spend(token, purpose, db))?.userId ?? null;
  }

  /** The user a token belongs to if it could still be spent, without spending it. */
  async peek(token: string, purpose: Purpose): Promise<string | null> {
    if (!plausible(token)) return null;
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

  /**
   * Every outstanding link of the user (reset, verification, e-mail change) stops working, and a
   * pending e-mail change, which only such a link could complete, is dropped. Runs in the
   * transaction of the change that makes the links stale (src/modules/users/users-service.ts), so
   * both commit together.
   */
  async invalidateAllForUser(userId: string, writer: UserWriter): Promise<void> {
    await writer.trx
      .updateTable('one_time_tokens')
      .set({ used_at: Date.now() })
      .where('user_id', '=', userId)
      .where('used_at', 'is', null)
      .execute();
    await writer.dropPendingEmail(userId);
  }

  async purgeExpired(): Promise<void> {
    await this.db
      .deleteFrom('one_time_tokens')
      .where('expires_at', '<', Date.now() - 24 * 3600 * 1000)
      .execute();
  }
}
