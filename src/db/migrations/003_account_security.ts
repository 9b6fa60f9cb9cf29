/**
 * Account security (docs/security.md "E-mail change", "Lockout"):
 * - users.pending_email: the address a user asked to move to, kept until it is confirmed;
 * - one_time_tokens.target_email: the address an `email_change` link confirms;
 * - login_reservations: login attempts in flight, one row each with a lease, so the cap on
 *   concurrent password checks per counter (src/modules/auth/lockout.ts) never counts an
 *   attempt in flight as a failure, and a crashed process's attempts free their slot when the
 *   lease ends.
 */
import type { Kysely } from 'kysely';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('users').addColumn('pending_email', 'varchar(254)').execute();
  await db.schema.alterTable('one_time_tokens').addColumn('target_email', 'varchar(254)').execute();
  await db.schema
    .createTable('login_reservations')
    .addColumn('id', 'varchar(36)', (c) => c.primaryKey())
    .addColumn('key', 'varchar(300)', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('login_reservations_key_idx')
    .on('login_reservations')
    .columns(['key', 'expires_at'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('login_reservations').ifExists().execute();
  await db.schema.alterTable('one_time_tokens').dropColumn('target_email').execute();
  await db.schema.alterTable('users').dropColumn('pending_email').execute();
}
