import { isIP } from 'node:net';
import { invalidArgument } from '../errors.ts';
import type { TagInput } from './tags.ts';

export const REGISTER_LIMITS = {
  tokenChars: 256,
  publicKeyBytes: 4096,
  hostnameChars: 253,
  ipAddresses: 64,
  tags: 64,
  tagChars: 255,
  csrBytes: 16_384,
  shortTextChars: 255,
} as const;

/** What a Register request carries, as the domain sees it (decoded from the wire by the handler). */
export interface RegisterInput {
  readonly orgToken: string;
  readonly publicKey: string;
  readonly hostname: string;
  readonly os: string;
  readonly arch: string;
  readonly osVersion: string;
  readonly version: string;
  readonly ipAddresses: readonly string[];
  readonly tags: readonly TagInput[];
  readonly csrDer: Uint8Array;
}

export interface ValidRegistration extends RegisterInput {}

/**
 * SPEC §5.1: required fields and bounds, each failure naming its field. Empty-key/value tags are dropped,
 * an empty hostname becomes `unknown`. Runs before any database access, so a rejected request writes nothing.
 */
export function validateRegisterInput(input: RegisterInput): ValidRegistration {
  refuseNulCharacters(input);
  if (input.orgToken === '') throw invalidArgument('org_token', 'is required');
  if (input.orgToken.length > REGISTER_LIMITS.tokenChars) throw invalidArgument('org_token', `must be at most ${REGISTER_LIMITS.tokenChars} characters`);
  if (input.publicKey.trim() === '') throw invalidArgument('public_key', 'is required');
  if (Buffer.byteLength(input.publicKey, 'utf8') > REGISTER_LIMITS.publicKeyBytes) throw invalidArgument('public_key', `must be at most ${REGISTER_LIMITS.publicKeyBytes} bytes`);
  const hostname = input.hostname.trim();
  if (hostname.length > REGISTER_LIMITS.hostnameChars) throw invalidArgument('agent_info.hostname', `must be at most ${REGISTER_LIMITS.hostnameChars} characters`);
  for (const [field, value] of [['platform_info.os', input.os], ['platform_info.arch', input.arch], ['platform_info.os_version', input.osVersion], ['agent_info.version', input.version]] as const) {
    if (value.length > REGISTER_LIMITS.shortTextChars) throw invalidArgument(field, `must be at most ${REGISTER_LIMITS.shortTextChars} characters`);
  }
  if (input.ipAddresses.length > REGISTER_LIMITS.ipAddresses) throw invalidArgument('platform_info.ip_addresses', `must hold at most ${REGISTER_LIMITS.ipAddresses} addresses`);
  const ipAddresses: string[] = [];
  for (const [index, entry] of input.ipAddresses.entries()) {
    // Interface addresses may carry a `/prefix` (as in heartbeats); the host address is what identifies it.
    const address = withoutPrefix(entry.trim());
    const family = isIP(address);
    if (family === 0) throw invalidArgument(`platform_info.ip_addresses[${index}]`, 'is not a valid IPv4 or IPv6 address');
    ipAddresses.push(family === 6 ? canonicalIpv6(address) : address);
  }
  if (input.tags.length > REGISTER_LIMITS.tags) throw invalidArgument('tags', `must hold at most ${REGISTER_LIMITS.tags} tags`);
  for (const [index, tag] of input.tags.entries()) {
    if (tag.key.length > REGISTER_LIMITS.tagChars) throw invalidArgument(`tags[${index}].key`, `must be at most ${REGISTER_LIMITS.tagChars} characters`);
    if (tag.value.length > REGISTER_LIMITS.tagChars) throw invalidArgument(`tags[${index}].value`, `must be at most ${REGISTER_LIMITS.tagChars} characters`);
  }
  if (input.csrDer.length > REGISTER_LIMITS.csrBytes) throw invalidArgument('csr_der', `must be at most ${REGISTER_LIMITS.csrBytes} bytes`);
  return {
    ...input,
    hostname: hostname === '' ? 'unknown' : hostname,
    ipAddresses: [...new Set(ipAddresses)],
    tags: input.tags.filter((tag) => tag.key !== '' && tag.value !== '').map((tag) => ({ key: tag.key, value: tag.value })),
  };
}

/** One spelling per IPv6 address (`2001:0DB8::5` → `2001:db8::5`) so stored addresses compare as text. */
function canonicalIpv6(address: string): string {
  // The WHATWG URL parser serialises IPv6 hosts canonically (RFC 5952); zone ids are not allowed there.
  if (address.includes('%')) return address.toLowerCase();
  return new URL(`http://[${address}]/`).hostname.slice(1, -1);
}

/** PostgreSQL text cannot hold U+0000; such input is the client's mistake, not a server fault. */
function refuseNulCharacters(input: RegisterInput): void {
  const fields: Array<[string, string]> = [
    ['org_token', input.orgToken],
    ['public_key', input.publicKey],
    ['agent_info.hostname', input.hostname],
    ['agent_info.version', input.version],
    ['platform_info.os', input.os],
    ['platform_info.arch', input.arch],
    ['platform_info.os_version', input.osVersion],
    ...input.tags.flatMap((tag, index): Array<[string, string]> => [
      [`tags[${index}].key`, tag.key],
      [`tags[${index}].value`, tag.value],
    ]),
  ];
  for (const [field, value] of fields) if (value.includes('\u0000')) throw invalidArgument(field, 'must not contain NUL characters');
}

function withoutPrefix(address: string): string {
  const match = /^(.+)\/(\d{1,3})$/.exec(address);
  return match?.[1] !== undefined && Number(match[2]) <= 128 ? match[1] : address;
}
