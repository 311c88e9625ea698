#!/usr/bin/env bash
# `make test-host`: rt where its users run it. A Debian 12 root filesystem
# (systemd, dbus, Docker, containerd, Podman, AppArmor; built once with
# mmdebstrap and cached under /var/tmp, see rootfs.sh) with rt, rt-shim,
# containerd-shim-rt-v2 and rt-image from this checkout, made into an ext4
# image without loop mounts (mke2fs -d), booted under qemu (software
# emulation) with systemd as pid 1 and only the unified cgroup hierarchy.
# A systemd unit runs checks.sh, which writes PASS/FAIL lines to the serial
# console and powers off; this script turns them into an exit code.
#
# HOST_RELEASE=1 installs release builds (default: debug). HOST_TIMEOUT
# bounds the boot (default 2400 s; the whole set takes about 25 min under
# emulation, more on a loaded machine). HOST_ONLY=REGEX runs only
# matching checks; HOST_CORE=1 leaves out the few checks.sh names as not
# CI's core. HOST_WORK: scratch dir (default /var/tmp/rt-host-work).
# HOST_CRITEST=1 runs critest in the guest too (make test-host-critest);
# CONTAINERD23_DIR: containerd 2.3.4's bundle (below).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
work=${HOST_WORK:-/var/tmp/rt-host-work}
start=$(date +%s)
for p in mmdebstrap qemu-system-x86_64 mke2fs cpio busybox; do
	command -v $p >/dev/null || { echo "test-host: $p is missing (bash scripts/deps.sh --host)" >&2; exit 1; }
done

