#!/usr/bin/env bash
# Rerun-stability of every pipeline and shm diagnosis: each mutant of the two
# exercises is graded in full 10 times, and every check it is caught by must
# tell the same story each time (the failure's kind and `got:` line, numbers
# taken out) with the fastest and slowest run at most 2 s apart. Prints one
# line per mutant and check: the spread of times and each diagnosis seen.
#
#   bench/diagnosis-stability.sh
#
# The fast subset (the /proc-judged checks) runs in `cargo test` as
# tests/tests/stability.rs; this is the whole sweep (about 20 minutes on two
# cores).
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo test -q -p ipc-lab-tests --test stability -- --ignored --nocapture --test-threads 1 \
  every_pipeline_and_shm_diagnosis_is_stable
