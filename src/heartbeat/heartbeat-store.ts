import type { Pool } from '../db/pool.ts';
import { newId } from '../ids.ts';
import type { HeartbeatSample } from './heartbeat-sample.ts';
import { METRICS_RAW_TOPIC } from '../queue/queue.ts';
import { markOfflineStatement } from './mark-offline.ts';

export type AgentState = 'active' | 'pending' | 'revoked' | 'offline' | 'deleted';

export interface OpenedStream {
  readonly state: AgentState;
  readonly organisationId: string;
  readonly hostname: string;
  readonly hostId: string | undefined;
}

/**
 * The whole batch in ONE statement (so one implicit transaction and a constant statement count):
 * lock the agents in id order, update agents (never reviving revoked/deleted ones), upsert hosts in
 * agent-id order with metadata merged, insert one host_metrics row and one queue event per heartbeat,
 * and write "agent reconnected" history for agents the sweeper had marked offline.
 * Input is one JSON document (jsonb_to_recordset) plus the sorted agent ids, so the parameter count is
 * constant and the agents are found by primary key.
 */
const WRITE_BATCH_SQL = `
WITH input AS (
  SELECT * FROM jsonb_to_recordset($1::jsonb) AS t(
    seq int, agent_id text, metric_id text, host_id text, hostname text, received_ms double precision,
    cpu real, memory real, disk real, uptime bigint, agent_version text, os text, os_version text, arch text,
    ip_addresses jsonb, disks jsonb, network_interfaces jsonb, latest boolean)
),
latest AS (SELECT * FROM input WHERE latest),
locked AS (
  SELECT a.id, a.organisation_id, a.status AS old_status
  FROM agents a
  WHERE a.id = ANY($2::text[]) AND a.deleted_at IS NULL AND a.status IN ('active', 'offline')
  ORDER BY a.id
  FOR UPDATE OF a
),
updated_agents AS (
  UPDATE agents a SET
    status = 'active',
    last_heartbeat_at = now(),
    version = CASE WHEN l.agent_version <> '' THEN l.agent_version ELSE a.version END,
    os = CASE WHEN l.os <> '' THEN l.os ELSE a.os END,
    arch = CASE WHEN l.arch <> '' THEN l.arch ELSE a.arch END,
    updated_at = now()
  FROM latest l JOIN locked k ON k.id = l.agent_id
  WHERE a.id = k.id
  RETURNING a.id, a.organisation_id, k.old_status
),
upserted_hosts AS (
  INSERT INTO hosts AS h (id, organisation_id, agent_id, hostname, os, os_version, arch, ip_addresses,
                          cpu_percent, memory_percent, disk_percent, uptime_seconds, status, last_seen_at, metadata)
  SELECT l.host_id, u.organisation_id, l.agent_id, l.hostname, l.os, l.os_version, l.arch, l.ip_addresses,
         l.cpu, l.memory, l.disk, l.uptime, 'online', now(),
         jsonb_build_object('disks', l.disks, 'network_interfaces', l.network_interfaces)
  FROM latest l JOIN updated_agents u ON u.id = l.agent_id
  ORDER BY l.agent_id
  ON CONFLICT (agent_id) WHERE deleted_at IS NULL DO UPDATE SET
    cpu_percent = EXCLUDED.cpu_percent,
    memory_percent = EXCLUDED.memory_percent,
    disk_percent = EXCLUDED.disk_percent,
    uptime_seconds = EXCLUDED.uptime_seconds,
    os = CASE WHEN EXCLUDED.os <> '' THEN EXCLUDED.os ELSE h.os END,
    os_version = CASE WHEN EXCLUDED.os_version <> '' THEN EXCLUDED.os_version ELSE h.os_version END,
    arch = CASE WHEN EXCLUDED.arch <> '' THEN EXCLUDED.arch ELSE h.arch END,
    ip_addresses = CASE WHEN jsonb_array_length(EXCLUDED.ip_addresses) > 0 THEN EXCLUDED.ip_addresses ELSE h.ip_addresses END,
    metadata = h.metadata
      || CASE WHEN jsonb_array_length(EXCLUDED.metadata->'disks') > 0
              THEN jsonb_build_object('disks', EXCLUDED.metadata->'disks') ELSE '{}'::jsonb END
      || CASE WHEN jsonb_array_length(EXCLUDED.metadata->'network_interfaces') > 0
              THEN jsonb_build_object('network_interfaces', EXCLUDED.metadata->'network_interfaces') ELSE '{}'::jsonb END,
    status = 'online',
    last_seen_at = now(),
    updated_at = now()
  RETURNING h.id, h.agent_id, h.organisation_id
),
inserted_metrics AS (
  INSERT INTO host_metrics (id, organisation_id, host_id, recorded_at, cpu_percent, memory_percent, disk_percent, uptime_seconds)
  SELECT i.metric_id, h.organisation_id, h.id, to_timestamp(i.received_ms / 1000.0), i.cpu, i.memory, i.disk, i.uptime
  FROM input i JOIN upserted_hosts h ON h.agent_id = i.agent_id
  RETURNING 1
),
published AS (
  INSERT INTO queue_events (topic, payload)
  SELECT '${METRICS_RAW_TOPIC}', jsonb_build_object(
    'agent_id', i.agent_id, 'org_id', h.organisation_id, 'host_id', h.id,
    'timestamp', floor(i.received_ms / 1000)::bigint,
    'cpu', i.cpu, 'memory', i.memory, 'disk', i.disk, 'uptime', i.uptime,
    'agent_version', i.agent_version, 'os_version', i.os_version)
  FROM input i JOIN upserted_hosts h ON h.agent_id = i.agent_id
  ORDER BY i.seq
  RETURNING 1
),
reconnected AS (
  INSERT INTO agent_status_history (id, agent_id, organisation_id, status, reason)
  SELECT md5(random()::text || u.id), u.id, u.organisation_id, 'active', 'agent reconnected'
  FROM updated_agents u WHERE u.old_status = 'offline'
  RETURNING 1
)
SELECT h.agent_id,
       (SELECT count(*) FROM inserted_metrics)::int AS metrics,
       (SELECT count(*) FROM published)::int AS events,
       (SELECT count(*) FROM reconnected)::int AS reconnected
FROM upserted_hosts h`;

