import { newId } from '../ids.ts';
import type { Queryable } from '../enrolment/queryable.ts';
import type { TagInput } from '../enrolment/tags.ts';

export interface HostFacts {
  readonly organisationId: string;
  readonly agentId: string;
  readonly hostname: string;
  readonly os: string;
  readonly osVersion: string;
  readonly arch: string;
  readonly ipAddresses: readonly string[];
  readonly tags: readonly TagInput[];
}

/** A new host for a newly enrolled agent; its status stays `unknown` until the first heartbeat. */
export async function insertHost(db: Queryable, facts: HostFacts): Promise<string> {
  const id = newId();
  await db.query(
    `INSERT INTO hosts (id, organisation_id, agent_id, hostname, os, os_version, arch, ip_addresses, status, metadata)
     VALUES ($1::text, $2::text, $3::text, $4::text, $5::text, $6::text, $7::text, $8::jsonb, 'unknown', $9::jsonb)`,
    [id, facts.organisationId, facts.agentId, facts.hostname, facts.os, facts.osVersion, facts.arch, JSON.stringify(facts.ipAddresses), JSON.stringify({ tags: facts.tags })],
  );
  return id;
}

/**
 * Points an existing host at the (re-)registering agent and refreshes what the agent reported. Empty values keep
 * the old ones, and metadata is merged so keys written by the web app survive.
 */
export async function adoptHost(db: Queryable, hostId: string, facts: HostFacts): Promise<void> {
  await db.query(
    `UPDATE hosts SET agent_id = $2::text,
            hostname = CASE WHEN $3::text = 'unknown' THEN hostname ELSE $3::text END,
            os = COALESCE(NULLIF($4::text, ''), os), os_version = COALESCE(NULLIF($5::text, ''), os_version), arch = COALESCE(NULLIF($6::text, ''), arch),
            ip_addresses = CASE WHEN jsonb_array_length($7::jsonb) = 0 THEN ip_addresses ELSE $7::jsonb END,
            metadata = metadata || jsonb_build_object('tags', $8::jsonb),
            updated_at = now()
      WHERE id = $1::text`,
    [hostId, facts.agentId, facts.hostname, facts.os, facts.osVersion, facts.arch, JSON.stringify(facts.ipAddresses), JSON.stringify(facts.tags)],
  );
}
