//! `linux.resources` as cgroup v2 interface files: which file gets which
//! value ([`plan`], pure), and writing them with the controllers they need
//! enabled on the way down ([`apply`]). Device rules are a BPF program
//! (see `devices`), not files.
//!
//! The conversions follow what runc does on cgroup v2, so a config means
//! the same under either runtime: `cpu.shares` (2..262144) scales to
//! `cpu.weight` (1..10000), the blkio weight (10..1000) to `io.weight`,
//! and `memory.swap` (memory+swap, as on v1) becomes `memory.swap.max`
//! (swap alone).

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxRdma, LinuxResources, LinuxThrottleDevice,
};

use crate::error::{Context, Error, Result};

/// One interface file and what to write to it, with the field of
/// `linux.resources` it comes from (`memory.limit` for `memory.max`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    pub field: String,
    pub file: String,
    pub value: String,
}

impl Write {
    fn new(field: impl Into<String>, file: impl Into<String>, value: impl Into<String>) -> Write {
        Write {
            field: field.into(),
            file: file.into(),
            value: value.into(),
        }
    }

    /// The controller the file belongs to (`memory` for `memory.max`), or
    /// None for the core `cgroup.*` files.
    pub fn controller(&self) -> Option<&str> {
        let c = self.file.split('.').next().unwrap_or("");
        (c != "cgroup").then_some(c)
    }
}

/// A field cgroup v2 has no file for, which runc 1.1.5 ignores there
/// (silently, but for kernel memory): rt goes on too, and says so.
fn ignored(field: &str, why: &str) {
    log::warn!("linux.resources.{field}: ignored, {why}");
}

fn invalid(field: &str, why: String) -> Error {
    Error::InvalidField {
        field: format!("linux.resources.{field}"),
        reason: why,
    }
}

/// `cpu.shares` to `cpu.weight` as runc 1.3 converts them (and crun): a
/// curve through 2 -> 1, 1024 -> 100 (both defaults) and 262144 -> 10000,
/// so that Docker's default shares give the kernel's default weight (the
/// straight line of runc 1.1 gave 39). Rounded up, as runc's suite
/// computes it (`int(x + 0.99)`).
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares <= 2 {
        return 1;
    }
    if shares >= 262_144 {
        return 10_000;
    }
    #[allow(clippy::cast_precision_loss)] // below 2^18: exact in an f64
    let l = (shares as f64).log2();
    let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // 1..=10000
    let weight = (10f64.powf(exponent) + 0.99).floor() as u64;
    weight
}

/// A blkio weight (10..1000) to `io.weight` (1..10000), linearly.
pub fn blkio_to_io_weight(weight: u16) -> u64 {
    let w = u64::from(weight.clamp(10, 1000));
    1 + (w - 10) * 9999 / 990
}

/// -1 (or any negative) is "no limit".
fn limit_value(v: i64) -> String {
    if v < 0 {
        "max".into()
    } else {
        v.to_string()
    }
}

/// The files and values for `r`, in the order they are written, or the
/// first field cgroup v2 cannot honour (named).
/// The cgroup v2 file writes for `r`, one controller at a time. What v2
/// cannot do is refused naming the field; nothing is written here.
pub fn plan(r: &LinuxResources) -> Result<Vec<Write>> {
    let mut w = vec![];
    if let Some(m) = r.memory() {
        memory(m, &mut w)?;
    }
    if let Some(c) = r.cpu() {
        cpu(c, &mut w)?;
    }
    pids(r, &mut w);
    if let Some(b) = r.block_io() {
        block_io(b, &mut w)?;
    }
    hugetlb(r, &mut w)?;
    if let Some(n) = r.network() {
        if n.class_id().is_some() || n.priorities().as_ref().is_some_and(|p| !p.is_empty()) {
            ignored("network", "net_cls and net_prio do not exist on cgroup v2");
        }
    }
    if let Some(rdma) = r.rdma() {
        rdma_limits(rdma, &mut w)?;
    }
    if let Some(u) = r.unified() {
        unified(u, &mut w)?;
    }
    Ok(w)
}

