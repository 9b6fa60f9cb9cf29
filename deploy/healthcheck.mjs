#!/usr/bin/env node
// Container health check (Dockerfile HEALTHCHECK, docker-compose.yml): exit 0 when GET /api/health
// on this container answers 200 within 4 s, else 1. Plain node, because slim images have no curl.
// Speaks HTTPS when the service terminates TLS itself (TLS_CERT_FILE); the certificate is not
// verified because the probe talks to its own process over loopback.
import http from 'node:http';
import https from 'node:https';

const tls = Boolean(process.env.TLS_CERT_FILE);
const port = Number(process.env.HEALTHCHECK_PORT || process.env.PORT || 5000);
const request = (tls ? https : http).get(
  {
    host: '127.0.0.1',
    port,
    path: '/api/health',
    timeout: 4000,
    rejectUnauthorized: false,
    headers: { 'x-request-id': 'healthcheck' },
  },
  (response) => {
    response.resume();
    process.exit(response.statusCode === 200 ? 0 : 1);
  },
);
request.on('timeout', () => request.destroy(new Error('timeout')));
request.on('error', (error) => {
  console.error(`healthcheck: ${error.message}`);
  process.exit(1);
});
