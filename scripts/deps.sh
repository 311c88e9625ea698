#!/usr/bin/env bash
# Installs what rt needs to build and test on Debian 12. Idempotent: only
# runs apt-get when a package is missing.
set -euo pipefail

# protobuf-compiler: the CRI client of the examples and tests (k8s-cri) is
# generated at build time.
pkgs=(busybox-static make gcc libc6-dev pkg-config libssl-dev protobuf-compiler)
[ "${1:-}" = "--test" ] && pkgs+=(runc util-linux iproute2 containerd podman conmon umoci skopeo procps docker-registry docker.io openssl uidmap slirp4netns dbus-daemon containernetworking-plugins iptables)
[ "${1:-}" = "--bench" ] && pkgs+=(runc crun util-linux time python3 gnuplot-nox strace containerd umoci skopeo)
[ "${1:-}" = "--vm" ] && pkgs+=(qemu-system-x86 cpio python3)
[ "${1:-}" = "--host" ] && pkgs+=(qemu-system-x86 cpio mmdebstrap e2fsprogs)
[ "${1:-}" = "--critest" ] && pkgs+=(runc umoci skopeo docker-registry containernetworking-plugins iptables iproute2)

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

# Debian 12's rustc (1.63) is too old for rt's dependencies: use rustup's
# stable toolchain, installing it for this user when it is missing.
export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v cargo >/dev/null 2>&1; then
  echo "installing the Rust toolchain with rustup (https://rustup.rs)"
  command -v curl >/dev/null 2>&1 || {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends curl ca-certificates >/dev/null
  }
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --component rustfmt,clippy >/dev/null
fi
