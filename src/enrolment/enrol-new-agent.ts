import { newId } from '../ids.ts';
import { IngestError } from '../errors.ts';
import { decideDuplicateHost, findMatchingHosts } from '../hosts/duplicate-host.ts';
import { adoptHost, insertHost, type HostFacts } from '../hosts/host-records.ts';
import type { Queryable } from './queryable.ts';
import type { ValidRegistration } from './register-input.ts';
import { recordStatusChange } from './status-history.ts';
import { mergeTags, tagsFromMetadata } from './tags.ts';
import { consumeTokenUse, type UsableToken } from './token-check.ts';

export type NewAgentOutcome =
  | { readonly kind: 'token_refused' }
  | { readonly kind: 'enrolled'; readonly agentId: string; readonly organisationId: string; readonly status: 'pending' | 'active'; readonly adoptedHostId: string | null };

/** The public key was enrolled by a concurrent registration after we looked; the caller retries as a known agent. */
export class KeyEnrolledConcurrently extends Error {
  constructor() {
    super('public key was enrolled concurrently');
    this.name = 'KeyEnrolledConcurrently';
  }
}

/**
 * SPEC §5.2 inside one transaction (the caller's `tx`): consume a token use, duplicate-host protection, then
 * insert or adopt. Any throw rolls everything back, including the token use.
 */
export async function enrolNewAgent(tx: Queryable, registration: ValidRegistration, tokenHash: string): Promise<NewAgentOutcome> {
  const token = await consumeTokenUse(tx, tokenHash);
  if (token === undefined) return { kind: 'token_refused' };
  // Serialise registrations per organisation so two new machines with one hostname cannot both insert a host.
  await tx.query('SELECT pg_advisory_xact_lock(hashtextextended($1::text, 0))', [`ingest.register:${token.organisationId}`]);
  const known = await tx.query('SELECT 1 FROM agents WHERE public_key = $1::text AND deleted_at IS NULL', [registration.publicKey]);
  if (known.rows.length > 0) throw new KeyEnrolledConcurrently();

  const decision = decideDuplicateHost(await findMatchingHosts(tx, { organisationId: token.organisationId, hostname: registration.hostname, ipAddresses: registration.ipAddresses }));
  if (decision.kind === 'reject') {
    throw new IngestError(
      'ALREADY_EXISTS',
      `host "${decision.host.hostname}" (id ${decision.host.id}) is already registered in this organisation; delete it before re-registering`,
      { detail: `duplicate host ${decision.host.id} (host ${decision.host.status}, agent ${decision.host.agentStatus ?? 'none'})` },
    );
  }
  const tags = mergeTags(tagsFromMetadata(token.metadata), registration.tags);
  if (decision.kind === 'adopt') {
    // Re-approval is required even with an auto-approve token: a token must not take over a host's history.
    const agentId = decision.host.agentId ?? newId();
    if (decision.host.agentId === null) await insertAgent(tx, agentId, token, registration, 'pending');
    else await rekeyAgent(tx, agentId, token, registration);
    await recordStatusChange(tx, { agentId, organisationId: token.organisationId, status: 'pending', reason: 're-registered with a new key on an existing host; approval required' });
    await adoptHost(tx, decision.host.id, hostFacts(token, agentId, registration, tags));
    return { kind: 'enrolled', agentId, organisationId: token.organisationId, status: 'pending', adoptedHostId: decision.host.id };
  }
  const agentId = newId();
  const status = token.autoApprove ? 'active' : 'pending';
  await insertAgent(tx, agentId, token, registration, status);
  await recordStatusChange(tx, { agentId, organisationId: token.organisationId, status: 'pending', reason: 'initial registration' });
  if (status === 'active') await recordStatusChange(tx, { agentId, organisationId: token.organisationId, status: 'active', reason: 'auto-approved by enrolment token' });
  await insertHost(tx, hostFacts(token, agentId, registration, tags));
  return { kind: 'enrolled', agentId, organisationId: token.organisationId, status, adoptedHostId: null };
}

function hostFacts(token: UsableToken, agentId: string, registration: ValidRegistration, tags: HostFacts['tags']): HostFacts {
  return {
    organisationId: token.organisationId,
    agentId,
    hostname: registration.hostname,
    os: registration.os,
    osVersion: registration.osVersion,
    arch: registration.arch,
    ipAddresses: registration.ipAddresses,
    tags,
  };
}

async function insertAgent(tx: Queryable, agentId: string, token: UsableToken, registration: ValidRegistration, status: 'pending' | 'active'): Promise<void> {
  await tx.query(
    `INSERT INTO agents (id, organisation_id, hostname, public_key, status, version, os, arch, approved_at, enrolment_token_id)
     VALUES ($1::text, $2::text, $3::text, $4::text, $5::text, $6::text, $7::text, $8::text, CASE WHEN $5::text = 'active' THEN now() END, $9::text)`,
    [agentId, token.organisationId, registration.hostname, registration.publicKey, status, registration.version, registration.os, registration.arch, token.id],
  );
}

async function rekeyAgent(tx: Queryable, agentId: string, token: UsableToken, registration: ValidRegistration): Promise<void> {
  await tx.query(
    `UPDATE agents SET public_key = $2::text, status = 'pending', approved_at = NULL, stream_session_id = NULL,
            hostname = CASE WHEN $3::text = 'unknown' THEN hostname ELSE $3::text END,
            version = $4::text, os = COALESCE(NULLIF($5::text, ''), os), arch = COALESCE(NULLIF($6::text, ''), arch),
            enrolment_token_id = $7::text, updated_at = now()
      WHERE id = $1::text`,
    [agentId, registration.publicKey, registration.hostname, registration.version, registration.os, registration.arch, token.id],
  );
}
