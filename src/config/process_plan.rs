//! What a container process's own kernel settings will be, as data: the
//! capability sets, the rlimits, the scheduler attributes, the I/O priority, the personality,
//! the memory policy and the CPU affinity of an exec'd process, each in
//! the kernel's terms. It is computed once, in the parent, from the
//! validated config (or `rt exec`'s process), so every bad value is
//! refused before anything exists, with its field named; the init (and
//! `rt exec`'s child) is handed the plan and only applies it
//! (`init::process`, `init::affinity`). This is the model of
//! `cgroup/resources.rs`: plan, then apply.

use nix::sched::CpuSet;
use oci_spec::runtime::{Linux, PosixRlimitType, Process};

use crate::config::capabilities::{self, CapSets};
use crate::config::mempolicy::{self, MemPolicy};
use crate::config::ranges;
use crate::config::sched::{ioprio_value, personality_value, sched_attr};
use crate::sys::sched::SchedAttr;

/// One `process.rlimits` entry, as setrlimit(2) takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rlimit {
    /// The config's name, for messages.
    pub typ: PosixRlimitType,
    /// The kernel's RLIMIT_* number.
    pub resource: libc::c_int,
    pub soft: u64,
    pub hard: u64,
}

/// The affinity an exec'd process ends with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Last {
    /// No `execCPUAffinity`: every CPU the cgroup allows.
    Reset,
    /// `initial` alone: the set the process was cloned with stays.
    Initial,
    /// `final`, set right before execve.
    Final(CpuSet),
}

/// `process.execCPUAffinity` (runtime-spec 1.2.1), for `rt exec`'s
/// processes only: the init ignores it and takes every CPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecAffinity {
    /// `initial`: rt takes it for the clone (the child inherits it).
    pub initial: Option<CpuSet>,
    /// What the process's affinity is when it execs.
    pub last: Last,
}

/// A process's settings in the kernel's terms, computed in the parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessPlan {
    /// `process.capabilities`: None leaves rt's sets as they are.
    pub capabilities: Option<CapSets>,
    /// `process.rlimits`, in the config's order.
    pub rlimits: Vec<Rlimit>,
    /// `process.scheduler`, for sched_setattr(2).
    pub scheduler: Option<SchedAttr>,
    /// `process.ioPriority`, for ioprio_set(2).
    pub io_priority: Option<libc::c_int>,
    /// `linux.personality`, for personality(2) (the container's, which
    /// runc sets for exec'd processes too).
    pub personality: Option<libc::c_ulong>,
    /// `linux.memoryPolicy`, for set_mempolicy(2): the init's only (an
    /// exec'd process is cloned from rt and keeps rt's).
    pub memory_policy: Option<MemPolicy>,
    pub affinity: ExecAffinity,
}

impl ProcessPlan {
    /// The plan of `process`'s own fields (no `linux` ones yet). A message
    /// names the field below the process ("scheduler: ..."), for the
    /// caller to place ("process." in config.json).
    pub fn of_process(process: &Process) -> Result<ProcessPlan, String> {
        Ok(ProcessPlan {
            capabilities: process
                .capabilities()
                .as_ref()
                .map(capabilities::plan)
                .transpose()?,
            rlimits: rlimits(process)?,
            scheduler: process
                .scheduler()
                .as_ref()
                .map(sched_attr)
                .transpose()
                .map_err(|e| format!("scheduler: {e}"))?,
            io_priority: process
                .io_priority()
                .as_ref()
                .map(ioprio_value)
                .transpose()
                .map_err(|e| format!("ioPriority: {e}"))?,
            personality: None,
            memory_policy: None,
            affinity: exec_affinity(process)?,
        })
    }
}

/// `linux.personality` for personality(2); the message names the field.
pub fn personality(linux: Option<&Linux>) -> Result<Option<libc::c_ulong>, String> {
    linux
        .and_then(|l| l.personality().as_ref())
        .map(personality_value)
        .transpose()
        .map_err(|e| format!("linux.personality: {e}"))
}

/// `linux.memoryPolicy` for set_mempolicy(2); the message names the field.
pub fn memory_policy(linux: Option<&Linux>) -> Result<Option<MemPolicy>, String> {
    linux
        .and_then(|l| l.memory_policy().as_ref())
        .map(mempolicy::plan)
        .transpose()
        .map_err(|e| format!("linux.memoryPolicy.{e}"))
}

/// config.md: a type given twice MUST be an error, and setrlimit(2) would
/// refuse a soft limit above the hard one only inside the container.
fn rlimits(process: &Process) -> Result<Vec<Rlimit>, String> {
    let given = process.rlimits().as_deref().unwrap_or_default();
    let mut out = Vec::with_capacity(given.len());
    for (i, rl) in given.iter().enumerate() {
        // As config.json writes it (RLIMIT_NOFILE), not Rust's name.
        let name = serde_json::to_value(rl.typ())
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| format!("{:?}", rl.typ()));
        if given[..i].iter().any(|prev| prev.typ() == rl.typ()) {
            return Err(format!("rlimits[{i}]: {name} is given twice"));
        }
        if rl.soft() > rl.hard() {
            return Err(format!(
                "rlimits[{i}]: {name} soft limit {} is above its hard limit {}",
                rl.soft(),
                rl.hard()
            ));
        }
        out.push(Rlimit {
            typ: rl.typ(),
            resource: rlimit_resource(rl.typ()),
            soft: rl.soft(),
            hard: rl.hard(),
        });
    }
    Ok(out)
}

