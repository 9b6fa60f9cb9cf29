/**
 * HTTPS served by the process itself (TLS_CERT_FILE + TLS_KEY_FILE), with the same settings as
 * the nginx in front of it (deploy/nginx.conf; test/http/tls.test.ts holds the two equal): TLS 1.2
 * and 1.3 only; for TLS 1.2 only ECDHE (forward-secret) AEAD suites. The guide's nginx line names
 * "ECDHE-RSA-AES256-GCM-SHA512:DHE-RSA-AES256-GCM-SHA512", which are not real OpenSSL suite names
 * (AES-256-GCM suites use SHA384); we keep its intent — forward secrecy, AES-256-GCM first — with
 * ECDHE only: DHE needs DH parameters, which neither the service nor nginx is given. As in the
 * guide (ssl_prefer_server_ciphers off), the client picks among them: every suite on the list is
 * strong. TLS 1.3 suites are OpenSSL's defaults, all AEAD. Session tickets are off, as in nginx
 * (ssl_session_tickets off): a ticket key is a long-lived secret whose theft would decrypt every
 * recorded session it protected.
 */
import { constants } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { SecureVersion } from 'node:tls';
import { SettingError, type Config } from '../config/index.js';

export const TLS_MIN_VERSION: SecureVersion = 'TLSv1.2';

/** TLS 1.2 suites, the same list as ssl_ciphers in deploy/nginx.conf. */
export const TLS12_CIPHERS = [
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
].join(':');

export interface TlsServerOptions {
  cert: Buffer;
  key: Buffer;
  minVersion: SecureVersion;
  ciphers: string;
  honorCipherOrder: boolean;
  secureOptions: number;
}

/** Options for https.createServer, or null when TLS is not configured. Throws SettingError on unreadable files. */
export function tlsServerOptions(config: Pick<Config, 'TLS_CERT_FILE' | 'TLS_KEY_FILE'>): TlsServerOptions | null {
  if (!config.TLS_CERT_FILE || !config.TLS_KEY_FILE) return null;
  const read = (name: string, path: string) => {
    try {
      // eslint-disable-next-line security/detect-non-literal-fs-filename -- the operator's own setting
      return readFileSync(path);
    } catch (error) {
      throw new SettingError(`${name} cannot be read: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
    }
  };
  return {
    cert: read('TLS_CERT_FILE', config.TLS_CERT_FILE),
    key: read('TLS_KEY_FILE', config.TLS_KEY_FILE),
    minVersion: TLS_MIN_VERSION,
    ciphers: TLS12_CIPHERS,
    honorCipherOrder: false,
    secureOptions: constants.SSL_OP_NO_TICKET,
  };
}

/**
 * Options for the HTTP(S) server Fastify creates: TLS when configured, explicit header-size limit, `extra`
 * (timeouts).
 */
export function httpServerOptions(
  config: Pick<Config, 'TLS_CERT_FILE' | 'TLS_KEY_FILE'>,
  maxHeaderSize = 16 * 1024,
  extra: Record<string, number> = {},
) {
  const tls = tlsServerOptions(config);
  return tls ? { https: { ...tls, maxHeaderSize, ...extra } } : { http: { maxHeaderSize, ...extra } };
}
