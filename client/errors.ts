/**
 * Typed errors of the Flokie client: the answers an application handles globally (send the user
 * to the login page, show "try again in N s") rather than per call.
 */

/** An error answer of the API, in the contract's envelope ({success:false, error:{code,message}}). */
export class FlokieError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** 429 whose Retry-After is over the configured cap, or still 429 after the allowed retries. */
export class RateLimitedError extends FlokieError {
  constructor(
    message: string,
    /** Seconds the server asked to wait (null when it did not say). */
    readonly retryAfterSeconds: number | null,
  ) {
    super(429, 'RATE_LIMIT_EXCEEDED', message);
  }
}

/** 423: the account is locked after too many failed logins. */
export class AccountLockedError extends FlokieError {
  constructor(
    message: string,
    readonly retryAfterSeconds: number | null,
  ) {
    super(423, 'LOCKED', message);
  }
}

/** The session is over (revoked, expired, logged out elsewhere, never started): log in again. */
export class SessionEndedError extends FlokieError {
  constructor(message = 'The session has ended: log in again') {
    super(401, 'AUTHENTICATION_ERROR', message);
  }
}

/** Seconds from a Retry-After header (delta-seconds or an HTTP date); null when absent or unreadable. */
export function retryAfterSeconds(header: string | null, now = Date.now()): number | null {
  if (header === null || header.trim() === '') return null;
  if (/^\d+$/.test(header.trim())) return Number(header.trim());
  const at = Date.parse(header);
  return Number.isNaN(at) ? null : Math.max(0, Math.ceil((at - now) / 1000));
}

/** Reads the envelope of an error answer without failing on a body that is not one. */
export async function errorOf(response: Response): Promise<{ code: string; message: string }> {
  try {
    const body = (await response.clone().json()) as { error?: { code?: unknown; message?: unknown } };
    const code = typeof body.error?.code === 'string' ? body.error.code : `HTTP_${response.status}`;
    const message = typeof body.error?.message === 'string' ? body.error.message : response.statusText;
    return { code, message };
  } catch {
    return { code: `HTTP_${response.status}`, message: response.statusText || `HTTP ${response.status}` };
  }
}
