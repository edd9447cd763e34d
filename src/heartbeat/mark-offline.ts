/**
 * One statement that marks the agents matching `agentCondition` offline (releasing their stream session),
 * their hosts offline, and writes one history row each with `reason`; it returns the agent ids marked.
 * Only active, non-deleted agents change, so a revoked agent stays revoked.
 */
export function markOfflineStatement(agentCondition: string, reason: string): string {
  return `WITH marked AS (
    UPDATE agents SET status = 'offline', stream_session_id = NULL, updated_at = now()
    WHERE status = 'active' AND deleted_at IS NULL AND (${agentCondition})
    RETURNING id, organisation_id
  ),
  hosts_offline AS (
    UPDATE hosts h SET status = 'offline', updated_at = now()
    FROM marked m WHERE h.agent_id = m.id AND h.deleted_at IS NULL
  ),
  history AS (
    INSERT INTO agent_status_history (id, agent_id, organisation_id, status, reason)
    SELECT md5(random()::text || m.id), m.id, m.organisation_id, 'offline', '${reason.replaceAll("'", "''")}' FROM marked m
  )
  SELECT id FROM marked`;
}
