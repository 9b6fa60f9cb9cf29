/** The Flokie TypeScript client: the generated types, and the session wrapper over openapi-fetch. */
export type { components, paths } from './schema.js';
export { AccountLockedError, FlokieError, RateLimitedError, SessionEndedError } from './errors.js';
export {
  createFlokieSession,
  FlokieSession,
  type Credentials,
  type FlokieSessionOptions,
  type LoginData,
  type RefreshMode,
} from './session.js';
