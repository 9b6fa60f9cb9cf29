/**
 * What a service needs to know about the request it serves, without knowing HTTP: who asked
 * (the actor), from where, and how to find the request in the logs. The HTTP edge builds it
 * (src/http/request-context.ts); the CLI builds its own (`cliContext`).
 */
export interface Actor {
  userId: string;
  /** The session of the access token used, if the actor came with one. */
  sessionId: string | null;
  isAdmin: boolean;
}

export interface RequestContext {
  ip: string | null;
  userAgent: string | null;
  requestId: string | null;
  /** "METHOD /route/pattern", for security events. */
  endpoint: string | null;
  actor: Actor | null;
  /** Who acted when no user did: "cli", "retention", … (shown as `by`/`via` in events). */
  via?: string;
}

/** The context of a command run by an operator on the server (no user, no address). */
export const cliContext = (): RequestContext => ({
  ip: null,
  userAgent: null,
  requestId: null,
  endpoint: null,
  actor: null,
  via: 'cli',
});