/// memory.low, memory.max, memory.swap.max.
fn memory(m: &LinuxMemory, w: &mut Vec<Write>) -> Result<()> {
    // 0 is "not set" for kernel, kernelTCP and reservation: Docker's
    // `update` sends `"kernel": 0, "reservation": 0` with every change.
    let kernel = m.kernel().is_some_and(|k| k != 0);
    let kernel_tcp = m.kernel_tcp().is_some_and(|k| k != 0);
    if kernel || kernel_tcp {
        // runc's words, which callers may look for.
        let field = match (kernel, kernel_tcp) {
            (true, true) => "memory.kernel, memory.kernelTCP",
            (true, false) => "memory.kernel",
            _ => "memory.kernelTCP",
        };
        log::warn!(
            "linux.resources.{field}: Kernel memory settings are ignored and will be removed"
        );
    }
    if m.swappiness().is_some() {
        ignored(
            "memory.swappiness",
            "cgroup v2 has no per-cgroup swappiness",
        );
    }
    if m.disable_oom_killer() == Some(true) {
        ignored(
            "memory.disableOOMKiller",
            "cgroup v2 cannot turn the OOM killer off for a cgroup",
        );
    }
    if let Some(l) = m.reservation().filter(|&l| l != 0) {
        w.push(Write::new(
            "memory.reservation",
            "memory.low",
            limit_value(l),
        ));
    }
    let limit = m.limit().filter(|&l| l != 0);
    if let Some(l) = limit {
        w.push(Write::new("memory.limit", "memory.max", limit_value(l)));
    }
    // swap is memory+swap; 0 means unset (what Docker sends). No memory
    // limit and no swap given means neither is limited (runc: `update
    // --memory -1` lifts the swap limit too, as it would on cgroup v1).
    match (m.swap().filter(|&s| s != 0), limit) {
        (None, Some(l)) if l < 0 => w.push(Write::new("memory.swap", "memory.swap.max", "max")),
        (None, _) => {}
        (Some(s), _) if s < 0 => w.push(Write::new("memory.swap", "memory.swap.max", "max")),
        (Some(s), Some(l)) if l > 0 => {
            if s < l {
                return Err(invalid(
                    "memory.swap",
                    format!("{s} is below memory.limit {l} (swap counts memory plus swap)"),
                ));
            }
            w.push(Write::new(
                "memory.swap",
                "memory.swap.max",
                (s - l).to_string(),
            ));
        }
        (Some(s), _) => {
            return Err(invalid(
                "memory.swap",
                format!("{s} needs a memory.limit (swap counts memory plus swap)"),
            ))
        }
    }
    Ok(())
}

/// cpu.weight, cpu.max, cpu.max.burst, cpu.idle, cpuset.cpus, cpuset.mems.
fn cpu(c: &LinuxCpu, w: &mut Vec<Write>) -> Result<()> {
    if c.realtime_runtime().is_some_and(|r| r != 0) {
        ignored(
            "cpu.realtimeRuntime",
            "cgroup v2 has no real-time CPU budget",
        );
    }
    if c.realtime_period().is_some_and(|p| p != 0) {
        ignored(
            "cpu.realtimePeriod",
            "cgroup v2 has no real-time CPU budget",
        );
    }
    if let Some(s) = c.shares().filter(|&s| s != 0) {
        w.push(Write::new(
            "cpu.shares",
            "cpu.weight",
            shares_to_weight(s).to_string(),
        ));
    }
    let quota = c.quota().filter(|&q| q != 0);
    let period = c.period().filter(|&p| p != 0);
    if quota.is_some() || period.is_some() {
        let q = quota.map_or("max".to_string(), limit_value);
        w.push(Write::new(
            if quota.is_some() {
                "cpu.quota"
            } else {
                "cpu.period"
            },
            "cpu.max",
            format!("{q} {}", period.unwrap_or(100_000)),
        ));
    }
    if let Some(b) = c.burst() {
        w.push(Write::new("cpu.burst", "cpu.max.burst", b.to_string()));
    }
    if let Some(i) = c.idle() {
        w.push(Write::new("cpu.idle", "cpu.idle", i.to_string()));
    }
    if let Some(s) = c.cpus().as_deref().filter(|s| !s.is_empty()) {
        w.push(Write::new("cpu.cpus", "cpuset.cpus", s));
    }
    if let Some(s) = c.mems().as_deref().filter(|s| !s.is_empty()) {
        w.push(Write::new("cpu.mems", "cpuset.mems", s));
    }
    Ok(())
}

