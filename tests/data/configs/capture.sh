#!/bin/sh
# Captures the config.json that other tools hand a runtime, for the
# differential harness (tests/differential/). Run as root on a Debian 12
# host with runc, crun, containerd, docker.io, podman, umoci and skopeo
# installed:  sh tests/data/configs/capture.sh tests/data/configs
# Each manager runs `echo hi` in a busybox image with a wrapper runtime
# that copies the bundle's config.json out and execs runc. Host-specific
# paths are then placeholdered (see placeholder() below): the harness
# puts the bundle's rootfs back in and drops what names the capture's
# scratch directory.
set -eu
OUT=$(cd "${1:?usage: capture.sh OUTDIR}" && pwd)
S=$(mktemp -d /tmp/rt-capture.XXXXXX)
cleanup() {
	for p in "$S"/*.pid; do [ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null; done
	sleep 1
	grep " $S" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
	# The managers' parent cgroups, made under runc and left by it.
	for d in default docker libpod_parent; do
		for h in /sys/fs/cgroup/*/; do
			[ -d "$h$d" ] && find "$h$d" -depth -type d -exec rmdir {} \; 2>/dev/null
		done
	done
	rm -rf "$S" 2>/dev/null || true
	return 0
}
trap cleanup EXIT

# The wrapper: on `create`, copy the bundle's config.json to $S/cap/NAME.
mkdir -p "$S/cap"
cat > "$S/wrap" <<W
#!/bin/sh
b=""; prev=""
for a in "\$@"; do
	[ "\$prev" = "--bundle" ] || [ "\$prev" = "-b" ] && b="\$a"
	case "\$a" in --bundle=*) b="\${a#--bundle=}";; esac
	prev="\$a"
done
case " \$* " in *" create "*) [ -n "\$b" ] && cp "\$b/config.json" "$S/cap/\$(cat $S/who)";; esac
exec /usr/sbin/runc "\$@"
W
chmod +x "$S/wrap"

# A busybox rootfs, and the same as an OCI image and a docker-archive.
mkdir -p "$S/b/rootfs"
(cd "$S/b/rootfs" && mkdir -p bin etc tmp proc sys dev && cp /bin/busybox bin/ &&
	for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox bin/$a; done &&
	echo 'root:x:0:0:root:/root:/bin/sh' > etc/passwd && echo 'root:x:0:' > etc/group)
umoci init --layout "$S/img"; umoci new --image "$S/img:latest"
umoci unpack --image "$S/img:latest" "$S/work"
cp -a "$S/b/rootfs/." "$S/work/rootfs/"
umoci repack --image "$S/img:latest" "$S/work"
umoci config --image "$S/img:latest" --config.cmd /bin/sh --config.env PATH=/bin
tar -C "$S/img" -cf "$S/busybox-oci.tar" .
skopeo copy "oci:$S/img:latest" "docker-archive:$S/busybox-docker.tar:localhost/busybox:latest"

# The runtimes' own defaults.
(cd "$S/b" && runc spec && mv config.json "$OUT/runc-spec.json")
(cd "$S/b" && runc spec --rootless && mv config.json "$OUT/runc-spec-rootless.json")
(cd "$S/b" && crun spec && mv config.json "$OUT/crun-spec.json")

# containerd's ctr (the Go runc shim, --runc-binary).
cat > "$S/containerd.toml" <<C
version = 2
root = "$S/ctd/root"
state = "$S/ctd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$S/containerd.sock"
[plugins."io.containerd.monitor.v1.cgroups"]
  no_prometheus = true
C
setsid containerd --config "$S/containerd.toml" > "$S/containerd.log" 2>&1 &
echo $! > "$S/containerd.pid"
for i in $(seq 50); do [ -S "$S/containerd.sock" ] && break; sleep 0.2; done
CTR="ctr --address $S/containerd.sock"
$CTR image import --base-name localhost/busybox "$S/busybox-oci.tar"
echo ctr.json > "$S/who"
$CTR run --rm --runc-binary "$S/wrap" localhost/busybox:latest cap1 echo hi

# Docker over that containerd.
setsid dockerd --containerd "$S/containerd.sock" --data-root "$S/docker" \
	--exec-root "$S/docker-exec" -H "unix://$S/docker.sock" \
	--pidfile "$S/dockerd-own.pid" --bridge none --iptables=false \
	--ip6tables=false --ip-masq=false --add-runtime "cap=$S/wrap" > "$S/dockerd.log" 2>&1 &
echo $! > "$S/dockerd.pid"
for i in $(seq 100); do [ -S "$S/docker.sock" ] && break; sleep 0.2; done
D="/usr/bin/docker -H unix://$S/docker.sock"
$D load -i "$S/busybox-docker.tar"
echo docker.json > "$S/who"
$D run --rm --network none --runtime cap localhost/busybox:latest echo hi
kill "$(cat "$S/dockerd.pid")"; sleep 2

# Podman (conmon).
P="podman --root $S/p/root --runroot $S/p/run --tmpdir $S/p/tmp --cgroup-manager cgroupfs --events-backend file --storage-driver vfs"
$P load -i "$S/busybox-docker.tar"
echo podman.json > "$S/who"
$P --runtime "$S/wrap" run --rm --network none --ulimit nofile=1024:1024 \
	--ulimit nproc=1024:1024 localhost/busybox:latest echo hi

# Placeholders: the capture's scratch paths and generated ids.
for f in "$S"/cap/*; do
	sed -e "s#$S/[^\"]*rootfs#@ROOTFS@#g" -e "s#$S[^\"]*#@SCRATCH@#g" "$f" |
		python3 -m json.tool --indent 1 > "$OUT/$(basename "$f")"
done
echo "captured: $(ls "$S/cap")"
