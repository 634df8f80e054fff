#!/usr/bin/env bash
# instructors/gradescope/make-zip.sh [GIT_REF] — build autograder.zip for a
# Gradescope "Programming Assignment" (Ubuntu base image):
#
#   setup.sh          installs Rust, builds the grader
#   run_autograder    grades /autograder/submission
#   ipc-lab/          this repository at GIT_REF (default HEAD) without the
#                     reference solutions (instructors/export.sh)
#
# Writes ./autograder.zip, or the file named by AUTOGRADER_ZIP.
set -euo pipefail

ref=${1:-HEAD}
here=$(cd "$(dirname "$0")" && pwd)
zip_file=$(realpath -m "${AUTOGRADER_ZIP:-autograder.zip}")
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

"$here/../export.sh" "$stage/ipc-lab" "$ref"
rm -rf "$stage/ipc-lab/target"
cp "$here/setup.sh" "$here/run_autograder" "$stage/"
rm -f "$zip_file"
(cd "$stage" && python3 -m zipfile -c "$zip_file" setup.sh run_autograder ipc-lab)
echo "wrote $zip_file"
