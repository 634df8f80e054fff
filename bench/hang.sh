#!/usr/bin/env bash
# How long grading takes when the program hangs in every check, at time
# scale 1. Two stand-ins, given for every binary of an exercise with --bin:
#   hang  never reads its stdin and never exits (`pause()`);
#   hog   allocates and touches memory in 1 MiB blocks until malloc fails
#         (the harness's RLIMIT_AS) or HOG_MB are reached, then does the
#         same as hang.
# Per exercise and stand-in: the wall time, the longest check, and how many
# checks failed how (every check must fail; none may pass or crash the
# grader).
#
#   bench/hang.sh [EXERCISE...]        default: pipeline framing select
#   PROGRAMS="hang" bench/hang.sh      only one stand-in
#   HOG_MB=0 bench/hang.sh             the hog stops only at RLIMIT_AS
#   GRADER=/path/to/grader bench/hang.sh   another build (before/after)
#
# HOG_MB defaults to 512: at RLIMIT_AS (2 GiB) every check that runs at once
# holds 2 GiB, more than a shared 2-core machine may have to spare.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${GRADER:-}" ]; then grader=$GRADER; else
  cargo build -q -p grader
  grader=$PWD/target/debug/grader
fi
dir=$(mktemp -d /tmp/ipc-lab-hang.XXXXXX)
trap 'rm -rf "$dir"' EXIT

cat >"$dir/hang.c" <<'C'
#include <unistd.h>
int main(void) { pause(); return 0; }
C
cat >"$dir/hog.c" <<'C'
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
int main(void) {
    for (long mb = 0; CAP_MB == 0 || mb < CAP_MB; mb++) {
        char *p = malloc(1 << 20);
        if (!p) break;
        memset(p, 1, 1 << 20);
    }
    pause();
    return 0;
}
C
for prog in hang hog; do gcc -O1 -DCAP_MB="${HOG_MB:-512}" -o "$dir/$prog" "$dir/$prog.c"; done

if [ $# -gt 0 ]; then exercises=("$@"); else exercises=(pipeline framing select); fi
read -ra programs <<<"${PROGRAMS:-hang hog}"
echo "on $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), GRADER_TIME_SCALE=1, HOG_MB=${HOG_MB:-512}"
for ex in "${exercises[@]}"; do
  read -ra bins <<<"$("$grader" --list | sed -n "s/^$ex .*binaries: \([^)]*\)).*/\1/p" | tr -d ',')"
  [ ${#bins[@]} -gt 0 ] || { echo "unknown exercise $ex"; exit 2; }
  for prog in "${programs[@]}"; do
    args=()
    for b in "${bins[@]}"; do args+=(--bin "$b=$dir/$prog"); done
    start=$(date +%s%N)
    GRADER_TIME_SCALE=1 "$grader" "$ex" "${args[@]}" --format json >"$dir/report.json" || true
    end=$(date +%s%N)
    python3 - "$ex" "$prog" "$(( (end - start) / 1000000 ))" "$dir/report.json" <<'PY'
import collections, json, sys
ex, prog, wall, path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
checks = [c for e in json.load(open(path))["exercises"] for c in e["checks"]]
kinds = collections.Counter(c["detail"]["kind"] if c.get("detail") else c["status"] for c in checks)
longest = max(checks, key=lambda c: c["duration_ms"])
print(f"{ex:9} {prog:5} wall {wall / 1000:5.1f} s   longest {longest['id']} {longest['duration_ms'] / 1000:.1f} s   "
      f"{len(checks)} checks: " + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())))
PY
  done
done
