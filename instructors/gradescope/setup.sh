#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image:
# the autograder zip (instructors/gradescope/make-zip.sh) is unpacked into
# /autograder/source, with the exported repository in ipc-lab/.
#
# Installs a C toolchain (Rust's linker), dbus-daemon (for the bus
# exercise), rustup and a Rust toolchain,
# fetches the locked dependencies and builds the grader, so that grading a
# submission only builds the student's crates.
#
#   RUST_TOOLCHAIN  toolchain to install (default: stable; pin one, e.g.
#                   1.85.0, to keep grading the same all term)
#   IPC_LAB_DIR     the repository (default: ipc-lab/ beside this script)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=${IPC_LAB_DIR:-$here/ipc-lab}
toolchain=${RUST_TOOLCHAIN:-stable}
export RUSTUP_HOME=${RUSTUP_HOME:-/usr/local/rustup}
export CARGO_HOME=${CARGO_HOME:-/usr/local/cargo}
export PATH="$CARGO_HOME/bin:$PATH"

if command -v apt-get >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends build-essential ca-certificates curl
  # The bus exercise's checks run on a private dbus-daemon (skipped without
  # one): package dbus-daemon on Ubuntu 24.04, dbus on older releases.
  apt-get install -y -q --no-install-recommends dbus-daemon ||
    apt-get install -y -q --no-install-recommends dbus
fi

if ! command -v rustup >/dev/null 2>&1; then
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs |
    sh -s -- -y --no-modify-path --profile minimal --default-toolchain none
fi
rustup toolchain install "$toolchain" --profile minimal
rustup default "$toolchain"

cd "$repo"
cargo fetch --locked
cargo build --locked -p grader
./target/debug/grader --list
echo "setup: grader ready in $repo"
