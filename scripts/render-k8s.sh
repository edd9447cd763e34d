#!/usr/bin/env bash
# Renders k8s/ct-ops-ingest.yaml from the Helm chart with k8s/values-dev.yaml (never edit the output by hand;
# test/k8s/manifests.test.ts fails when it drifts from the chart). `--stdout` prints instead of writing.
set -euo pipefail
cd "$(dirname "$0")/.."
helm="${HELM:-}"
if [ -z "$helm" ]; then
  if [ -x "$HOME/.cache/ct-ops-tools/bin/helm" ]; then helm="$HOME/.cache/ct-ops-tools/bin/helm"
  elif command -v helm >/dev/null 2>&1; then helm="$(command -v helm)"
  else echo "render-k8s: helm not found: run 'make helm' or set HELM" >&2; exit 1
  fi
fi
render() {
  printf '# Rendered from charts/ct-ops-ingest with k8s/values-dev.yaml by scripts/render-k8s.sh. Do not edit.\n'
  printf '# Needs: cert-manager, and k8s/dev-postgres.yaml applied first. Apply: kubectl apply -f k8s/ct-ops-ingest.yaml\n'
  "$helm" template ct-ops-ingest charts/ct-ops-ingest --namespace ct-ops -f k8s/values-dev.yaml
}
# The monitoring objects (k8s/monitoring.yaml) need the Prometheus Operator CRDs, so they are a separate file.
render_monitoring() {
  printf '# Rendered from charts/ct-ops-ingest with k8s/values-dev.yaml and monitoring on by scripts/render-k8s.sh. Do not edit.\n'
  printf '# ServiceMonitor, alert rules (PrometheusRule) and Grafana dashboard (ConfigMap for the sidecar) for k8s/ct-ops-ingest.yaml.\n'
  printf '# Needs: the Prometheus Operator CRDs (e.g. kube-prometheus-stack). Apply: kubectl apply -f k8s/monitoring.yaml\n'
  "$helm" template ct-ops-ingest charts/ct-ops-ingest --namespace ct-ops -f k8s/values-dev.yaml \
    --set serviceMonitor.enabled=true --set prometheusRule.enabled=true --set grafanaDashboard.enabled=true \
    --show-only templates/servicemonitor.yaml --show-only templates/prometheusrule.yaml --show-only templates/grafana-dashboard-configmap.yaml
}
if [ "${1:-}" = "--stdout" ]; then
  render
elif [ "${1:-}" = "--stdout-monitoring" ]; then
  render_monitoring
else
  render > k8s/ct-ops-ingest.yaml.tmp
  mv k8s/ct-ops-ingest.yaml.tmp k8s/ct-ops-ingest.yaml
  echo "wrote k8s/ct-ops-ingest.yaml"
  render_monitoring > k8s/monitoring.yaml.tmp
  mv k8s/monitoring.yaml.tmp k8s/monitoring.yaml
  echo "wrote k8s/monitoring.yaml"
fi
