import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { newId } from '../../src/ids.ts';
import type { AgentTokens } from '../../src/keys/jwt.ts';

export interface FleetAgent {
  readonly agentId: string;
  readonly hostId: string;
  readonly organisationId: string;
  readonly jwt: string;
}

/**
 * Inserts `count` agents with their hosts straight into the database (much faster than enrolling each
 * over the wire when a test needs many) and signs each a JWT with the service's own key.
 */
export async function insertAgents(pool: pg.Pool, tokens: AgentTokens, count: number, status: 'active' | 'pending' | 'offline' | 'revoked' = 'active'): Promise<FleetAgent[]> {
  const organisationId = newId();
  await pool.query('INSERT INTO organisations (id, name) VALUES ($1, $2)', [organisationId, `fleet-${randomBytes(4).toString('hex')}`]);
  const agents = Array.from({ length: count }, () => ({ agentId: newId(), hostId: newId(), hostname: `fleet-${randomBytes(5).toString('hex')}` }));
  await pool.query(
    `INSERT INTO agents (id, organisation_id, hostname, public_key, status, approved_at)
     SELECT a, $2, h, 'test-key-' || a, $4, now() FROM unnest($1::text[], $3::text[]) AS t(a, h)`,
    [agents.map((a) => a.agentId), organisationId, agents.map((a) => a.hostname), status],
  );
  await pool.query(
    `INSERT INTO hosts (id, organisation_id, agent_id, hostname, status)
     SELECT h, $2, a, n, 'unknown' FROM unnest($1::text[], $3::text[], $4::text[]) AS t(h, a, n)`,
    [agents.map((a) => a.hostId), organisationId, agents.map((a) => a.agentId), agents.map((a) => a.hostname)],
  );
  return Promise.all(agents.map(async (a) => ({ agentId: a.agentId, hostId: a.hostId, organisationId, jwt: await tokens.sign(a.agentId, organisationId) })));
}

/** Polls `check` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs = 15_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
