#!/usr/bin/env bash
# The README's run command, the main job: installs dependencies, builds the binaries, provisions a
# federation of three hospitals from configs/federation.yaml, splits the bundled breast-cancer data
# across them (label-skewed, seeded), runs the coordinator and three site agents on 127.0.0.1 over
# mutual TLS, submits configs/jobs/wdbc_dp.yaml (DP-SGD at every site, SecAgg+ on the updates),
# follows it round by round, and prints the per-round metrics and each site's privacy spend.
#
#   scripts/demo.sh              run the job, show the results, stop
#   scripts/demo.sh --keep       keep the federation running afterwards until Ctrl-C
#   scripts/demo.sh --schools    the school use case instead: five sites of London schools
#                                (configs/federations/schools.yaml, configs/jobs/exam_schools.yaml)
#   JOB=FILE scripts/demo.sh     another job on the same federation
set -euo pipefail
cd "$(dirname "$0")/.."
KEEP=0
USE_CASE=hospitals
for arg in "$@"; do
  case "$arg" in
    --keep) KEEP=1 ;;
    --schools) USE_CASE=schools ;;
    *) echo "usage: scripts/demo.sh [--keep] [--schools]" >&2; exit 2 ;;
  esac
done
if [ "$USE_CASE" = schools ]; then
  FEDERATION=configs/federations/schools.yaml
  SITES=(trust-a trust-b trust-c trust-d trust-e)
  DATA=data/gpl/exam_london_schools.csv
  SPLIT=(--mode column --group-column school --seed 7)
  SPLIT_WHAT="whole schools per site"
  JOB_FILE=${JOB:-configs/jobs/exam_schools.yaml}
else
  FEDERATION=configs/federation.yaml
  SITES=(hospital-a hospital-b hospital-c)
  DATA=data/wdbc.csv
  SPLIT=(--mode label --label-column diagnosis --alpha 1.0 --seed 7 --min-rows 60)
  SPLIT_WHAT="Dirichlet label skew, alpha 1, seed 7"
  JOB_FILE=${JOB:-configs/jobs/wdbc_dp.yaml}
fi

scripts/setup.sh
scripts/build.sh fedattn fedattn-coordinator fedattn-agent
BIN=${FEDATTN_BUILD_DIR:-build}
BIN=$(cd "$BIN" && pwd)

RUN=$(mktemp -d /tmp/fedattn-demo-XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "demo: logs and kits kept in $RUN"
}
trap cleanup EXIT

echo "== provision: CA and startup kits in $RUN/federation"
"$BIN/coordinator/fedattn" provision --config "$FEDERATION" --out "$RUN/federation"
KITS="$RUN/federation/kits"

echo "== data: $DATA split across the sites ($SPLIT_WHAT)"
"$BIN/site-agent/fedattn-agent" data split --input "$DATA" --out "$RUN/data" \
  --sites "$(IFS=,; echo "${SITES[*]}")" "${SPLIT[@]}"
for site in "${SITES[@]}"; do
  # Each site points its agent at its own file and sets its own privacy cap.
  cat >> "$KITS/$site/site.yaml" <<YAML
data:
  path: $RUN/data/$site.csv
policy:
  epsilon_max: ${EPSILON_MAX:-10.0}
  delta: 1.0e-5
YAML
done

echo "== coordinator (kit: $KITS/coordinator)"
"$BIN/coordinator/fedattn-coordinator" --config "$KITS/coordinator/coordinator.yaml" \
  --listen 127.0.0.1:0 --port-file "$RUN/port" > "$RUN/coordinator.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do [ -s "$RUN/port" ] && break; sleep 0.1; done
[ -s "$RUN/port" ] || { cat "$RUN/coordinator.log"; echo "demo: coordinator did not start" >&2; exit 1; }
ADDRESS="127.0.0.1:$(cat "$RUN/port")"
echo "   listening on $ADDRESS"

for site in "${SITES[@]}"; do
  echo "== agent $site (kit: $KITS/$site)"
  "$BIN/site-agent/fedattn-agent" --config "$KITS/$site/site.yaml" --coordinator "$ADDRESS" \
    > "$RUN/$site.log" 2>&1 &
  PIDS+=($!)
done

status() {
  "$BIN/coordinator/fedattn" status --config "$KITS/operator/admin.yaml" --coordinator "$ADDRESS" "$@"
}
echo "== waiting for the ${#SITES[@]} sites to register over mutual TLS"
for _ in $(seq 120); do
  online=$(status --json 2>/dev/null | sed -n 's/.*"sites_online": \([0-9]*\).*/\1/p')
  [ "${online:-0}" -ge "${#SITES[@]}" ] && break
  sleep 0.5
done
echo
status
echo
if [ "${online:-0}" -lt "${#SITES[@]}" ]; then
  echo "demo: not every site came online; see the logs in $RUN" >&2
  exit 1
fi
admin() {
  local command=$1; shift
  "$BIN/coordinator/fedattn" "$command" "$@" --config "$KITS/operator/admin.yaml" --coordinator "$ADDRESS"
}
echo "== submitting $JOB_FILE"
JOB_ID=$(admin job submit "$JOB_FILE")
echo "   job $JOB_ID"
echo "== following $JOB_ID (one line per committed round)"
if ! admin job wait "$JOB_ID" --timeout 1800; then
  admin job status "$JOB_ID" || true
  echo "demo: the job did not complete; logs in $RUN" >&2
  exit 1
fi
echo
admin job status "$JOB_ID"
echo
echo "== the final global model"
admin model export "$JOB_ID" -o "$RUN/$JOB_ID.safetensors"
echo "   written to $RUN/$JOB_ID.safetensors"
echo
echo "== the privacy budget table (from the coordinator's audit log, verified against the CA)"
admin audit privacy
echo
echo "== the audit log, exported and verified offline; each site checks it against its own ledger"
admin audit export -o "$RUN/audit.jsonl" >/dev/null
"$BIN/coordinator/fedattn" audit verify "$RUN/audit.jsonl" --ca "$KITS/operator/ca.crt"
for site in "${SITES[@]}"; do
  "$BIN/site-agent/fedattn-agent" audit compare --config "$KITS/$site/site.yaml" --export "$RUN/audit.jsonl" |
    tail -n 1 | sed "s/^/   $site: /"
done
if [ "$KEEP" -eq 1 ]; then
  echo "demo: running; press Ctrl-C to stop (logs in $RUN)"
  wait
fi
