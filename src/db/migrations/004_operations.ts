/**
 * Operations (docs/deployment.md, "Alerts"): the alert outbox. A critical security event becomes a
 * row here before anything is sent, so a restart or a receiver outage loses no alert; every server
 * process's dispatcher (src/modules/alerts/dispatcher.ts) claims due rows with a lease, sends, and
 * marks them delivered. `open_key` is unique while a row is still folding duplicates in (NULL
 * once its window is over), which makes folding exact across processes on every dialect (NULLs
 * never collide in a unique index). Depends only on 001.
 */
import type { ColumnDefinitionBuilder, Kysely } from 'kysely';

/** No table types: a migration sees the schema the ones before it left, whatever the code says now. */
type Db = Kysely<unknown>;

export async function up(db: Db): Promise<void> {
  const adapter = db.getExecutor().adapter.constructor.name;
  const serial = adapter.startsWith('Sqlite') ? 'integer' : adapter.startsWith('Postgres') ? 'bigserial' : 'bigint';
  const key = (c: ColumnDefinitionBuilder) =>
    serial === 'bigserial' ? c.primaryKey() : c.primaryKey().autoIncrement();

  await db.schema
    .createTable('alert_outbox')
    .addColumn('id', serial, key)
    .addColumn('type', 'varchar(50)', (c) => c.notNull())
    .addColumn('fold_key', 'varchar(250)', (c) => c.notNull())
    .addColumn('open_key', 'varchar(250)', (c) => c.unique())
    .addColumn('severity', 'varchar(10)', (c) => c.notNull())
    .addColumn('summary', 'varchar(300)', (c) => c.notNull())
    .addColumn('details', 'text')
    .addColumn('occurrences', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('last_seen_at', 'bigint', (c) => c.notNull())
    .addColumn('fold_until', 'bigint', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('next_attempt_at', 'bigint', (c) => c.notNull())
    .addColumn('claimed_until', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('claim_token', 'varchar(36)')
    .addColumn('webhook_sent_at', 'bigint')
    .addColumn('email_sent_at', 'bigint')
    .addColumn('delivered_at', 'bigint')
    .addColumn('given_up_at', 'bigint')
    .addColumn('last_error', 'varchar(500)')
    .execute();
  // The dispatcher's question: undelivered rows that are due.
  await db.schema
    .createIndex('alert_outbox_due_idx')
    .on('alert_outbox')
    .columns(['delivered_at', 'given_up_at', 'next_attempt_at'])
    .execute();
  await db.schema.createIndex('alert_outbox_created_idx').on('alert_outbox').column('created_at').execute();
}

export async function down(db: Db): Promise<void> {
  await db.schema.dropTable('alert_outbox').ifExists().execute();
}
