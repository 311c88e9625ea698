#!/usr/bin/env bash
# `make test-critest`: Kubernetes' CRI validation suite (critest, cri-tools
# 1.36) against containerd 2.3.4's CRI with three RuntimeClass handlers,
# side by side:
#
#   runc   containerd-shim-runc-v2 with the host's runc (the baseline)
#   rt     containerd-shim-runc-v2 with BinaryName = this checkout's rt
#   rt-v2  runtime_type io.containerd.rt.v2 (containerd-shim-rt-v2)
#
# (runc-cgroupfs and rt-cgroupfs, the first two with SystemdCgroup = false,
# are there for CRITEST_THEN's checks under the other cgroup driver.)
#
# Everything runs offline on scratch paths: a containerd of its own (config
# version 3, its own root, state, sockets and CNI bridge), busybox-based
# stand-ins for the images critest pulls, served by a local docker-registry
# that containerd's hosts.toml mirrors every registry to (critest pulls
# them by their real names). A spec that runc passes and rt or rt-v2
# fails fails the script. Prints a table of passed/failed/skipped per
# handler, and the specs that differ. Cleans up what it made, even when
# interrupted: pods, daemons (by pid), shims, mounts, the bridge, cgroups.
#
# Settings (environment):
#   CONTAINERD23_DIR   containerd 2.3.4 + cri-tools (default ../shared/containerd-2.3;
#                      absent: says so and exits 0)
#   CRITEST_INSTALL    where it is unpacked (default $CARGO_TARGET_DIR/containerd-2.3)
#   RT_BIN_DIR         rt and containerd-shim-rt-v2 (default $CARGO_TARGET_DIR/debug)
#   RUNC               the baseline runc (default: runc on PATH)
#   CRITEST_WORK       scratch directory (default: a new one under /tmp, removed after)
#   CRITEST_REGISTRY_PORT  the local registry's port on 127.0.0.1 (default 5079)
#   CRITEST_SYSTEMD_CGROUP true|false (default: true when systemd is pid 1)
#   CRITEST_BRIDGE, CRITEST_SUBNET  the pod network's bridge (crit0) and subnet (10.231.0.0/16)
#   CRITEST_HANDLERS   which handlers, in order (default "runc rt rt-v2"; empty:
#                      no critest, no comparison)
#   CRITEST_IMAGES     all (default: every image critest pulls) or pod (only the
#                      sandbox's pause, the busybox names, critest's default
#                      image among them, and nginx: enough for a core of its specs)
#   CRITEST_THEN       a bash command run once containerd is up (after critest,
#                      if any), before the clean-up; its status fails the script.
#                      It finds containerd through CRITEST_SOCK (the socket),
#                      CRITEST_BIN (containerd 2.3.4's ctr, crictl), CRI_CONFIG_FILE
#                      (crictl's settings), CRITEST_WORK (containerd.log is there;
#                      $CRITEST_WORK/restart-containerd restarts containerd).
#                      make test-host's containerd 2.3 checks run so in its VM
#   CRITEST_FOCUS      a ginkgo focus regexp (default: every spec)
#   CRITEST_PARALLEL   critest's -parallel (default 1)
#   CRITEST_RT_CONFIG  rt's settings file given to the rt handlers (RT_CONFIG);
#                      default: on a hybrid host (no cpu controller on cgroup v2),
#                      one with "cgroupV1Limits": "skip", without which no pod
#                      starts on rt there (README, "Kubernetes")
#   CC                 compiles integration/critest/standin.c (static; default cc)
#   CRITEST_STANDIN    that program already built (static), where no compiler is
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
shared=${CONTAINERD23_DIR:-$repo/../shared/containerd-2.3}
if [ ! -x "$shared/install.sh" ]; then
	echo "test-critest: skipped, no containerd 2.3 at $shared (CONTAINERD23_DIR)"
	exit 0
