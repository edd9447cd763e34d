import type { Queryable } from './queryable.ts';
import { recordStatusChange } from './status-history.ts';

export interface KnownAgent {
  readonly id: string;
  readonly organisationId: string;
  readonly status: 'pending' | 'active' | 'offline' | 'revoked';
  readonly publicKey: string;
}

export async function findKnownAgent(db: Queryable, publicKey: string): Promise<KnownAgent | undefined> {
  const result = await db.query<{ id: string; organisation_id: string; status: KnownAgent['status']; public_key: string }>(
    'SELECT id, organisation_id, status, public_key FROM agents WHERE public_key = $1::text AND deleted_at IS NULL',
    [publicKey],
  );
  const row = result.rows[0];
  return row === undefined ? undefined : { id: row.id, organisationId: row.organisation_id, status: row.status, publicKey: row.public_key };
}

export type RefreshedStatus = 'pending' | 'active' | 'revoked' | 'deleted';

/**
 * SPEC §5.3 after authentication, in the caller's transaction: the status is re-read under a row lock (an admin
 * may have acted since the lookup); `offline` becomes `active` with a history row. Never answers `offline`.
 */
export async function refreshKnownAgent(tx: Queryable, agentId: string, version: string): Promise<RefreshedStatus> {
  const locked = await tx.query<{ status: KnownAgent['status']; organisation_id: string }>('SELECT status, organisation_id FROM agents WHERE id = $1::text AND deleted_at IS NULL FOR UPDATE', [agentId]);
  const row = locked.rows[0];
  if (row === undefined) return 'deleted';
  if (row.status === 'pending' || row.status === 'revoked') return row.status;
  await tx.query("UPDATE agents SET status = 'active', version = COALESCE(NULLIF($2::text, ''), version), updated_at = now() WHERE id = $1::text", [agentId, version]);
  if (row.status === 'offline') await recordStatusChange(tx, { agentId, organisationId: row.organisation_id, status: 'active', reason: 'agent re-registered' });
  return 'active';
}
