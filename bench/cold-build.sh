#!/usr/bin/env bash
# The first `cargo grade` on a fresh clone: a clone of HEAD (or of REF) in a
# temporary folder, its grader built with `cargo build --timings`, then the
# exercise crates as the grader builds them (one `cargo build` of all
# skeleton packages into target/), then the solutions (target/solutions/).
# Prints wall and CPU time (user + sys) of each step; the timings report
# lands in the clone's target/cargo-timings/ (kept with --keep).
#
# Uses the crates already in ~/.cargo (--offline): it measures compiling,
# not downloading. Compare two commits under the same load:
#
#   bench/cold-build.sh [--keep] [REF]
set -euo pipefail
cd "$(dirname "$0")/.."
keep=false
if [ "${1:-}" = --keep ]; then keep=true; shift; fi
ref=${1:-HEAD}
repo=$PWD
clone=$(mktemp -d /tmp/ipc-lab-cold.XXXXXX)
cleanup() { if $keep; then echo "clone kept in $clone"; else rm -rf "$clone"; fi; }
trap cleanup EXIT

git clone -q "$repo" "$clone"
git -C "$clone" checkout -q "$(git rev-parse "$ref")"
cd "$clone"
export CARGO_TERM_COLOR=never CARGO_TARGET_DIR="$clone/target"

# `cargo metadata` lists the workspace members; the skeletons and solutions
# are the packages under exercises/ and solutions/.
members() {
  cargo metadata --offline --no-deps --format-version 1 |
    python3 -c 'import json,sys,os
for p in json.load(sys.stdin)["packages"]:
    d = os.path.basename(os.path.dirname(os.path.dirname(p["manifest_path"])))
    if d == sys.argv[1]: print("-p", p["name"])' "$1"
}
read -ra skeletons <<<"$(members exercises | tr '\n' ' ')"
read -ra solutions <<<"$(members solutions | tr '\n' ' ')"

step() {
  local name=$1; shift
  local t0 t1
  t0=$(date +%s%N)
  if ! /usr/bin/time -f '%U %S' -o "$clone/.cpu" "$@" >/dev/null 2>"$clone/.log"; then
    echo "$name: FAILED ($*)"; tail -20 "$clone/.log"; exit 1
  fi
  t1=$(date +%s%N)
  awk -v n="$name" -v w="$(( (t1 - t0) / 1000000 ))" -v c="$(tail -1 "$clone/.cpu")" \
    'BEGIN { split(c, a, " "); printf "%-34s wall %6.1f s   cpu %6.1f s\n", n, w / 1000, a[1] + a[2] }'
}

echo "cold build of $(git rev-parse --short HEAD) on $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
step "grader (cargo build --timings)" cargo build --offline --timings -p grader
step "exercise crates (target/)" cargo build --offline --keep-going "${skeletons[@]}"
step "solution crates (target/solutions/)" cargo build --offline --keep-going --target-dir target/solutions "${solutions[@]}"
timings=(target/cargo-timings/cargo-timing-*.html)
echo "timings: $clone/${timings[-1]}"
