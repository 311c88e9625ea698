//! config-linux.md's control groups: where the process is, and the limits
//! it can see from inside through the cgroup filesystem at /sys/fs/cgroup
//! (cgroup v2, or v1 with one directory per controller).

use std::fs;

use serde_json::Value;

use crate::sys;
use crate::tap::{ensure, eq, Plan};

/// /proc/self/cgroup as (hierarchy controllers, path) pairs.
fn own_cgroups() -> Result<Vec<(String, String)>, String> {
    let text =
        fs::read_to_string("/proc/self/cgroup").map_err(|e| format!("/proc/self/cgroup: {e}"))?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctrl, path) = (f.next()?, f.next()?, f.next()?);
            Some((ctrl.to_string(), path.to_string()))
        })
        .collect())
}

pub fn plan(cfg: &Value, plan: &mut Plan) {
    let cgroupns = cfg["linux"]["namespaces"].as_array().is_some_and(|a| {
        a.iter()
            .any(|n| n["type"] == "cgroup" && n["path"].is_null())
    });
    if cgroupns {
        plan.check(
            "config-linux.md, Namespaces: in a new cgroup namespace the process's cgroups MUST be its root",
            || {
                let not_root: Vec<_> = own_cgroups()?.into_iter().filter(|(_, p)| p != "/").collect();
                ensure(not_root.is_empty(), || format!("outside the namespace root: {not_root:?}"))
            },
        );
    } else if let Some(path) = cfg["linux"]["cgroupsPath"]
        .as_str()
        .filter(|p| p.starts_with('/'))
    {
        let want = path.to_string();
        plan.check(
            "config-linux.md, Control groups: the process MUST be placed in cgroupsPath",
            move || {
                let own = own_cgroups()?;
                ensure(own.iter().any(|(_, p)| *p == want), || {
                    format!("/proc/self/cgroup: {own:?}")
                })
            },
        );
    }
    limits(&cfg["linux"]["resources"], plan);
}

/// The content of a cgroup file of the container's own cgroup: `v2` under
/// a cgroup2 /sys/fs/cgroup, else `v1` under the controller's directory.
fn read(v2: &str, ctrl: &str, v1: &str) -> Result<String, String> {
    let is_v2 = sys::mount_at("/sys/fs/cgroup")?.is_some_and(|(_, m)| m.fstype == "cgroup2");
    let path = if is_v2 {
        format!("/sys/fs/cgroup/{v2}")
    } else {
        format!("/sys/fs/cgroup/{ctrl}/{v1}")
    };
    fs::read_to_string(&path)
        .map(|s| s.trim().to_string())
        .map_err(|e| {
            format!("{path}: {e} (is the cgroup filesystem mounted with a cgroup namespace?)")
        })
}

fn cgroup_v2() -> Result<bool, String> {
    Ok(sys::mount_at("/sys/fs/cgroup")?.is_some_and(|(_, m)| m.fstype == "cgroup2"))
}

fn limits(r: &Value, plan: &mut Plan) {
    if let Some(limit) = r["memory"]["limit"].as_i64() {
        plan.check(
            "config-linux.md, Memory: limit MUST be the cgroup's memory limit",
            move || {
                eq(
                    read("memory.max", "memory", "memory.limit_in_bytes")?,
                    limit.to_string(),
                )
            },
        );
    }
    if let Some(limit) = r["pids"]["limit"].as_i64() {
        plan.check(
            "config-linux.md, PIDs: limit MUST be the cgroup's pids.max",
            move || eq(read("pids.max", "pids", "pids.max")?, limit.to_string()),
        );
    }
    let cpu = &r["cpu"];
    if let (Some(q), Some(p)) = (cpu["quota"].as_i64(), cpu["period"].as_u64()) {
        plan.check(
            "config-linux.md, CPU: quota and period MUST be the cgroup's CFS bandwidth",
            move || {
                if cgroup_v2()? {
                    eq(read("cpu.max", "", "")?, format!("{q} {p}"))
                } else {
                    eq(
                        (
                            read("", "cpu", "cpu.cfs_quota_us")?,
                            read("", "cpu", "cpu.cfs_period_us")?,
                        ),
                        (q.to_string(), p.to_string()),
                    )
                }
            },
        );
    }
    if let Some(shares) = cpu["shares"].as_u64() {
        plan.check(
            "config-linux.md, CPU: shares MUST be the cgroup's relative CPU share",
            move || {
                if cgroup_v2()? {
                    // v2 has no shares: runtimes convert to cpu.weight, from
                    // [2, 262144] to [1, 10000], on a line (runc 1.1) or on
                    // runc 1.3's and crun's curve (1024 -> 100); either is
                    // the spec's meaning.
                    let line = 1 + ((shares.clamp(2, 262_144) - 2) * 9999) / 262_142;
                    #[allow(clippy::cast_precision_loss)]
                    let l = (shares.clamp(2, 262_144) as f64).log2();
                    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                    let curve = (10f64.powf((l * l + 125.0 * l) / 612.0 - 7.0 / 34.0) + 0.99)
                        .floor() as u64;
                    let got = read("cpu.weight", "", "")?;
                    let curve = curve.clamp(1, 10_000).to_string();
                    let line = line.to_string();
                    ensure(got == line || got == curve, || {
                        format!("got {got:?}, want {curve:?} (or {line:?}, on a line)")
                    })
                } else {
                    eq(read("", "cpu", "cpu.shares")?, shares.to_string())
                }
            },
        );
    }
    if let Some(cpus) = cpu["cpus"].as_str().map(str::to_string) {
        plan.check(
            "config-linux.md, CPU: cpus MUST be the cgroup's cpuset",
            move || eq(read("cpuset.cpus", "cpuset", "cpuset.cpus")?, cpus),
        );
    }
}
