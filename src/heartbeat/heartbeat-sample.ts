import { isIP } from 'node:net';
import { invalidArgument } from '../errors.ts';
import type { DiskInfo, HeartbeatRequest, NetworkInterface } from '../grpc/messages.ts';

export const MAX_DISKS = 256;
export const MAX_INTERFACES = 256;
export const MAX_ADDRESSES_PER_INTERFACE = 256;
export const MAX_STRING_BYTES = 1024;

/** One heartbeat, validated and sanitised, ready to be written (SPEC §6.2). */
export interface HeartbeatSample {
  readonly agentId: string;
  readonly organisationId: string;
  readonly receivedAtMs: number;
  readonly metricId: string;
  readonly hostId: string;
  readonly hostname: string;
  readonly cpuPercent: number | null;
  readonly memoryPercent: number | null;
  readonly diskPercent: number | null;
  readonly uptimeSeconds: number | null;
  readonly agentVersion: string;
  readonly os: string;
  readonly osVersion: string;
  readonly arch: string;
  readonly ipAddresses: string[];
  readonly disks: Array<Record<string, string | number | null>>;
  readonly networkInterfaces: Array<Record<string, string | boolean | string[]>>;
}

/** NaN/Inf → null; out-of-range percentages are clamped into [0, 100]. */
export function sanitisePercent(value: unknown): number | null {
  if (typeof value !== 'number' || !Number.isFinite(value)) return null;
  return Math.min(100, Math.max(0, value));
}

export function sanitiseCount(value: unknown): number | null {
  const n = typeof value === 'string' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) return null;
  return Math.min(Math.trunc(n), Number.MAX_SAFE_INTEGER);
}

function boundedString(value: unknown, field: string): string {
  const text = typeof value === 'string' ? value : '';
  if (Buffer.byteLength(text, 'utf8') > MAX_STRING_BYTES) throw invalidArgument(field, `longer than ${MAX_STRING_BYTES} bytes`);
  // NUL cannot be stored in PostgreSQL text or jsonb.
  return text.includes('\u0000') ? text.replaceAll('\u0000', '') : text;
}

/** `10.0.0.5/24` → `10.0.0.5`, `fe80::1%eth0` → `fe80::1`; anything that is not an address is dropped. */
export function normaliseAddress(value: string): string | undefined {
  const address = value.trim().split('/')[0]?.split('%')[0] ?? '';
  return isIP(address) === 0 ? undefined : address.toLowerCase();
}

function disk(d: DiskInfo, i: number): Record<string, string | number | null> {
  const at = `disks[${i}]`;
  return {
    mount_point: boundedString(d.mount_point, `${at}.mount_point`),
    device: boundedString(d.device, `${at}.device`),
    fs_type: boundedString(d.fs_type, `${at}.fs_type`),
    total_bytes: sanitiseCount(d.total_bytes),
    used_bytes: sanitiseCount(d.used_bytes),
    free_bytes: sanitiseCount(d.free_bytes),
    percent_used: sanitisePercent(d.percent_used),
  };
}

function networkInterface(n: NetworkInterface, i: number): Record<string, string | boolean | string[]> {
  const at = `network_interfaces[${i}]`;
  const addresses = n.ip_addresses ?? [];
  if (addresses.length > MAX_ADDRESSES_PER_INTERFACE) throw invalidArgument(`${at}.ip_addresses`, `more than ${MAX_ADDRESSES_PER_INTERFACE} entries`);
  return {
    name: boundedString(n.name, `${at}.name`),
    ip_addresses: addresses.map((a, j) => boundedString(a, `${at}.ip_addresses[${j}]`)),
    mac_address: boundedString(n.mac_address, `${at}.mac_address`),
    is_up: n.is_up === true,
  };
}

export interface SampleIdentity {
  readonly agentId: string;
  readonly organisationId: string;
  readonly hostname: string;
  readonly receivedAtMs: number;
  readonly metricId: string;
  readonly hostId: string;
}

/**
 * Validates structure (limits → INVALID_ARGUMENT naming the field) and sanitises values (never throws for
 * odd numbers): the result can always be written.
 */
export function toHeartbeatSample(request: HeartbeatRequest, identity: SampleIdentity): HeartbeatSample {
  const disks = request.disks ?? [];
  const interfaces = request.network_interfaces ?? [];
  if (disks.length > MAX_DISKS) throw invalidArgument('disks', `more than ${MAX_DISKS} entries`);
  if (interfaces.length > MAX_INTERFACES) throw invalidArgument('network_interfaces', `more than ${MAX_INTERFACES} entries`);
  const agentVersion = boundedString(request.agent_version, 'agent_version');
  const os = boundedString(request.os, 'os');
  const osVersion = boundedString(request.os_version, 'os_version');
  const arch = boundedString(request.arch, 'arch');
  boundedString(request.pinned_server_cert_fingerprint, 'pinned_server_cert_fingerprint');
  const networkInterfaces = interfaces.map(networkInterface);
  const ipAddresses = [
    ...new Set(networkInterfaces.flatMap((n) => (n['ip_addresses'] as string[]).map(normaliseAddress).filter((a): a is string => a !== undefined))),
  ];
  return {
    ...identity,
    cpuPercent: sanitisePercent(request.cpu_percent),
    memoryPercent: sanitisePercent(request.memory_percent),
    diskPercent: sanitisePercent(request.disk_percent),
    uptimeSeconds: sanitiseCount(request.uptime_seconds),
    agentVersion,
    os,
    osVersion,
    arch,
    ipAddresses,
    disks: disks.map(disk),
    networkInterfaces,
  };
}
