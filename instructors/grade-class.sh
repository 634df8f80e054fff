#!/usr/bin/env bash
# instructors/grade-class.sh [options] ROSTER OUT
#
# Grade a whole class on this machine, the way the `gradebook` workflow does
# on GitHub Actions (.github/workflows/gradebook.yml): expand the roster,
# clone every repository at its last commit before the deadline, grade N
# shards side by side (`cargo grade gradebook --shard I/N`), merge them.
#
#   ROSTER  lines `name,repository[,ref]` (see instructors/roster.py)
#   OUT     the merged gradebook: gradebook.csv, <name>.json and <name>.log,
#           shard.json, fetched.csv (the commit graded per student),
#           summary.md; the clones and shard folders under OUT/work
#
# Options:
#   --shards N        gradebooks side by side (default 2); each has its own
#                     CPU lock, so on C cores about C/4 shards with -j 2
#   -j N              submissions at once in each shard (default 2)
#   --deadline WHEN   ISO 8601, e.g. 2025-01-31T23:59+01:00 (default: newest)
#   --exercise ID     only this exercise (repeatable; default: all)
#   --timeout SECS    per submission (default: the gradebook's)
#   --fetch-jobs N    clones at once (default 4)
#
# $GRADEBOOK_TOKEN, if set, authenticates HTTPS clones (roster.py). $GRADER,
# if set, is the grader executable to run instead of `cargo grade`.
#
# Exit status as the gradebook's: 0 every student graded, 1 some rows say
# `timeout` or `error`, 2 a usage error or a failed step.
set -euo pipefail

usage() {
  echo "usage: instructors/grade-class.sh [--shards N] [-j N] [--deadline WHEN] [--exercise ID]... [--timeout SECS] [--fetch-jobs N] ROSTER OUT" >&2
  exit 2
}

shards=2 jobs=2 deadline="" fetch_jobs=4
grade_opts=()
positional=()
while [ $# -gt 0 ]; do
  case "$1" in
    --shards) shards=${2:?}; shift 2 ;;
    -j) jobs=${2:?}; shift 2 ;;
    --deadline) deadline=${2?}; shift 2 ;;
    --exercise) grade_opts+=(--exercise "${2:?}"); shift 2 ;;
    --timeout) grade_opts+=(--timeout "${2:?}"); shift 2 ;;
    --fetch-jobs) fetch_jobs=${2:?}; shift 2 ;;
    -h | --help) sed -n "2,/^set -euo/p" "$0" | sed "\$d; s/^# \{0,1\}//"; exit 0 ;;
    -*) usage ;;
    *) positional+=("$1"); shift ;;
  esac
done
[ ${#positional[@]} -eq 2 ] || usage
roster=${positional[0]} out=${positional[1]}
case "$shards" in '' | *[!0-9]* | 0) echo "grade-class.sh: --shards takes a number from 1" >&2; exit 2 ;; esac

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
mkdir -p "$out"
out=$(cd "$out" && pwd)
work="$out/work"
if [ -e "$work" ]; then
  echo "grade-class.sh: $work exists (an earlier run); remove it or choose another OUT" >&2
  exit 2
fi
mkdir -p "$work/shards"

if [ -n "${GRADER:-}" ]; then
  grader=("$GRADER")
else
  (cd "$repo" && cargo build --quiet --package grader --bin grader)
  grader=(cargo grade)
fi

# Relative paths in the roster are relative to the current folder.
python3 "$here/roster.py" expand --roster "$roster" --out "$work/roster.csv"
python3 "$here/roster.py" fetch "$work/roster.csv" --dest "$work/subs" --deadline "$deadline" \
  --record "$work/fetched.csv" -j "$fetch_jobs"
# `cargo grade` runs in the instructors' repository; the paths are absolute.
cd "$repo"

echo "grading $shards shards side by side (logs: $work/shards/I.log)"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
for i in $(seq 1 "$shards"); do
  "${grader[@]}" gradebook "$work"/subs/* --shard "$i/$shards" --out "$work/shards/$i" -j "$jobs" \
    "${grade_opts[@]}" >"$work/shards/$i.log" 2>&1 &
  pids+=($!)
done
failed=0
for i in $(seq 1 "$shards"); do
  status=0
  wait "${pids[$((i - 1))]}" || status=$?
  echo "shard $i/$shards: exit $status"
  if [ "$status" -gt 1 ]; then
    echo "grade-class.sh: shard $i failed; the end of $work/shards/$i.log:" >&2
    tail -n 5 "$work/shards/$i.log" >&2
    failed=1
  fi
done
trap - EXIT
[ "$failed" -eq 0 ] || exit 2

shard_dirs=()
for i in $(seq 1 "$shards"); do shard_dirs+=("$work/shards/$i"); done
status=0
"${grader[@]}" gradebook-merge "${shard_dirs[@]}" --out "$out" >"$out/summary.md" || status=$?
cp "$work/fetched.csv" "$out/fetched.csv"
cat "$out/summary.md"
exit "$status"
