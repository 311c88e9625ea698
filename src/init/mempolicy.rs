//! Applies `linux.memoryPolicy` in the init before it drops its
//! capabilities; the policy is inherited across execve and by every
//! child the program makes (checked when the config was loaded).

use oci_spec::runtime::LinuxMemoryPolicy;

use crate::config::mempolicy::plan;
use crate::error::{Context, Error, Result};

pub fn apply(p: &LinuxMemoryPolicy) -> Result<()> {
    let policy = plan(p).map_err(|e| Error::Invalid(format!("linux.memoryPolicy.{e}")))?;
    crate::sys::numa::set_mempolicy(policy.mode, &policy.nodemask)
        .ctx("linux.memoryPolicy: set_mempolicy")
}