/// pids.max.
fn pids(r: &LinuxResources, w: &mut Vec<Write>) {
    // 0 is "not set" (Podman's --pids-limit 0), negative is no limit.
    if let Some(p) = r.pids().as_ref().filter(|p| p.limit() != 0) {
        w.push(Write::new("pids.limit", "pids.max", limit_value(p.limit())));
    }
}

/// io.weight (default and per device) and io.max throttles.
fn block_io(b: &LinuxBlockIo, w: &mut Vec<Write>) -> Result<()> {
    if b.leaf_weight().is_some()
        || b.weight_device()
            .iter()
            .flatten()
            .any(|d| d.leaf_weight().is_some())
    {
        ignored(
            "blockIO.leafWeight",
            "leaf weights do not exist on cgroup v2",
        );
    }
    if let Some(x) = b.weight().filter(|&x| x != 0) {
        w.push(Write::new(
            "blockIO.weight",
            "io.weight",
            blkio_to_io_weight(x).to_string(),
        ));
    }
    for d in b.weight_device().iter().flatten() {
        if let Some(x) = d.weight() {
            w.push(Write::new(
                "blockIO.weightDevice",
                "io.weight",
                format!("{}:{} {}", d.major(), d.minor(), blkio_to_io_weight(x)),
            ));
        }
    }
    let throttles: [(&Option<Vec<LinuxThrottleDevice>>, &str, &str); 4] = [
        (
            b.throttle_read_bps_device(),
            "rbps",
            "throttleReadBpsDevice",
        ),
        (
            b.throttle_write_bps_device(),
            "wbps",
            "throttleWriteBpsDevice",
        ),
        (
            b.throttle_read_iops_device(),
            "riops",
            "throttleReadIOPSDevice",
        ),
        (
            b.throttle_write_iops_device(),
            "wiops",
            "throttleWriteIOPSDevice",
        ),
    ];
    for (list, key, field) in throttles {
        for d in list.iter().flatten() {
            // 0 lifts the limit, as on v1.
            let rate = if d.rate() == 0 {
                "max".to_string()
            } else {
                d.rate().to_string()
            };
            w.push(Write::new(
                format!("blockIO.{field}"),
                "io.max",
                format!("{}:{} {key}={rate}", d.major(), d.minor()),
            ));
        }
    }
    Ok(())
}

/// hugetlb.<size>.max for each page size.
fn hugetlb(r: &LinuxResources, w: &mut Vec<Write>) -> Result<()> {
    for h in r.hugepage_limits().iter().flatten() {
        let size = h.page_size();
        let ok = size.len() > 2
            && size.ends_with('B')
            && size[..size.len() - 2].chars().all(|c| c.is_ascii_digit())
            && matches!(&size[size.len() - 2..size.len() - 1], "K" | "M" | "G");
        if !ok {
            return Err(invalid(
                "hugepageLimits",
                format!("pageSize {size:?} is not like \"2MB\" or \"1GB\""),
            ));
        }
        w.push(Write::new(
            "hugepageLimits",
            format!("hugetlb.{size}.max"),
            limit_value(h.limit()),
        ));
        // The reservation limit too, as runc sets it: pages reserved
        // (mmap'd, not yet faulted) count against it, so the container
        // learns of the limit at mmap rather than by SIGBUS at fault.
        w.push(Write::new(
            "hugepageLimits",
            format!("hugetlb.{size}.rsvd.max"),
            limit_value(h.limit()),
        ));
    }
    Ok(())
}

