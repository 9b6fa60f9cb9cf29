/**
 * The health routes that are open to anyone: monitors, load balancers and orchestrators must
 * always get through, so no rate limit applies to them and FORCE_HTTPS lets them through over
 * plain HTTP. They reveal nothing. The operators' views (/api/health/detailed, /database, /system)
 * accept a token, so they are limited like any other route and never answered over plain HTTP.
 */
const OPEN_HEALTH_PROBES: ReadonlySet<string> = new Set([
  '/api/health',
  '/api/health/liveness',
  '/api/health/readiness',
]);

/** A route pattern without its trailing slashes ("/api/health/" and "/api/health" are one route). */
export const routePattern = (url: string) => (url.length > 1 && url.endsWith('/') ? url.replace(/\/+$/, '') : url);

/** True for an open probe's route pattern (a trailing slash ignored). */
export function isOpenHealthProbe(url: string | undefined): boolean {
  return url !== undefined && OPEN_HEALTH_PROBES.has(routePattern(url));
}
