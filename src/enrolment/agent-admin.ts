import { inTransaction, type Pool } from '../db/pool.ts';
import { recordStatusChange } from './status-history.ts';

export const AGENT_STATUSES = ['pending', 'active', 'offline', 'revoked'] as const;
export type AgentStatus = (typeof AGENT_STATUSES)[number];

export interface AgentSummary {
  readonly id: string;
  readonly hostname: string;
  readonly status: AgentStatus;
  readonly organisation_id: string;
  readonly organisation_name: string;
  readonly version: string;
  readonly os: string;
  readonly arch: string;
  readonly last_heartbeat_at: string | null;
  readonly approved_at: string | null;
  readonly created_at: string;
}

export class UnknownAgentError extends Error {
  readonly code = 'ERR_UNKNOWN_AGENT';
  constructor(id: string) {
    super(`no agent with id "${id}" (deleted agents cannot be changed)`);
    this.name = 'UnknownAgentError';
  }
}

export async function listAgents(pool: Pool, status?: AgentStatus): Promise<AgentSummary[]> {
  const result = await pool.query<AgentSummary>(
    `SELECT a.id, a.hostname, a.status, a.organisation_id, o.name AS organisation_name, a.version, a.os, a.arch,
            to_json(a.last_heartbeat_at) #>> '{}' AS last_heartbeat_at, to_json(a.approved_at) #>> '{}' AS approved_at,
            to_json(a.created_at) #>> '{}' AS created_at
       FROM agents a JOIN organisations o ON o.id = a.organisation_id
      WHERE a.deleted_at IS NULL AND ($1::text IS NULL OR a.status = $1::text)
      ORDER BY a.created_at, a.id`,
    [status ?? null],
  );
  return result.rows;
}

export interface AdminChange {
  /** Status before the command. */
  readonly previous: AgentStatus;
  /** False when the agent was already in the requested state (no row written). */
  readonly changed: boolean;
}

/**
 * Applies an operator's decision under a row lock and writes the history row in the same transaction.
 * `allowedFrom` lists the statuses the change applies to; others are reported unchanged.
 */
async function changeStatus(pool: Pool, id: string, to: 'active' | 'revoked', allowedFrom: readonly AgentStatus[], reason: string): Promise<AdminChange> {
  return inTransaction(pool, async (tx) => {
    const locked = await tx.query<{ status: AgentStatus; organisation_id: string }>('SELECT status, organisation_id FROM agents WHERE id = $1::text AND deleted_at IS NULL FOR UPDATE', [id]);
    const row = locked.rows[0];
    if (row === undefined) throw new UnknownAgentError(id);
    if (!allowedFrom.includes(row.status)) return { previous: row.status, changed: false };
    await tx.query(
      `UPDATE agents SET status = $2::text, updated_at = now(), approved_at = CASE WHEN $2::text = 'active' THEN now() ELSE approved_at END WHERE id = $1::text`,
      [id, to],
    );
    await recordStatusChange(tx, { agentId: id, organisationId: row.organisation_id, status: to, reason });
    return { previous: row.status, changed: true };
  });
}

/** A pending agent becomes active; its next Register gets a JWT. */
export function approveAgent(pool: Pool, id: string): Promise<AdminChange> {
  return changeStatus(pool, id, 'active', ['pending'], 'approved by an administrator (CLI)');
}

/** The agent is refused from now on; an open heartbeat stream is ended (the database notifies every replica). */
export function revokeAgent(pool: Pool, id: string): Promise<AdminChange> {
  return changeStatus(pool, id, 'revoked', ['pending', 'active', 'offline'], 'revoked by an administrator (CLI)');
}

/** Soft-deletes the agent and its host(s); the key may enrol again as a new agent afterwards. */
export async function deleteAgent(pool: Pool, id: string): Promise<{ hostsDeleted: number }> {
  return inTransaction(pool, async (tx) => {
    const deleted = await tx.query<{ organisation_id: string }>('UPDATE agents SET deleted_at = now(), updated_at = now() WHERE id = $1::text AND deleted_at IS NULL RETURNING organisation_id', [id]);
    const row = deleted.rows[0];
    if (row === undefined) throw new UnknownAgentError(id);
    const hosts = await tx.query('UPDATE hosts SET deleted_at = now(), updated_at = now() WHERE agent_id = $1::text AND deleted_at IS NULL', [id]);
    await recordStatusChange(tx, { agentId: id, organisationId: row.organisation_id, status: 'deleted', reason: 'deleted by an administrator (CLI)' });
    return { hostsDeleted: hosts.rowCount ?? 0 };
  });
}
