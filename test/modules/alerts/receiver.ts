/**
 * A webhook receiver for the alert tests: a real HTTP server on loopback that verifies every
 * request's signature the way docs/deployment.md tells receivers to (an independent HMAC here,
 * not the service's own code), keeps what it accepted, and can refuse (503) or go away entirely
 * (port closed) and come back on the same port.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AlertMessage } from '../../../src/modules/alerts/channels.js';

export interface Received {
  headers: IncomingMessage['headers'];
  body: AlertMessage | undefined;
  raw: string;
  signatureValid: boolean;
}

/**
 * The receiver's side of the contract: v1=hex(HMAC-SHA256(secret, `${timestamp}.${raw body}`)),
 * timestamp within 5 minutes.
 */
export function receiverVerifies(
  secret: string,
  headers: IncomingMessage['headers'],
  raw: string,
  nowSeconds = Date.now() / 1000,
): boolean {
  const timestamp = String(headers['x-flokie-timestamp'] ?? '');
  const signature = String(headers['x-flokie-signature'] ?? '');
  if (!/^\d+$/.test(timestamp) || Math.abs(nowSeconds - Number(timestamp)) > 300) return false;
  const expected = Buffer.from(`v1=${createHmac('sha256', secret).update(`${timestamp}.${raw}`).digest('hex')}`);
  const given = Buffer.from(signature);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export async function startReceiver(secret: string, port = 0) {
  const accepted: Received[] = [];
  const attempts: Received[] = [];
  const state = { failing: false };
  let server: Server;
  const listen = (p: number) =>
    new Promise<number>((resolve, reject) => {
      server = createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          const raw = Buffer.concat(chunks).toString('utf8');
          let body: AlertMessage | undefined;
          try {
            body = JSON.parse(raw) as AlertMessage;
          } catch {
            body = undefined;
          }
          const received = {
            headers: req.headers,
            body,
            raw,
            signatureValid: receiverVerifies(secret, req.headers, raw),
          };
          attempts.push(received);
          if (state.failing) {
            res.writeHead(503).end('down for maintenance');
            return;
          }
          if (!received.signatureValid) {
            res.writeHead(401).end('bad signature');
            return;
          }
          accepted.push(received);
          res.writeHead(204).end();
        });
      });
      server.once('error', reject);
      server.listen(p, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
    });
  const boundPort = await listen(port);
  return {
    port: boundPort,
    url: `http://127.0.0.1:${boundPort}/hooks/flokie`,
    accepted,
    attempts,
    state,
    /** Closes the port: senders get ECONNREFUSED. */
    async down() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
    async up() {
      await listen(boundPort);
    },
    close() {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
