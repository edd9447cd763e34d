import type { Queryable } from '../enrolment/queryable.ts';
import { comparableAddresses } from './comparable-addresses.ts';

export interface MatchingHost {
  readonly id: string;
  readonly hostname: string;
  readonly status: 'online' | 'offline' | 'unknown';
  /** The host's live agent, if it still has one. */
  readonly agentId: string | null;
  readonly agentStatus: 'pending' | 'active' | 'offline' | 'revoked' | null;
}

export type DuplicateHostDecision =
  | { readonly kind: 'insert' }
  | { readonly kind: 'reject'; readonly host: MatchingHost }
  | { readonly kind: 'adopt'; readonly host: MatchingHost };

export interface HostIdentity {
  readonly organisationId: string;
  /** `unknown` (an agent that did not say) never matches by name. */
  readonly hostname: string;
  readonly ipAddresses: readonly string[];
}

/**
 * Hosts of the organisation that look like the registering machine: same hostname (case-insensitive) or an
 * overlapping meaningful IP address. Locked so a concurrent registration cannot adopt the same host.
 */
export async function findMatchingHosts(db: Queryable, identity: HostIdentity): Promise<MatchingHost[]> {
  const addresses = comparableAddresses(identity.ipAddresses);
  const hostname = identity.hostname === 'unknown' ? null : identity.hostname;
  if (hostname === null && addresses.length === 0) return [];
  const result = await db.query<{ id: string; hostname: string; status: MatchingHost['status']; agent_id: string | null; agent_status: MatchingHost['agentStatus'] }>(
    `SELECT h.id, h.hostname, h.status, a.id AS agent_id, a.status AS agent_status
       FROM hosts h LEFT JOIN agents a ON a.id = h.agent_id AND a.deleted_at IS NULL
      WHERE h.organisation_id = $1::text AND h.deleted_at IS NULL
        AND (lower(h.hostname) = lower($2::text) OR h.ip_addresses ?| $3::text[])
      ORDER BY (lower(h.hostname) = lower($2::text)) DESC, h.last_seen_at DESC NULLS LAST, h.created_at DESC
      FOR UPDATE OF h`,
    [identity.organisationId, hostname, addresses],
  );
  return result.rows.map((row) => ({ id: row.id, hostname: row.hostname, status: row.status, agentId: row.agent_id, agentStatus: row.agent_status }));
}

/**
 * SPEC §5.2 step 2: a host that is online, or whose agent is active or revoked, is in use → reject; otherwise the
 * best match is adopted; no match → a new host.
 */
export function decideDuplicateHost(matches: readonly MatchingHost[]): DuplicateHostDecision {
  const inUse = matches.find((host) => host.status === 'online' || host.agentStatus === 'active' || host.agentStatus === 'revoked');
  if (inUse !== undefined) return { kind: 'reject', host: inUse };
  const first = matches[0];
  return first === undefined ? { kind: 'insert' } : { kind: 'adopt', host: first };
}
