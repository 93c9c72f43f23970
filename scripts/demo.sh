#!/usr/bin/env bash
# The README's run command: installs dependencies, builds the binaries, provisions a federation of
# three hospitals from configs/federation.yaml, and runs its coordinator and three site agents on
# 127.0.0.1 over mutual TLS. Shows `fedattn status` once every site is online, then stops them.
#
#   scripts/demo.sh              run, show the status, stop
#   scripts/demo.sh --keep       keep the federation running until Ctrl-C
set -euo pipefail
cd "$(dirname "$0")/.."
KEEP=0
[ "${1:-}" = "--keep" ] && KEEP=1

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
"$BIN/coordinator/fedattn" provision --config configs/federation.yaml --out "$RUN/federation"
KITS="$RUN/federation/kits"

echo "== coordinator (kit: $KITS/coordinator)"
"$BIN/coordinator/fedattn-coordinator" --config "$KITS/coordinator/coordinator.yaml" \
  --listen 127.0.0.1:0 --port-file "$RUN/port" > "$RUN/coordinator.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do [ -s "$RUN/port" ] && break; sleep 0.1; done
[ -s "$RUN/port" ] || { cat "$RUN/coordinator.log"; echo "demo: coordinator did not start" >&2; exit 1; }
ADDRESS="127.0.0.1:$(cat "$RUN/port")"
echo "   listening on $ADDRESS"

for site in hospital-a hospital-b hospital-c; do
  echo "== agent $site (kit: $KITS/$site)"
  "$BIN/site-agent/fedattn-agent" --config "$KITS/$site/site.yaml" --coordinator "$ADDRESS" \
    > "$RUN/$site.log" 2>&1 &
  PIDS+=($!)
done

status() {
  "$BIN/coordinator/fedattn" status --config "$KITS/operator/admin.yaml" --coordinator "$ADDRESS" "$@"
}
echo "== waiting for the three sites to register over mutual TLS"
for _ in $(seq 120); do
  online=$(status --json 2>/dev/null | sed -n 's/.*"sites_online": \([0-9]*\).*/\1/p')
  [ "${online:-0}" -ge 3 ] && break
  sleep 0.5
done
echo
status
echo
if [ "${online:-0}" -lt 3 ]; then
  echo "demo: not every site came online; see the logs in $RUN" >&2
  exit 1
fi
if [ "$KEEP" -eq 1 ]; then
  echo "demo: running; press Ctrl-C to stop (logs in $RUN)"
  wait
else
  sleep 3
  echo "== after a few heartbeats"
  status
fi
