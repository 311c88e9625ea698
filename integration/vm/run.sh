#!/bin/bash
# `make test-vm`: the cgroup tests on a full cgroup v2 host. Boots Debian's
# kernel under qemu (software emulation; no KVM needed) on an initramfs
# holding busybox, rt and integration/vm/tests.sh, which runs rt with real
# limits and prints PASS/FAIL lines on the serial console; this script
# turns them into an exit code. VM_WORK keeps the downloaded kernel
# (default /var/tmp/rt-vm); VM_TIMEOUT bounds the whole boot (default 600 s).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
work=${VM_WORK:-/var/tmp/rt-vm}
mkdir -p "$work"
for p in qemu-system-x86_64 cpio python3; do
	command -v $p >/dev/null || { echo "test-vm: $p is missing (bash scripts/deps.sh --vm)" >&2; exit 1; }
done

# Debian's current kernel, once.
kernel=$(ls "$work"/k/boot/vmlinuz-* 2>/dev/null | head -1 || true)
if [ -z "$kernel" ]; then
	pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/ {print $2; exit}')
	[ -n "$pkg" ] || { echo "test-vm: no linux-image package found (apt-get update?)" >&2; exit 1; }
	(cd "$work" && rm -f linux-image-*.deb && apt-get download -q "$pkg" && dpkg-deb -x linux-image-*.deb k)
	kernel=$(ls "$work"/k/boot/vmlinuz-* | head -1)
fi

(cd "$repo" && cargo build -q -p rt)
rt="$repo/target/debug/rt"

ird=$(mktemp -d /var/tmp/rt-vm-initrd.XXXXXX)
trap 'rm -rf "$ird"' EXIT
mkdir -p "$ird"/{bin,proc,sys,dev,tmp,run,newroot,bundles}
cp /bin/busybox "$ird/bin/"
cp "$rt" "$ird/bin/rt"
# rt's shared libraries, at the paths the loader expects.
for lib in $(ldd "$rt" | grep -o '/[^ ]*'); do
	mkdir -p "$ird$(dirname "$lib")"
	cp -L "$lib" "$ird$lib"
done
cp "$here/tests.sh" "$ird/tests.sh"
# The RAM disk driver: a block device for the io controller's tests.
mkdir -p "$ird/lib/modules"
cp "$(dirname "$kernel")"/../lib/modules/*/kernel/drivers/block/brd.ko "$ird/lib/modules/"
python3 "$here/bundles.py" "$rt" "$ird/bundles"

cat > "$ird/init" <<'INIT'
#!/bin/busybox sh
# pivot_root cannot move away from the initramfs itself: copy everything
# onto a tmpfs and switch to it first.
/bin/busybox mount -t tmpfs -o size=768m tmpfs /newroot
for d in bin lib lib64 usr bundles tests.sh; do
	[ -e /$d ] && /bin/busybox cp -a /$d /newroot/
done
/bin/busybox mkdir -p /newroot/proc /newroot/sys /newroot/dev /newroot/tmp /newroot/run
exec /bin/busybox switch_root /newroot /bin/busybox sh /tests.sh
INIT
chmod +x "$ird/init"
(cd "$ird" && find . | cpio -o -H newc --quiet | gzip -1) > "$work/initrd.gz"

log="$work/console.log"
echo "test-vm: booting $(basename "$kernel") under qemu (log: $log)"
timeout "${VM_TIMEOUT:-600}" qemu-system-x86_64 -accel tcg -cpu max -m 1024 -smp 2 \
	-nographic -no-reboot -kernel "$kernel" -initrd "$work/initrd.gz" \
	-append "console=ttyS0 quiet panic=-1 loglevel=3" </dev/null >"$log" 2>&1 || true
tr -d '\r' <"$log" | grep -E '^(PASS|FAIL|SKIP|RT-VM) ' || true
passed=$(tr -d '\r' <"$log" | grep -c '^PASS ' || true)
failed=$(tr -d '\r' <"$log" | grep -c '^FAIL ' || true)
if ! tr -d '\r' <"$log" | grep -q '^RT-VM done'; then
	echo "test-vm: the VM did not finish (see $log)" >&2
	tail -20 "$log" >&2
	exit 1
fi
echo "test-vm: $passed passed, $failed failed"
[ "$failed" = 0 ] && [ "$passed" -gt 0 ]
