/**
 * Who the client really is. X-Forwarded-For / X-Forwarded-Proto are believed only when the TCP
 * peer is one of TRUSTED_PROXIES (addresses or CIDRs); otherwise request.ip is the socket address,
 * so rate limits, lockouts and logs cannot be dodged with a spoofed header. A request that carries
 * X-Forwarded-For from an untrusted peer is logged with a warning and recorded as a
 * `suspicious_header` security event (at most once a minute per address, so a flood of such
 * requests cannot flood the event table).
 */
import { BlockList, isIP } from 'node:net';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { SettingError } from '../../config/index.js';
import type { Container } from '../../container.js';
import { requestContext } from '../../http/request-context.js';
import { clientAddressKey, normalizeAddress } from '../../core/client-address.js';

const ALIASES: Record<string, string[]> = {
  loopback: ['127.0.0.0/8', '::1/128'],
  private: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'],
};

/** TRUSTED_PROXIES entries → a predicate; throws SettingError naming a bad entry. */
export function compileTrustedProxies(entries: string[]): (address: string) => boolean {
  const list = new BlockList();
  for (const raw of entries.flatMap((e) => ALIASES[e.toLowerCase()] ?? [e])) {
    const [address, bits, extra] = raw.split('/');
    const family = isIP(address ?? '');
    const type = family === 6 ? 'ipv6' : 'ipv4';
    if (!family || extra !== undefined)
      throw new SettingError(`TRUSTED_PROXIES entry "${raw}" is not an IP address or CIDR`);
    if (bits === undefined) {
      list.addAddress(address!, type);
      continue;
    }
    const prefix = Number(bits);
    if (!/^\d+$/.test(bits) || prefix > (family === 6 ? 128 : 32))
      throw new SettingError(`TRUSTED_PROXIES entry "${raw}" has a bad prefix length`);
    list.addSubnet(address!, prefix, type);
  }
  return (address: string) => {
    const normalized = normalizeAddress(address);
    const family = isIP(normalized);
    return family !== 0 && list.check(normalized, family === 6 ? 'ipv6' : 'ipv4');
  };
}

/** Fastify's `trustProxy` option: false without proxies, else a per-hop check of the peer address. */
export function trustProxyOption(entries: string[]): false | ((address: string, hop: number) => boolean) {
  if (entries.length === 0) return false;
  const trusted = compileTrustedProxies(entries);
  return (address) => trusted(address);
}

const WARN_INTERVAL_MS = 60_000;
const MAX_TRACKED = 10_000;

export default fp(
  async function clientAddress(app: FastifyInstance, { container }: { container: Container }) {
    const trusted = compileTrustedProxies(container.config.TRUSTED_PROXIES);
    const lastWarned = new Map<string, number>();

    function warnIfUntrustedForward(request: FastifyRequest): void {
      const forwardedFor = request.headers['x-forwarded-for'];
      if (forwardedFor === undefined) return;
      const peer = request.socket.remoteAddress ?? '';
      if (trusted(peer)) return;
      const now = Date.now();
      const ip = normalizeAddress(peer);
      const key = clientAddressKey(peer, container.config.RATE_LIMIT_IPV6_PREFIX);
      if ((lastWarned.get(key) ?? 0) > now - WARN_INTERVAL_MS) return;
      if (lastWarned.size >= MAX_TRACKED) lastWarned.clear();
      lastWarned.set(key, now);
      const forwarded = String(forwardedFor).slice(0, 200);
      request.log.warn({ ip_address: ip, forwarded_for: forwarded }, 'Request with X-Forwarded-For header');
      container.events.emit({
        type: 'suspicious_header',
        context: requestContext(request),
        ip,
        message: 'Request with X-Forwarded-For header from an untrusted peer',
        details: { header: 'x-forwarded-for', forwarded_for: forwarded },
      });
    }

    app.addHook('onRequest', (request, _reply, done) => {
      warnIfUntrustedForward(request);
      done();
    });
  },
  { name: 'flokie-client-address' },
);
