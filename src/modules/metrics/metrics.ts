/**
 * Prometheus metrics (docs/deployment.md, "Metrics"), with prom-client, in a registry per app.
 *
 * Label values come only from route patterns and fixed lists, never from a raw path, header or
 * body: an unknown URL is route="unmatched", an unusual method "OTHER", a login outcome outside
 * the known reasons "other". So the number of series stays bounded whatever clients send
 * (test/modules/metrics/metrics.test.ts sends 1,000 random paths).
 *
 * Cost on the request path: a Map lookup and a few increments per response (the request counts
 * and latency buckets are plain numbers until a scrape). Everything else is read when Prometheus scrapes:
 * token-cache hits and misses are plain integers TokenGuard keeps, the hash queue and database
 * pool are read from their owners, security events are counted by a listener.
 */
import client from 'prom-client';
import type { Container } from '../../container.js';

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
const LOGIN_FAILURE_REASONS = new Set(['bad_credentials', 'inactive', 'locked']);

/** Seconds; a login with bcrypt cost 12 takes ~0.25 s, a cached /me well under 1 ms. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export interface HttpObservation {
  method: string;
  /** The matched route pattern, or undefined when no route matched. */
  route: string | undefined;
  status: number;
  seconds: number;
}

export interface AppMetrics {
  registry: client.Registry;
  observeRequest(observation: HttpObservation): void;
  close(): void;
}