cache=$(bash "$here/rootfs.sh")
root=$cache/root
kernel=$(ls "$root"/boot/vmlinuz-* | head -1)
kver=${kernel##*/vmlinuz-}
mods=$root/lib/modules/$kver

target=${CARGO_TARGET_DIR:-$repo/target}
if [ "${HOST_RELEASE:-0}" = 1 ]; then
	# What `make install` installs of the runtime (rt static and its
	# shims, scripts/release.sh runtime); the CRI check is a test program,
	# built as the debug one is.
	(cd "$repo" && CARGO_TERM_QUIET=true bash scripts/release.sh runtime &&
		cargo build -q -p rt-integration --example cri-check)
	bin=$target/dist
	examples=$target/debug/examples
else
	(cd "$repo" && cargo build -q -p rt -p rt-shim &&
		cargo build -q -p rt-integration --example cri-check)
	bin=$target/debug
	examples=$bin/examples
fi

rm -rf "$work"
mkdir -p "$work"
# The guest's tree: hard links to the cached one (nothing in it is
# written in place), plus this checkout's binaries and the checks.
stage=$work/stage
cp -al "$root" "$stage"
# (rt-image is not used in the guest.)
for b in rt rt-shim containerd-shim-rt-v2; do
	install -m 0755 "$bin/$b" "$stage/usr/local/bin/$b"
done
install -m 0755 "$examples/cri-check" "$stage/usr/local/bin/cri-check"
mkdir -p "$stage/usr/local/lib/rt-host"
install -m 0755 "$here/checks.sh" "$stage/usr/local/lib/rt-host/checks.sh"
echo "${HOST_ONLY:-}" > "$stage/usr/local/lib/rt-host/only"
echo "${HOST_CORE:-0}" > "$stage/usr/local/lib/rt-host/core"
# runc 1.3.5's own suite for the runc_suite check (../shared/runc-suite,
# or RUNC_SUITE_DIR; where it is missing the guest says so and skips it):
# the suite, its two test images (built here: the guest has no network),
# and the script and lists of expected failures that judge it.
# HOST_RUNC_SUITE: the bats files to run (default cgroups.bats, the
# core that CI runs), or "all"; HOST_RUNC_SUITE_RUNC=1 runs runc 1.3.5
# on them too, side by side (make test-host-runc-suite).
suite=${RUNC_SUITE_DIR:-$(cd "$repo/.." && pwd)/shared/runc-suite}
if [ -x "$suite/run.sh" ]; then
	images=$(bash "$repo/scripts/runc-suite.sh" --images | tail -1)
	cp -a "$suite" "$stage/usr/local/lib/runc-suite"
	mkdir -p "$stage/var/tmp/runc-suite/images" "$stage/usr/local/lib/rt-host/repo/scripts" "$stage/usr/local/lib/rt-host/repo/tests"
	cp "$images"/*.tar.xz "$stage/var/tmp/runc-suite/images/"
	install -m 0755 "$repo/scripts/runc-suite.sh" "$stage/usr/local/lib/rt-host/repo/scripts/"
	cp -a "$repo/tests/runc-suite" "$stage/usr/local/lib/rt-host/repo/tests/"
	files=${HOST_RUNC_SUITE:-cgroups.bats}
	[ "$files" = all ] && files=
	for f in $files; do echo "tests/integration/$f"; done >"$stage/usr/local/lib/rt-host/runc-suite-files"
	echo "${HOST_RUNC_SUITE_RUNC:-0}" >"$stage/usr/local/lib/rt-host/runc-suite-runc"
fi
# containerd 2.3.4 and cri-tools 1.36 for the containerd23 checks (the
# project's bundle, ../shared/containerd-2.3, or CONTAINERD23_DIR; where it
# is missing the guest says so and skips them): the bundle and its
# unpacked copy (unpacked here, once, where make test-critest unpacks it),
# integration/critest/run.sh, which the guest runs to start a containerd
# 2.3.4 beside Debian's 1.6, and its stand-in program, built here.
# HOST_CRITEST=1 runs critest in the guest for the three handlers too
# (make test-host-critest).
ctd23=${CONTAINERD23_DIR:-$(cd "$repo/.." && pwd)/shared/containerd-2.3}
if [ -x "$ctd23/install.sh" ]; then
	mkdir -p "$stage/usr/local/lib/containerd-2.3-bundle" "$stage/usr/local/lib/rt-host/repo/integration/critest"
	cp "$ctd23/install.sh" "$ctd23"/*.tar.xz "$stage/usr/local/lib/containerd-2.3-bundle/"
	unpacked=$(bash "$ctd23/install.sh" "$target/containerd-2.3")
	cp -a "${unpacked%/bin}" "$stage/usr/local/lib/containerd-2.3"
	install -m 0755 "$repo/integration/critest/run.sh" "$stage/usr/local/lib/rt-host/repo/integration/critest/"
	"${CC:-cc}" -static -Os -o "$stage/usr/local/lib/rt-host/standin" "$repo/integration/critest/standin.c"
	echo "${HOST_CRITEST:-0}" >"$stage/usr/local/lib/rt-host/critest"
fi
# The guest's name resolves, as the Debian installer writes it (sudo warns
# on stderr where it does not, which fails critest's AppArmor specs that
# load their profiles through it).
rm -f "$stage/etc/hosts"
{ cat "$root/etc/hosts"; printf '127.0.1.1\t%s\n' "$(cat "$root/etc/hostname")"; } >"$stage/etc/hosts"
install -m 0644 "$here/rt-host-checks.service" "$stage/etc/systemd/system/rt-host-checks.service"
mkdir -p "$stage/etc/systemd/system/multi-user.target.wants"
ln -sf ../rt-host-checks.service "$stage/etc/systemd/system/multi-user.target.wants/rt-host-checks.service"
ln -sf /dev/null "$stage/etc/systemd/system/serial-getty@ttyS0.service"
ln -sf /dev/null "$stage/etc/systemd/system/getty@tty1.service"
# Docker: rt as its default runtime, everything else at its defaults (the
# systemd cgroup driver on cgroup v2, the docker-default AppArmor profile).
mkdir -p "$stage/etc/docker"
rm -f "$stage/etc/docker/daemon.json"
printf '{"default-runtime": "rt", "runtimes": {"rt": {"path": "/usr/local/bin/rt"}}}\n' > "$stage/etc/docker/daemon.json"
# containerd: Debian's config plus rt through the Go runc shim, with
# SystemdCgroup = true, for the CRI plugin.
rm -f "$stage/etc/containerd/config.toml"
# The pause image is busybox's `sleep inf`, imported by checks.sh.
{
	sed 's|^\(  \[plugins."io.containerd.grpc.v1.cri"\]\)$|\1\n    sandbox_image = "localhost/pause:3.9"|' \
		"$root/etc/containerd/config.toml"
	cat <<'TOML'

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
    SystemdCgroup = true
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.rt]
  runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.rt.options]
    BinaryName = "/usr/local/bin/rt"
    SystemdCgroup = true
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.rt-v2]
  runtime_type = "io.containerd.rt.v2"
TOML
} > "$stage/etc/containerd/config.toml"
grep -q 'sandbox_image = "localhost/pause:3.9"' "$stage/etc/containerd/config.toml" ||
	{ echo "test-host: could not set the CRI plugin's sandbox_image" >&2; exit 1; }

# The node's pod network for containerd's CRI plugin (Debian's config
# reads /etc/cni/net.d with the plugins in /usr/lib/cni): a bridge with
# host-local addresses, as a cluster's simplest CNI set-up writes it. The
# name sorts before Podman's own 87-podman-bridge.conflist.
mkdir -p "$stage/etc/cni/net.d"
cat >"$stage/etc/cni/net.d/10-containerd-net.conflist" <<'JSON'
{"cniVersion": "0.4.0", "name": "containerd-net", "plugins": [
  {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.22.0.0/16"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}
JSON

img=$work/disk.img
mke2fs -q -t ext4 -d "$stage" -L root "$img" 6G
rm -rf "$stage"

# A small initramfs: the virtio disk and ext4 modules, then /sbin/init.
ird=$work/initrd
mkdir -p "$ird"/{bin,proc,sys,dev,newroot,lib/modules}
cp "$(command -v busybox)" "$ird/bin/busybox"
order="virtio_pci_legacy_dev virtio_pci_modern_dev virtio_ring virtio virtio_pci virtio_blk crc32c_generic crc16 mbcache jbd2 ext4"
for m in $order; do
	f=$(find "$mods/kernel" -name "$m.ko" | head -1)
	[ -n "$f" ] || { echo "test-host: module $m not found in $mods" >&2; exit 1; }
	cp "$f" "$ird/lib/modules/"
done
cat > "$ird/init" <<INIT
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in $order; do insmod /lib/modules/\$m.ko 2>/dev/null; done
n=0; while [ ! -b /dev/vda ] && [ \$n -lt 100 ]; do sleep 0.1; n=\$((n+1)); done
mount -t ext4 -o rw /dev/vda /newroot || { echo "RT-HOST no root disk"; poweroff -f; }
mount --move /dev /newroot/dev; umount /proc /sys
exec switch_root /newroot /sbin/init
INIT
chmod +x "$ird/init"
(cd "$ird" && find . | cpio -o -H newc --quiet | gzip -1) > "$work/initrd.gz"

accel="-accel tcg -cpu qemu64"
log=$work/console.log
echo "test-host: booting Debian 12 ($kver) with systemd under qemu (log: $log)"
# cache=unsafe: the image is thrown away after the boot, so the guest's
# flushes (containerd's and Docker's fsyncs) need not reach the host's disk.
timeout "${HOST_TIMEOUT:-2400}" qemu-system-x86_64 $accel -m 2048 -smp 2 -nographic -no-reboot \
	-nodefaults -serial stdio -kernel "$kernel" -initrd "$work/initrd.gz" \
	-drive "file=$img,if=virtio,format=raw,cache=unsafe" \
	-append "console=ttyS0 root=/dev/vda rw panic=-1 quiet loglevel=3 systemd.show_status=0 systemd.unified_cgroup_hierarchy=1" \
	</dev/null >"$log" 2>&1 || true
# What the checks left in the guest's /var/log/rt-host (the runc suite's
# TAP logs), read from the image without mounting it.
rm -rf "$work/logs"
mkdir -p "$work/logs"
debugfs -R "rdump /var/log/rt-host $work/logs" "$img" >/dev/null 2>&1 || true
rm -f "$img"
lines=$(tr -d '\r' <"$log" | grep -E '^(PASS|FAIL|INFO|SKIP|  \|) ' || true)
echo "$lines"
passed=$(echo "$lines" | grep -c '^PASS ' || true)
failed=$(echo "$lines" | grep -c '^FAIL ' || true)
took=$(( $(date +%s) - start ))
if ! tr -d '\r' <"$log" | grep -q '^RT-HOST done'; then
	echo "test-host: the guest did not finish (see $log)" >&2
	tr -d '\r' <"$log" | tail -20 >&2
	echo "test-host: $passed passed, $failed failed, unfinished, in ${took}s"
	exit 1
fi
echo "test-host: $passed passed, $failed failed in ${took}s"
[ "$failed" = 0 ] && [ "$passed" -gt 0 ]
