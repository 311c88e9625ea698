#!/usr/bin/env bash
# `make release`: the release binaries, together in target/dist (rt,
# rt-shim, containerd-shim-rt-v2, rt-image), which `make install`, the bench
# and `HOST_RELEASE=1 make test-host` take.
#
# rt itself is linked statically, not as a position-independent executable,
# with the functions a container start runs laid out first
# (src/bin/rt/hot.order): its code then faults in as a few contiguous
# runs, and no libc.so or ld.so is mapped, which halves `rt run`'s peak RSS
# and saves the dynamic loader's start-up (bench/PROFILE.md, "Hot code
# first"). That takes an explicit --target, so rt builds under
# target/<host triple>/release; build scripts and proc macros stay dynamic.
# `release.sh rt` builds rt alone; `release.sh runtime` rt and its shims
# (what `make test-host HOST_RELEASE=1` and the bench run, without rt-image,
# whose fat-LTO build of its registry client is minutes of CI's budget).
set -euo pipefail
cd "$(dirname "$0")/.."
triple=$(rustc -vV | sed -n 's/^host: //p')
target=${CARGO_TARGET_DIR:-$PWD/target}
mkdir -p "$target/dist"
case ${1:-all} in
rt) ;;
runtime)
	cargo build --release -p rt-shim
	for b in rt-shim containerd-shim-rt-v2; do ln -f "$target/release/$b" "$target/dist/$b"; done
	;;
all)
	cargo build --release -p rt-shim -p rt-image
	for b in rt-shim containerd-shim-rt-v2 rt-image; do ln -f "$target/release/$b" "$target/dist/$b"; done
	;;
*) echo "release: rt, runtime or nothing (all), not '$1'" >&2; exit 1 ;;
esac
flags="-C target-feature=+crt-static -C relocation-model=static"
# The order is an lld option; rustc links with lld by default from 1.90 on.
minor=$(rustc -vV | sed -n 's/^release: 1\.\([0-9]*\).*/\1/p')
if [ "${minor:-0}" -ge 90 ]; then
	flags="$flags -C link-arg=-Wl,--symbol-ordering-file=$PWD/src/bin/rt/hot.order"
	flags="$flags -C link-arg=-Wl,--no-warn-symbol-ordering"
fi
RUSTFLAGS="${RUSTFLAGS:-} $flags" cargo build --release -p rt --bin rt --target "$triple"
ln -f "$target/$triple/release/rt" "$target/dist/rt"
