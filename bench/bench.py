#!/usr/bin/env python3
"""rt against runc and crun, side by side, in one run.

Every runtime is run through the same wrapper, a private mount namespace:
    unshare -m sh -c 'PREP; exec RUNTIME "$@"' sh ARGS...
crun 1.8 refuses hybrid cgroup hosts, so for crun PREP unmounts
/sys/fs/cgroup/unified inside that namespace; for rt and runc PREP is ':'.
The wrapper costs a few milliseconds and is paid by all alike.

Repetitions are interleaved (rt runc crun, rt runc crun, ...) so drift on
this shared machine hits every runtime alike. Single operations are
repeated REPS times after WARMUP runs; the batch figures (100 in sequence,
50 in parallel) BATCH_REPS times. Medians, min and max are reported, and
the ratios rt/crun and rt/runc of the medians.

With containerd and ctr installed, the same container also runs through
containerd with each shim (bench/managers.py), a pod starts through its
CRI plugin on each RuntimeClass handler (integration/examples/cri-bench.rs),
and the shims' memory is read for one container and for a pod of POD.

Writes bench/results.md (Markdown tables and the machine), bench/runs.dat
and, if gnuplot is installed, bench/results.png and bench/managers.png.
"""

import argparse
import concurrent.futures
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import managers
import terminal

HERE = os.path.dirname(os.path.abspath(__file__))
# Containers in the pod whose shims' memory is measured.
POD = 4
ROOT = os.path.dirname(HERE)


def run(*args, **kw):
    """subprocess.run that cannot hang the bench (CI runs it)."""
    kw.setdefault("timeout", managers.CALL_TIMEOUT)
    return subprocess.run(*args, **kw)


def sh(*args, **kw):
    return run(args, check=True, **kw)


