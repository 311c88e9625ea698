#!/usr/bin/env python3
"""Writes the VM tests' bundles: `rt spec` with each test's program and
linux.resources, all sharing one busybox root filesystem."""
import json
import os
import subprocess
import sys
import tempfile

rt, out = sys.argv[1], sys.argv[2]
rootfs = os.path.join(out, "rootfs")
os.makedirs(os.path.join(rootfs, "bin"), exist_ok=True)
for d in ["proc", "sys", "dev", "tmp", "etc", "root"]:
    os.makedirs(os.path.join(rootfs, d), exist_ok=True)
subprocess.run(["cp", "/bin/busybox", os.path.join(rootfs, "bin/busybox")], check=True)
applets = subprocess.run(["/bin/busybox", "--list"], check=True, capture_output=True, text=True).stdout.split()
for a in applets:
    if a != "busybox":
        os.symlink("busybox", os.path.join(rootfs, "bin", a))
with open(os.path.join(rootfs, "etc/passwd"), "w") as f:
    f.write("root:x:0:0:root:/root:/bin/sh\n")

with tempfile.TemporaryDirectory() as t:
    subprocess.run([rt, "spec"], cwd=t, check=True)
    base = json.load(open(os.path.join(t, "config.json")))

BUSY = ["sh", "-c", "while :; do :; done"]
bundles = {
    # A memory hog: doubles a string until the OOM killer stops it.
    "oom": (["sh", "-c", "a=xxxxxxxxxxxxxxxx; while :; do a=$a$a; done"],
            {"memory": {"limit": 33554432, "swap": 33554432}}),
    # The hog in a subshell, again and again: OOM kills, the init lives.
    "oomloop": (["sh", "-c", "while :; do (a=xxxxxxxxxxxxxxxx; while :; do a=$a$a; done); sleep 0.2; done"],
                {"memory": {"limit": 33554432, "swap": 33554432}}),
    # Sleepers are added by exec until pids.max refuses them.
    "pids": (["sleep", "100"], {"pids": {"limit": 8}}),
    # A busy loop under a 10% CPU quota.
    "cpu": (BUSY, {"cpu": {"shares": 1024, "quota": 10000, "period": 100000, "burst": 5000,
                           "cpus": "0", "mems": "0"},
                   "memory": {"limit": 134217728, "reservation": 16777216, "swap": 201326592},
                   "pids": {"limit": 100}}),
    # /dev/mem is made in the container but no rule allows it.
    "devices": (["sh", "-c", "head -c 1 /dev/mem"], {}),
    # Reads 3 MB from the RAM disk under a 1 MB/s throttle.
    "io": (["sh", "-c", "s=$(date +%s); dd if=/dev/ram0 of=/dev/null bs=64k count=48 iflag=direct 2>&1 | grep 'records out'; echo $(( $(date +%s) - s ))"],
           {"blockIO": {"weight": 500,
                        "throttleReadBpsDevice": [{"major": 1, "minor": 0, "rate": 1048576}]},
            "devices": [{"allow": True, "type": "b", "major": 1, "minor": 0, "access": "r"}]}),
    "hugetlb": (["sleep", "100"], {"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]}),
    "unified": (["sleep", "100"], {"unified": {"memory.high": "50331648", "pids.max": "33"}}),
    "freeze": (BUSY, {"cpu": {"idle": 1}}),
    # A terminal container (terminal is set below).
    "tty": (["echo", "tty-ok"], None),
}
for name, (args, resources) in bundles.items():
    c = json.loads(json.dumps(base))
    # Where the bundles are inside the VM.
    c["root"] = {"path": "/bundles/rootfs", "readonly": True}
    c["process"]["args"] = args
    c["process"]["terminal"] = name == "tty"
    if resources:
        c["linux"].setdefault("resources", {}).update(resources)
    if name == "io":
        c["linux"]["devices"] = [{"path": "/dev/ram0", "type": "b", "major": 1, "minor": 0,
                                  "fileMode": 0o660, "uid": 0, "gid": 0}]
        c["linux"]["resources"]["devices"] = c["linux"]["resources"].get("devices", []) + resources["devices"]
    if name == "devices":
        c["linux"]["devices"] = [{"path": "/dev/mem", "type": "c", "major": 1, "minor": 1,
                                  "fileMode": 0o666, "uid": 0, "gid": 0}]
    d = os.path.join(out, name)
    os.makedirs(d)
    json.dump(c, open(os.path.join(d, "config.json"), "w"), indent=1)