/// The kernel's number of an rlimit type.
#[allow(clippy::cast_possible_wrap)] // RLIMIT_* are below 16
pub fn rlimit_resource(t: PosixRlimitType) -> libc::c_int {
    use PosixRlimitType::*;
    (match t {
        RlimitCpu => libc::RLIMIT_CPU,
        RlimitFsize => libc::RLIMIT_FSIZE,
        RlimitData => libc::RLIMIT_DATA,
        RlimitStack => libc::RLIMIT_STACK,
        RlimitCore => libc::RLIMIT_CORE,
        RlimitRss => libc::RLIMIT_RSS,
        RlimitNproc => libc::RLIMIT_NPROC,
        RlimitNofile => libc::RLIMIT_NOFILE,
        RlimitMemlock => libc::RLIMIT_MEMLOCK,
        RlimitAs => libc::RLIMIT_AS,
        RlimitLocks => libc::RLIMIT_LOCKS,
        RlimitSigpending => libc::RLIMIT_SIGPENDING,
        RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        RlimitNice => libc::RLIMIT_NICE,
        RlimitRtprio => libc::RLIMIT_RTPRIO,
        RlimitRttime => libc::RLIMIT_RTTIME,
    }) as libc::c_int
}

/// A CPU list of `execCPUAffinity.<field>`, every CPU below the kernel's
/// CPU_SETSIZE.
fn cpu_set(field: &str, list: &str) -> Result<CpuSet, String> {
    let mut set = CpuSet::new();
    for cpu in
        ranges::parse(list, CpuSet::count()).map_err(|e| format!("execCPUAffinity.{field}: {e}"))?
    {
        set.set(cpu)
            .map_err(|e| format!("execCPUAffinity.{field}: CPU {cpu}: {e}"))?;
    }
    Ok(set)
}

