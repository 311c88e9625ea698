//! `process.execCPUAffinity` (runtime-spec 1.2.1), for `rt exec`'s
//! processes only, never the container's init. `initial` is the CPU set
//! the process starts on, before it is in the container's cgroup: rt
//! clones the process straight into the cgroup, so rt takes the set
//! itself for the clone (the child inherits it) and gives its own back
//! right after. `final` is set in the child just before execve. Without
//! `final`, the init and exec'd processes get every CPU the cgroup allows
//! (`reset`), not the affinity rt had.

use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;
use oci_spec::runtime::Process;

use crate::config::ranges;
use crate::error::{Context, Error, Result};

fn cpu_set(field: &str, list: &str) -> Result<CpuSet> {
    let mut set = CpuSet::new();
    for cpu in ranges::parse(list, CpuSet::count())
        .map_err(|e| Error::Invalid(format!("execCPUAffinity.{field}: {e}")))?
    {
        set.set(cpu)
            .with_ctx(|| format!("execCPUAffinity.{field}: CPU {cpu}"))?;
    }
    Ok(set)
}

/// The `final` set of `process`, if it has one.
pub fn final_set(process: &Process) -> Result<Option<CpuSet>> {
    process
        .exec_cpu_affinity()
        .as_ref()
        .and_then(|a| a.cpu_affinity_final().as_deref())
        .map(|l| cpu_set("final", l))
        .transpose()
}

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
    /// Takes `initial` of `process` for the calling thread; None when the
    /// process has none (nothing is paid for a field not given).
    pub fn take(process: &Process) -> Result<Option<Initial>> {
        let Some(list) = process
            .exec_cpu_affinity()
            .as_ref()
            .and_then(|a| a.initial().as_deref())
        else {
            return Ok(None);
        };
        let set = cpu_set("initial", list)?;
        let previous = sched_getaffinity(Pid::from_raw(0)).ctx("sched_getaffinity")?;
        sched_setaffinity(Pid::from_raw(0), &set)
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
