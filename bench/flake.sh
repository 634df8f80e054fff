#!/usr/bin/env bash
# Grade the reference solutions N times (default 30) in a row while two
# CPU-burning processes run, and report verdict failures and wall times.
# A correct program's verdict must never depend on load: expect 0 failures.
#
#   bench/flake.sh [RUNS] [extra grader args…]
#   GRADER=/path/to/grader bench/flake.sh       another build (before/after)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-30}
shift || true
if [ -n "${GRADER:-}" ]; then grader=$GRADER; else
  cargo build -q -p grader
  grader=target/debug/grader
fi
"$grader" --solutions "$@" >/dev/null || true   # warm build of the solutions

burn() { while :; do :; done; }
burn & h1=$!
burn & h2=$!
trap 'kill $h1 $h2 2>/dev/null || true' EXIT

fails=0
times=()
for i in $(seq 1 "$runs"); do
  start=$(date +%s%N)
  if out=$("$grader" --solutions --format json "$@"); then :; else
    fails=$((fails + 1))
    echo "run $i FAILED:"; echo "$out" | python3 -c 'import json,sys; r=json.load(sys.stdin); [print("  ", e["id"], c["id"], c["message"].splitlines()[0:3]) for e in r["exercises"] for c in e["checks"] if c["status"]!="passed"]'
  fi
  end=$(date +%s%N)
  times+=("$(( (end - start) / 1000000 ))")
done
sorted=$(printf '%s\n' "${times[@]}" | sort -n)
median=$(echo "$sorted" | awk '{a[NR]=$1} END {printf "%.2f", (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)/1000}')
max=$(echo "$sorted" | tail -1 | awk '{printf "%.2f", $1/1000}')
echo "runs: $runs  passed: $((runs - fails))  failed: $fails  wall median: ${median}s  max: ${max}s  (2 CPU hogs running, grader process start to exit)"
[ "$fails" -eq 0 ]