class Runtime:
    def __init__(self, name, binary, prep=":"):
        self.name = name
        self.binary = binary
        self.prep = prep
        self.root = tempfile.mkdtemp(prefix=f"bench-{name}-root.")

    def argv(self, *args):
        return [
            "unshare", "-m", "sh", "-c",
            f'{self.prep}; exec {self.binary} --root {self.root} "$@"', "sh", *args,
        ]

    def peak_rss(self, *args):
        """Peak RSS (KiB) of one command, as GNU time reports it: its child
        starts from time's small image, not from this Python process."""
        with tempfile.NamedTemporaryFile("r") as out:
            run(["/usr/bin/time", "-f", "%M", "-o", out.name, *self.argv(*args)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, check=True)
            return int(out.read().split()[-1])

    def call(self, *args, check=True):
        """Runs one command; returns (seconds, ru_maxrss in KiB)."""
        # stderr to a file, not a pipe: a detached container inherits it
        # and would hold a pipe open for as long as it runs.
        with tempfile.TemporaryFile() as err:
            t0 = time.perf_counter()
            p = subprocess.Popen(self.argv(*args), stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=err)
            # A runtime that hangs is killed (and the bench fails) rather
            # than hanging the bench.
            watchdog = threading.Timer(managers.CALL_TIMEOUT, p.kill)
            watchdog.start()
            _, status, usage = os.wait4(p.pid, 0)
            dt = time.perf_counter() - t0
            watchdog.cancel()
            p.returncode = os.waitstatus_to_exitcode(status)
            if check and p.returncode != 0:
                err.seek(0)
                msg = err.read().decode(errors="replace").strip()
                raise RuntimeError(f"{self.name} {' '.join(args)}: exit {p.returncode}: {msg}")
        return dt, usage.ru_maxrss

    def cleanup(self):
        out = run(self.argv("list", "-q"), capture_output=True, text=True)
        for cid in out.stdout.split():
            run(self.argv("delete", "-f", cid), capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)


class Floor:
    """What the kernel needs for `run /bin/true`: bench/floor.c makes the
    same namespaces, the root's mounts and an exec, with nothing else; it
    runs through the same wrapper as the runtimes."""

    name = "floor"

    def __init__(self, bundle):
        self.rootfs = os.path.join(bundle, "rootfs")
        self.binary = os.path.join(tempfile.mkdtemp(prefix="bench-floor."), "floor")
        sh("gcc", "-O2", "-o", self.binary, os.path.join(HERE, "floor.c"))

    def call(self):
        t0 = time.perf_counter()
        run(["unshare", "-m", "sh", "-c", f'exec {self.binary} "$@"', "sh", self.rootfs],
            check=True, stdin=subprocess.DEVNULL)
        return time.perf_counter() - t0


def make_bundle(rt_binary, args, readonly=True, terminal=False):
    d = tempfile.mkdtemp(prefix="bench-bundle.")
    rootfs = os.path.join(d, "rootfs")
    for sub in ["bin", "etc", "tmp", "proc", "sys", "dev", "root"]:
        os.makedirs(os.path.join(rootfs, sub))
    shutil.copy("/bin/busybox", os.path.join(rootfs, "bin/busybox"))
    for applet in ["sh", "true", "sleep"]:
        os.symlink("busybox", os.path.join(rootfs, "bin", applet))
    sh(rt_binary, "spec", "-b", d)
    cfg_path = os.path.join(d, "config.json")
    with open(cfg_path) as f:
        cfg = json.load(f)
    # crun 1.8 knows runtime-spec versions up to 1.1.
    cfg["ociVersion"] = "1.0.2"
    cfg["process"]["terminal"] = terminal
    cfg["process"]["args"] = args
    cfg["root"]["readonly"] = readonly
    with open(cfg_path, "w") as f:
        json.dump(cfg, f)
    return d


MASKED = 200


def make_masked_bundle(rt_binary):
    """A bundle whose config masks MASKED directories (a node with many CPUs
    masks ~100 per-CPU directories per container): what one tmpfs per
    directory costs against one shared one."""
    d = make_bundle(rt_binary, ["/bin/true"])
    dirs = [f"/m/{i}" for i in range(MASKED)]
    for m in dirs:
        os.makedirs(os.path.join(d, "rootfs", m.lstrip("/")))
    cfg_path = os.path.join(d, "config.json")
    with open(cfg_path) as f:
        cfg = json.load(f)
    cfg["linux"]["maskedPaths"] = cfg["linux"].get("maskedPaths", []) + dirs
    with open(cfg_path, "w") as f:
        json.dump(cfg, f)
    return d


def wait_stopped(rt, cid, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        out = run(rt.argv("state", cid), capture_output=True, text=True)
        if out.returncode == 0 and json.loads(out.stdout)["status"] == "stopped":
            return
        time.sleep(0.002)
    raise RuntimeError(f"{rt.name}: {cid} did not stop")


class Bench:
    def __init__(self, runtimes, true_bundle, sleep_bundle):
        self.rts = runtimes
        self.true_b = true_bundle
        self.sleep_b = sleep_bundle
        self.samples = {}  # figure -> runtime -> [values]
        self.managed = {}  # `ctr run --rm` through a shim -> [ms]
        self.cri = {}  # a CRI pod start through a shim -> [ms]
        self.masked_create = {}  # runtime -> [ms] of a create masking MASKED dirs
        self.n = 0

    def add(self, figure, rt, value):
        self.samples.setdefault(figure, {}).setdefault(rt.name, []).append(value)

    def cid(self, rt, what):
        self.n += 1
        return f"b{what}{self.n}"

    def floor(self, floor, record):
        dt = floor.call()
        if record:
            self.samples.setdefault("run /bin/true (ms)", {}).setdefault("floor", []).append(dt * 1000)

    def single(self, rt, record):
        # run of /bin/true, end to end
        cid = self.cid(rt, "run")
        dt, _ = rt.call("run", "--bundle", self.true_b, cid)
        rss = rt.peak_rss("run", "--bundle", self.true_b, self.cid(rt, "rss"))
        if record:
            self.add("run /bin/true (ms)", rt, dt * 1000)
            self.add("peak RSS of `run` (MiB)", rt, rss / 1024)
        # create, start, delete separately
        cid = self.cid(rt, "life")
        dc, _ = rt.call("create", "--bundle", self.true_b, cid)
        ds, _ = rt.call("start", cid)
        wait_stopped(rt, cid)
        dd, _ = rt.call("delete", cid)
        if record:
            self.add("create (ms)", rt, dc * 1000)
            self.add("start (ms)", rt, ds * 1000)
            self.add("delete (ms)", rt, dd * 1000)

    def masked(self, rt, bundle, record):
        cid = self.cid(rt, "mask")
        dc, _ = rt.call("create", "--bundle", bundle, cid)
        rt.call("delete", "-f", cid)
        if record:
            self.masked_create.setdefault(rt.name, []).append(dc * 1000)

    def exec_(self, rt, cid, record):
        dt, _ = rt.call("exec", cid, "/bin/true")
        dtt = terminal.exec_tty(rt, cid)
        if record:
            self.add("exec /bin/true (ms)", rt, dt * 1000)
            self.add("exec -t, to first byte (ms)", rt, dtt * 1000)

    def attach(self, rt, cid, record):
        dt = terminal.attach(rt, cid)
        if record:
            self.add("attach, to first byte (ms)", rt, dt * 1000)

    def managers(self, cd, rootfs, record):
        for name, flags in cd.variants()[self.n % 3:] + cd.variants()[:self.n % 3]:
            dt = cd.run_rm(flags, rootfs)
            if record:
                self.managed.setdefault(name, []).append(dt * 1000)

    def sequence(self, rt, count):
        t0 = time.perf_counter()
        for _ in range(count):
            cid = self.cid(rt, "seq")
            rt.call("create", "--bundle", self.true_b, cid)
            rt.call("start", cid)
            wait_stopped(rt, cid)
            rt.call("delete", cid)
        self.add(f"{count} create+start+delete in sequence (s)", rt, time.perf_counter() - t0)

    def parallel(self, rt, count):
        ids = [self.cid(rt, "par") for _ in range(count)]
        t0 = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(lambda c: rt.call("create", "--bundle", self.sleep_b, c), ids))
        rt.call("list")
        for c in ids:
            rt.call("delete", "-f", c)
        self.add(f"{count} created 2 at a time, listed, deleted (s)", rt, time.perf_counter() - t0)


def shim_rss(rt_binary):
    """RSS and PSS (KiB) of an rt-shim watching a sleeping container."""
    shim = os.path.join(os.path.dirname(rt_binary), "rt-shim")
    if not os.path.exists(shim):
        return None
    root = tempfile.mkdtemp(prefix="bench-shim-root.")
    b = make_bundle(rt_binary, ["sleep", "1000"])
    try:
        return shim_smaps(rt_binary, root, b)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError, ValueError) as e:
        print(f"bench: rt-shim not measured: {e}", file=sys.stderr)
        return None
    finally:
        run([rt_binary, "--root", root, "delete", "-f", "shimrss"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(b, ignore_errors=True)


def shim_smaps(rt_binary, root, b):
    """smaps_rollup's Rss and Pss of the shim of a container run in `root`."""
    # No pipe for the shim to inherit: stdio is /dev/null.
    sh(rt_binary, "--root", root, "run", "-d", "--bundle", b, "shimrss",
       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    st = json.loads(run([rt_binary, "--root", root, "state", "shimrss"],
                        capture_output=True, text=True, check=True).stdout)
    with open(f"/proc/{st['pid']}/stat") as f:
        ppid = int(f.read().rsplit(") ", 1)[1].split()[1])
    return managers.smaps(ppid)


def conmon_rss(rt_binary):
    """RSS and PSS (KiB) of the conmon Podman starts for a runc container
    of the same busybox root filesystem, or None without podman."""
    if not shutil.which("podman"):
        return None
    d = tempfile.mkdtemp(prefix="bench-podman.")
    b = make_bundle(rt_binary, ["sleep", "1000"])
    p = ["podman", "--root", f"{d}/storage", "--runroot", f"{d}/run",
         "--cgroup-manager", "cgroupfs", "--events-backend", "none"]
    q = dict(capture_output=True, text=True)
    try:
        tar = subprocess.Popen(["tar", "-C", f"{b}/rootfs", "-c", "."], stdout=subprocess.PIPE)
        run([*p, "import", "-q", "-", "localhost/benchbox"], stdin=tar.stdout, check=True, **q)
        tar.wait()
        # Podman's defaults ask for limits this host does not give
        # (pids on cgroup v1, nofile above the hard limit).
        # Output to a file, not a pipe: conmon outlives the call and would
        # hold a pipe open for as long as the container runs.
        with tempfile.TemporaryFile() as err:
            started = run([*p, "run", "-d", "--runtime", "runc", "--network", "none",
                           "--pids-limit", "0", "--ulimit", "nofile=1024:1024",
                           "--ulimit", "nproc=1024:1024",
                           "--name", "shimrss", "localhost/benchbox", "/bin/sleep", "1000"],
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
            if started.returncode != 0:
                err.seek(0)
                raise ValueError(f"podman run -d: exit {started.returncode}: "
                                 f"{err.read().decode(errors='replace').strip()}")
        pid = int(run([*p, "inspect", "--format", "{{.State.ConmonPid}}", "shimrss"],
                      check=True, **q).stdout.strip())
        return managers.smaps(pid)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError, ValueError) as e:
        detail = getattr(e, "stderr", "") or ""
        print(f"bench: conmon not measured: {e} {detail.strip()}", file=sys.stderr)
        return None
    finally:
        run([*p, "rm", "-f", "-t", "0", "shimrss"], **q)
        run([*p, "system", "reset", "-f"], **q)
        run(["umount", "-R", f"{d}/storage"], **q)
        shutil.rmtree(d, ignore_errors=True)
        shutil.rmtree(b, ignore_errors=True)


def machine():
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    versions = []
    for name, cmd in [("runc", ["runc", "--version"]), ("crun", ["crun", "--version"])]:
        out = run(cmd, capture_output=True, text=True).stdout.splitlines()
        versions.append(out[0] if out else f"{name}: unknown")
    return (f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB, Linux {platform.release()}, "
            f"cgroups hybrid (v2 with hugetlb only); {'; '.join(versions)}")


def rt_build(rt_binary):
    """How the measured rt was linked, and how much of its function order
    (src/bin/rt/hot.order, scripts/release.sh) its symbols still match: a
    stale order is what a peak RSS regression would come from."""
    hdr = run(["readelf", "-hlW", rt_binary], capture_output=True, text=True).stdout
    kind = "position-independent" if "DYN (" in hdr else "not position-independent"
    linked = "dynamically linked" if "INTERP" in hdr else "statically linked"
    desc = f"`{os.path.relpath(rt_binary, ROOT)}`, {linked}, {kind}"
    order = os.path.join(ROOT, "src/bin/rt/hot.order")
    nm = run(["nm", "--defined-only", rt_binary], capture_output=True, text=True)
    if os.path.exists(order) and nm.returncode == 0:
        have = {line.split()[-1] for line in nm.stdout.splitlines() if line.strip()}
        want = [n.strip() for n in open(order) if n.strip()]
        desc += f"; {sum(n in have for n in want)} of the {len(want)} functions of hot.order are in it"
    return desc


def fmt(vals):
    return f"{statistics.median(vals):.2f} ({min(vals):.2f}–{max(vals):.2f})"


def manager_table(figure, samples):
    """A column per shim, in VARIANTS' order whatever order the runs took:
    median (min–max) and the ratio to the first (runc-v2 with runc)."""
    per = {n: samples[n] for n, _ in managers.VARIANTS if n in samples}
    base = statistics.median(next(iter(per.values())))
    return ["| " + figure + " | " + " | ".join(per) + " |",
            "| --- | " + " | ".join("---" for _ in per) + " |",
            "| median (min–max) | " + " | ".join(fmt(v) for v in per.values()) + " |",
            "| ratio | " + " | ".join(f"{statistics.median(v) / base:.2f}" for v in per.values()) + " |"]


def report(bench, args, shim, conmon, cshim, pod, out_dir):
    names = [rt.name for rt in bench.rts] + ["floor"]
    lines = [
        "# rt against runc and crun",
        "",
        f"Machine: {machine()}.",
        "",
        f"rt: {rt_build(bench.rts[0].binary)}.",
        "",
        "Every runtime runs through the same wrapper, "
        "`unshare -m sh -c 'PREP; exec RUNTIME \"$@\"'` (crun's PREP unmounts "
        "/sys/fs/cgroup/unified, which crun 1.8 refuses), so each figure includes "
        "a few ms of wrapper. Same busybox bundle (read-only root, `rt spec`'s "
        f"namespaces). Median (min–max) of {args.reps} interleaved repetitions after "
        f"{args.warmup} warm-up runs; batch figures of {args.batch_reps}. "
        "floor: `bench/floor.c`, the same namespaces (unshare), the root's bind, "
        "proc, tmpfs and sysfs mounts and a chroot exec of /bin/true, nothing else: "
        "what the kernel needs. "
        "Peak RSS is GNU time's %M for the wrapper process, which execs the runtime "
        "(so the figure is the largest of unshare, sh and the runtime). "
        "To first byte: from the command's start on a pty of its own (raw) to the first "
        "byte on it; `exec -t` of `busybox echo x` in a running container, `attach` "
        "(rt's only) to a terminal container's shell with a return typed at once, "
        "then Ctrl-P Ctrl-Q.",
        "",
        "| figure | " + " | ".join(names) + " | rt/crun | rt/runc |",
        "| --- | " + " | ".join("---" for _ in names) + " | --- | --- |",
    ]
    for figure, per in bench.samples.items():
        cells = [fmt(per[n]) if n in per else "n/a" for n in names]
        med = {n: statistics.median(per[n]) for n in per}
        ratio = lambda other: f"{med['rt'] / med[other]:.2f}" if other in med and med[other] else "n/a"
        lines.append(f"| {figure} | " + " | ".join(cells) + f" | {ratio('crun')} | {ratio('runc')} |")
    lines.append("")
    if bench.masked_create:
        lines += ["", f"`create` of a container whose config masks {MASKED} directories (and "
                  "`rt spec`'s masked paths), then `delete -f`, interleaved with the rows above; "
                  "ratios against each runtime.", ""]
        per = bench.masked_create
        rt_med = statistics.median(per["rt"])
        lines += [f"| create, {MASKED} masked directories (ms) | " + " | ".join(per) + " |",
                  "| --- | " + " | ".join("---" for _ in per) + " |",
                  "| median (min–max) | " + " | ".join(fmt(v) for v in per.values()) + " |",
                  "| rt / this | " + " | ".join(f"{rt_med / statistics.median(v):.2f}"
                                                 for v in per.values()) + " |"]
    if bench.managed:
        lines += ["", "Through containerd (its own, on scratch paths, CRI plugin off): `ctr run --rm "
                  "--cpu-shares 0 --rootfs BUNDLE/rootfs ID /bin/true`, the same busybox root, "
                  "interleaved with the rows above; ratios against the runc-v2 shim with runc.", ""]
        lines += manager_table("ctr run --rm /bin/true (ms)", bench.managed)
    if bench.cri:
        lines += ["", "Through containerd's CRI plugin (its own containerd, as kubelet drives it; "
                  "`integration/examples/cri-bench.rs`): RunPodSandbox, CreateContainer and "
                  "StartContainer of a busybox `echo started` in a hostNetwork pod, to that line "
                  "in the container's CRI log; RuntimeClass handlers `runc`, `rt` (the runc-v2 "
                  "shim with rt as BinaryName) and `rt-v2` taking turns, "
                  f"{args.reps} starts each after {args.warmup} warm-up; ratios against runc.", ""]
        lines += manager_table("CRI pod start (ms)", bench.cri)
    lines += ["",
              "| shim watching one container (MiB, from /proc/<pid>/smaps_rollup) | RSS | PSS |",
              "| --- | --- | --- |"]
    rows = [("rt-shim", shim), ("conmon (Podman, runc)", conmon)] + list(cshim.items())
    for name, v in rows:
        if v:
            lines.append(f"| {name} | {v['Rss'] / 1024:.2f} | {v['Pss'] / 1024:.2f} |")
        else:
            lines.append(f"| {name} | n/a (not installed or not built) | |")

    if pod:
        lines += ["",
                  f"| a pod of {POD} sleeping containers, one `io.kubernetes.cri.sandbox-id` "
                  "(MiB, smaps_rollup of every shim process, summed) | shim processes | PSS per container | RSS, all |",
                  "| --- | --- | --- | --- |"]
        for name, v in pod.items():
            if v:
                lines.append(f"| {name} | {v['shims']} | {v['Pss'] / 1024 / POD:.2f} | {v['Rss'] / 1024:.2f} |")
            else:
                lines.append(f"| {name} | n/a | | |")
    lines.append("")
    with open(os.path.join(out_dir, "results.md"), "w") as f:
        f.write("\n".join(lines))
    with open(os.path.join(out_dir, "runs.dat"), "w") as f:
        for figure, per in bench.samples.items():
            for n, vals in per.items():
                for v in vals:
                    f.write(f'"{figure}" {n} {v:.4f}\n')
    print("\n".join(lines))


def plot(bench, out_dir):
    if not shutil.which("gnuplot"):
        print("bench: gnuplot not installed (apt-get install gnuplot-nox): no plot", file=sys.stderr)
        return
    figures = {f: bench.samples[f] for f in bench.samples if f.endswith("(ms)")}
    scatter(figures, [rt.name for rt in bench.rts],
            "Each run, interleaved; same wrapper for every runtime",
            os.path.join(out_dir, "results.png"))
    if bench.managed:
        names = [n for n, _ in managers.VARIANTS if n in bench.managed]
        figures = {"ctr run --rm /bin/true": bench.managed}
        if bench.cri:
            figures["CRI pod start"] = bench.cri
        scatter(figures, names,
                "Through containerd: each ctr run --rm and CRI pod start, interleaved",
                os.path.join(out_dir, "managers.png"))


def scatter(figures, names, title, path):
    """One column of points per figure and name, a colour per name."""
    data = path + ".dat"
    with open(data, "w") as f:
        # One block per name, so each gets its colour and key entry.
        for j, n in enumerate(names):
            for i, per in enumerate(figures.values()):
                for v in per.get(n, []):
                    f.write(f"{i * (len(names) + 1) + j} {v:.4f}\n")
            f.write("\n\n")
    tics = ", ".join(f'"{fig.replace(" (ms)", "")}" {i * (len(names) + 1) + 1}'
                     for i, fig in enumerate(figures))
    # Names may hold spaces, which gnuplot's word() splits on: an array.
    script = f"""
set terminal pngcairo size 1300,500
set output '{path}'
set title '{title}'
set ylabel 'ms'
set yrange [0:*]
set offsets 0.5, 0.5, 0, 0
set xtics ({tics})
set key top right
array t[{len(names)}] = [{", ".join(f'"{n}"' for n in names)}]
plot for [j=0:{len(names) - 1}] '{data}' index j using 1:2 with points pt 7 ps 0.6 title t[j+1]
"""
    run(["gnuplot"], input=script, text=True, check=False)
    os.unlink(data)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rt", default=os.path.join(ROOT, "target/dist/rt"))
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--batch-reps", type=int, default=3)
    ap.add_argument("--sequence", type=int, default=100)
    ap.add_argument("--parallel", type=int, default=50)
    ap.add_argument("--out", default=HERE)
    args = ap.parse_args()
    if os.environ.get("BENCH_QUICK"):
        # Proves the bench works (CI runs this); the numbers mean little.
        args.reps, args.warmup, args.batch_reps = 3, 1, 1
        args.sequence, args.parallel = 10, 6
        if args.out == HERE:
            args.out = tempfile.mkdtemp(prefix="bench-quick.")
    if os.geteuid() != 0:
        sys.exit("bench: run as root")
    rt_binary = os.path.abspath(args.rt)
    runtimes = [Runtime("rt", rt_binary)]
    for name in ["runc", "crun"]:
        path = shutil.which(name)
        if path:
            prep = "umount /sys/fs/cgroup/unified 2>/dev/null || :" if name == "crun" else ":"
            runtimes.append(Runtime(name, path, prep))
        else:
            print(f"bench: {name} not installed: left out", file=sys.stderr)
    true_b = make_bundle(rt_binary, ["/bin/true"])
    sleep_b = make_bundle(rt_binary, ["sleep", "1000"])
    tty_b = make_bundle(rt_binary, ["sh"], terminal=True)
    masked_b = make_masked_bundle(rt_binary)
    # runc 1.3.5 (../shared/runc-suite, outside the repository; left out
    # when absent) beside Debian's 1.1.5 for the masked-directory row.
    runc135 = os.path.join(os.path.dirname(ROOT), "shared", "runc-suite", "runc")
    masked_rts = list(runtimes)
    if os.access(runc135, os.X_OK):
        masked_rts.append(Runtime("runc-1.3.5", runc135))
    else:
        print(f"bench: {runc135} missing: runc 1.3.5 left out of the masked row", file=sys.stderr)
    bench = Bench(runtimes, true_b, sleep_b)
    floor = Floor(true_b)
    cd = None
    try:
        if shutil.which("containerd") and shutil.which("ctr"):
            cd = managers.Containerd(rt_binary)
        else:
            print("bench: containerd or ctr not installed: no rows through containerd", file=sys.stderr)
        execs = {}
        for rt in runtimes:
            cid = bench.cid(rt, "exec")
            rt.call("run", "-d", "--bundle", sleep_b, cid)
            execs[rt.name] = cid
        # Only rt has `attach` (a shim holding the pty).
        rt = runtimes[0]
        tty_cid = bench.cid(rt, "tty")
        rt.call("run", "-d", "--bundle", tty_b, tty_cid)
        for i in range(args.warmup + args.reps):
            record = i >= args.warmup
            order = runtimes[i % len(runtimes):] + runtimes[:i % len(runtimes)]
            for rt in order:
                bench.single(rt, record)
                bench.exec_(rt, execs[rt.name], record)
            for rt in masked_rts[i % len(masked_rts):] + masked_rts[:i % len(masked_rts)]:
                bench.masked(rt, masked_b, record)
            bench.attach(runtimes[0], tty_cid, record)
            bench.floor(floor, record)
            if cd:
                bench.managers(cd, f"{true_b}/rootfs", record)
            print(f"bench: single operations {i + 1}/{args.warmup + args.reps}", file=sys.stderr)
        if cd:
            try:
                bench.cri = managers.cri_pod_starts(rt_binary, args.warmup, args.reps)
                print("bench: CRI pod starts", file=sys.stderr)
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError, ValueError,
                    KeyError) as e:
                print(f"bench: CRI pod starts not measured: {e} {getattr(e, 'stderr', '')}",
                      file=sys.stderr)
        for i in range(args.batch_reps):
            for rt in runtimes[i % len(runtimes):] + runtimes[:i % len(runtimes)]:
                bench.sequence(rt, args.sequence)
                bench.parallel(rt, args.parallel)
            print(f"bench: batches {i + 1}/{args.batch_reps}", file=sys.stderr)
        shim = shim_rss(rt_binary)
        print("bench: rt-shim's memory", file=sys.stderr)
        conmon = conmon_rss(rt_binary)
        print("bench: conmon's memory", file=sys.stderr)
        cshim, pod = {}, {}
        if cd:
            for name, flags, shim_bin in [
                    ("containerd-shim-runc-v2 (runc)", [], "containerd-shim-runc-v2"),
                    ("containerd-shim-rt-v2", ["--runtime", "io.containerd.rt.v2"],
                     "containerd-shim-rt-v2")]:
                try:
                    cshim[name] = cd.shim_rss(flags, f"{sleep_b}/rootfs", shim_bin)
                    pod[name] = cd.shim_rss(flags, f"{sleep_b}/rootfs", shim_bin, count=POD)
                except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError, ValueError,
                        IndexError) as e:
                    print(f"bench: {name} not measured: {e} {getattr(e, 'stderr', '')}", file=sys.stderr)
                    cshim[name] = pod[name] = None
                print(f"bench: {name}'s memory", file=sys.stderr)
        report(bench, args, shim, conmon, cshim, pod, args.out)
        plot(bench, args.out)
    finally:
        for rt in masked_rts:
            rt.cleanup()
        if cd:
            cd.stop()
        for b in (true_b, sleep_b, tty_b, masked_b, os.path.dirname(floor.binary)):
            shutil.rmtree(b, ignore_errors=True)


if __name__ == "__main__":
    main()
