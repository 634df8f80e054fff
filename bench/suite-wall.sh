#!/usr/bin/env bash
# Wall time of grading the reference solutions against the longest single
# check of the same run (the report has both: `wall_ms` and every check's
# `duration_ms`). The schedule's aim: wall ≤ 1.5 × the longest check.
# Warm: the solutions are built (and the durations remembered) by a first
# run that is not counted.
#
#   bench/suite-wall.sh [RUNS] [extra grader args…]      RUNS defaults to 10
#   GRADER=/path/to/grader bench/suite-wall.sh           another build (before/after)
#
# Prints one line per run and the median and maximum of wall time and ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
shift || true
if [ -n "${GRADER:-}" ]; then grader=$GRADER; else
  cargo build -q -p grader
  grader=$PWD/target/debug/grader
fi
out=$(mktemp -d /tmp/ipc-lab-wall.XXXXXX)
trap 'rm -rf "$out"' EXIT
export GRADER_TIME_SCALE=${GRADER_TIME_SCALE:-1}
"$grader" --solutions "$@" >/dev/null || true   # warm: build, remember durations
echo "on $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), GRADER_TIME_SCALE=$GRADER_TIME_SCALE"
for i in $(seq 1 "$runs"); do
  "$grader" --solutions --format json "$@" >"$out/$i.json" || true
done
python3 - "$out" "$runs" <<'PY'
import json, statistics, sys
out, runs = sys.argv[1], int(sys.argv[2])
walls, ratios, wrong = [], [], 0
for i in range(1, runs + 1):
    r = json.load(open(f"{out}/{i}.json"))
    checks = [(c["duration_ms"], f'{e["id"]}/{c["id"]}', c["status"]) for e in r["exercises"] for c in e["checks"]]
    longest = max(checks)
    bad = [name for _, name, status in checks if status != "passed"]
    wrong += len(bad)
    walls.append(r["wall_ms"] / 1000)
    ratios.append(r["wall_ms"] / longest[0])
    print(f"run {i:3}: wall {walls[-1]:5.2f} s  longest {longest[1]} {longest[0] / 1000:.2f} s  "
          f"ratio {ratios[-1]:.2f}  {r['score']}/{r['max_score']}" + (f"  NOT PASSED: {' '.join(bad)}" if bad else ""))
print(f"{runs} runs: wall median {statistics.median(walls):.2f} s, max {max(walls):.2f} s; "
      f"wall/longest median {statistics.median(ratios):.2f}, max {max(ratios):.2f}; checks not passed: {wrong}")
PY
