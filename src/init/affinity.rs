//! `process.execCPUAffinity` (runtime-spec 1.2.1), for `rt exec`'s
//! processes only, never the container's init. `initial` is the CPU set
//! the process starts on, before it is in the container's cgroup: rt
//! clones the process straight into the cgroup, so rt takes the set
//! itself for the clone (the child inherits it) and gives its own back
//! right after. `final` is set in the child just before execve. The init,
//! and an exec'd process with neither, get every CPU the cgroup allows
//! (`reset`), not the affinity rt had; with `initial` alone the process
//! keeps `initial` (runc 1.3.5 does the same).

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

/// The affinity an exec'd process ends with, decided in the parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Last {
    /// No `execCPUAffinity`: every CPU the cgroup allows.
    Reset,
    /// `initial` alone: the set the process was cloned with stays.
    Initial,
    /// `final`, set right before execve.
    Final(CpuSet),
}

/// What `process`'s affinity is to be when it execs.
pub fn last(process: &Process) -> Result<Last> {
    let Some(a) = process.exec_cpu_affinity() else {
        return Ok(Last::Reset);
    };
    Ok(
        match (a.cpu_affinity_final().as_deref(), a.initial().as_deref()) {
            (Some(l), _) => Last::Final(cpu_set("final", l)?),
            (None, Some(_)) => Last::Initial,
            (None, None) => Last::Reset,
        },
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    fn process(affinity: serde_json::Value) -> Process {
        serde_json::from_value(serde_json::json!({
            "args": ["true"], "cwd": "/", "user": {"uid": 0, "gid": 0},
            "execCPUAffinity": affinity,
        }))
        .unwrap()
    }

    #[test]
    fn the_last_affinity_is_final_then_initial_then_every_cpu() {
        let mut zero = CpuSet::new();
        zero.set(0).unwrap();
        assert_eq!(
            last(&process(serde_json::json!({"final": "0", "initial": "1"}))).unwrap(),
            Last::Final(zero)
        );
        assert_eq!(
            last(&process(serde_json::json!({"initial": "1"}))).unwrap(),
            Last::Initial
        );
        assert_eq!(last(&process(serde_json::json!({}))).unwrap(), Last::Reset);
        assert!(last(&process(serde_json::json!({"final": "4096"}))).is_err());
    }
}