/// rdma.max, one line per device.
fn rdma_limits(rdma: &HashMap<String, LinuxRdma>, w: &mut Vec<Write>) -> Result<()> {
    let mut devices: Vec<_> = rdma.iter().collect();
    devices.sort_by(|a, b| a.0.cmp(b.0));
    for (dev, l) in devices {
        if dev.is_empty() || dev.contains(char::is_whitespace) {
            return Err(invalid("rdma", format!("bad device name {dev:?}")));
        }
        let mut v = dev.clone();
        if let Some(n) = l.hca_handles() {
            v.push_str(&format!(" hca_handle={n}"));
        }
        if let Some(n) = l.hca_objects() {
            v.push_str(&format!(" hca_object={n}"));
        }
        w.push(Write::new(format!("rdma.{dev}"), "rdma.max", v));
    }
    Ok(())
}

/// `unified`: cgroup files by name, as given, never a path out of the
/// cgroup nor a file the runtime manages.
fn unified(u: &HashMap<String, String>, w: &mut Vec<Write>) -> Result<()> {
    let mut keys: Vec<_> = u.iter().collect();
    keys.sort_by(|a, b| a.0.cmp(b.0));
    for (k, v) in keys {
        // A file of this cgroup, never a path out of it.
        if k.is_empty() || k.contains('/') || !k.contains('.') || k.starts_with('.') {
            return Err(invalid(
                "unified",
                format!("{k:?} is not a cgroup interface file name"),
            ));
        }
        if k == "cgroup.procs" || k == "cgroup.threads" || k == "cgroup.subtree_control" {
            return Err(invalid(
                "unified",
                format!("{k:?} is managed by the runtime, not a resource"),
            ));
        }
        // The kernel takes one line a write (io.max's devices, io.weight's
        // default and devices): a value of several is written a line at a
        // time.
        let lines: Vec<&str> = v.lines().filter(|l| !l.trim().is_empty()).collect();
        if lines.len() > 1 {
            for l in lines {
                w.push(Write::new(format!("unified.{k}"), k.clone(), l.to_string()));
            }
        } else {
            w.push(Write::new(format!("unified.{k}"), k.clone(), v.clone()));
        }
    }
    Ok(())
}

/// The controllers `writes` need, each once, in order.
pub fn controllers(writes: &[Write]) -> Vec<String> {
    let mut out: Vec<String> = vec![];
    for w in writes {
        if let Some(c) = w.controller() {
            if !out.iter().any(|o| o == c) {
                out.push(c.to_string());
            }
        }
    }
    out
}

/// Enables `ctls` in `cgroup.subtree_control` of every cgroup from the
/// mount root down to the parent of `dir`, so that `dir` gets their files.
pub fn enable_controllers(mount: &Path, dir: &Path, ctls: &[String]) -> Result<()> {
    if ctls.is_empty() {
        return Ok(());
    }
    let rel = dir.strip_prefix(mount).map_err(|_| Error::UnsafePath {
        path: dir.to_path_buf(),
        reason: format!("is not under {}", mount.display()),
    })?;
    let mut cur = mount.to_path_buf();
    let parts: Vec<_> = rel.components().collect();
    for (i, part) in parts.iter().enumerate() {
        let control = cur.join("cgroup.subtree_control");
        let on = fs::read_to_string(&control).unwrap_or_default();
        let missing: Vec<String> = ctls
            .iter()
            .filter(|c| !on.split_whitespace().any(|x| x == c.as_str()))
            .map(|c| format!("+{c}"))
            .collect();
        if !missing.is_empty() {
            fs::write(&control, missing.join(" "))
                .with_ctx(|| format!("enable {} in {}", missing.join(" "), control.display()))?;
        }
        if i + 1 < parts.len() {
            cur.push(part);
        }
    }
    Ok(())
}

