#!/usr/bin/env bash
# instructors/export.sh OUT_DIR [GIT_REF]
#
# Write a copy of this repository at GIT_REF (default HEAD; committed files
# only, no history) to OUT_DIR, without what only instructors may see: the
# reference solutions, the mutants (edits of the solutions), the C solution
# of `signals`, and what needs them (the test suite, the flake bench, the
# framework's CI). The workspace members and Cargo.lock are adjusted so the
# copy builds.
#
# Used for the student template (see INSTRUCTORS.md) and for the source of
# the Gradescope autograder (instructors/gradescope/make-zip.sh).
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: instructors/export.sh OUT_DIR [GIT_REF]" >&2
  exit 2
fi
out=$1
ref=${2:-HEAD}
repo=$(cd "$(dirname "$0")/.." && pwd)

if [ -e "$out" ] && [ -n "$(ls -A "$out")" ]; then
  echo "export.sh: $out exists and is not empty" >&2
  exit 2
fi
mkdir -p "$out"
git -C "$repo" archive --format=tar "$ref" | tar -x -C "$out"
cd "$out"

rm -rf solutions tests examples bench .ci .github/workflows/ci.yml .github/workflows/gradebook.yml
sed -E -i '/^(default-)?members *=/{s/"tests", *//; s/, *"tests"//; s/, *"solutions\/\*"//; s/"solutions\/\*", *//}' Cargo.toml
if grep -En '^(default-)?members *=.*"(tests|solutions/\*)"' Cargo.toml >&2; then
  echo "export.sh: could not remove tests and solutions from the workspace members in Cargo.toml" >&2
  exit 1
fi
# Resolving the workspace drops the removed crates' dependencies from
# Cargo.lock; the versions of everything else stay as locked.
cargo metadata --format-version 1 >/dev/null

echo "exported $ref to $out"
