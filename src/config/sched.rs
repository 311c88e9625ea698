//! `process.scheduler`, `process.ioPriority` and `linux.personality` in
//! the kernel's terms: the values sched_setattr, ioprio_set and
//! personality get, or what is wrong with a field (the process plan,
//! `process_plan.rs`, calls these once, in the parent).

use oci_spec::runtime::{
    IOPriorityClass, LinuxIOPriority, LinuxPersonality, LinuxPersonalityDomain, LinuxSchedulerFlag,
    LinuxSchedulerPolicy, Scheduler,
};

use crate::sys::sched::SchedAttr;

const SCHED_OTHER: u32 = 0;
const SCHED_FIFO: u32 = 1;
const SCHED_RR: u32 = 2;
const SCHED_BATCH: u32 = 3;
const SCHED_IDLE: u32 = 5;
const SCHED_DEADLINE: u32 = 6;

fn policy_number(p: LinuxSchedulerPolicy) -> std::result::Result<u32, String> {
    Ok(match p {
        LinuxSchedulerPolicy::SchedOther => SCHED_OTHER,
        LinuxSchedulerPolicy::SchedFifo => SCHED_FIFO,
        LinuxSchedulerPolicy::SchedRr => SCHED_RR,
        LinuxSchedulerPolicy::SchedBatch => SCHED_BATCH,
        LinuxSchedulerPolicy::SchedIdle => SCHED_IDLE,
        LinuxSchedulerPolicy::SchedDeadline => SCHED_DEADLINE,
        LinuxSchedulerPolicy::SchedIso => {
            return Err("policy SCHED_ISO: Linux has no such policy".into())
        }
    })
}

/// The runtime spec (and runc) spell the flag SCHED_FLAG_RESET_ON_FORK;
/// oci-spec reads only SCHED_RESET_ON_FORK. The spec's spelling is
/// renamed in a process's JSON before it is parsed, so both are taken.
pub fn spec_flag_names(process: &mut serde_json::Value) {
    let flags = process
        .pointer_mut("/scheduler/flags")
        .and_then(|f| f.as_array_mut());
    for f in flags.into_iter().flatten() {
        if f == "SCHED_FLAG_RESET_ON_FORK" {
            *f = "SCHED_RESET_ON_FORK".into();
        }
    }
}

fn flag_bit(f: LinuxSchedulerFlag) -> u64 {
    match f {
        LinuxSchedulerFlag::SchedResetOnFork => 0x01,
        LinuxSchedulerFlag::SchedFlagReclaim => 0x02,
        LinuxSchedulerFlag::SchedFlagDLOverrun => 0x04,
        LinuxSchedulerFlag::SchedFlagKeepPolicy => 0x08,
        LinuxSchedulerFlag::SchedFlagKeepParams => 0x10,
        LinuxSchedulerFlag::SchedFlagUtilClampMin => 0x20,
        LinuxSchedulerFlag::SchedFlagUtilClampMax => 0x40,
    }
}

