#!/usr/bin/env bash
# Installs what rt needs to build and test on Debian 12. Idempotent: only
# runs apt-get when a package is missing.
set -euo pipefail

pkgs=(busybox-static make gcc pkg-config)
[ "${1:-}" = "--test" ] && pkgs+=(runc util-linux iproute2)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    echo "cargo is in $HOME/.cargo/bin: add it to PATH" >&2
  else
    echo "cargo not found: install the Rust toolchain (https://rustup.rs) first" >&2
  fi
  exit 1
fi
