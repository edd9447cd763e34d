import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestService, type TestService } from '../helpers/service.ts';
import { insertAgents } from '../helpers/fleet.ts';
import { openHeartbeat } from '../helpers/heartbeat.ts';

describe('Heartbeats from many concurrent streams', () => {
  let svc: TestService;
  before(async () => {
    svc = await startTestService({ env: { INGEST_BATCH_MAX_SIZE: '200', INGEST_LOG_LEVEL: 'info' } });
  });
  after(async () => {
    await svc.stop();
  });

  it('should store exactly one host_metrics row and one queue event for every acknowledged heartbeat (200 streams x 20)', async () => {
    const agents = await insertAgents(svc.db.pool, svc.service.context.agentTokens, 200);
    const clients = Array.from({ length: 4 }, () => svc.client());
    const acked = new Map<string, number>();
    await Promise.all(
      agents.map(async (agent, i) => {
        const stream = openHeartbeat(clients[i % clients.length]!, { jwt: agent.jwt });
        let ok = 0;
        for (let n = 0; n < 20; n += 1) if ((await stream.send({ cpu_percent: n })).ok) ok += 1;
        acked.set(agent.agentId, ok);
        stream.close();
        await stream.ended;
      }),
    );
    const { rows: metrics } = await svc.db.pool.query<{ agent_id: string; n: number }>(
      'SELECT h.agent_id, count(m.id)::int AS n FROM hosts h LEFT JOIN host_metrics m ON m.host_id = h.id WHERE h.agent_id = ANY($1) GROUP BY h.agent_id',
      [agents.map((a) => a.agentId)],
    );
    const { rows: events } = await svc.db.pool.query<{ agent_id: string; n: number }>(
      "SELECT payload->>'agent_id' AS agent_id, count(*)::int AS n FROM queue_events WHERE payload->>'agent_id' = ANY($1) GROUP BY 1",
      [agents.map((a) => a.agentId)],
    );
    const metricsByAgent = new Map(metrics.map((r) => [r.agent_id, r.n]));
    const eventsByAgent = new Map(events.map((r) => [r.agent_id, r.n]));
    let total = 0;
    for (const agent of agents) {
      const ok = acked.get(agent.agentId) ?? 0;
      total += ok;
      assert.equal(ok, 20, 'every heartbeat acknowledged');
      assert.equal(metricsByAgent.get(agent.agentId), ok);
      assert.equal(eventsByAgent.get(agent.agentId), ok);
    }
    assert.equal(total, 4000);
    // Batching: far fewer statements than heartbeats.
    const scrape = await (await svc.http('/metrics')).text();
    const statements = Number(/^ingest_batch_statements_total (\d+)$/m.exec(scrape)?.[1]);
    assert.ok(statements > 0 && statements < 4000 / 5, `statements ${statements}`);
    assert.match(scrape, /^ingest_queue_published_total\{topic="metrics.raw"\} 4000$/m);
    assert.match(scrape, /^ingest_heartbeats_acknowledged_total 4000$/m);
  });
});
