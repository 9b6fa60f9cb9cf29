/**
 * How a client address is keyed, for every per-address rule: rate limits, the emergency limit,
 * intrusion detection and the IP block (which address a request comes from is decided at the
 * HTTP edge: src/plugins/app/client-address.ts).
 */
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';

const OCTET = '(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
const CANONICAL_IPV4 = new RegExp(`^${OCTET}(\\.${OCTET}){3}$`);

/** "::ffff:10.0.0.1" (IPv4 on a dual-stack socket) → "10.0.0.1". */
export function normalizeAddress(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return mapped ? mapped[1]! : address;
}

/**
 * The key every per-address counter uses for a client (rate limits, the emergency limit, intrusion
 * detection, the IP block): an IPv4 address as itself (/32); an IPv6 address as its network of
 * `ipv6Prefix` bits (RATE_LIMIT_IPV6_PREFIX, 64 by default), because one subscriber is handed a
 * whole /64 and can rotate through it at will; an IPv4-mapped IPv6 address (::ffff:1.2.3.4) as
 * its IPv4 address. Anything that is not an address in standard notation (ipaddr.js would read
 * "010.0.0.1" as octal 8.0.0.1 and "10.1" as 10.0.0.1) is keyed as given.
 */
export function clientAddressKey(address: string, ipv6Prefix: number): string {
  // Every request pays for this (rate limits, the IP block): a dotted quad without leading zeros is
  // already its own key, no parsing needed.
  if (CANONICAL_IPV4.test(address)) return address;
  if (isIP(address) === 0) return address;
  try {
    const parsed = ipaddr.process(address);
    if (parsed.kind() === 'ipv4') return parsed.toString();
    const network = ipaddr.IPv6.networkAddressFromCIDR(`${parsed.toString()}/${ipv6Prefix}`);
    return `${network.toString()}/${ipv6Prefix}`;
  } catch {
    return address;
  }
}
