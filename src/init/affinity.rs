//! `process.execCPUAffinity` (runtime-spec 1.2.1), for `rt exec`'s
//! processes only, never the container's init. `initial` is the CPU set
//! the process starts on, before it is in the container's cgroup: rt
//! clones the process straight into the cgroup, so rt takes the set
//! itself for the clone (the child inherits it) and gives its own back
//! right after. `final` is set in the child just before execve. The init,
//! and an exec'd process with neither, get every CPU the cgroup allows
//! (`reset`), not the affinity rt had; with `initial` alone the process
//! keeps `initial` (runc 1.3.5 does the same). The sets are the process
//! plan's (`config::process_plan`), parsed once in rt.

use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;

use crate::error::{Context, Result};

/// Sets the calling thread's CPU affinity (`final`, in the child).
pub fn apply_final(set: &CpuSet) -> Result<()> {
    sched_setaffinity(Pid::from_raw(0), set).ctx("execCPUAffinity.final: sched_setaffinity")
}

/// Gives the calling thread every CPU (runc does the same): a process
/// must not inherit the affinity rt was started with (`taskset -c 0 rt
/// run`). The kernel keeps it within the cgroup's cpuset.
pub fn reset() -> Result<()> {
    let mut all = CpuSet::new();
    for cpu in 0..CpuSet::count() {
        all.set(cpu).ctx("reset the CPU affinity")?;
    }
    sched_setaffinity(Pid::from_raw(0), &all).ctx("reset the CPU affinity: sched_setaffinity")
}

/// rt's own affinity while it clones a process whose `initial` is set;
/// dropping it gives rt its previous affinity back.
pub struct Initial {
    previous: CpuSet,
}

impl Initial {
    /// Takes `initial` (the process plan's) for the calling thread; None
    /// when the process has none (nothing is paid for a field not given).
    pub fn take(initial: Option<&CpuSet>) -> Result<Option<Initial>> {
        let Some(set) = initial else {
            return Ok(None);
        };
        let previous = sched_getaffinity(Pid::from_raw(0)).ctx("sched_getaffinity")?;
        sched_setaffinity(Pid::from_raw(0), set)
            .ctx("execCPUAffinity.initial: sched_setaffinity")?;
        Ok(Some(Initial { previous }))
    }
}

impl Drop for Initial {
    fn drop(&mut self) {
        if let Err(e) = sched_setaffinity(Pid::from_raw(0), &self.previous) {
            log::warn!("execCPUAffinity.initial: giving rt its CPU affinity back: {e}");
        }
    }
}
