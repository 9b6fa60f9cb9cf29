/**
 * A session over the typed client, handled the way the Flokie server wants it (docs/security.md,
 * "Sessions and rotation" and "CSRF and cookies"):
 *
 * - the access token lives in memory only;
 * - in browsers the refresh token is the HttpOnly cookie (login and refresh with
 *   `X-Auth-Mode: cookie`, refresh with the `X-CSRF-Token` header); elsewhere it travels in the
 *   body and is kept in memory;
 * - single flight: any number of calls that get 401 together cause one refresh, then each retries
 *   once with the new token. A refresh token is spent on use and presenting it twice is theft to
 *   the server, so two refreshes racing would end the session;
 * - across the tabs of one origin (they share the cookie) a Web Lock lets one tab refresh at a
 *   time and a BroadcastChannel hands its new access token to the others, so no tab presents a
 *   cookie another tab has already spent;
 * - 429 waits for Retry-After when it is at most `maxRetryAfterSeconds`, then RateLimitedError;
 *   423 is AccountLockedError; a refresh the server refuses is SessionEndedError.
 *
 * Calls go through `session.api`, an openapi-fetch client typed by schema.d.ts, addressed by path
 * (`session.api.GET('/api/auth/me')`).
 */
import createClient, { type Client } from 'openapi-fetch';
import {
  AccountLockedError,
  errorOf,
  FlokieError,
  RateLimitedError,
  retryAfterSeconds,
  SessionEndedError,
} from './errors.js';
import type { paths } from './schema.js';

export type RefreshMode = 'cookie' | 'body';

type JsonOk<P extends keyof paths, M extends 'post' | 'get'> = paths[P][M] extends {
  responses: { 200: { content: { 'application/json': { data: infer D } } } };
}
  ? D
  : never;
export type LoginData = JsonOk<'/api/auth/login', 'post'>;
export interface Credentials {
  username: string;
  password: string;
  remember_me?: boolean;
}

export interface FlokieSessionOptions {
  /** Where the API is: its origin (paths start with /api). */
  baseUrl: string;
  /** How the refresh token travels: the cookie in browsers (the default there), the body elsewhere. */
  mode?: RefreshMode;
  /** The fetch to use (default globalThis.fetch). */
  fetch?: (request: Request) => Promise<Response>;
  /** A 429 asking to wait longer than this is not waited for: RateLimitedError at once. Default 10. */
  maxRetryAfterSeconds?: number;
  /** How many 429s one call waits out before RateLimitedError. Default 2. */
  rateLimitRetries?: number;
  /** Coordinate refreshes across tabs (cookie mode, where Web Locks and BroadcastChannel exist). Default true. */
  tabSync?: boolean;
  /** Name of the lock and channel; tabs using the same name share one session. Default `flokie-session:<baseUrl>`. */
  syncName?: string;
  /** For tests: how to wait. */
  sleep?: (ms: number) => Promise<void>;
}

type SyncMessage = { type: 'access'; token: string } | { type: 'ended' };

/** Paths whose 401 is an answer about the credentials sent, not an expired access token. */
const NO_RENEW = ['/api/auth/login', '/api/auth/refresh'];
/** A tab that knows another tab refreshed waits this long for its token before refreshing itself. */
const HANDOFF_WAIT_MS = 2000;

/** The browser APIs used, declared structurally so the client compiles without the DOM library. */
interface LockManagerLike {
  request<T>(name: string, callback: () => Promise<T>): Promise<T>;
  request<T>(name: string, options: { ifAvailable: true }, callback: (lock: unknown) => Promise<T>): Promise<T>;
}
interface ChannelLike {
  onmessage: ((event: { data: SyncMessage }) => void) | null;
  postMessage(message: SyncMessage): void;
  close(): void;
}
interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}
interface BrowserGlobals {
  document?: unknown;
  window?: unknown;
  navigator?: { locks?: LockManagerLike };
  BroadcastChannel?: new (name: string) => ChannelLike;
  localStorage?: StorageLike;
}
const browser = globalThis as unknown as BrowserGlobals;

