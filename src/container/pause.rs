//! `rt pause` and `rt resume`: the container's cgroup frozen and thawed
//! (`cgroup.freeze`, waited for in `cgroup.events`).

use std::time::Duration;

use super::{Container, Op};
use crate::error::{Error, Result};
use crate::state::Root;

/// Freezes a running container (`cgroup.freeze`); its status becomes
/// paused.
pub fn pause(root: &Root, id: &str) -> Result<()> {
    set_paused(root, id, true)
}

/// Thaws a paused container.
pub fn resume(root: &Root, id: &str) -> Result<()> {
    set_paused(root, id, false)
}

fn set_paused(root: &Root, id: &str, pause: bool) -> Result<()> {
    let locked = root.lock(id)?;
    let c = Container::from_locked(&locked)?;
    c.status()
        .require(if pause { Op::Pause } else { Op::Resume }, id)?;
    let cg = c.state.cgroup.as_ref().ok_or_else(|| {
        Error::InvalidState(format!(
            "container {id} has no cgroup of its own to freeze (rootless, and no cgroup \
                 is delegated to this user)"
        ))
    })?;
    cg.set_frozen(pause, Duration::from_secs(10))
}