/// Writes the planned values into the cgroup at `dir` (whose files must
/// exist: a missing one names the controller or key that is not there).
pub fn write_all(dir: &Path, writes: &[Write]) -> Result<()> {
    for w in writes {
        let path = dir.join(&w.file);
        let r = fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, w.value.as_bytes()));
        // Without swap accounting there is no memory.swap.max: lifting a
        // swap limit (or setting none) then asks nothing, as under runc.
        let no_swap_file = w.file == "memory.swap.max" && matches!(w.value.as_str(), "max" | "0");
        // Kernels before 5.7 have no hugetlb reservation files.
        let no_rsvd_file = w.file.starts_with("hugetlb.") && w.file.ends_with(".rsvd.max");
        if let Err(error) = r {
            if (no_swap_file || no_rsvd_file) && error.kind() == std::io::ErrorKind::NotFound {
                continue;
            }
            return Err(Error::CgroupWrite {
                dir: dir.to_path_buf(),
                file: w.file.to_string(),
                value: w.value.to_string(),
                error,
            });
        }
    }
    Ok(())
}

/// Enables the controllers and writes the values: a container's limits.
/// The other controllers the host offers are enabled too where they can
/// be, so that `events` and metrics see memory, pids and io usage of a
/// container without limits (as under runc); only the ones the limits
/// need must succeed.
pub fn apply(mount: &Path, dir: &Path, writes: &[Write]) -> Result<()> {
    let needed = controllers(writes);
    enable_controllers(mount, dir, &needed)?;
    let offered = fs::read_to_string(mount.join("cgroup.controllers")).unwrap_or_default();
    for c in offered.split_whitespace() {
        if !needed.iter().any(|n| n == c) {
            let _ = enable_controllers(mount, dir, &[c.to_string()]);
        }
    }
    write_all(dir, writes)
}

/// For `update`, which changes only what it is given: a cpu period
/// without a quota keeps the quota the cgroup has now, and a quota without
/// a period keeps its period (runc re-applies the container's other
/// value; the plan alone would reset it to "max" or 100000). `current` is
/// the cgroup's cpu.max ("max 100000", "50000 100000").
pub fn keep_unchanged_cpu_max(r: &LinuxResources, current: &str, writes: &mut [Write]) {
    let Some(cpu) = r.cpu().as_ref() else { return };
    let quota = cpu.quota().filter(|&q| q != 0);
    let period = cpu.period().filter(|&p| p != 0);
    let mut cur = current.split_whitespace();
    let (Some(cur_quota), Some(cur_period)) = (cur.next(), cur.next()) else {
        return;
    };
    for w in writes.iter_mut().filter(|w| w.file == "cpu.max") {
        let mut parts = w.value.split_whitespace();
        let (Some(q), Some(p)) = (parts.next(), parts.next()) else {
            continue;
        };
        w.value = match (quota, period) {
            (None, Some(_)) => format!("{cur_quota} {p}"),
            (Some(_), None) => format!("{q} {cur_period}"),
            _ => continue,
        };
    }
}

/// `memory.checkBeforeUpdate`: a new limit below what the container uses
/// now is refused rather than making the kernel reclaim or OOM-kill: with
/// a swap limit, memory+swap against memory.current + memory.swap.current;
/// otherwise memory.max against memory.current. Worded as runc words it
/// ("rejecting memory limit ...").
pub fn check_memory_usage(dir: &Path, writes: &[Write]) -> Result<()> {
    let value = |file: &str| {
        writes
            .iter()
            .find(|w| w.file == file)
            .and_then(|w| w.value.parse::<u64>().ok())
    };
    let usage = |file: &str| {
        std::fs::read_to_string(dir.join(file))
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    let (field, what, new, current) = match (value("memory.max"), value("memory.swap.max")) {
        (Some(mem), Some(swap)) => (
            "linux.resources.memory.swap",
            "memory+swap",
            mem.saturating_add(swap),
            usage("memory.current").map(|m| m + usage("memory.swap.current").unwrap_or(0)),
        ),
        (Some(mem), None) => (
            "linux.resources.memory.limit",
            "memory",
            mem,
            usage("memory.current"),
        ),
        _ => return Ok(()),
    };
    match current {
        Some(cur) if new < cur => Err(Error::InvalidField {
            field: field.into(),
            reason: format!(
                "rejecting {what} limit {new} below current usage {cur} (checkBeforeUpdate)"
            ),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
#[path = "resources_tests.rs"]
mod tests;
