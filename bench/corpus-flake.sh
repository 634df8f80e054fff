#!/usr/bin/env bash
# Grade every corpus program (tests/corpus/<exercise>/*.c; the *.toml
# variants, edits of one of them, only `cargo test` builds) N times (default
# 3) while two CPU-burning processes run, the way tests/tests/corpus.rs
# grades it once per run (same build line, --check from its header,
# GRADER_TIME_SCALE=2), and print for each program how many runs came out
# as its header expects: all graded checks passed for `expect: full`, the
# named checks failed with the fragment for `expect: fail`. A verdict must
# never depend on load: expect N/N everywhere.
#
#   bench/corpus-flake.sh [RUNS] [EXERCISE…]      (default: every exercise)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
shift || true
exercises=("$@")
if [ ${#exercises[@]} -eq 0 ]; then
  for dir in tests/corpus/*/; do exercises+=("$(basename "$dir")"); done
fi
cargo build -q -p grader
grader=$PWD/target/debug/grader
work=$(mktemp -d)

burn() { while :; do :; done; }
burn & h1=$!
burn & h2=$!
trap 'kill $h1 $h2 2>/dev/null || true; rm -rf "$work"' EXIT

# The header field KEY of FILE (`// KEY: VALUE` among the first lines).
field() { sed -n "1,8s|^// $2: ||p" "$1" | head -1; }

# judge.py EXPECT PREFIX < JSON: exit 0 if the grader's report is what
# EXPECT says for the checks starting with PREFIX, else print why, exit 1.
cat >"$work/judge.py" <<'EOF'
import json, sys
expect, prefix = sys.argv[1], sys.argv[2]
report = json.load(sys.stdin)
checks = {c['id']: c for e in report['exercises'] for c in e['checks'] if c['id'].startswith(prefix)}
bad = []
if expect == 'full':
    for i, c in checks.items():
        if c['status'] not in ('passed', 'skipped'):
            bad.append('%s %s: %s' % (i, c['status'], ' '.join(c['message'].splitlines()[2:3])))
else:
    names, fragment = expect[len('fail '):].split(' | ', 1)
    for i in (n.strip() for n in names.split(',')):
        c = checks.get(i)
        if c is None or c['status'] != 'failed' or fragment.strip() not in c['message']:
            bad.append('%s %s, not failed with `%s`' % (i, c['status'] if c else 'missing', fragment.strip()))
for b in bad:
    print('     ', b)
sys.exit(1 if bad or not checks else 0)
EOF

total=0
good=0
for ex in "${exercises[@]}"; do
  for src in tests/corpus/"$ex"/*.c; do
    corpus=$(field "$src" corpus)
    bin=${corpus##*bin=}
    prefix=$(field "$src" checks)
    expect=$(field "$src" expect)
    exe=$work/$(basename "$src" .c)/$bin
    mkdir -p "$(dirname "$exe")"
    cc -std=gnu11 -O2 -Wall -Wextra -Werror -pthread -o "$exe" "$src" -lrt
    args=("$ex" --bin "$bin=$exe" --format json)
    [ -n "$prefix" ] && args+=(--check "$prefix")
    ok=0
    why=""
    start=$(date +%s%N)
    for _ in $(seq 1 "$runs"); do
      # The grader exits 1 when a check fails, as a shortcut's must: only
      # the judgement counts.
      if verdict=$({ GRADER_TIME_SCALE=2 "$grader" "${args[@]}" 2>/dev/null || true; } |
        python3 "$work/judge.py" "$expect" "$prefix"); then
        ok=$((ok + 1))
      else
        why+="$verdict"$'\n'
      fi
    done
    secs=$(( ($(date +%s%N) - start) / 1000000000 ))
    total=$((total + 1))
    [ "$ok" -eq "$runs" ] && good=$((good + 1))
    printf '%-40s %-5s %d/%d  (%ds)\n' "$ex/$(basename "$src")" "${expect%% *}" "$ok" "$runs" "$secs"
    printf '%s' "$why"
  done
done
echo "programs: $total  as expected in every run: $good  (runs each: $runs, 2 CPU hogs running, GRADER_TIME_SCALE=2)"
[ "$good" -eq "$total" ]