interface TabSync {
  locks: LockManagerLike;
  channel: ChannelLike;
  storage: StorageLike | null;
}

const isBrowser = () => browser.document !== undefined && browser.window !== undefined;

export class FlokieSession {
  /** The typed client; every call carries the access token and refreshes it when it expired. */
  readonly api: Client<paths>;
  readonly mode: RefreshMode;
  private access: string | null = null;
  /** When this tab last received an access token (its own refresh, login, or another tab's). */
  private accessSince = 0;
  private refreshToken: string | null = null;
  private inflight: Promise<string> | null = null;
  private readonly tabs: TabSync | null;
  private readonly syncName: string;
  private readonly baseUrl: string;
  private readonly fetchImpl: (request: Request) => Promise<Response>;
  private readonly maxRetryAfterSeconds: number;
  private readonly rateLimitRetries: number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly waiters = new Set<(ended: boolean) => void>();
  /** How many times another tab reported the session ended. */
  private endedByTabs = 0;

  constructor(options: FlokieSessionOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.mode = options.mode ?? (isBrowser() ? 'cookie' : 'body');
    this.fetchImpl = options.fetch ?? ((request) => globalThis.fetch(request));
    this.maxRetryAfterSeconds = options.maxRetryAfterSeconds ?? 10;
    this.rateLimitRetries = options.rateLimitRetries ?? 2;
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.syncName = options.syncName ?? `flokie-session:${this.baseUrl}`;
    this.tabs = this.mode === 'cookie' && options.tabSync !== false ? openTabSync(this.syncName) : null;
    if (this.tabs) this.tabs.channel.onmessage = (event) => this.onTabMessage(event.data);
    this.api = createClient<paths>({
      baseUrl: this.baseUrl,
      fetch: (request) => this.send(request),
      ...(this.mode === 'cookie' ? { credentials: 'include' as const } : {}),
    });
  }

  /** The current access token (null before login or after the session ended). */
  get accessToken(): string | null {
    return this.access;
  }

  /** Logs in; the tokens are kept by the session. 423: AccountLockedError; other refusals: FlokieError. */
  async login(credentials: Credentials): Promise<LoginData> {
    const response = await this.withRateLimit(() =>
      this.request('/api/auth/login', {
        method: 'POST',
        body: JSON.stringify(credentials),
        headers: { 'content-type': 'application/json', ...(this.mode === 'cookie' ? { 'x-auth-mode': 'cookie' } : {}) },
      }),
    );
    if (!response.ok) throw await apiError(response);
    type Answer = { data: LoginData & { access_token: string; refresh_token?: string } };
    const data = ((await response.json()) as Answer).data;
    this.refreshToken = this.mode === 'body' ? (data.refresh_token ?? null) : null;
    this.adopt(data.access_token);
    this.publish({ type: 'access', token: data.access_token });
    return data;
  }

  /**
   * Continues a session this client did not start: in cookie mode, the browser's refresh cookie
   * (a reload, a new tab); in body mode, a refresh token kept by the application. False when there
   * is no live session.
   */
  async resume(refreshToken?: string): Promise<boolean> {
    if (refreshToken !== undefined) this.refreshToken = refreshToken;
    try {
      await this.renew(null);
      return true;
    } catch (error) {
      if (error instanceof SessionEndedError) return false;
      throw error;
    }
  }

  /** Ends the session on the server and in every tab. */
  async logout(): Promise<void> {
    try {
      if (this.access !== null || this.mode === 'cookie') await this.api.POST('/api/auth/logout');
    } catch (error) {
      if (!(error instanceof SessionEndedError)) throw error;
    } finally {
      this.end();
    }
  }

  /** Stops listening to other tabs. */
  close(): void {
    this.tabs?.channel.close();
  }

  /** The fetch behind `api`: bearer token, one renewal and retry on 401, 429 and 423 handling. */
  private async send(request: Request): Promise<Response> {
    const token = this.access;
    const endings = this.endedByTabs;
    const response = await this.withRateLimit(() => authorized(request, token));
    if (response.status !== 401 || NO_RENEW.includes(new URL(request.url).pathname)) return response;
    if (token === null && this.mode === 'body' && this.refreshToken === null) return response;
    await response.body?.cancel();
    const fresh = await this.renew(token, endings);
    return this.withRateLimit(() => authorized(request, fresh));
  }

