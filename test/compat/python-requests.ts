/**
 * What Python's `requests` puts on the wire for `session.request(method, url, json=…, params=…,
 * headers=…)`, reproduced over a real socket so the service sees exactly that: the session's
 * default headers, `Content-Length: 0` on a body-less POST/PUT/DELETE, bodies serialised the way
 * `json.dumps` does (", " and ": " separators, non-ASCII escaped), query values the way
 * `urlencode` writes them (True/False, None dropped). Used by the original-clients test.
 */
import http from 'node:http';
import type { ResponseBody } from '../helpers/response-body.js';

export type PyValue = string | number | boolean | null | PyValue[] | { [key: string]: PyValue };

/** json.dumps(value) with Python's default separators and ensure_ascii. */
export function pythonJson(value: PyValue): string {
  if (value === null) return 'null';
  if (typeof value === 'boolean' || typeof value === 'number') return JSON.stringify(value);
  if (typeof value === 'string')
    return JSON.stringify(value).replace(
      /[\u007f-\uffff]/g,
      (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
    );
  if (Array.isArray(value)) return `[${value.map(pythonJson).join(', ')}]`;
  return `{${Object.entries(value)
    .map(([k, v]) => `${pythonJson(k)}: ${pythonJson(v)}`)
    .join(', ')}}`;
}

/** str() of a query value as urlencode writes it. */
function pythonStr(value: string | number | boolean): string {
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  return String(value);
}

export interface PyResponse {
  status: number;
  /** requests' `response.ok`: status below 400. */
  ok: boolean;
  body: ResponseBody;
  headers: http.IncomingHttpHeaders;
}

/** One `requests.Session`: keep-alive connection, default headers. */
export class PythonSession {
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  readonly defaultHeaders: Record<string, string> = {
    'User-Agent': 'python-requests/2.32.3',
    'Accept-Encoding': 'gzip, deflate',
    Accept: '*/*',
    Connection: 'keep-alive',
  };

  request(
    method: string,
    url: string,
    options: {
      json?: PyValue | null;
      params?: Record<string, string | number | boolean | null> | null;
      headers?: Record<string, string>;
    } = {},
  ): Promise<PyResponse> {
    const target = new URL(url);
    for (const [key, value] of Object.entries(options.params ?? {}))
      if (value !== null) target.searchParams.append(key, pythonStr(value));
    // Header names are case-insensitive: the request's own override the session's.
    const headers: Record<string, string> = {};
    const set = (name: string, value: string) => {
      for (const existing of Object.keys(headers))
        if (existing.toLowerCase() === name.toLowerCase()) delete headers[existing];
      headers[name] = value;
    };
    for (const [name, value] of Object.entries(this.defaultHeaders)) set(name, value);
    for (const [name, value] of Object.entries(options.headers ?? {})) set(name, value);
    let body: Buffer | null = null;
    if (options.json !== undefined && options.json !== null) {
      body = Buffer.from(pythonJson(options.json));
      if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type'))
        set('Content-Type', 'application/json');
    }
    if (body) set('Content-Length', String(body.length));
    else if (method !== 'GET' && method !== 'HEAD') set('Content-Length', '0');
    return new Promise((resolve, reject) => {
      const req = http.request(target, { method, headers, agent: this.agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown;
          try {
            parsed = JSON.parse(text);
          } catch {
            parsed = { message: text };
          }
          const status = res.statusCode ?? 0;
          resolve({ status, ok: status < 400, body: parsed, headers: res.headers });
        });
      });
      req.on('error', reject);
      req.end(body ?? undefined);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
