#!/usr/bin/env bash
# Installs what is needed, builds rt, makes a busybox bundle and runs a
# container that prints "hello from rt". Run as root.
set -euo pipefail
export PATH="$HOME/.cargo/bin:$PATH"
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "demo: run as root (containers need it)" >&2; exit 1; }
bash scripts/deps.sh
CARGO_TERM_QUIET=true bash scripts/release.sh rt
rt=$PWD/target/dist/rt
bundle=$(mktemp -d /tmp/rt-demo.XXXXXX)
trap 'rm -rf "$bundle"' EXIT
bash scripts/make-bundle.sh "$bundle" "$rt" >/dev/null
# The default config runs an interactive sh on a terminal; the demo prints.
sed -i 's/"terminal": true/"terminal": false/; s/^\(\s*\)"sh"$/\1"echo", "hello from rt"/' "$bundle/config.json"
"$rt" run --bundle "$bundle" "demo-$$"
