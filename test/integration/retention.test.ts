import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestService, type TestService } from '../helpers/service.ts';
import { insertAgents, eventually } from '../helpers/fleet.ts';
import { newId } from '../../src/ids.ts';

describe('Retention', () => {
  let svc: TestService;
  before(async () => {
    svc = await startTestService({
      env: { INGEST_METRICS_RETENTION_DAYS: '30', INGEST_QUEUE_MAX_AGE_SECONDS: '3600', INGEST_RETENTION_INTERVAL_SECONDS: '1', INGEST_RETENTION_BATCH_SIZE: '7' },
    });
  });
  after(async () => {
    await svc.stop();
  });

  it('should delete only host_metrics rows older than the retention and queue events older than their max age, in batches', async () => {
    const [agent] = await insertAgents(svc.db.pool, svc.service.context.agentTokens, 1);
    assert.ok(agent);
    const insertMetrics = (age: string, count: number) =>
      svc.db.pool.query(
        `INSERT INTO host_metrics (id, organisation_id, host_id, recorded_at, cpu_percent)
         SELECT x, $2, $3, now() - $4::interval, 1 FROM unnest($1::text[]) AS x`,
        [Array.from({ length: count }, () => newId()), agent.organisationId, agent.hostId, age],
      );
    await insertMetrics('31 days', 25);
    await insertMetrics('29 days', 5);
    await insertMetrics('0 seconds', 5);
    await svc.db.pool.query(
      `INSERT INTO queue_events (topic, payload, created_at)
       SELECT 'metrics.raw', '{}'::jsonb, now() - CASE WHEN g <= 20 THEN interval '2 hours' ELSE interval '1 minute' END FROM generate_series(1, 30) g`,
    );
    await eventually(async () => {
      const { rows } = await svc.db.pool.query("SELECT count(*)::int AS n FROM host_metrics WHERE recorded_at < now() - interval '30 days'");
      const { rows: q } = await svc.db.pool.query("SELECT count(*)::int AS n FROM queue_events WHERE created_at < now() - interval '1 hour'");
      return rows[0].n === 0 && q[0].n === 0 ? true : undefined;
    }, 15_000, 'retention to run');
    const { rows: kept } = await svc.db.pool.query('SELECT count(*)::int AS n FROM host_metrics WHERE host_id = $1', [agent.hostId]);
    assert.equal(kept[0].n, 10);
    const { rows: events } = await svc.db.pool.query('SELECT count(*)::int AS n FROM queue_events');
    assert.equal(events[0].n, 10);
    const scrape = await (await svc.http('/metrics')).text();
    assert.match(scrape, /^ingest_queue_expired_total 20$/m);
    assert.match(scrape, /^ingest_retention_deleted_rows_total 25$/m);
  });
});