/// `process.scheduler` as the kernel will get it, or what is wrong with it.
pub fn sched_attr(s: &Scheduler) -> std::result::Result<SchedAttr, String> {
    let policy = policy_number(*s.policy())?;
    let nice = s.nice().unwrap_or(0);
    if !(-20..=19).contains(&nice) {
        return Err(format!("nice {nice}: must be between -20 and 19"));
    }
    let priority = s.priority().unwrap_or(0);
    let realtime = policy == SCHED_FIFO || policy == SCHED_RR;
    if realtime && !(1..=99).contains(&priority) {
        return Err(format!(
            "priority {priority}: SCHED_FIFO and SCHED_RR need 1 to 99"
        ));
    }
    if !realtime && priority != 0 {
        return Err(format!(
            "priority {priority}: only SCHED_FIFO and SCHED_RR take a priority"
        ));
    }
    let (runtime, deadline, period) = (
        s.runtime().unwrap_or(0),
        s.deadline().unwrap_or(0),
        s.period().unwrap_or(0),
    );
    if policy == SCHED_DEADLINE {
        if runtime == 0 || deadline == 0 {
            return Err("SCHED_DEADLINE needs runtime and deadline".into());
        }
        if !(runtime <= deadline && (period == 0 || deadline <= period)) {
            return Err("SCHED_DEADLINE needs runtime <= deadline <= period".into());
        }
    } else if runtime != 0 || deadline != 0 || period != 0 {
        return Err("runtime, deadline and period are for SCHED_DEADLINE only".into());
    }
    let flags = s
        .flags()
        .iter()
        .flatten()
        .fold(0, |acc, f| acc | flag_bit(*f));
    #[allow(clippy::cast_possible_truncation)] // sched_attr is 56 bytes
    let size = std::mem::size_of::<SchedAttr>() as u32;
    Ok(SchedAttr {
        size,
        policy,
        flags,
        nice,
        // Checked above: 1 to 99, or 0.
        priority: u32::try_from(priority).unwrap_or(0),
        runtime,
        deadline,
        period,
        ..Default::default()
    })
}

pub fn ioprio_value(p: &LinuxIOPriority) -> std::result::Result<libc::c_int, String> {
    let class = match p.class() {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    let level = p.priority();
    if !(0..=7).contains(&level) {
        return Err(format!("priority {level}: must be between 0 and 7"));
    }
    // Checked above: 0 to 7.
    Ok((class << 13) | libc::c_int::try_from(level).unwrap_or(0))
}

pub fn personality_value(p: &LinuxPersonality) -> std::result::Result<libc::c_ulong, String> {
    if let Some(f) = p.flags().as_ref().filter(|f| !f.is_empty()) {
        return Err(format!(
            "flags {f:?}: the runtime spec defines no personality flags"
        ));
    }
    Ok(match p.domain() {
        LinuxPersonalityDomain::PerLinux => 0x0000,
        LinuxPersonalityDomain::PerLinux32 => 0x0008,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sched(json: &str) -> Scheduler {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn scheduler_values_are_checked_against_their_policy() {
        assert!(sched_attr(&sched(r#"{"policy":"SCHED_BATCH","nice":5}"#)).is_ok());
        assert!(sched_attr(&sched(r#"{"policy":"SCHED_FIFO","priority":10}"#)).is_ok());
        let bad = [
            r#"{"policy":"SCHED_FIFO"}"#,
            r#"{"policy":"SCHED_OTHER","priority":3}"#,
            r#"{"policy":"SCHED_OTHER","nice":40}"#,
            r#"{"policy":"SCHED_ISO"}"#,
            r#"{"policy":"SCHED_DEADLINE","runtime":10,"deadline":5}"#,
            r#"{"policy":"SCHED_BATCH","runtime":10}"#,
        ];
        for b in bad {
            assert!(sched_attr(&sched(b)).is_err(), "{b}");
        }
        let a = sched_attr(&sched(
            r#"{"policy":"SCHED_DEADLINE","runtime":1000000,"deadline":2000000,"period":4000000,"flags":["SCHED_RESET_ON_FORK"]}"#,
        ))
        .unwrap();
        assert_eq!((a.policy, a.flags, a.period), (SCHED_DEADLINE, 1, 4000000));
    }

    #[test]
    fn io_priority_encodes_class_and_level() {
        let p: LinuxIOPriority =
            serde_json::from_str(r#"{"class":"IOPRIO_CLASS_IDLE","priority":0}"#).unwrap();
        assert_eq!(ioprio_value(&p), Ok(3 << 13));
        let p: LinuxIOPriority =
            serde_json::from_str(r#"{"class":"IOPRIO_CLASS_BE","priority":9}"#).unwrap();
        assert!(ioprio_value(&p).is_err());
    }
}
