#!/usr/bin/env bash
# Checks the deployment files: Prometheus config and alert rules (promtool), the alert
# rules' unit tests, the Grafana files (valid JSON/YAML shape), docker-compose.yml, the
# systemd units (systemd-analyze) and the Kubernetes manifests (kubectl kustomize).
# Exits non-zero when any check fails. Needs promtool (Debian/Ubuntu: apt-get install prometheus).
set -uo pipefail
cd "$(dirname "$0")/.."

failed=0
step() { echo "== $*"; }
fail() { echo "FAILED: $*" >&2; failed=1; }

if ! command -v promtool >/dev/null; then
  echo "promtool not found; install Prometheus (apt-get install prometheus) to check deploy/prometheus" >&2
  exit 1
fi

# prometheus.yml discovers workers from targets/workers*.json beside it; check it as the
# compose file mounts it, with the example target file in place, so promtool validates
# the target file too.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/targets"
cp deploy/prometheus/prometheus.yml deploy/prometheus/alerts.yml "$tmp/"
cp deploy/prometheus/workers.example.json "$tmp/targets/workers.json"

step "promtool check config"
promtool check config "$tmp/prometheus.yml" || fail "promtool check config"

step "promtool check rules"
promtool check rules deploy/prometheus/alerts.yml || fail "promtool check rules"

step "promtool test rules"
promtool test rules deploy/prometheus/alerts.test.yml || fail "promtool test rules"

step "grafana files"
node --input-type=module - <<'JS' || fail "grafana files"
import { readFileSync, readdirSync } from "node:fs";
const dir = "deploy/grafana/dashboards";
for (const file of readdirSync(dir).filter((f) => f.endsWith(".json"))) {
  const dashboard = JSON.parse(readFileSync(`${dir}/${file}`, "utf8"));
  const problems = [];
  if (!dashboard.uid) problems.push("no uid");
  if (!dashboard.title) problems.push("no title");
  if (typeof dashboard.schemaVersion !== "number") problems.push("no schemaVersion");
  const ids = new Set();
  const walk = (panels) => {
    for (const panel of panels ?? []) {
      if (ids.has(panel.id)) problems.push(`duplicate panel id ${panel.id}`);
      ids.add(panel.id);
      for (const target of panel.targets ?? []) if (!target.expr) problems.push(`panel "${panel.title}" has a target without expr`);
      walk(panel.panels);
    }
  };
  walk(dashboard.panels);
  if (problems.length) {
    console.error(`${file}: ${problems.join("; ")}`);
    process.exitCode = 1;
  } else console.log(`${file}: ${ids.size} panels, uid ${dashboard.uid}`);
}
JS

step "docker-compose config"
# The compose file requires keys (an open API must not be published); check it with sample ones,
# and check that it refuses to run without them.
export CORRAL_API_KEYS="${CORRAL_API_KEYS:-check:sk-check-deploy-0123456789}"
export GRAFANA_ADMIN_PASSWORD="${GRAFANA_ADMIN_PASSWORD:-check-deploy-password}"
if command -v docker-compose >/dev/null; then
  docker-compose -f deploy/docker-compose.yml config -q && echo "deploy/docker-compose.yml: ok" || fail "docker-compose config"
  if env -u CORRAL_API_KEYS docker-compose -f deploy/docker-compose.yml config -q 2>/dev/null; then
    fail "docker-compose config passes without CORRAL_API_KEYS"
  fi
elif command -v docker >/dev/null && docker compose version >/dev/null 2>&1; then
  docker compose -f deploy/docker-compose.yml config -q && echo "deploy/docker-compose.yml: ok" || fail "docker compose config"
else
  echo "docker-compose is not installed; skipping the check of deploy/docker-compose.yml"
fi

step "systemd units"
if command -v systemd-analyze >/dev/null; then
  systemd-analyze verify deploy/systemd/*.service && echo "deploy/systemd: ok" || fail "systemd-analyze verify"
else
  echo "systemd-analyze is not installed; skipping the check of deploy/systemd"
fi

step "kubernetes manifests (kustomize build)"
if command -v kubectl >/dev/null; then
  kubectl kustomize deploy/kubernetes >/dev/null && echo "deploy/kubernetes: ok" || fail "kubectl kustomize"
else
  echo "kubectl is not installed; skipping the kustomize build of deploy/kubernetes (test/deploy checks the manifests)"
fi

if [ "$failed" -ne 0 ]; then
  echo "deploy checks FAILED" >&2
  exit 1
fi
echo "deploy checks passed"
