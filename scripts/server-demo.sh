#!/usr/bin/env bash
# The garrison server end to end on this machine, with real parts only:
#   1. `garrison server init` and `garrison server run` (SQLite in a fresh data folder, the inline job queue);
#   2. a local registry (Debian's docker-registry) whose push notifications go to the server;
#   3. a push of the demo image with skopeo: the server pulls it once and stores its findings;
#   4. a cluster registered, real Kubernetes audit events posted by its agent: alerts;
#   5. a security reader who cannot dismiss an alert, a security admin who can (with a reason);
#   6. the audit log of who did what.
# Usage: bash scripts/server-demo.sh            (set-up first, like scripts/demo.sh; a few minutes the first time)
# The advisory mirror is ../shared/vulndb/osv when it exists (offline), else GARRISON_MIRROR or the public OSV
# bucket; the audit events are ../shared/k8s/recorded/audit-events.jsonl (recorded from a real API server), or
# the file named by AUDIT_EVENTS.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >&2
export PATH="$PWD/.venv/bin:$PATH"

work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
export GARRISON_DATA_DIR="$work/data"
if [ -z "${GARRISON_MIRROR:-}" ] && [ -d ../shared/vulndb/osv ]; then
  export GARRISON_MIRROR="file://$(cd ../shared/vulndb/osv && pwd)"
fi
events="${AUDIT_EVENTS:-../shared/k8s/recorded/audit-events.jsonl}"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
step() { printf '\n+ %s\n' "$*"; }
api() {  # api TOKEN METHOD PATH [JSON]: one request to the server; the body on stdout, the status on fd 3
  local token=$1 method=$2 path=$3 body=${4:-}
  curl -sS -o "$work/answer" -w '%{http_code}' -X "$method" "$S$path" -H "Authorization: Bearer $token" \
    ${body:+-H 'Content-Type: application/json' --data-binary "$body"} > "$work/status"
  cat "$work/answer"
}

echo "Building the demo image (first time: a few minutes; then cached in .cache/test-images)…" >&2
image=$(python -c "
import sys; sys.path.insert(0, '.')
from tests.support.images import test_images
print(test_images().app_oci_ref)")
if ! garrison db status > /dev/null 2>&1; then
  echo "Building the advisory database…" >&2
  garrison db update >&2
fi

step "ADMIN=\$(garrison server init)"
ADMIN=$(garrison server init)
server_port=$(free_port)
S="http://127.0.0.1:$server_port"
step "garrison server run --listen 127.0.0.1:$server_port &"
garrison server run --listen "127.0.0.1:$server_port" --log-format text > "$work/server.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -sf "$S/readyz" > /dev/null && break; sleep 0.2; done
curl -sS "$S/readyz"; echo

registry_port=$(free_port)
step "POST /api/v1/registries  {\"name\": \"local\", \"url\": \"http://127.0.0.1:$registry_port\"}"
api "$ADMIN" POST /api/v1/registries "{\"name\": \"local\", \"url\": \"http://127.0.0.1:$registry_port\"}" > "$work/registry.json"
jq -c '.registry | {id, name, url, has_credentials, scan_on_push}' "$work/registry.json"
registry_id=$(jq -r .registry.id "$work/registry.json")
notify_token=$(jq -r .notification_token.secret "$work/registry.json")
mkdir -p "$work/registry"
cat > "$work/registry/config.yml" <<EOF
version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $work/registry/data}}
http: {addr: 127.0.0.1:$registry_port, secret: demo}
notifications:
  events: {includereferences: true}
  endpoints:
    - name: garrison
      url: $S/api/v1/registries/$registry_id/notifications
      headers: {Authorization: [Bearer $notify_token]}
      timeout: 2s
      threshold: 3
      backoff: 1s
      ignoredmediatypes: [application/octet-stream]
EOF
step "docker-registry serve config.yml &   # notifications → $S/api/v1/registries/$registry_id/notifications"
docker-registry serve "$work/registry/config.yml" > "$work/registry.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$registry_port/v2/" > /dev/null && break; sleep 0.2; done

step "skopeo copy $image docker://127.0.0.1:$registry_port/shop/app:1"
skopeo copy -q --dest-tls-verify=false "$image" "docker://127.0.0.1:$registry_port/shop/app:1"
started=$(date +%s%N)
for _ in $(seq 600); do
  n=$(api "$ADMIN" GET "/api/v1/images" | jq '[.items[] | select(.last_scanned_at != "")] | length')
  [ "$n" -ge 1 ] && break
  sleep 0.5
done
echo "scanned $(( ($(date +%s%N) - started) / 1000000 )) ms after the push"
step "GET /api/v1/images"
api "$ADMIN" GET /api/v1/images | jq -c '.items[] | {digest: .digest[0:19], repositories, tags: [.tags[].tag], packages, last_scanned_at, counts}'
digest=$(api "$ADMIN" GET /api/v1/images | jq -r '.items[0].digest')
step "GET /api/v1/images/${digest:0:19}…/findings?severity=HIGH&limit=5"
api "$ADMIN" GET "/api/v1/images/$digest/findings?severity=HIGH&limit=5" |
  jq -r '"total \(.total)", (.items[] | "\(.severity)\t\(.kind)\t\(.rule_id)\t\(.package) \(.installed) → \(.fixed_version)")'

step "POST /api/v1/clusters  {\"id\": \"demo\"}"
api "$ADMIN" POST /api/v1/clusters '{"id": "demo", "name": "the demo cluster"}' > "$work/cluster.json"
jq -c '{cluster: .cluster.id, agent: .agent.name}' "$work/cluster.json"
AGENT=$(jq -r .token.secret "$work/cluster.json")
step "POST /api/v1/events/k8s-audit   # $(wc -l < "$events") audit events recorded from a real API server, as the agent"
jq -cs '{kind: "EventList", apiVersion: "audit.k8s.io/v1", items: .}' "$events" > "$work/events.json"
curl -sS -X POST "$S/api/v1/events/k8s-audit" -H "Authorization: Bearer $AGENT" \
  -H 'Content-Type: application/json' --data-binary @"$work/events.json"
echo

READER=$(garrison server user add rita --role security-reader 2>/dev/null)
SECADMIN=$(garrison server user add sam --role security-admin 2>/dev/null)
step "GET /api/v1/alerts?status=active   # as rita (security-reader)"
api "$READER" GET "/api/v1/alerts?status=active" | jq -r '.items[] | "\(.id)\t\(.severity)\t\(.rule)"'
alert=$(api "$READER" GET "/api/v1/alerts?rule=Privileged%20Container%20Created" | jq -r '.items[0].id')
step "POST /api/v1/alerts/$alert/dismiss   # as rita (security-reader)"
api "$READER" POST "/api/v1/alerts/$alert/dismiss" '{"reason": "I only read"}'
echo "  (HTTP $(cat "$work/status"))"
step "POST /api/v1/alerts/$alert/dismiss   # as sam (security-admin)"
api "$SECADMIN" POST "/api/v1/alerts/$alert/dismiss" '{"reason": "the shop team'"'"'s debug pod, removed"}' |
  jq -c '{id, rule, status, dismissed_by, dismissed_reason}'
echo "  (HTTP $(cat "$work/status"))"
step "GET /api/v1/audit-log?limit=6"
api "$ADMIN" GET "/api/v1/audit-log?limit=6" | jq -r '.items[] | "\(.at[0:19])  \(.actor)\t\(.action)\t\(.target_type) \(.target_id)\t\(.reason)"'
