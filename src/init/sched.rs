//! Applies `process.scheduler`, `process.ioPriority` and
//! `linux.personality` in the process before it drops its capabilities
//! (the values were checked when the config was loaded: config::sched).

use oci_spec::runtime::{LinuxIOPriority, LinuxPersonality, Scheduler};

use crate::config::sched::{ioprio_value, personality_value, sched_attr};
use crate::error::{Context, Error, Result};
use crate::sys::sched as sys;

pub fn apply_scheduler(s: &Scheduler) -> Result<()> {
    let attr = sched_attr(s).map_err(|e| Error::Invalid(format!("process.scheduler: {e}")))?;
    sys::sched_setattr(&attr).ctx("process.scheduler: sched_setattr")
}

pub fn apply_io_priority(p: &LinuxIOPriority) -> Result<()> {
    let value = ioprio_value(p).map_err(|e| Error::Invalid(format!("process.ioPriority: {e}")))?;
    sys::ioprio_set(value).ctx("process.ioPriority: ioprio_set")
}

pub fn apply_personality(p: &LinuxPersonality) -> Result<()> {
    let value =
        personality_value(p).map_err(|e| Error::Invalid(format!("linux.personality: {e}")))?;
    sys::personality(value).ctx("linux.personality")
}
