import { newId } from '../ids.ts';
import type { Queryable } from './queryable.ts';

export interface StatusChange {
  readonly agentId: string;
  readonly organisationId: string;
  readonly status: 'pending' | 'active' | 'offline' | 'revoked' | 'deleted';
  readonly reason: string;
  readonly actorId?: string | null;
}

/** One agent_status_history row per status change (SPEC §4), with a human reason. */
export async function recordStatusChange(db: Queryable, change: StatusChange): Promise<void> {
  await db.query('INSERT INTO agent_status_history (id, agent_id, organisation_id, status, actor_id, reason) VALUES ($1::text, $2::text, $3::text, $4::text, $5::text, $6::text)', [
    newId(),
    change.agentId,
    change.organisationId,
    change.status,
    change.actorId ?? null,
    change.reason,
  ]);
}
