import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { startTestService, type TestService } from '../helpers/service.ts';
import { metricFamilies } from './prometheus-text.ts';
import { balanced, labelUses, metricNames, withoutGrafanaVariables } from './promql-names.ts';

const CHART = 'charts/ct-ops-ingest';

/** Labels Prometheus attaches to every series it scrapes through a ServiceMonitor. */
const TARGET_LABELS = ['namespace', 'service', 'pod', 'job', 'instance', 'container', 'endpoint'];

interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos?: { h: number; w: number; x: number; y: number };
  targets?: Array<{ expr: string; refId: string }>;
  panels?: Panel[];
}
interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: Array<{ name: string; type: string; query?: { query: string } | string }> };
}
interface Rule {
  alert?: string;
  expr?: string;
  for?: string;
  labels?: { severity?: string };
  annotations?: { summary?: string; description?: string };
}

function allPanels(panels: readonly Panel[]): Panel[] {
  return panels.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);
}

/** Every name a scrape can answer to: families, histogram series, and the target/cluster metrics Prometheus adds. */
function isExposed(name: string, families: ReadonlyMap<string, string>): boolean {
  if (name === 'up' || name.startsWith('kube_')) return true;
  if (families.has(name)) return true;
  const histogram = /^(.*)_(bucket|sum|count)$/.exec(name);
  return histogram !== null && families.get(histogram[1] ?? '') === 'histogram';
}

/** The labels a series of `name` can carry: its own (histograms add `le` to _bucket) and the scrape's target labels. */
function knownLabels(name: string, labelNames: ReadonlyMap<string, readonly string[]>): string[] | undefined {
  if (name === 'up') return TARGET_LABELS;
  if (name.startsWith('kube_')) return undefined;
  const histogram = /^(.*)_(bucket|sum|count)$/.exec(name);
  const own = labelNames.get(name) ?? (histogram !== null ? labelNames.get(histogram[1] ?? '') : undefined);
  if (own === undefined) return undefined;
  return [...own, ...TARGET_LABELS, ...(histogram?.[2] === 'bucket' ? ['le'] : [])];
}

function assertLabelsExist(where: string, expr: string, labelNames: ReadonlyMap<string, readonly string[]>): void {
  const { selectors, grouping } = labelUses(expr);
  const usable = new Set<string>();
  for (const { metric, labels } of selectors) {
    const known = knownLabels(metric, labelNames);
    if (known === undefined) continue;
    known.forEach((l) => usable.add(l));
    for (const label of labels) assert.ok(known.includes(label), `${where}: ${metric} has no label ${label}`);
  }
  for (const label of grouping) assert.ok(usable.has(label), `${where}: groups by ${label}, which no series in the expression has`);
}