fi
[ "$(id -u)" = 0 ] || { echo "test-critest: needs root" >&2; exit 1; }
target=${CARGO_TARGET_DIR:-$repo/target}
bins=${RT_BIN_DIR:-$target/debug}
runc=${RUNC:-$(command -v runc || true)}
port=${CRITEST_REGISTRY_PORT:-5079}
bridge=${CRITEST_BRIDGE:-crit0}
subnet=${CRITEST_SUBNET:-10.231.0.0/16}
handlers=${CRITEST_HANDLERS-runc rt rt-v2}
images=${CRITEST_IMAGES:-all}
case $images in all | pod) ;; *) echo "test-critest: CRITEST_IMAGES is all or pod, not '$images'" >&2; exit 1 ;; esac
if [ -z "${CRITEST_SYSTEMD_CGROUP:-}" ]; then
	if [ -d /run/systemd/system ]; then CRITEST_SYSTEMD_CGROUP=true; else CRITEST_SYSTEMD_CGROUP=false; fi
fi
cc_needed=${CC:-cc}
[ -z "${CRITEST_STANDIN:-}" ] || cc_needed=
for p in docker-registry umoci skopeo iptables ip $cc_needed; do
	command -v "$p" >/dev/null || { echo "test-critest: $p is missing (bash scripts/deps.sh --critest)" >&2; exit 1; }
done
[ -x "$bins/rt" ] && [ -x "$bins/containerd-shim-rt-v2" ] ||
	{ echo "test-critest: no rt and containerd-shim-rt-v2 in $bins (cargo build, or RT_BIN_DIR)" >&2; exit 1; }
[ -n "$runc" ] || { echo "test-critest: no runc for the baseline handler (RUNC)" >&2; exit 1; }
[ -e /usr/lib/cni/bridge ] || [ -e /opt/cni/bin/bridge ] ||
	{ echo "test-critest: no CNI plugins (containernetworking-plugins)" >&2; exit 1; }
cni_bins=/usr/lib/cni
[ -e $cni_bins/bridge ] || cni_bins=/opt/cni/bin
if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
	echo "test-critest: port $port is in use (CRITEST_REGISTRY_PORT)" >&2
	exit 1
fi
if ip link show "$bridge" >/dev/null 2>&1; then
	echo "test-critest: a link named $bridge exists already (CRITEST_BRIDGE)" >&2
	exit 1
fi

ctd=$(bash "$shared/install.sh" "${CRITEST_INSTALL:-$target/containerd-2.3}")
own_work=0
if [ -z "${CRITEST_WORK:-}" ]; then
	CRITEST_WORK=$(mktemp -d /tmp/critest.XXXXXX)
	own_work=1
fi
w=$CRITEST_WORK
mkdir -p "$w"
# Searchable by all, as containerd's own state directory is: the init of a
# user-namespaced pod (its root another uid on the host) binds its root
# filesystem below it.
chmod 711 "$w"
sock=$w/containerd.sock
ns=k8s.io
# What exists before the run, which the clean-up leaves.
{ find /sys/fs/cgroup -maxdepth 2 -name "$ns" -type d 2>/dev/null; ls -d "/run/containerd/rt/$ns" 2>/dev/null; } >"$w/before" || true
# With the systemd driver critest puts its pods in test.slice.
slice_before=inactive
if [ "$CRITEST_SYSTEMD_CGROUP" = true ]; then
	slice_before=$(systemctl is-active test.slice 2>/dev/null || true)
fi
printf 'runtime-endpoint: unix://%s\nimage-endpoint: unix://%s\n' "$sock" "$sock" >"$w/crictl.yaml"
crictl=("$ctd/crictl" --config "$w/crictl.yaml" --runtime-endpoint "unix://$sock" --image-endpoint "unix://$sock" --timeout 60s)
pids=()
critest_pid=
then_pid=

