/**
 * `flokie check --url https://api.example.com`: the pre-deployment checklist's HTTP items checked
 * from outside, against the running deployment, with the same PASS/WARN/FAIL lines as the local
 * check (check.ts). What it sends: a handful of GET/OPTIONS requests, TLS handshakes with each
 * protocol version, and at most `burst` (default 15) GETs of the CSRF-token endpoint when no
 * RateLimit header answers the question by itself. It never logs in and sends no credentials.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { isIP } from 'node:net';
import https from 'node:https';
import tls, { type PeerCertificate, type SecureVersion } from 'node:tls';
import type { CheckResult, Status } from './check.js';

export interface RemoteCheckOptions {
  url: string;
  /** Where plain HTTP answers (default: http:// on the same host, port 80). */
  httpUrl?: string;
  /** Accept any certificate (self-signed staging); the certificate item then says so. */
  insecure?: boolean;
  /** Trust this CA bundle (PEM) as well as the system's. */
  caFile?: string;
  /** Most requests sent to find a 429 (default 15). */
  burst?: number;
  timeoutMs?: number;
}

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

const FOREIGN_ORIGIN = 'https://flokie-check.invalid';
const HSTS_MIN_SECONDS = 15_552_000; // 180 days

export async function runRemoteChecks(options: RemoteCheckOptions): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  const add = (id: string, title: string, status: Status, detail: string) =>
    results.push({ id, title, status, detail, critical: false });
  let base: URL;
  try {
    base = new URL(options.url);
  } catch {
    throw new Error(`--url ${options.url} is not a URL`);
  }
  const timeout = options.timeoutMs ?? 10_000;
  // eslint-disable-next-line security/detect-non-literal-fs-filename -- the operator's --ca file
  const ca = options.caFile ? [...tls.rootCertificates, readFileSync(options.caFile, 'utf8')] : undefined;
  const host = base.hostname.replace(/^\[|\]$/g, '');
  const port = Number(base.port || (base.protocol === 'https:' ? 443 : 80));
  // SNI and the name check need a host name; an address is checked against the certificate's IP entries.
  const servername = isIP(host) ? undefined : host;

  function get(url: URL | string, init: { method?: string; headers?: Record<string, string> } = {}): Promise<Answer> {
    const target = typeof url === 'string' ? new URL(url) : url;
    const client = target.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = client.request(
        target,
        {
          method: init.method ?? 'GET',
          headers: { 'user-agent': 'flokie-check', connection: 'close', ...init.headers },
          agent: false,
          timeout,
          ...(target.protocol === 'https:' ? { ca, rejectUnauthorized: !options.insecure, servername } : {}),
        },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            if (body.length < 65_536) body += chunk;
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer within ${timeout} ms`)));
      req.on('error', reject);
      req.end();
    });
  }
  const api = (path: string) => new URL(path, base);
  const reason = (error: unknown) =>
    ((error as NodeJS.ErrnoException).code ?? (error as Error).message ?? String(error)).toString().slice(0, 160);

  // HTTPS at all
  if (base.protocol !== 'https:') {
    add(
      'remote.https',
      'The API is served over HTTPS',
      'fail',
      `${base.origin} is not https://; every other check needs TLS`,
    );
    return results;
  }

  // Certificate and TLS versions, from raw handshakes.
  const handshake = (version?: SecureVersion) =>
    new Promise<{
      cert?: PeerCertificate;
      protocol?: string | null;
      authorized?: boolean;
      authorizationError?: string;
      error?: string;
    }>((resolve) => {
      const socket = tls.connect({
        host,
        port,
        servername,
        ca,
        rejectUnauthorized: false,
        ...(version
          ? {
              minVersion: version,
              maxVersion: version,
              ciphers: version === 'TLSv1' || version === 'TLSv1.1' ? 'DEFAULT:@SECLEVEL=0' : undefined,
            }
          : {}),
        timeout,
      });
      socket.once('secureConnect', () => {
        const outcome = {
          cert: socket.getPeerCertificate(),
          protocol: socket.getProtocol(),
          authorized: socket.authorized,
          authorizationError: socket.authorizationError ? String(socket.authorizationError) : undefined,
        };
        socket.end();
        resolve(outcome);
      });
      socket.once('timeout', () => {
        socket.destroy();
        resolve({ error: 'timed out' });
      });
      socket.once('error', (error) => resolve({ error: reason(error) }));
    });

  const first = await handshake();
  if (first.error) {
    add('remote.https', 'The API is served over HTTPS', 'fail', `no TLS connection to ${host}:${port}: ${first.error}`);
    return results;
  }
  add('remote.https', 'The API is served over HTTPS', 'pass', `${first.protocol} on ${host}:${port}`);

  const cert = first.cert!;
  const daysLeft = Math.floor((Date.parse(cert.valid_to) - Date.now()) / 86_400_000);
  const nameProblem = tls.checkServerIdentity(servername ?? host, cert);
  const certProblems: string[] = [];
  if (!first.authorized)
    certProblems.push(
      options.insecure
        ? `not verified (--insecure): ${first.authorizationError}`
        : `not trusted: ${first.authorizationError}`,
    );
  if (nameProblem) certProblems.push(`does not name ${servername ?? host}`);
  if (daysLeft < 0) certProblems.push(`expired ${-daysLeft} days ago`);
  const certStatus: Status =
    nameProblem || daysLeft < 0 || (!first.authorized && !options.insecure)
      ? 'fail'
      : !first.authorized || daysLeft < 14
        ? 'warn'
        : 'pass';
  add(
    'remote.certificate',
    'The certificate is valid',
    certStatus,
    [
      ...certProblems,
      `${daysLeft >= 0 ? `expires in ${daysLeft} days` : ''} (${cert.valid_to}), issued to ` +
        `${cert.subject?.CN ?? '?'} by ${cert.issuer?.CN ?? '?'}`,
    ]
      .filter(Boolean)
      .join('; '),
  );

  const versions: Record<string, boolean> = {};
  for (const version of ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'] as const)
    versions[version] = !(await handshake(version)).error;
  const old = ['TLSv1', 'TLSv1.1'].filter((v) => versions[v]);
  const modern = ['TLSv1.2', 'TLSv1.3'].filter((v) => versions[v]);
  add(
    'remote.tls',
    'Only TLS 1.2 and 1.3 are offered',
    old.length ? 'fail' : modern.length < 2 ? 'warn' : 'pass',
    `${old.length ? `accepts ${old.join(', ')}; ` : 'refuses TLS 1.0 and 1.1; '}` +
      `${modern.length ? `accepts ${modern.join(', ')}` : 'neither 1.2 nor 1.3'}` +
      `${!versions['TLSv1.3'] ? ' (no TLS 1.3)' : ''}`,
  );

  // Plain HTTP must only redirect.
  const httpUrl = new URL(options.httpUrl ?? `http://${base.host.replace(/:\d+$/, '')}/`);
  httpUrl.pathname = '/api/health';
  try {
    const plain = await get(httpUrl);
    const location = String(plain.headers.location ?? '');
    const redirects = [301, 302, 307, 308].includes(plain.status) && location.startsWith('https://');
    add(
      'remote.redirect',
      'Plain HTTP redirects to HTTPS',
      redirects ? ([301, 308].includes(plain.status) ? 'pass' : 'warn') : 'fail',
      redirects
        ? `${httpUrl.origin} answers ${plain.status} → ` +
            `${location}${[301, 308].includes(plain.status) ? '' : ' (use a permanent 301/308)'}`
        : `${httpUrl.origin} answers ${plain.status} without a redirect to https://: the API is reachable unencrypted`,
    );
  } catch (error) {
    add(
      'remote.redirect',
      'Plain HTTP redirects to HTTPS',
      'warn',
      `${httpUrl.origin}: ${reason(error)} (nothing listens for plain HTTP: fine, but browsers typing the bare ` +
        `name get no redirect; --http-url names another port)`,
    );
  }

  // Security headers on a normal answer and on an error answer.
  const health = await get(api('/api/health')).catch((error: unknown) => error as Error);
  if (health instanceof Error) {
    add('remote.health', 'The API answers', 'fail', `GET /api/health: ${reason(health)}`);
    return results;
  }
  add(
    'remote.health',
    'The API answers',
    health.status === 200 ? 'pass' : 'fail',
    `GET /api/health → ${health.status}`,
  );
  const missing404 = await get(api(`/api/flokie-check-${randomBytes(4).toString('hex')}`));

  const headerProblems = (answer: Answer): { fail: string[]; warn: string[]; seen: string[] } => {
    const h = answer.headers;
    const fail: string[] = [];
    const warn: string[] = [];
    const seen: string[] = [];
    const hsts = /max-age=(\d+)/i.exec(String(h['strict-transport-security'] ?? ''));
    if (!hsts) fail.push('no Strict-Transport-Security');
    else if (Number(hsts[1]) < HSTS_MIN_SECONDS) warn.push(`HSTS max-age=${hsts[1]} (< 180 days)`);
    else seen.push(`HSTS max-age=${hsts[1]}`);
    if (String(h['x-content-type-options'] ?? '').toLowerCase() !== 'nosniff')
      fail.push('no X-Content-Type-Options: nosniff');
    const csp = String(h['content-security-policy'] ?? '');
    if (!/frame-ancestors/i.test(csp) && !/^(deny|sameorigin)$/i.test(String(h['x-frame-options'] ?? '')))
      fail.push('framing allowed (no X-Frame-Options, no CSP frame-ancestors)');
    if (!csp) warn.push('no Content-Security-Policy');
    if (!h['referrer-policy']) warn.push('no Referrer-Policy');
    if (fail.length + warn.length === 0) seen.push('nosniff, frame protection, CSP, Referrer-Policy');
    return { fail, warn, seen };
  };
  for (const [id, title, answer, what] of [
    ['remote.headers.api', 'Security headers on an API answer', health, 'GET /api/health'],
    [
      'remote.headers.error',
      'Security headers on an error answer',
      missing404,
      `GET an unknown /api path (${missing404.status})`,
    ],
  ] as const) {
    const p = headerProblems(answer);
    add(
      id,
      title,
      p.fail.length ? 'fail' : p.warn.length ? 'warn' : 'pass',
      `${what}: ${[...p.fail, ...p.warn, ...p.seen].join('; ')}`,
    );
  }

  // No version banners.
  const banners = [health, missing404]
    .flatMap((a) => [
      a.headers.server && /\d/.test(String(a.headers.server)) ? `Server: ${a.headers.server}` : '',
      a.headers['x-powered-by'] ? `X-Powered-By: ${a.headers['x-powered-by']}` : '',
    ])
    .filter(Boolean);
  add(
    'remote.banners',
    'No version banners',
    banners.length ? 'fail' : 'pass',
    banners.length ? [...new Set(banners)].join('; ') : `Server: ${health.headers.server ?? '(none)'}, no X-Powered-By`,
  );

  // CORS with a foreign origin.
  const corsGet = await get(api('/api/health'), { headers: { origin: FOREIGN_ORIGIN } });
  const preflight = await get(api('/api/auth/login'), {
    method: 'OPTIONS',
    headers: {
      origin: FOREIGN_ORIGIN,
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'content-type,authorization',
    },
  });
  const allowed = [corsGet, preflight]
    .map((a) => String(a.headers['access-control-allow-origin'] ?? ''))
    .filter(Boolean);
  const echoed = allowed.filter((v) => v === FOREIGN_ORIGIN || v === '*');
  add(
    'remote.cors',
    'CORS refuses a foreign origin',
    echoed.length ? 'fail' : 'pass',
    echoed.length
      ? `Access-Control-Allow-Origin: ${echoed[0]} for ` +
          `${FOREIGN_ORIGIN}${corsGet.headers['access-control-allow-credentials'] ? ' with credentials' : ''}`
      : `no Access-Control-Allow-Origin for ${FOREIGN_ORIGIN} (GET ${corsGet.status}, preflight ${preflight.status})`,
  );

  // Docs exposed?
  const docs = await get(api('/api/openapi.json'));
  const ui = await get(api('/api/docs'));
  const exposed = [docs, ui].some((a) => a.status >= 200 && a.status < 400);
  add(
    'remote.docs',
    'API docs are not public',
    exposed ? 'warn' : 'pass',
    exposed
      ? `/api/openapi.json ${docs.status}, /api/docs ${ui.status}: the API description is public ` +
          `(DOCS_ENABLED=false unless intended)`
      : `/api/openapi.json ${docs.status}, /api/docs ${ui.status}`,
  );

  // Detailed health must not be open.
  const detailed = await get(api('/api/health/detailed'));
  add(
    'remote.health.detailed',
    'Detailed health is protected',
    detailed.status === 401 || detailed.status === 403 ? 'pass' : detailed.status === 200 ? 'fail' : 'warn',
    `GET /api/health/detailed without credentials → ${detailed.status}`,
  );

  // Rate limiting: a RateLimit header says it all; otherwise a small burst.
  const probe = api('/api/auth/csrf-token');
  const limitHeader = (a: Answer) => a.headers['ratelimit-limit'] ?? a.headers['x-ratelimit-limit'];
  const firstProbe = await get(probe);
  if (limitHeader(firstProbe) !== undefined) {
    add(
      'remote.ratelimit',
      'Rate limiting is active',
      'pass',
      `RateLimit-Limit: ${limitHeader(firstProbe)}, RateLimit-Remaining: ` +
        `${firstProbe.headers['ratelimit-remaining'] ?? firstProbe.headers['x-ratelimit-remaining'] ?? '?'} on GET ` +
        `/api/auth/csrf-token (1 request)`,
    );
  } else {
    const burst = options.burst ?? 15;
    let refusedAt = 0;
    for (let i = 2; i <= burst; i++) {
      const answer = await get(probe);
      if (answer.status === 429 || limitHeader(answer) !== undefined) {
        refusedAt = i;
        break;
      }
    }
    add(
      'remote.ratelimit',
      'Rate limiting is active',
      refusedAt ? 'pass' : 'warn',
      refusedAt
        ? `limited after ${refusedAt} requests to GET /api/auth/csrf-token`
        : `no RateLimit header and no 429 in a burst of ${burst} GETs of /api/auth/csrf-token (the limit may just ` +
            `be higher)`,
    );
  }
  return results;
}