  /** A valid access token newer than `failed`: one refresh for all callers that saw it fail. */
  private renew(failed: string | null, endings = this.endedByTabs): Promise<string> {
    if (this.access !== null && this.access !== failed) return Promise.resolve(this.access);
    // Another tab's refresh was refused since this call was sent: so would this one be.
    if (this.endedByTabs !== endings) return Promise.reject(new SessionEndedError('The session ended in another tab'));
    const tabs = this.tabs;
    const renewal = tabs ? () => this.renewAcrossTabs(tabs, failed, endings) : () => this.refreshNow();
    this.inflight ??= renewal().finally(() => {
      this.inflight = null;
    });
    return this.inflight;
  }

  /**
   * One tab refreshes at a time. A tab that found the lock taken waits for it, and then for the
   * holder's token: the lock can be granted before the holder's message arrives, and refreshing
   * then would spend the cookie a second time for nothing.
   */
  private async renewAcrossTabs(tabs: TabSync, failed: string | null, endings: number): Promise<string> {
    const free = await tabs.locks.request(this.syncName, { ifAvailable: true }, async (lock) =>
      lock ? { token: await this.renewInLock(failed, false, endings) } : null,
    );
    return free ? free.token : tabs.locks.request(this.syncName, () => this.renewInLock(failed, true, endings));
  }

  /** Holding the cross-tab lock: take another tab's result if there is one or one is coming, else refresh. */
  private async renewInLock(failed: string | null, waited: boolean, endings: number): Promise<string> {
    if (this.access !== null && this.access !== failed) return this.access;
    // The tab that held the lock had its refresh refused: so would this one.
    if (this.endedByTabs !== endings) throw new SessionEndedError('The session has ended in another tab');
    // The marker (shared storage) says another tab refreshed since this tab's token: its message is coming.
    if (waited || this.lastTabRefresh() > this.accessSince) {
      const handed = await this.awaitHandoff(failed);
      if (handed !== null) return handed;
    }
    // No token came (the other tab failed to refresh, or closed mid-refresh): refresh here.
    return this.refreshNow();
  }

  private async refreshNow(): Promise<string> {
    const response = this.mode === 'cookie' ? await this.refreshByCookie() : await this.refreshByBody();
    if (response.status === 401 || response.status === 400 || response.status === 403) {
      const { message } = await errorOf(response);
      this.end();
      throw new SessionEndedError(`The session has ended: ${message}`);
    }
    if (!response.ok) throw await apiError(response);
    const data = ((await response.json()) as { data: { access_token: string; refresh_token?: string } }).data;
    if (this.mode === 'body') this.refreshToken = data.refresh_token ?? null;
    this.adopt(data.access_token);
    this.markTabRefresh();
    this.publish({ type: 'access', token: data.access_token });
    return data.access_token;
  }

  private async refreshByBody(): Promise<Response> {
    const token = this.refreshToken;
    if (!token) throw new SessionEndedError('The session has ended: no refresh token');
    return this.withRateLimit(() =>
      this.request('/api/auth/refresh', {
        method: 'POST',
        body: JSON.stringify({ refresh_token: token }),
        headers: { 'content-type': 'application/json' },
      }),
    );
  }

  /**
   * Refresh by the HttpOnly cookie with the CSRF header. The CSRF token is fetched for each
   * refresh (once an access token's lifetime): a cached one could have expired by the server's
   * clock, and every refused one is a `csrf_failure` security event.
   */
  private async refreshByCookie(): Promise<Response> {
    const csrf = await this.csrfToken();
    const headers = { 'x-auth-mode': 'cookie', 'x-csrf-token': csrf };
    return this.withRateLimit(() => this.request('/api/auth/refresh', { method: 'POST', headers }));
  }

  private async csrfToken(): Promise<string> {
    const response = await this.withRateLimit(() => this.request('/api/auth/csrf-token', { method: 'GET' }));
    if (!response.ok) throw await apiError(response);
    return ((await response.json()) as { data: { csrf_token: string } }).data.csrf_token;
  }