/// `final` wins, then `initial` (kept after the clone), then every CPU
/// (runc 1.3.5 does the same).
fn exec_affinity(process: &Process) -> Result<ExecAffinity, String> {
    let Some(a) = process.exec_cpu_affinity() else {
        return Ok(ExecAffinity {
            initial: None,
            last: Last::Reset,
        });
    };
    let initial = a
        .initial()
        .as_deref()
        .map(|l| cpu_set("initial", l))
        .transpose()?;
    let last = match (a.cpu_affinity_final().as_deref(), &initial) {
        (Some(l), _) => Last::Final(cpu_set("final", l)?),
        (None, Some(_)) => Last::Initial,
        (None, None) => Last::Reset,
    };
    Ok(ExecAffinity { initial, last })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn process(extra: Value) -> Process {
        let mut p = json!({"args": ["true"], "cwd": "/", "user": {"uid": 0, "gid": 0}});
        for (k, v) in extra.as_object().unwrap() {
            p[k] = v.clone();
        }
        serde_json::from_value(p).unwrap()
    }

    fn plan(extra: Value) -> Result<ProcessPlan, String> {
        ProcessPlan::of_process(&process(extra))
    }

    fn linux(json: Value) -> Linux {
        serde_json::from_value(json).unwrap()
    }

    fn cpus(list: &[usize]) -> CpuSet {
        let mut set = CpuSet::new();
        for c in list {
            set.set(*c).unwrap();
        }
        set
    }

    #[test]
    fn a_bare_process_plans_nothing_and_every_cpu() {
        let p = plan(json!({})).unwrap();
        assert_eq!(
            p,
            ProcessPlan {
                capabilities: None,
                rlimits: vec![],
                scheduler: None,
                io_priority: None,
                personality: None,
                memory_policy: None,
                affinity: ExecAffinity {
                    initial: None,
                    last: Last::Reset
                },
            }
        );
        assert_eq!(personality(None), Ok(None));
        assert_eq!(memory_policy(Some(&linux(json!({})))), Ok(None));
    }

    #[test]
    fn rlimits_keep_their_order_with_the_kernel_numbers() {
        let p = plan(json!({"rlimits": [
            {"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 4096},
            {"type": "RLIMIT_CORE", "soft": 0, "hard": 0},
        ]}))
        .unwrap();
        assert_eq!(
            p.rlimits,
            vec![
                Rlimit {
                    typ: PosixRlimitType::RlimitNofile,
                    resource: rlimit_resource(PosixRlimitType::RlimitNofile),
                    soft: 1024,
                    hard: 4096
                },
                Rlimit {
                    typ: PosixRlimitType::RlimitCore,
                    resource: rlimit_resource(PosixRlimitType::RlimitCore),
                    soft: 0,
                    hard: 0
                },
            ]
        );
    }

    #[test]
    fn bad_rlimits_are_named_by_index() {
        let e = plan(json!({"rlimits": [
            {"type": "RLIMIT_NOFILE", "soft": 1, "hard": 2},
            {"type": "RLIMIT_NOFILE", "soft": 1, "hard": 2},
        ]}))
        .unwrap_err();
        assert_eq!(e, "rlimits[1]: RLIMIT_NOFILE is given twice");
        let e =
            plan(json!({"rlimits": [{"type": "RLIMIT_AS", "soft": 9, "hard": 8}]})).unwrap_err();
        assert_eq!(
            e,
            "rlimits[0]: RLIMIT_AS soft limit 9 is above its hard limit 8"
        );
    }

    #[test]
    fn the_scheduler_is_sched_setattr_s_struct() {
        let p = plan(json!({"scheduler": {"policy": "SCHED_FIFO", "priority": 10,
            "flags": ["SCHED_RESET_ON_FORK"]}}))
        .unwrap();
        let a = p.scheduler.unwrap();
        assert_eq!(
            (a.size, a.policy, a.priority, a.flags, a.nice),
            (56, 1, 10, 1, 0)
        );
        let p = plan(json!({"scheduler": {"policy": "SCHED_BATCH", "nice": -5}})).unwrap();
        let a = p.scheduler.unwrap();
        assert_eq!((a.policy, a.nice, a.priority), (3, -5, 0));
    }

    #[test]
    fn a_bad_scheduler_is_named() {
        for (s, want) in [
            (json!({"policy": "SCHED_FIFO"}), "scheduler: priority 0:"),
            (
                json!({"policy": "SCHED_ISO"}),
                "scheduler: policy SCHED_ISO",
            ),
            (
                json!({"policy": "SCHED_OTHER", "nice": 40}),
                "scheduler: nice 40",
            ),
        ] {
            let e = plan(json!({ "scheduler": s })).unwrap_err();
            assert!(e.starts_with(want), "{s}: {e}");
        }
    }

    #[test]
    fn the_io_priority_is_class_and_level() {
        let p = plan(json!({"ioPriority": {"class": "IOPRIO_CLASS_RT", "priority": 4}})).unwrap();
        assert_eq!(p.io_priority, Some(1 << 13 | 4));
        let e =
            plan(json!({"ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 8}})).unwrap_err();
        assert_eq!(e, "ioPriority: priority 8: must be between 0 and 7");
    }

    #[test]
    fn the_personality_is_the_domain_s_value() {
        let l = linux(json!({"personality": {"domain": "LINUX32"}}));
        assert_eq!(personality(Some(&l)), Ok(Some(0x0008)));
        let l = linux(json!({"personality": {"domain": "LINUX"}}));
        assert_eq!(personality(Some(&l)), Ok(Some(0)));
        let l = linux(json!({"personality": {"domain": "LINUX", "flags": ["X"]}}));
        let e = personality(Some(&l)).unwrap_err();
        assert!(e.starts_with("linux.personality: flags"), "{e}");
    }

    #[test]
    fn the_memory_policy_is_mode_flags_and_mask() {
        let l = linux(json!({"memoryPolicy": {"mode": "MPOL_BIND", "nodes": "0-1",
            "flags": ["MPOL_F_STATIC_NODES"]}}));
        assert_eq!(
            memory_policy(Some(&l)),
            Ok(Some(MemPolicy {
                mode: 2 | 1 << 15,
                nodemask: vec![0b11]
            }))
        );
        let l = linux(json!({"memoryPolicy": {"mode": "MPOL_INTERLEAVE"}}));
        assert_eq!(
            memory_policy(Some(&l)),
            Err("linux.memoryPolicy.nodes: MPOL_INTERLEAVE needs at least one node".into())
        );
    }

    #[test]
    fn exec_affinity_is_final_then_initial_then_every_cpu() {
        let p = plan(json!({"execCPUAffinity": {"initial": "1", "final": "0"}})).unwrap();
        assert_eq!(
            p.affinity,
            ExecAffinity {
                initial: Some(cpus(&[1])),
                last: Last::Final(cpus(&[0]))
            }
        );
        let p = plan(json!({"execCPUAffinity": {"initial": "0-2"}})).unwrap();
        assert_eq!(
            p.affinity,
            ExecAffinity {
                initial: Some(cpus(&[0, 1, 2])),
                last: Last::Initial
            }
        );
        let p = plan(json!({"execCPUAffinity": {}})).unwrap();
        assert_eq!(p.affinity.last, Last::Reset);
    }

    #[test]
    fn a_bad_cpu_list_is_named() {
        let e = plan(json!({"execCPUAffinity": {"final": "4096"}})).unwrap_err();
        assert!(e.starts_with("execCPUAffinity.final: "), "{e}");
        // initial is checked even when final decides the last set.
        let e = plan(json!({"execCPUAffinity": {"initial": "3-1", "final": "0"}})).unwrap_err();
        assert!(e.starts_with("execCPUAffinity.initial: "), "{e}");
    }
}
