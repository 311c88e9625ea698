#!/usr/bin/env bash
# Regenerates src/bin/rt/hot.order, the order in which the linker lays out
# rt's functions (bench/PROFILE.md, "Hot code first"). Builds rt as
# `make release` does, single-steps it (scripts/hot-trace.c) through three
# runs, and lists every function they executed, those of the first run
# first: `rt run` of /bin/true with `rt spec`'s config, a run with the
# security settings Docker passes (its seccomp profile, capabilities, device
# rules, masked paths), and `rt exec` into a running container.
#
# The names carry the crates' hashes, which change with the toolchain and
# Cargo.lock, not with rt's own code: rerun this (as root, about 8 minutes)
# after either changes. A stale list still links; it only lays out less.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "hot-order: run as root" >&2; exit 1; }
bash scripts/release.sh
rt=$PWD/target/dist/rt
work=$(mktemp -d /tmp/rt-hot-order.XXXXXX)
cleanup() {
	for id in $("$rt" --root "$work/state" list -q 2>/dev/null); do
		"$rt" --root "$work/state" delete -f "$id" >/dev/null 2>&1 || :
	done
	rm -rf "$work"
}
trap cleanup EXIT
gcc -O2 -Wall -o "$work/hot-trace" scripts/hot-trace.c

# bundle NAME ARGS_JSON [docker]: scripts/make-bundle.sh's busybox bundle,
# running ARGS, its root read-only; with docker, Docker's security settings.
bundle() {
	local b=$work/$1
	bash scripts/make-bundle.sh "$b" "$rt"
	python3 - "$b/config.json" "$2" "${3:-}" <<-'EOF'
		import json, sys
		path, args, docker = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
		c = json.load(open(path))
		c["process"]["terminal"] = False
		c["process"]["args"] = args
		c["root"]["readonly"] = True
		if docker:
		    d = json.load(open("tests/data/configs/docker.json"))
		    for k in ["seccomp", "maskedPaths", "readonlyPaths", "sysctl"]:
		        c["linux"][k] = d["linux"][k]
		    c["linux"]["resources"] = {"devices": d["linux"]["resources"]["devices"]}
		    c["process"]["capabilities"] = d["process"]["capabilities"]
		    c["process"]["oomScoreAdj"] = d["process"]["oomScoreAdj"]
		json.dump(c, open(path, "w"))
	EOF
	echo "$b"
}

trace() {
	"$work/hot-trace" "$rt" "$rt" --root "$work/state" "$@"
}
true_b=$(bundle true '["/bin/true"]')
docker_b=$(bundle docker '["/bin/true"]' docker)
sleep_b=$(bundle sleep '["sleep", "1000"]')
trace run --bundle "$true_b" hot-true > "$work/1.txt"
trace run --bundle "$docker_b" hot-docker > "$work/2.txt"
"$rt" --root "$work/state" run -d --bundle "$sleep_b" hot-sleep < /dev/null > /dev/null 2>&1
trace exec hot-sleep /bin/true > "$work/3.txt"

python3 - "$rt" src/bin/rt/hot.order "$work"/1.txt "$work"/2.txt "$work"/3.txt <<'EOF'
import bisect, subprocess, sys

binary, out, traces = sys.argv[1], sys.argv[2], sys.argv[3:]
loads = []
for line in subprocess.run(["readelf", "-lW", binary], capture_output=True, text=True, check=True).stdout.splitlines():
    f = line.split()
    if f and f[0] == "LOAD":
        loads.append((int(f[1], 16), int(f[2], 16), int(f[4], 16)))  # offset, vaddr, filesz
funcs = []
for line in subprocess.run(["nm", "-S", "--defined-only", binary], capture_output=True, text=True, check=True).stdout.splitlines():
    f = line.split()
    if len(f) == 4 and f[2] in "tTwW":
        funcs.append((int(f[0], 16), int(f[1], 16), f[3]))
funcs.sort()
starts = [f[0] for f in funcs]

def function_at(offset):
    for off, vaddr, size in loads:
        if off <= offset < off + size:
            a = vaddr + offset - off
            i = bisect.bisect_right(starts, a) - 1
            if i >= 0 and a < funcs[i][0] + funcs[i][1]:
                return i
    return None

order, placed = [], set()
for t in traces:
    hit = {function_at(int(line, 16)) for line in open(t)} - {None}
    for i in sorted(hit - placed):  # each run's new functions, in address order
        order.append(funcs[i][2])
    placed |= hit
with open(out, "w") as f:
    f.write("".join(name + "\n" for name in order))
size = sum(funcs[i][1] for i in placed)
print(f"hot-order: {len(order)} functions, {size} bytes of code, written to {out}")
EOF
