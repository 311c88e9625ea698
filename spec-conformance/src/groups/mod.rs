//! The groups of checks: each makes its containers, and returns one result
//! per check. `tests/conformance.rs` has one #[test] per group and
//! `rt-conformance` runs them all.

use std::fs;
use std::path::{Path, PathBuf};

use rt_testkit::alive;

use crate::bundle::Bundle;
use crate::report::{Outcome, Report};
use crate::runtime::Runtime;

mod cgroups;
mod devices;
mod errors;
mod hooks;
mod lifecycle;
mod mounts;
mod namespaces;
mod process;
mod seccomp;

type GroupFn = fn(&Runtime, &mut Report);

/// Every group, by name, in the order `rt-conformance` runs them.
pub const GROUPS: &[(&str, GroupFn)] = &[
    ("process", process::run),
    ("namespaces", namespaces::run),
    ("mounts", mounts::run),
    ("devices", devices::run),
    ("cgroups", cgroups::run),
    ("seccomp", seccomp::run),
    ("lifecycle", lifecycle::run),
    ("hooks", hooks::run),
    ("errors", errors::run),
];

/// A bundle for a new container of `group`, or a failure in the report.
fn bundle(report: &mut Report, group: &str, args: &[&str]) -> Option<Bundle> {
    match Bundle::new(&crate::bundle::unique_id(group), args) {
        Ok(b) => Some(b),
        Err(e) => {
            report.add(
                format!("harness: making a bundle for {group}"),
                Outcome::Fail(e),
            );
            None
        }
    }
}

/// Where `cgroups_path` exists in the host's cgroup hierarchies (v1 and v2).
fn cgroup_dirs(cgroups_path: &str) -> Vec<PathBuf> {
    let rel = cgroups_path.trim_start_matches('/');
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let fstype = right.split(' ').next()?;
            let mount_point = left.split(' ').nth(4)?;
            (fstype == "cgroup" || fstype == "cgroup2").then(|| Path::new(mount_point).join(rel))
        })
        .filter(|p| p.exists())
        .collect()
}

/// Waits up to `secs` seconds for `f` to hold.
fn eventually(secs: u64, f: impl FnMut() -> bool) -> bool {
    rt_testkit::wait_until(std::time::Duration::from_secs(secs), f)
}
