#!/usr/bin/env bash
# Installs what the tests need, then runs the whole suite. Run as root:
# the integration tests create namespaces, mounts and cgroups.
set -euo pipefail
export PATH="$HOME/.cargo/bin:$PATH"
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "test: run as root (the tests make containers)" >&2; exit 1; }
bash scripts/deps.sh --test
# The tests run the workspace's binaries (rt, rt-shim, containerd-shim-rt-v2,
# rt-image); `cargo test` alone builds only those of crates with tests/.
cargo build --workspace --bins
cargo test --workspace --all-targets
