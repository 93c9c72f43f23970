#!/bin/sh
# Runs the C++ train-step benchmark and the same step in PyTorch (bench/train_step.py, Debian's
# python3-torch, the same version as libtorch-dev) one after the other, with the same threads and
# passive OpenMP waiting, and prints one JSON object per configuration:
#   {"model", "padding", "cpp_ms_per_step", "python_ms_per_step", "ratio", "tokens_per_s", ...}
# ratio = C++ / Python milliseconds per step (below 1: C++ is faster).
#
#   bench/run_train_step.sh [BUILD_DIR] [CONFIGS...]
#   CONFIGS: model:padding pairs, default "reference:dense reference:heavy"; add "bert-base:dense".
#   THREADS=N (default: the CPUs this process may use), STEPS=N override the step count,
#   REPEATS=N alternating runs per side (default 3; the fastest of each side is reported).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build-models}
[ $# -gt 0 ] && shift
configs=${*:-"reference:dense reference:heavy"}
bench=$build/bench/train_step_bench
[ -x "$bench" ] || { echo "missing $bench: ninja -C $build train_step_bench" >&2; exit 1; }
python=${PYTHON:-/usr/bin/python3}  # Debian's, which has python3-torch (not a pyenv shim)
"$python" -c 'import torch' 2>/dev/null || { echo "python3-torch is not installed (apt-get install -y python3-torch)" >&2; exit 1; }
export OMP_WAIT_POLICY=passive
threads=${THREADS:-$(nproc)}
steps=${STEPS:+--steps $STEPS}
for config in $configs; do
  model=${config%%:*}
  padding=${config#*:}
  # Alternate the two sides REPEATS times and keep each side's fastest run: on shared machines
  # the minimum is the figure least disturbed by neighbours.
  runs=""
  i=0
  while [ "$i" -lt "${REPEATS:-3}" ]; do
    cpp=$("$bench" --model "$model" --padding "$padding" --threads "$threads" $steps | tail -n 1)
    py=$("$python" "$here/train_step.py" --model "$model" --padding "$padding" --threads "$threads" $steps | tail -n 1)
    runs="$runs$cpp
$py
"
    i=$((i + 1))
  done
  printf '%s' "$runs" | "$python" -c '
import json, sys
runs = [json.loads(line) for line in sys.stdin if line.strip()]
cpp = min((r for r in runs if "cpp_ms_per_step" in r), key=lambda r: r["cpp_ms_per_step"])
py = min((r for r in runs if "python_ms_per_step" in r), key=lambda r: r["python_ms_per_step"])
print(json.dumps({"model": cpp["model"], "padding": cpp["padding"], "batch": cpp["batch"], "seq": cpp["seq"],
                  "threads": cpp["threads"], "cpp_ms_per_step": cpp["cpp_ms_per_step"],
                  "python_ms_per_step": py["python_ms_per_step"],
                  "ratio": round(cpp["cpp_ms_per_step"] / py["python_ms_per_step"], 3),
                  "tokens_per_s": cpp["tokens_per_s"], "python_tokens_per_s": py["tokens_per_s"],
                  "torch": py["torch"], "repeats": len(runs) // 2}))
'
done