# --- clean-up, on every exit ---------------------------------------------
# iptables chains that exist before the run are left alone; the portmap and
# bridge plugins' chains made during it go.
chains_before=$(iptables -t nat -S 2>/dev/null | awk '$1 == "-N" {print $2}' | sort)
cleanup() {
	local rc=$?
	set +e
	trap - EXIT INT TERM
	for pid in ${critest_pid:-} ${then_pid:-}; do
		kill -TERM "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	if [ -S "$sock" ]; then
		"${crictl[@]}" rm -af >/dev/null 2>&1
		"${crictl[@]}" rmp -af >/dev/null 2>&1
	fi
	# A containerd restarted by restart-containerd is not our child.
	if [ -f "$w/containerd.pid" ] && ! printf '%s\n' "${pids[@]}" | grep -qxF "$(cat "$w/containerd.pid")"; then
		pids+=("$(cat "$w/containerd.pid")")
	fi
	for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
	for pid in "${pids[@]}"; do
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	# Shims (and what they still run) started for this containerd: found by
	# its socket on their command line, killed by pid.
	for p in /proc/[0-9]*; do
		if tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -qF -- "$sock"; then
			kill -KILL "${p#/proc/}" 2>/dev/null
		fi
	done
	sleep 0.5
	# Mounts under the scratch dir and the netns files, deepest first.
	awk -v w="$w" 'index($5, w) == 1 {print $5}' /proc/self/mountinfo | sort -r |
		while read -r m; do umount -l "$m" 2>/dev/null; done
	ip link del "$bridge" 2>/dev/null
	iptables -t nat -S 2>/dev/null | awk '$1 == "-N" {print $2}' | sort |
		comm -13 <(echo "$chains_before") - | while read -r c; do
			iptables -t nat -S | awk -v c="$c" '$1 == "-A" && $0 ~ ("-j " c "( |$)") {sub("^-A", "-D"); print}' |
				while read -r rule; do eval "iptables -t nat $rule"; done
			iptables -t nat -F "$c"; iptables -t nat -X "$c"
		done
	# The pods' parent cgroup (/k8s.io, or a slice) in each hierarchy, and
	# rt-v2's state directory of the namespace, where this run made them
	# (empty once the pods are gone).
	# What a failed run left in them (processes, the containers' own
	# cgroups) goes first: killed by pid, removed deepest first.
	for d in $(find /sys/fs/cgroup -maxdepth 2 -name "$ns" -type d 2>/dev/null); do
		grep -qxF "$d" "$w/before" 2>/dev/null && continue
		find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null | while read -r p; do
			kill -KILL "$p" 2>/dev/null
		done
		sleep 0.2
		find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
	done
	grep -qxF "/run/containerd/rt/$ns" "$w/before" 2>/dev/null || rmdir "/run/containerd/rt/$ns" 2>/dev/null
	if [ "$CRITEST_SYSTEMD_CGROUP" = true ] && [ "$slice_before" != active ]; then
		systemctl stop test.slice 2>/dev/null
	fi
	if [ "$own_work" = 1 ] && [ "$rc" = 0 ]; then
		rm -rf "$w"
	elif [ "$rc" != 0 ]; then
		echo "test-critest: logs kept in $w" >&2
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_for() { # seconds, description, command...
	local t=$1 what=$2
	shift 2
	for _ in $(seq $((t * 5))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
	echo "test-critest: $what did not come up" >&2
	return 1
}

# --- the stand-in images --------------------------------------------------
echo "test-critest: building the stand-in images"
if [ -n "${CRITEST_STANDIN:-}" ]; then
	cp "$CRITEST_STANDIN" "$w/standin"
else
	"${CC:-cc}" -static -Os -o "$w/standin" "$here/standin.c"
fi
chmod 755 "$w/standin"
img=$w/img
umoci init --layout "$img"
umoci new --image "$img:base"
umoci unpack --image "$img:base" "$w/u" >/dev/null
r=$w/u/rootfs
mkdir -p "$r"/{bin,etc,tmp,proc,sys,dev,root,var/run,usr/sbin,usr/local/bin,usr/share/nginx/html,usr/local/apache2/htdocs}
chmod 1777 "$r/tmp"
cp "$(command -v busybox)" "$r/bin/busybox"
# Hard links, as in the busybox images (a masked /bin/ls must not mask the
# shell).
for a in $("$r/bin/busybox" --list); do [ "$a" = busybox ] || ln "$r/bin/busybox" "$r/bin/$a"; done
cp "$w/standin" "$r/bin/pgrep"
ln "$r/bin/pgrep" "$r/bin/ipcs"
cat >"$r/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
www-data:x:33:33:www-data:/var/www:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$r/etc/group" <<'EOF'
root:x:0:
www-data:x:33:
users:x:100:
nogroup:x:65534:
EOF
umoci repack --image "$img:base" "$w/u" >/dev/null
umoci config --image "$img:base" --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	--config.cmd sh

# A variant of base: TAG, a shell snippet run in its root filesystem, then
# umoci config flags.
variant() {
	local tag=$1 change=$2
	shift 2
	rm -rf "$w/v"
	umoci unpack --image "$img:base" "$w/v" >/dev/null
	(cd "$w/v/rootfs" && eval "$change")
	umoci repack --image "$img:$tag" "$w/v" >/dev/null
	[ $# = 0 ] || umoci config --image "$img:$tag" "$@"
}
# The sandbox's pause image, and the nginx the pid namespace specs look for.
variant pause 'cp "$w/standin" pause' --config.cmd /pause
variant nginx 'cp "$w/standin" usr/sbin/nginx' \
	--config.entrypoint /usr/sbin/nginx --config.cmd -g --config.cmd "daemon off;" --config.exposedports 80/tcp
if [ "$images" = all ]; then
	# The pause image critest pulls by two names, and the rest it pulls.
	variant pause-3.9 'cp "$w/standin" pause; echo 3.9 > .version' --config.cmd /pause
	variant hostnet-nginx 'cp "$w/standin" usr/sbin/nginx' --config.entrypoint /usr/sbin/nginx \
		--config.cmd -p --config.cmd 12003 --config.exposedports 12003/tcp
	variant httpd 'echo "<html>It works!</html>" > usr/local/apache2/htdocs/index.html
		printf "#!/bin/sh\necho \"httpd: serving /usr/local/apache2/htdocs on port 80\" >&2\nexec httpd -f -p 80 -h /usr/local/apache2/htdocs\n" > usr/local/bin/httpd-foreground
		chmod 755 usr/local/bin/httpd-foreground' --config.cmd httpd-foreground --config.exposedports 80/tcp
	variant nonewprivs 'cp "$w/standin" usr/local/bin/nnp; chmod 4755 usr/local/bin/nnp' \
		--config.user 1000 --config.cmd /usr/local/bin/nnp
	variant predefined-group 'echo "default-user:x:1000:1000::/home/default-user:/bin/sh" >> etc/passwd
		echo "default-user:x:1000:" >> etc/group; echo "group-defined-in-image:x:50000:default-user" >> etc/group' \
		--config.user 1000
	# cri-tools' test images: busybox with a file named after each (so each
	# is an image of its own), as their Dockerfile makes them.
	for n in 1 2 3 latest tag tags; do variant "test-$n" "echo $n > test-image-$n"; done
	umoci config --image "$img:base" --tag user-uid --config.user 1002
	umoci config --image "$img:base" --tag user-username --config.user www-data
	umoci config --image "$img:base" --tag user-uid-group --config.user 1003:users
	umoci config --image "$img:base" --tag user-username-group --config.user www-data:users
fi

# The registry, and every name critest pulls (cri-tools 1.36's
# pkg/validate and pkg/framework), each from its stand-in.
cat >"$w/registry.yml" <<EOF
version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: $w/registry}
  delete: {enabled: true}
http:
  addr: 127.0.0.1:$port
EOF
setsid docker-registry serve "$w/registry.yml" >"$w/registry.log" 2>&1 &
pids+=($!)
wait_for 30 "docker-registry on 127.0.0.1:$port" bash -c "exec 3<>/dev/tcp/127.0.0.1/$port"
push() { # layout tag, name:tag as pulled
	local repo=${2#*/}
	skopeo copy -q --dest-tls-verify=false "oci:$img:$1" "docker://127.0.0.1:$port/$repo"
}
e2e=registry.k8s.io/e2e-test-images
tools=gcr.io/k8s-staging-cri-tools
push pause registry.k8s.io/pause:3.10.2
for b in "$e2e/busybox:1.29-2" docker.io/library/busybox:latest docker.io/library/busybox:1 \
	docker.io/library/busybox:1.36.1 public.ecr.aws/docker/library/busybox:1 \
	public.ecr.aws/docker/library/busybox:1-glibc public.ecr.aws/docker/library/busybox:1-musl \
	public.ecr.aws/docker/library/busybox:1-uclibc public.ecr.aws/docker/library/busybox:1.35.0-glibc \
	docker.io/library/busybox:1-glibc docker.io/library/busybox:1-musl docker.io/library/busybox:1-uclibc \
	docker.io/library/busybox:1.35.0-glibc; do push base "$b"; done
push nginx "$e2e/nginx:1.14-2"
if [ "$images" = all ]; then
	for p in registry.k8s.io/pause:3.9 k8s.gcr.io/pause:3.9; do push pause-3.9 "$p"; done
	push test-latest "$tools/test-image-latest:latest"
	for t in test all; do push test-tag "$tools/test-image-tag:$t"; done
	for t in 1 2 3; do push test-tags "$tools/test-image-tags:$t"; done
	push hostnet-nginx "$tools/hostnet-nginx-amd64:latest"
	push httpd "$e2e/httpd:2.4.39-4"
	push nonewprivs "$e2e/nonewprivs:1.3"
	push predefined-group "$tools/test-image-predefined-group:latest"
	for n in 1 2 3; do push "test-$n" "$tools/test-image-$n:latest"; done
	for u in user-uid user-username user-uid-group user-username-group; do push "$u" "$tools/test-image-$u:latest"; done
fi

# containerd's mirrors: every registry critest names, to the local one.
for h in registry.k8s.io gcr.io k8s.gcr.io docker.io registry-1.docker.io public.ecr.aws quay.io; do
	mkdir -p "$w/certs.d/$h"
	printf 'server = "https://%s"\n\n[host."http://127.0.0.1:%s"]\n  capabilities = ["pull", "resolve"]\n' \
		"$h" "$port" >"$w/certs.d/$h/hosts.toml"
done

# --- the pod network --------------------------------------------------------
mkdir -p "$w/cni/conf" "$w/cni/ipam"
cat >"$w/cni/conf/10-critest.conflist" <<EOF
{"cniVersion": "0.4.0", "name": "critest-$bridge", "plugins": [
  {"type": "bridge", "bridge": "$bridge", "isGateway": true, "ipMasq": true,
   "ipam": {"type": "host-local", "dataDir": "$w/cni/ipam",
            "ranges": [[{"subnet": "$subnet"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}
EOF

# --- containerd 2.3.4 -------------------------------------------------------
rt_config=${CRITEST_RT_CONFIG:-}
v2=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/self/mounts)
if [ -z "$rt_config" ] && ! grep -qw cpu "$v2/cgroup.controllers" 2>/dev/null; then
	rt_config=$w/rt-config.json
	echo '{"cgroupV1Limits": "skip"}' >"$rt_config"
fi
# Without CAP_SYS_RESOURCE in the bounding set, the sandbox's oomScoreAdj
# -998 cannot be written (by any runtime): cap it at containerd's own.
restrict_oom=false
capbnd=$(awk '/^CapBnd:/ {print $2}' /proc/self/status)
[ $(((16#$capbnd >> 24) & 1)) = 1 ] || restrict_oom=true
runtimes="[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes"
runc_shim_handler() { # NAME BINARY ROOT SYSTEMD_CGROUP: a handler on containerd's runc shim
	printf "%s.%s]\n  runtime_type = 'io.containerd.runc.v2'\n%s.%s.options]\n" "$runtimes" "$1" "$runtimes" "$1"
	printf "  BinaryName = '%s'\n  Root = '%s'\n  SystemdCgroup = %s\n" "$2" "$3" "$4"
}
{
	cat <<EOF
version = 3
root = '$w/root'
state = '$w/state'
[grpc]
  address = '$sock'
[ttrpc]
  address = '$sock.ttrpc'
[debug]
  level = 'debug'
[plugins.'io.containerd.shim.v1.manager']
  socket_dir = '$w/s'
[plugins.'io.containerd.internal.v1.opt']
  path = '$w/opt'
[plugins.'io.containerd.nri.v1.nri']
  socket_path = '$w/nri.sock'
  plugin_path = '$w/nri/plugins'
  plugin_config_path = '$w/nri/conf.d'
[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = '127.0.0.1'
  stream_server_port = '0'
[plugins.'io.containerd.cri.v1.images']
  snapshotter = 'overlayfs'
[plugins.'io.containerd.cri.v1.images'.pinned_images]
  sandbox = 'registry.k8s.io/pause:3.10.2'
[plugins.'io.containerd.cri.v1.images'.registry]
  config_path = '$w/certs.d'
[plugins.'io.containerd.cri.v1.runtime']
  restrict_oom_score_adj = $restrict_oom
  netns_mounts_under_state_dir = true
[plugins.'io.containerd.cri.v1.runtime'.cni]
  bin_dirs = ['$cni_bins']
  conf_dir = '$w/cni/conf'
$runtimes.rt-v2]
  runtime_type = 'io.containerd.rt.v2'
EOF
	runc_shim_handler runc "$runc" "$w/runc-root" "$CRITEST_SYSTEMD_CGROUP"
	runc_shim_handler rt "$bins/rt" "$w/rt-root" "$CRITEST_SYSTEMD_CGROUP"
	runc_shim_handler runc-cgroupfs "$runc" "$w/runc-root" false
	runc_shim_handler rt-cgroupfs "$bins/rt" "$w/rt-root" false
} >"$w/config.toml"
# rt and containerd-shim-rt-v2 first on containerd's PATH (the rt-v2
# handler's shim is found there), then containerd 2.3.4's own shim.
env_rt=()
[ -z "$rt_config" ] || env_rt=(RT_CONFIG="$rt_config")
echo "test-critest: containerd 2.3.4 on $sock${rt_config:+ (rt settings: $rt_config)}"
env PATH="$bins:$ctd:$PATH" "${env_rt[@]}" setsid "$ctd/containerd" --config "$w/config.toml" \
	>"$w/containerd.log" 2>&1 &
pids+=($!)
echo $! >"$w/containerd.pid"
# $w/restart-containerd, for CRITEST_THEN: stops containerd as systemd
# does (SIGTERM, its shims left running) and starts it again the same way,
# then waits until its CRI answers. The clean-up stops the new one too
# (by the pid it writes).
{
	printf '#!/bin/bash\nset -eu\n'
	printf 'pid=$(cat %q)\n' "$w/containerd.pid"
	printf 'kill -TERM "$pid"\n'
	# Gone, or a zombie this script's parent has not reaped yet.
	printf 'for _ in $(seq 300); do s=$(cut -d" " -f3 /proc/$pid/stat 2>/dev/null) || break; [ "$s" != Z ] || break; sleep 0.1; done\n'
	printf 'if [ -n "${s:-}" ] && [ "$s" != Z ]; then echo "restart-containerd: containerd $pid did not stop" >&2; exit 1; fi\n'
	printf 'env PATH=%q' "$bins:$ctd:$PATH"
	[ -z "$rt_config" ] || printf ' RT_CONFIG=%q' "$rt_config"
	printf ' setsid %q --config %q >>%q 2>&1 </dev/null &\n' "$ctd/containerd" "$w/config.toml" "$w/containerd.log"
	printf 'echo $! >%q\n' "$w/containerd.pid"
	printf 'for _ in $(seq 300); do %q --config %q --timeout 5s info >/dev/null 2>&1 && exit 0; sleep 0.2; done\n' "$ctd/crictl" "$w/crictl.yaml"
	printf 'echo "restart-containerd: containerd did not come back" >&2; exit 1\n'
} >"$w/restart-containerd"
chmod 755 "$w/restart-containerd"
wait_for 60 "containerd" "${crictl[@]}" info
"${crictl[@]}" pull registry.k8s.io/pause:3.10.2 >/dev/null

# --- critest, per handler ---------------------------------------------------
# Specs that need what no offline node has, each with its reason:
skips=(
	# The image's digest is that of the real image on gcr.io: no stand-in has it.
	'test-image-digest|digest'
)
skip_args=()
for s in "${skips[@]}"; do skip_args+=(--ginkgo.skip "$s"); done
focus_args=()
parallel=()
[ "${CRITEST_PARALLEL:-1}" = 1 ] || parallel=(--parallel "$CRITEST_PARALLEL")
[ -z "${CRITEST_FOCUS:-}" ] || focus_args=(--ginkgo.focus "$CRITEST_FOCUS")
for h in $handlers; do
	echo "test-critest: critest --runtime-handler $h"
	start=$(date +%s)
	"$ctd/critest" --config "$w/crictl.yaml" --runtime-endpoint "unix://$sock" \
		--image-endpoint "unix://$sock" --runtime-handler "$h" "${parallel[@]}" \
		--ginkgo.no-color --ginkgo.junit-report "$w/$h.xml" \
		"${skip_args[@]}" "${focus_args[@]}" >"$w/critest-$h.log" 2>&1 &
	# In the background, so that a signal to this script is handled now,
	# not once critest is done.
	critest_pid=$!
	wait "$critest_pid" || true
	critest_pid=
	echo "$(($(date +%s) - start))" >"$w/$h.seconds"
	[ -f "$w/$h.xml" ] || { echo "test-critest: critest wrote no report for $h (see $w/critest-$h.log)" >&2; exit 1; }
	# One line per spec: status<TAB>name.
	grep -o '<testcase [^>]*>' "$w/$h.xml" |
		sed -n 's/.* name="\([^"]*\)".*status="\([^"]*\)".*/\2\t\1/p' |
		grep -v $'\t\\[\\(BeforeSuite\\|AfterSuite\\|SynchronizedBeforeSuite\\|SynchronizedAfterSuite\\|ReportAfterSuite\\)\\]' |
		sort -t $'\t' -k2 >"$w/$h.results"
	# Each handler's figures as it ends (a run is long under emulation).
	echo "test-critest: $h: $(grep -c '^passed' "$w/$h.results") passed," \
		"$(grep -c '^failed' "$w/$h.results") failed, $(grep -c '^skipped' "$w/$h.results") skipped" \
		"in $(cat "$w/$h.seconds") s"
done

# --- what else runs against this containerd --------------------------------
then_status=0
if [ -n "${CRITEST_THEN:-}" ]; then
	echo "test-critest: running CRITEST_THEN"
	CRITEST_SOCK=$sock CRITEST_BIN=$ctd CRI_CONFIG_FILE=$w/crictl.yaml CRITEST_WORK=$w \
		bash -c "$CRITEST_THEN" &
	then_pid=$!
	wait "$then_pid" || then_status=$?
	then_pid=
	[ "$then_status" = 0 ] || echo "test-critest: CRITEST_THEN exited with $then_status" >&2
fi
[ -n "$handlers" ] || exit "$then_status"

# --- the comparison ---------------------------------------------------------
count() { awk -F'\t' -v s="$2" '$1 == s' "$w/$1.results" | wc -l; }
printf '\n%-8s %7s %7s %8s %6s %8s\n' handler passed failed skipped total seconds
for h in $handlers; do
	printf '%-8s %7s %7s %8s %6s %8s\n' "$h" "$(count "$h" passed)" "$(count "$h" failed)" \
		"$(count "$h" skipped)" "$(wc -l <"$w/$h.results")" "$(cat "$w/$h.seconds")"
done
status() { awk -F'\t' -v n="$2" '$2 == n {print $1}' "$w/$1.results"; }
# What cannot pass on rt where cgroup v2 lacks the memory controller (a
# hybrid host; the runc handler applies cgroup v1's there): handler
# (regexp), spec (regexp), reason.
host_expected=()
# containerd's runc shim under the systemd driver: the scope's cgroup,
# and its count of kills, goes with the container's last process, which
# under emulation can come before that shim has read it; containerd's own
# CI skips this spec under the systemd driver (its PRs 12714 and 12819).
# The rt-cgroupfs handler (the same shim with the cgroupfs driver) is
# checked by make test-host's containerd23_oom_killed_reason_* checks.
if [ "$CRITEST_SYSTEMD_CGROUP" = true ]; then
	host_expected+=(
		'rt' 'Container OOM runtime should output OOMKilled reason'
		"containerd's runc shim under the systemd driver may read the kill count after systemd removed the scope (containerd's own CI skips the spec there)"
	)
fi
if ! grep -qw memory "$v2/cgroup.controllers" 2>/dev/null; then
	host_expected+=(
		'rt|rt-v2' 'Container OOM runtime should output OOMKilled reason'
		'the memory limit is in cgroup v1 here, which rt skips ("cgroupV1Limits": "skip"): no OOM kill'
		'rt-v2' 'runtime should support listing container stats \[Conformance\]'
		'containerd-shim-rt-v2 reports the memory of a container cgroup v2 accounts, none here, so CRI has no memory stats'
	)
fi
expected_here() { # handler, spec name: prints the reason when expected
	local i
	for ((i = 0; i < ${#host_expected[@]}; i += 3)); do
		if [[ $1 =~ ^(${host_expected[i]})$ ]] && [[ $2 =~ ${host_expected[i + 1]} ]]; then
			echo "${host_expected[i + 2]}"
			return 0
		fi
	done
	return 1
}
regressions=0
if [[ " $handlers " == *" runc "* ]]; then
	while IFS=$'\t' read -r s name; do
		[ "$s" = passed ] || continue
		for h in $handlers; do
			[ "$h" = runc ] && continue
			hs=$(status "$h" "$name")
			[ "$hs" = passed ] && continue
			if why=$(expected_here "$h" "$name"); then
				echo "expected on this host, $h: ${hs:-missing}: $name ($why)"
			else
				echo "REGRESSION $h: ${hs:-missing}: $name"
				regressions=$((regressions + 1))
			fi
		done
	done <"$w/runc.results"
fi
for h in $handlers; do
	awk -F'\t' -v h="$h" '$1 == "failed" {print "failed on " h ": " $2}' "$w/$h.results"
done
# What rt-v2 said it skipped (the settings' warnings, which its shim logs
# to containerd; the rt handler's are in each bundle's log.json, gone with
# it): how many containers, per field.
grep -o 'linux\.resources\.[^ :]*: skipped' "$w/containerd.log" 2>/dev/null |
	sort | uniq -c | sed 's/^ */rt-v2 warned: /' || true
if [ "$regressions" -gt 0 ]; then
	echo "test-critest: $regressions spec(s) pass with runc and fail with rt (logs: $w)" >&2
	exit 1
fi
echo "test-critest: no spec that passes with runc fails with rt or rt-v2"
exit "$then_status"
