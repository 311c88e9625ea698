"""containerd on scratch paths, for the rows a manager's user sees: `ctr
run --rm` of /bin/true through each shim, and a shim's memory.

containerd's CRI plugin is disabled (ctr does not need it), and every
`ctr run` passes `--cpu-shares 0`: on this hybrid host the cpu
controller is on cgroup v1, which rt (cgroup v2 only) does not drive,
as integration/tests/containerd_v2.rs runs it."""

import os
import shutil
import subprocess
import tempfile
import time

# Name, and the `ctr run` flags that pick the shim and runtime; rt_binary
# is filled in by Containerd.variants.
VARIANTS = [
    ("runc-v2 shim + runc", []),
    ("runc-v2 shim + rt", ["--runc-binary", "RT"]),
    ("containerd-shim-rt-v2", ["--runtime", "io.containerd.rt.v2"]),
]


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
                              capture_output=True, text=True)

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
                                  check=True, capture_output=True, text=True).stdout.split()
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
        self.daemon.wait()
        with open("/proc/self/mountinfo") as f:
            points = [l.split()[4] for l in f if l.split()[4].startswith(self.d)]
        for m in sorted(points, key=len, reverse=True):
            subprocess.run(["umount", "-l", m], capture_output=True)
        shutil.rmtree(self.d, ignore_errors=True)