const CLOSE_STREAM_SQL = markOfflineStatement('id = $1::text AND stream_session_id = $2::text', 'heartbeat stream closed');

export interface BatchResult {
  /** Agents whose heartbeats were written; the others are revoked, deleted or pending. */
  readonly writtenAgentIds: ReadonlySet<string>;
  readonly statements: number;
  /** `metrics.raw` events written to the outbox in the batch's transaction. */
  readonly eventsPublished: number;
}

/** SQL of the heartbeat path (SPEC §6). Every statement here is an index lookup or index-ordered write. */
export class HeartbeatStore {
  readonly #pool: Pool;

  constructor(pool: Pool) {
    this.#pool = pool;
  }

  async writeBatch(samples: readonly HeartbeatSample[]): Promise<BatchResult> {
    // The newest sample per agent updates agents/hosts; every sample gets a metrics row and an event.
    const latestIndex = new Map<string, number>();
    samples.forEach((s, i) => latestIndex.set(s.agentId, i));
    const rows = samples.map((s, i) => ({
      seq: i,
      agent_id: s.agentId,
      metric_id: s.metricId,
      host_id: s.hostId,
      hostname: s.hostname,
      received_ms: s.receivedAtMs,
      cpu: s.cpuPercent,
      memory: s.memoryPercent,
      disk: s.diskPercent,
      uptime: s.uptimeSeconds,
      agent_version: s.agentVersion,
      os: s.os,
      os_version: s.osVersion,
      arch: s.arch,
      ip_addresses: s.ipAddresses,
      disks: s.disks,
      network_interfaces: s.networkInterfaces,
      latest: latestIndex.get(s.agentId) === i,
    }));
    const result = await this.#pool.query<{ agent_id: string; events: number }>(WRITE_BATCH_SQL, [JSON.stringify(rows), [...latestIndex.keys()].sort()]);
    return { writtenAgentIds: new Set(result.rows.map((r) => r.agent_id)), statements: 1, eventsPublished: result.rows[0]?.events ?? 0 };
  }

  /**
   * Claims the agent for a new stream session: offline → active with history; records the session id so
   * only this stream's close may mark it offline later (SPEC §6.1, §6.6).
   */
  async openStream(agentId: string, sessionId: string): Promise<OpenedStream> {
    const { rows } = await this.#pool.query<{ status: string; deleted: boolean; organisation_id: string; hostname: string; host_id: string | null }>(
      `WITH current AS (
         SELECT id, organisation_id, status, deleted_at, hostname FROM agents WHERE id = $1::text FOR UPDATE
       ),
       claimed AS (
         UPDATE agents a SET status = 'active', stream_session_id = $2::text, updated_at = now()
         FROM current c
         WHERE a.id = c.id AND c.deleted_at IS NULL AND c.status IN ('active', 'offline')
         RETURNING a.id
       ),
       history AS (
         INSERT INTO agent_status_history (id, agent_id, organisation_id, status, reason)
         SELECT $3::text, c.id, c.organisation_id, 'active', 'agent reconnected'
         FROM current c WHERE c.deleted_at IS NULL AND c.status = 'offline'
       )
       SELECT c.status, c.deleted_at IS NOT NULL AS deleted, c.organisation_id, c.hostname,
              (SELECT h.id FROM hosts h WHERE h.agent_id = c.id AND h.deleted_at IS NULL) AS host_id
       FROM current c`,
      [agentId, sessionId, newId()],
    );
    const row = rows[0];
    if (row === undefined || row.deleted) return { state: 'deleted', organisationId: row?.organisation_id ?? '', hostname: '', hostId: undefined };
    return { state: row.status as AgentState, organisationId: row.organisation_id, hostname: row.hostname, hostId: row.host_id ?? undefined };
  }

  /** Marks agent and host offline only if this session is still the agent's current one. */
  async closeStream(agentId: string, sessionId: string): Promise<boolean> {
    const { rows } = await this.#pool.query<{ id: string }>(CLOSE_STREAM_SQL, [agentId, sessionId]);
    return rows.length > 0;
  }

  /** Current state of many agents in one query (revocation checks); missing ids are reported as deleted. */
  async agentStates(agentIds: readonly string[]): Promise<Map<string, AgentState>> {
    const states = new Map<string, AgentState>(agentIds.map((id) => [id, 'deleted']));
    if (agentIds.length === 0) return states;
    const { rows } = await this.#pool.query<{ id: string; status: string; deleted: boolean }>(
      'SELECT id, status, deleted_at IS NOT NULL AS deleted FROM agents WHERE id = ANY($1::text[])',
      [agentIds],
    );
    for (const row of rows) states.set(row.id, row.deleted ? 'deleted' : (row.status as AgentState));
    return states;
  }
}