  /** Sends, waits out 429 within the cap, and turns 423 and a 429 past the cap into typed errors. */
  private async withRateLimit(make: () => Request): Promise<Response> {
    for (let attempt = 0; ; attempt++) {
      const response = await this.fetchImpl(make());
      if (response.status === 423) {
        const { message } = await errorOf(response);
        throw new AccountLockedError(message, retryAfterSeconds(response.headers.get('retry-after')));
      }
      if (response.status !== 429) return response;
      const wait = retryAfterSeconds(response.headers.get('retry-after'));
      if (attempt >= this.rateLimitRetries || wait === null || wait > this.maxRetryAfterSeconds) {
        const { message } = await errorOf(response);
        throw new RateLimitedError(message, wait);
      }
      await response.body?.cancel();
      await this.sleep(wait * 1000);
    }
  }

  private request(path: string, init: RequestInit): Request {
    const credentials = this.mode === 'cookie' ? { credentials: 'include' as const } : {};
    return new Request(this.baseUrl + path, { ...init, ...credentials });
  }

  private adopt(token: string): void {
    this.access = token;
    this.accessSince = Date.now();
    for (const wake of this.waiters) wake(false);
  }

  private end(): void {
    const had = this.access !== null || this.refreshToken !== null;
    this.access = null;
    this.refreshToken = null;
    if (had) this.publish({ type: 'ended' });
  }

  private onTabMessage(message: SyncMessage): void {
    if (message.type === 'access') return this.adopt(message.token);
    this.access = null;
    this.refreshToken = null;
    this.endedByTabs += 1;
    for (const wake of this.waiters) wake(true);
  }

  private publish(message: SyncMessage): void {
    this.tabs?.channel.postMessage(message);
  }

  /**
   * Another tab's token (newer than `failed`); null if none comes in time; SessionEndedError if
   * that tab's refresh was refused.
   */
  private awaitHandoff(failed: string | null): Promise<string | null> {
    return new Promise((resolve, reject) => {
      const done = (ended: boolean) => {
        if (!ended && (this.access === null || this.access === failed)) return;
        clearTimeout(timer);
        this.waiters.delete(done);
        if (ended) reject(new SessionEndedError('The session has ended in another tab'));
        else resolve(this.access);
      };
      const timer = setTimeout(() => {
        this.waiters.delete(done);
        resolve(null);
      }, HANDOFF_WAIT_MS);
      this.waiters.add(done);
    });
  }

  /** A timestamp (no secret) in shared storage: when some tab of this origin last refreshed. */
  private markTabRefresh(): void {
    try {
      this.tabs?.storage?.setItem(`${this.syncName}:refreshed-at`, String(Date.now()));
    } catch {
      // Storage full or refused: tabs then only coordinate through the lock and the channel.
    }
  }

  private lastTabRefresh(): number {
    try {
      return Number(this.tabs?.storage?.getItem(`${this.syncName}:refreshed-at`) ?? 0) || 0;
    } catch {
      return 0;
    }
  }
}

function openTabSync(name: string): TabSync | null {
  const locks = browser.navigator?.locks;
  const Channel = browser.BroadcastChannel;
  if (!locks || !Channel) return null;
  let storage: StorageLike | null = null;
  try {
    // Reading localStorage throws where storage is refused (sandboxed frames, some privacy modes).
    storage = browser.localStorage ?? null;
  } catch {
    storage = null;
  }
  return { locks, channel: new Channel(name), storage };
}

/** A copy of the request carrying the access token (the original stays unsent, so it can be copied again). */
function authorized(request: Request, token: string | null): Request {
  const copy = request.clone();
  if (token) copy.headers.set('authorization', `Bearer ${token}`);
  return copy;
}

async function apiError(response: Response): Promise<FlokieError> {
  const { code, message } = await errorOf(response);
  return new FlokieError(response.status, code, message);
}

/** Creates a session client for the API at `baseUrl`. */
export function createFlokieSession(options: FlokieSessionOptions): FlokieSession {
  return new FlokieSession(options);
}
