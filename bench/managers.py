"""containerd on scratch paths, for the rows a manager's user sees: `ctr
run --rm` of /bin/true through each shim, and a shim's memory.

containerd's CRI plugin is disabled (ctr does not need it), and every
`ctr run` passes `--cpu-shares 0`: on this hybrid host the cpu
controller is on cgroup v1, which rt (cgroup v2 only) does not drive,
as integration/tests/containerd_v2.rs runs it."""

import json
import os
import shutil
import subprocess
import tempfile
import time

# No call of the bench may hang it (CI runs it): seconds for one call.
CALL_TIMEOUT = 120

# Name, and the `ctr run` flags that pick the shim and runtime; rt_binary
# is filled in by Containerd.variants. CRI_HANDLERS: the RuntimeClass
# handler of examples/cri-bench.rs for each.
VARIANTS = [
    ("runc-v2 shim + runc", []),
    ("runc-v2 shim + rt", ["--runc-binary", "RT"]),
    ("containerd-shim-rt-v2", ["--runtime", "io.containerd.rt.v2"]),
]
CRI_HANDLERS = {"runc": VARIANTS[0][0], "rt": VARIANTS[1][0], "rt-v2": VARIANTS[2][0]}


def smaps(pid):
    vals = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("Rss", "Pss"):
                vals[k] = int(v.split()[0])
    return vals


class Containerd:
    """A containerd of its own; stop() ends it and unmounts what it left."""

    def __init__(self, rt_binary):
        self.rt_binary = rt_binary
        self.d = tempfile.mkdtemp(prefix="bench-containerd.")
        self.sock = f"{self.d}/c.sock"
        with open(f"{self.d}/config.toml", "w") as f:
            f.write('version = 2\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n')
        # containerd finds containerd-shim-rt-v2 on its PATH.
        env = dict(os.environ, PATH=f"{os.path.dirname(rt_binary)}:{os.environ.get('PATH', '')}")
        self.daemon = subprocess.Popen(
            ["containerd", "--config", f"{self.d}/config.toml", "--root", f"{self.d}/root",
             "--state", f"{self.d}/state", "--address", self.sock],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, env=env)
        deadline = time.time() + 20
        while not os.path.exists(self.sock):
            if time.time() > deadline or self.daemon.poll() is not None:
                self.stop()
                raise RuntimeError("containerd did not start")
            time.sleep(0.05)
        self.n = 0

    def ctr(self, *args, check=True):
        return subprocess.run(["ctr", "-a", self.sock, *args], check=check,
                              capture_output=True, text=True, timeout=CALL_TIMEOUT)

    def variants(self):
        return [(name, [self.rt_binary if a == "RT" else a for a in flags])
                for name, flags in VARIANTS]

    def run_rm(self, flags, rootfs):
        """Seconds for one `ctr run --rm` of /bin/true."""
        self.n += 1
        t0 = time.perf_counter()
        self.ctr("run", "--rm", "--cpu-shares", "0", *flags, "--rootfs", rootfs,
                 f"brm{self.n}", "/bin/true")
        return time.perf_counter() - t0

    def shim_rss(self, flags, rootfs, shim_name, count=1):
        """RSS and PSS (KiB) of the shims of `count` sleeping containers of
        one pod, summed, and how many shims they are. The pod is the
        annotation containerd's CRI plugin gives a pod's containers, which
        containerd-shim-runc-v2 groups its containers by."""
        ids = [f"shimrss{i}" for i in range(count)]
        try:
            for cid in ids:
                self.ctr("run", "-d", "--cpu-shares", "0", *flags,
                         "--annotation", "io.kubernetes.cri.sandbox-id=benchpod",
                         "--rootfs", rootfs, cid, "/bin/sleep", "1000")
            pids = subprocess.run(["pgrep", "-f", f"{shim_name} .*-address {self.sock}"],
                                  check=True, capture_output=True, text=True,
                                  timeout=CALL_TIMEOUT).stdout.split()
            total = {"Rss": 0, "Pss": 0, "shims": len(pids)}
            for pid in pids:
                for k, v in smaps(pid).items():
                    total[k] += v
            return total
        finally:
            for cid in ids:
                self.ctr("task", "kill", "-s", "KILL", cid, check=False)
            for cid in ids:
                deadline = time.time() + 5
                while time.time() < deadline:
                    out = self.ctr("task", "delete", cid, check=False)
                    if out.returncode == 0 or "not found" in out.stderr:
                        break
                    time.sleep(0.05)
                self.ctr("container", "rm", cid, check=False)

    def stop(self):
        self.daemon.terminate()
        try:
            self.daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.daemon.kill()
            self.daemon.wait()
        with open("/proc/self/mountinfo") as f:
            points = [l.split()[4] for l in f if l.split()[4].startswith(self.d)]
        for m in sorted(points, key=len, reverse=True):
            subprocess.run(["umount", "-l", m], capture_output=True, timeout=CALL_TIMEOUT)
        shutil.rmtree(self.d, ignore_errors=True)


def cri_pod_starts(rt_binary, warmup, reps):
    """Milliseconds per CRI pod start on each handler, by VARIANTS' names:
    integration/examples/cri-bench.rs, with a containerd and CRI plugin of
    its own. The client is a debug build (what `cargo test` builds), the
    same for every handler."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    subprocess.run(["cargo", "build", "-q", "-p", "rt-integration", "--example", "cri-bench"],
                   cwd=root, check=True, timeout=1800)
    out = subprocess.run([os.path.join(root, "target/debug/examples/cri-bench"), rt_binary,
                          str(warmup), str(reps)],
                         cwd=root, check=True, capture_output=True, text=True,
                         timeout=CALL_TIMEOUT + 60 * (warmup + reps))
    times = json.loads(out.stdout)
    return {CRI_HANDLERS[h]: [t * 1000 for t in times[h]] for h in CRI_HANDLERS if h in times}
