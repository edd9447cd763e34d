import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { chartDir, helmBinary, NAMESPACE, parseManifests, render, repoRoot, validateObject, type K8sObject } from '../chart/helm.ts';

const MONITORING = { serviceMonitor: { enabled: true }, prometheusRule: { enabled: true }, grafanaDashboard: { enabled: true } };

function only(objects: K8sObject[], kind: string): K8sObject {
  const found = objects.filter((o) => o.kind === kind);
  assert.equal(found.length, 1, `one ${kind}`);
  return found[0]!;
}

describe('Helm chart: Grafana dashboard ConfigMap and PrometheusRule', () => {
  it('should render neither by default', async () => {
    const kinds = (await render({})).map((o) => o.kind);
    assert.ok(!kinds.includes('PrometheusRule'));
    assert.ok(!kinds.includes('ConfigMap'));
  });

  it('should ship the dashboard JSON unchanged in a ConfigMap labelled for the Grafana sidecar', async () => {
    const objects = await render(MONITORING);
    const configMap = only(objects, 'ConfigMap');
    validateObject(configMap);
    assert.equal(configMap.metadata.labels?.['grafana_dashboard'], '1');
    const shipped = await readFile(path.join(chartDir, 'files/grafana-dashboard.json'), 'utf8');
    assert.deepEqual(JSON.parse(configMap['data']['ct-ops-ingest.json']), JSON.parse(shipped));
  });

  it('should use the sidecar label and folder annotation from values', async () => {
    const objects = await render({ grafanaDashboard: { enabled: true, labels: { team_dashboards: 'yes' }, annotations: { grafana_folder: 'Fleet' } } });
    const configMap = only(objects, 'ConfigMap');
    assert.equal(configMap.metadata.labels?.['team_dashboards'], 'yes');
    assert.equal(configMap.metadata.labels?.['grafana_dashboard'], '1', 'Helm merges value maps: the default label stays unless set to null');
    assert.equal((configMap.metadata as { annotations?: Record<string, string> }).annotations?.['grafana_folder'], 'Fleet');
  });

  it('should scope every alert to the release namespace and the Service the ServiceMonitor scrapes', async () => {
    const objects = await render({ ...MONITORING, prometheusRule: { enabled: true, labels: { release: 'kube-prometheus-stack' } } });
    const rule = only(objects, 'PrometheusRule');
    validateObject(rule);
    assert.equal(rule.metadata.labels?.['release'], 'kube-prometheus-stack');
    const monitor = only(objects, 'ServiceMonitor');
    const scraped = objects.filter(
      (o) => o.kind === 'Service' && Object.entries(monitor['spec'].selector.matchLabels as Record<string, string>).every(([k, v]) => o.metadata.labels?.[k] === v),
    );
    assert.equal(scraped.length, 1, 'the ServiceMonitor selects one Service');
    const service = scraped[0]!.metadata.name;

    const file = parseYaml(await readFile(path.join(chartDir, 'files/prometheus-rules.yaml'), 'utf8')) as { groups: Array<{ rules: Array<{ alert: string }> }> };
    const rendered = rule['spec'].groups as Array<{ name: string; rules: Array<{ alert: string; expr: string; annotations: Record<string, string> }> }>;
    assert.deepEqual(
      rendered.flatMap((g) => g.rules.map((r) => r.alert)),
      file.groups.flatMap((g) => g.rules.map((r) => r.alert)),
    );
    for (const alert of rendered.flatMap((g) => g.rules)) {
      assert.ok(alert.expr.includes(`namespace="${NAMESPACE}", service="${service}"`), `${alert.alert} selects ${service}`);
      assert.doesNotMatch(JSON.stringify(alert), /__NAMESPACE__|__SERVICE__/);
    }
    // Prometheus templates in annotations reach Prometheus untouched (Helm must not evaluate them).
    assert.ok(rendered.some((g) => g.rules.some((r) => r.annotations['description']?.includes('{{ $value'))));
  });

  it('should keep k8s/monitoring.yaml identical to the chart rendered with k8s/values-dev.yaml and monitoring on', async () => {
    const rendered = await new Promise<string>((resolve, reject) => {
      execFile(path.join(repoRoot, 'scripts/render-k8s.sh'), ['--stdout-monitoring'], { env: { ...process.env, HELM: helmBinary() }, maxBuffer: 32 * 1024 * 1024 }, (error, stdout, stderr) =>
        error === null ? resolve(stdout) : reject(new Error(`render-k8s.sh failed: ${stderr}`)),
      );
    });
    const committed = await readFile(path.join(repoRoot, 'k8s/monitoring.yaml'), 'utf8');
    assert.ok(committed === rendered, 'k8s/monitoring.yaml drifted from the chart: run `make k8s-manifests` and commit the result');
    const objects = parseManifests(committed);
    assert.deepEqual(objects.map((o) => o.kind).sort(), ['ConfigMap', 'PrometheusRule', 'ServiceMonitor']);
    for (const object of objects) validateObject(object);
  });
});