export function createMetrics(container: Container, readRateLimitRefusals: () => Map<string, number>): AppMetrics {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry, prefix: 'flokie_' });
  const registers = [registry];

  // Requests are tallied in plain numbers per (method, route, status) on the request path and
  // handed to Prometheus at scrape time: prom-client calls per response cost several times more
  // (docs/benchmarks.md, "Metrics"); this costs a Map lookup and increments.
  const tally = new Map<
    string,
    { labels: { method: string; route: string; status: string }; count: number; sum: number; buckets: number[] }
  >();
  const reportedRequests = new Map<string, number>();
  new client.Counter({
    name: 'flokie_http_requests_total',
    help: 'HTTP responses by route pattern, method and status',
    labelNames: ['method', 'route', 'status'],
    registers,
    collect() {
      for (const [key, series] of tally) {
        const delta = series.count - (reportedRequests.get(key) ?? 0);
        if (delta > 0) this.inc(series.labels, delta);
        reportedRequests.set(key, series.count);
      }
    },
  });
  // A histogram in Prometheus' text format, from the tallies (prom-client's Histogram would need one observe() per
  // response).
  const latencyName = 'flokie_http_request_duration_seconds';
  registry.registerMetric({
    name: latencyName,
    help: 'Time from request to response, by route pattern, method and status',
    type: 'histogram',
    get: async () => ({
      name: latencyName,
      help: 'Time from request to response, by route pattern, method and status',
      type: 'histogram',
      aggregator: 'sum',
      values: [...tally.values()].flatMap((series) => {
        let cumulative = 0;
        return [
          ...LATENCY_BUCKETS.map((le, i) => {
            cumulative += series.buckets[i]!;
            return { metricName: `${latencyName}_bucket`, labels: { ...series.labels, le }, value: cumulative };
          }),
          { metricName: `${latencyName}_bucket`, labels: { ...series.labels, le: '+Inf' }, value: series.count },
          { metricName: `${latencyName}_sum`, labels: series.labels, value: series.sum },
          { metricName: `${latencyName}_count`, labels: series.labels, value: series.count },
        ];
      }),
    }),
  } as unknown as client.Metric);

  const logins = new client.Counter({
    name: 'flokie_logins_total',
    help: 'Login attempts by outcome (success, bad_credentials, inactive, locked, other)',
    labelNames: ['outcome'],
    registers,
  });
  const lockouts = new client.Counter({
    name: 'flokie_account_lockouts_total',
    help: 'Accounts locked after too many failed logins',
    registers,
  });
  const securityEvents = new client.Counter({
    name: 'flokie_security_events_total',
    help: 'Security events by type and severity',
    labelNames: ['type', 'severity'],
    registers,
  });
  const unsubscribe = container.events.onEvent((event) => {
    securityEvents.inc({ type: event.type, severity: event.severity });
    if (event.type === 'login_success') logins.inc({ outcome: 'success' });
    else if (event.type === 'account_locked') lockouts.inc();
    else if (event.type === 'login_failure') {
      const reason = event.details?.reason;
      logins.inc({ outcome: typeof reason === 'string' && LOGIN_FAILURE_REASONS.has(reason) ? reason : 'other' });
    }
  });

  // Read at scrape time from their owners.
  const reported = new Map<string, number>();
  new client.Counter({
    name: 'flokie_rate_limit_refusals_total',
    help: 'Requests refused with 429, by limit name (RATE_LIMITS keys, "emergency")',
    labelNames: ['limit'],
    registers,
    collect() {
      for (const [limit, count] of readRateLimitRefusals()) {
        const delta = count - (reported.get(limit) ?? 0);
        if (delta > 0) this.inc({ limit }, delta);
        reported.set(limit, count);
      }
    },
  });
  const cacheReported = { hits: 0, misses: 0 };
  new client.Counter({
    name: 'flokie_token_cache_lookups_total',
    help: 'Access-token checks answered from the cache (hit) or verified in full (miss)',
    labelNames: ['result'],
    registers,
    collect() {
      const { hits, misses } = container.tokenGuard.stats;
      if (hits > cacheReported.hits) this.inc({ result: 'hit' }, hits - cacheReported.hits);
      if (misses > cacheReported.misses) this.inc({ result: 'miss' }, misses - cacheReported.misses);
      Object.assign(cacheReported, { hits, misses });
    },
  });
  new client.Gauge({
    name: 'flokie_password_hash_queue',
    help: 'Password hashes running (active) and waiting for a turn (waiting) under PASSWORD_HASH_CONCURRENCY',
    labelNames: ['state'],
    registers,
    collect() {
      const { active, waiting } = container.hasher.load;
      this.set({ state: 'active' }, active);
      this.set({ state: 'waiting' }, waiting);
    },
  });
  new client.Gauge({
    name: 'flokie_db_pool_connections',
    help: 'Database pool: configured size, open (total), idle and waiting clients (PostgreSQL reports all four)',
    labelNames: ['state'],
    registers,
    collect() {
      for (const [state, value] of Object.entries(container.database.poolStats()))
        if (['size', 'total', 'idle', 'waiting'].includes(state)) this.set({ state }, value);
    },
  });
  const alertStats = container.alerts.stats;
  new client.Gauge({
    name: 'flokie_alerts_pending',
    help: 'Alerts in alert_outbox not yet delivered (nor given up); stays above 0 while a receiver is unreachable',
    registers,
    async collect() {
      this.set(container.alerts.configured ? await container.alerts.outbox.pending() : 0);
    },
  });
  const alertsReported: Record<string, number> = {};
  new client.Counter({
    name: 'flokie_alerts_total',
    help: 'Alerts handled by this process, by outcome (queued, folded, delivered, failed_attempt, given_up)',
    labelNames: ['outcome'],
    registers,
    collect() {
      const now: Record<string, number> = {
        queued: alertStats.queued,
        folded: alertStats.folded,
        delivered: alertStats.delivered,
        failed_attempt: alertStats.failedAttempts,
        given_up: alertStats.givenUp,
      };
      for (const [outcome, value] of Object.entries(now)) {
        const delta = value - (alertsReported[outcome] ?? 0);
        if (delta > 0) this.inc({ outcome }, delta);
        alertsReported[outcome] = value;
      }
    },
  });

  return {
    registry,
    observeRequest({ method, route, status, seconds }) {
      const m = METHODS.has(method) ? method : 'OTHER';
      const r = route ?? 'unmatched';
      const key = `${m} ${status} ${r}`;
      let series = tally.get(key);
      if (!series) {
        series = {
          labels: { method: m, route: r, status: String(status) },
          count: 0,
          sum: 0,
          buckets: LATENCY_BUCKETS.map(() => 0),
        };
        tally.set(key, series);
      }
      series.count++;
      series.sum += seconds;
      for (let i = 0; i < LATENCY_BUCKETS.length; i++) {
        if (seconds <= LATENCY_BUCKETS[i]!) {
          series.buckets[i]!++;
          break;
        }
      }
    },
    close() {
      unsubscribe();
      registry.clear();
    },
  };
}
