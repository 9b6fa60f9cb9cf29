import type { Generated } from 'kysely';

/**
 * Table types. Timestamps are epoch milliseconds (BIGINT) and flags are 0/1 integers, the one
 * representation that behaves the same on SQLite, PostgreSQL and MySQL/MariaDB.
 */
export interface UsersTable {
  id: string;
  username: string;
  username_lower: string;
  email: string;
  password_hash: string;
  first_name: string | null;
  last_name: string | null;
  bio: string | null;
  is_active: number;
  is_verified: number;
  is_admin: number;
  password_changed_at: number;
  created_at: number;
  updated_at: number;
  last_login_at: number | null;
  /** An address the user asked to move to, not yet confirmed (docs/security.md "E-mail change"). */
  pending_email: string | null;
}

export interface PasswordHistoryTable {
  id: Generated<number>;
  user_id: string;
  password_hash: string;
  created_at: number;
}

/**
 * Failed-login counter and lock, keyed by `user:<id>` (an account's attempts without a trusted
 * device credential), `name:<login>` (unknown names), `device:<user id>:<nonce>` (one trusted
 * device) and `admin:<user id>` (a lock an administrator set). See src/modules/auth/lockout.ts.
 */
export interface LoginAttemptsTable {
  key: string;
  failures: number;
  window_started_at: number;
  locked_until: number | null;
}

/** A login attempt in flight on a counter (lockout.ts), until its lease ends. */
export interface LoginReservationsTable {
  id: string;
  key: string;
  expires_at: number;
}

export interface SessionsTable {
  id: string;
  user_id: string;
  created_at: number;
  last_used_at: number;
  /** Absolute end of the session; refreshing never moves it. */
  expires_at: number;
  ip: string | null;
  user_agent: string | null;
  /** jti of the one refresh token that may still be spent. */
  refresh_jti: string;
  previous_refresh_jti: string | null;
  rotated_at: number;
  revoked_at: number | null;
  revoked_reason: string | null;
}

export interface RevokedTokensTable {
  jti: string;
  user_id: string | null;
  expires_at: number;
  revoked_at: number;
}

export interface OneTimeTokensTable {
  token_hash: string;
  user_id: string;
  purpose: 'password_reset' | 'email_verification' | 'email_change';
  expires_at: number;
  used_at: number | null;
  created_at: number;
  /** For `email_change`: the address the link confirms. */
  target_email: string | null;
}

export interface SecurityEventsTable {
  id: Generated<number>;
  type: string;
  severity: string;
  user_id: string | null;
  ip: string | null;
  user_agent: string | null;
  request_id: string | null;
  endpoint: string | null;
  details: string | null;
  created_at: number;
}

/** Append-only log each instance polls to drop cached state that another process changed. */
export interface ChangeLogTable {
  id: Generated<number>;
  kind: string;
  key: string;
  created_at: number;
}

export interface AppSettingsTable {
  key: string;
  value: string | null;
  updated_at: number;
}

/** Critical events waiting to reach a person (src/modules/alerts/). */
export interface AlertOutboxTable {
  id: Generated<number>;
  type: string;
  /** type|subject (address, account…): alerts with the same fold key within the window are one. */
  fold_key: string;
  /** fold_key while the row still takes duplicates, else NULL (unique). */
  open_key: string | null;
  severity: string;
  summary: string;
  /** JSON: the first event's address, user, endpoint, request id and details. */
  details: string | null;
  occurrences: number;
  created_at: number;
  last_seen_at: number;
  fold_until: number;
  attempts: number;
  next_attempt_at: number;
  /** A dispatcher holds the row until then (lease); 0 = free. */
  claimed_until: number;
  claim_token: string | null;
  webhook_sent_at: number | null;
  email_sent_at: number | null;
  delivered_at: number | null;
  given_up_at: number | null;
  last_error: string | null;
}

export interface Database {
  users: UsersTable;
  password_history: PasswordHistoryTable;
  login_attempts: LoginAttemptsTable;
  login_reservations: LoginReservationsTable;
  sessions: SessionsTable;
  revoked_tokens: RevokedTokensTable;
  one_time_tokens: OneTimeTokensTable;
  security_events: SecurityEventsTable;
  change_log: ChangeLogTable;
  app_settings: AppSettingsTable;
  alert_outbox: AlertOutboxTable;
}
