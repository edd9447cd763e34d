import { isIP } from 'node:net';

/**
 * Addresses that can identify a host across an organisation (SPEC §5.2 step 2): loopback, link-local and
 * unspecified addresses are shared by every machine and are ignored. IPv4-mapped IPv6 is compared as IPv4.
 */
export function comparableAddresses(addresses: readonly string[]): string[] {
  const result = new Set<string>();
  for (const raw of addresses) {
    let address = raw.trim().toLowerCase().replace(/\/\d+$/, '');
    if (address.startsWith('::ffff:') && isIP(address.slice(7)) === 4) address = address.slice(7);
    const family = isIP(address);
    if (family === 4 && !isIgnoredIpv4(address)) result.add(address);
    if (family === 6 && !isIgnoredIpv6(address)) result.add(address);
  }
  return [...result];
}

function isIgnoredIpv4(address: string): boolean {
  const [a, b] = address.split('.').map(Number);
  return a === 127 || a === 0 || (a === 169 && b === 254);
}

function isIgnoredIpv6(address: string): boolean {
  if (address === '::1' || address === '::') return true;
  // fe80::/10 — the first hextet is fe80..febf.
  return /^fe[89ab][0-9a-f]?:/.test(address);
}