describe('Grafana dashboard and Prometheus alert rules shipped with the chart', () => {
  let svc: TestService;
  let families: Map<string, string>;
  let labelNames: Map<string, string[]>;
  let dashboard: Dashboard;
  let rules: Rule[];
  before(async () => {
    svc = await startTestService();
    families = metricFamilies(await (await svc.http('/metrics')).text());
    labelNames = new Map(svc.service.context.metrics.registry.getMetricsAsArray().map((m) => [m.name, [...((m as unknown as { labelNames?: string[] }).labelNames ?? [])]]));
    dashboard = JSON.parse(await readFile(`${CHART}/files/grafana-dashboard.json`, 'utf8')) as Dashboard;
    const ruleFile = parseYaml(await readFile(`${CHART}/files/prometheus-rules.yaml`, 'utf8')) as { groups: Array<{ name: string; rules: Rule[] }> };
    rules = ruleFile.groups.flatMap((g) => g.rules);
  });
  after(async () => {
    await svc.stop();
  });

  it('should ship a dashboard whose panels have unique ids, a position and queries', () => {
    assert.equal(dashboard.uid, 'ct-ops-ingest');
    const panels = allPanels(dashboard.panels);
    assert.equal(new Set(panels.map((p) => p.id)).size, panels.length);
    for (const panel of panels) {
      assert.ok(panel.gridPos !== undefined, `${panel.title} has a position`);
      if (panel.type !== 'row') assert.ok((panel.targets ?? []).length > 0, `${panel.title} has queries`);
    }
    assert.deepEqual(
      dashboard.templating.list.map((v) => v.name),
      ['datasource', 'namespace', 'service'],
    );
  });

  it('should have a panel for each signal an SRE watches', () => {
    const panels = allPanels(dashboard.panels).filter((p) => p.type !== 'row');
    const using = (metric: string): string[] => panels.filter((p) => (p.targets ?? []).some((t) => metricNames(withoutGrafanaVariables(t.expr)).includes(metric))).map((p) => p.title);
    const wanted: Record<string, string> = {
      'connected agents': 'ingest_connected_streams',
      'heartbeats/s': 'ingest_heartbeats_received_total',
      'acknowledgement latency p50/p99': 'ingest_heartbeat_ack_seconds_bucket',
      'batch size': 'ingest_batch_size_bucket',
      'database write time': 'ingest_batch_write_seconds_bucket',
      'registrations by outcome': 'ingest_registrations_total',
      'token failures': 'ingest_token_failures_total',
      'queue backlog': 'ingest_queue_backlog',
      'errors by code': 'grpc_server_handled_total',
      'pods ready': 'ingest_ready',
    };
    for (const [signal, metric] of Object.entries(wanted)) assert.ok(using(metric).length > 0, `no panel shows ${signal} (${metric})`);
    const latency = panels.find((p) => p.title === 'Acknowledgement latency');
    assert.deepEqual(latency?.targets?.map((t) => /histogram_quantile\((0\.\d+)/.exec(t.expr)?.[1]), ['0.5', '0.99']);
    const errors = panels.find((p) => p.title === 'Errors by code');
    assert.match(errors?.targets?.[0]?.expr ?? '', /by \(grpc_method, grpc_code\)/);
  });

  it('should name only metrics the service exposes in every dashboard query', () => {
    const exprs = allPanels(dashboard.panels).flatMap((p) => (p.targets ?? []).map((t) => ({ where: p.title, expr: t.expr })));
    for (const variable of dashboard.templating.list) {
      const query = typeof variable.query === 'string' ? variable.query : variable.query?.query;
      const labelValues = /^label_values\((.+),\s*\w+\)$/.exec(query ?? '');
      if (variable.type === 'query') {
        assert.ok(labelValues !== null, `variable ${variable.name} uses label_values`);
        exprs.push({ where: `variable ${variable.name}`, expr: labelValues[1] ?? '' });
      }
    }
    assert.ok(exprs.length >= 30);
    for (const { where, expr } of exprs) {
      const promql = withoutGrafanaVariables(expr);
      assert.ok(balanced(promql), `${where}: unbalanced ${expr}`);
      const names = metricNames(promql);
      assert.ok(names.length > 0, `${where}: no metric in ${expr}`);
      for (const name of names) assert.ok(isExposed(name, families), `${where}: ${name} is not exposed on /metrics`);
      assertLabelsExist(where, promql, labelNames);
    }
  });

  it('should ship alert rules that parse, each with alert, expr, for, severity and annotations', () => {
    const names = rules.map((r) => r.alert);
    assert.deepEqual(names, [
      'IngestNoReadyReplicas',
      'IngestErrorRatioHigh',
      'IngestHeartbeatAckLatencyHigh',
      'IngestQueueBacklogGrowing',
      'IngestBufferDroppingSamples',
      'IngestSigningKeyLoadFailures',
      'IngestDatabaseWritesFailing',
    ]);
    for (const rule of rules) {
      assert.ok(typeof rule.expr === 'string' && rule.expr.trim() !== '', `${rule.alert} has expr`);
      assert.match(rule.for ?? '', /^\d+[smh]$/, `${rule.alert} has for`);
      assert.ok(['critical', 'warning', 'info'].includes(rule.labels?.severity ?? ''), `${rule.alert} has a severity`);
      assert.ok((rule.annotations?.summary ?? '') !== '' && (rule.annotations?.description ?? '') !== '', `${rule.alert} has summary and description`);
      assert.match(rule.expr, /namespace="__NAMESPACE__", service="__SERVICE__"/, `${rule.alert} is scoped to the release`);
    }
  });

  it('should name only metrics the service exposes in every alert expression', () => {
    const wanted: Record<string, string> = {
      IngestNoReadyReplicas: 'ingest_ready',
      IngestErrorRatioHigh: 'grpc_server_handled_total',
      IngestHeartbeatAckLatencyHigh: 'ingest_heartbeat_ack_seconds_bucket',
      IngestQueueBacklogGrowing: 'ingest_queue_backlog',
      IngestBufferDroppingSamples: 'ingest_buffer_dropped_total',
      IngestSigningKeyLoadFailures: 'ingest_key_reloads_total',
    };
    for (const rule of rules) {
      const expr = rule.expr ?? '';
      assert.ok(balanced(expr), `${rule.alert}: unbalanced expression`);
      const names = metricNames(expr);
      for (const name of names) assert.ok(isExposed(name, families), `${rule.alert}: ${name} is not exposed on /metrics`);
      assertLabelsExist(rule.alert ?? '', expr, labelNames);
      const expected = wanted[rule.alert ?? ''];
      if (expected !== undefined) assert.ok(names.includes(expected), `${rule.alert} watches ${expected}`);
    }
    assert.match(rules.find((r) => r.alert === 'IngestSigningKeyLoadFailures')?.expr ?? '', /result="failure"/);
  });

  it('should find the metric names a PromQL expression references (and only those)', () => {
    assert.deepEqual(
      metricNames('histogram_quantile(0.99, sum by (le) (rate(a_bucket{x="y{z}"}[5m]))) / on() group_left b_total offset 5m > 1 and up'),
      ['a_bucket', 'b_total', 'up'],
    );
    assert.ok(!isExposed('ingest_no_such_metric_total', families));
    assert.ok(!isExposed('ingest_ready_bucket', families), 'only histograms have _bucket series');
    assert.ok(isExposed('grpc_server_handling_seconds_bucket', families));
    assert.deepEqual(labelUses('sum by (le, grpc_method) (rate(a_bucket{x="a,b=c", y!~"z"}[5m]))'), {
      selectors: [{ metric: 'a_bucket', labels: ['x', 'y'] }],
      grouping: ['le', 'grpc_method'],
    });
    assert.throws(() => assertLabelsExist('typo', 'sum by (grpc_cod) (rate(grpc_server_handled_total[5m]))', labelNames), /groups by grpc_cod/);
    assert.throws(() => assertLabelsExist('typo', 'ingest_registrations_total{outcom="x"}', labelNames), /has no label outcom/);
  });
});
