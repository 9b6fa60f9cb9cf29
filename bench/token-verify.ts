/**
 * Before/after figure for the access-token check alone: jose's jwtVerify (WebCrypto HMAC, which
 * Node runs as a job on libuv's thread pool) against TokenService.verify (synchronous HMAC),
 * first on an idle thread pool, then while bcrypt verifications keep every pool thread busy
 * (what a login flood does to the server). Prints one JSON line and a short table.
 *
 * Usage: tsx bench/token-verify.ts [seconds-per-case]
 */
import * as bcrypt from '@node-rs/bcrypt';
import { jwtVerify } from 'jose';
import { TokenService } from '../src/modules/auth/tokens.js';

const seconds = Number(process.argv[2] ?? 3);
const settings = {
  secret: 'token-verify-bench-secret-0123456789abcdef',
  issuer: 'flokie',
  audience: 'flokie-api',
  accessTtlSeconds: 3600,
  refreshTtlSeconds: 86400,
};
const service = new TokenService(settings);
const { token } = await service.sign('access', { sub: 'user', sid: 'session' });
const joseKey = new TextEncoder().encode(settings.secret);

const cases: Record<string, () => Promise<unknown>> = {
  'jose jwtVerify (WebCrypto)': () =>
    jwtVerify(token, joseKey, {
      algorithms: ['HS256'],
      typ: 'at+jwt',
      issuer: 'flokie',
      audience: 'flokie-api',
      requiredClaims: ['sub', 'sid', 'jti', 'iat', 'nbf', 'exp'],
      clockTolerance: 5,
    }),
  'TokenService.verify (sync HMAC)': () => service.verify(token, 'access'),
};

async function measure(fn: () => Promise<unknown>) {
  const latencies: number[] = [];
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) {
    const t = performance.now();
    await fn();
    latencies.push(performance.now() - t);
  }
  latencies.sort((a, b) => a - b);
  const at = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))]!;
  return { perSecond: latencies.length / seconds, p50Ms: at(50), p99Ms: at(99) };
}

const hash = await bcrypt.hash('pool-filler', 12);
let flooding = false;
async function filler() {
  while (flooding) await bcrypt.verify('pool-filler', hash);
}

const results: Record<string, unknown> = {};
for (const [name, fn] of Object.entries(cases)) {
  await measure(fn); // warm-up
  const idle = await measure(fn);
  flooding = true;
  const fillers = Array.from({ length: 8 }, filler);
  const flooded = await measure(fn);
  flooding = false;
  await Promise.all(fillers);
  results[name] = { idle, duringBcryptFlood: flooded };
}
process.stdout.write(`${JSON.stringify(results)}\n`);
for (const [name, r] of Object.entries(results) as [
  string,
  { idle: Awaited<ReturnType<typeof measure>>; duringBcryptFlood: Awaited<ReturnType<typeof measure>> },
][]) {
  process.stderr.write(
    `${name.padEnd(34)} idle: ${r.idle.perSecond.toFixed(0)}/s p50 ${r.idle.p50Ms.toFixed(3)} ms p99 ` +
      `${r.idle.p99Ms.toFixed(3)} ms | bcrypt flood: ${r.duringBcryptFlood.perSecond.toFixed(0)}/s p50 ` +
      `${r.duringBcryptFlood.p50Ms.toFixed(3)} ms p99 ${r.duringBcryptFlood.p99Ms.toFixed(3)} ms\n`,
  );
}
