//! `rt kill`: a signal to the init through its pidfd, or with `--all` to
//! every process of the container's cgroup.

use super::{Container, Op};
use crate::error::{Context, Error, Result};
use crate::state::Root;
use crate::sys::pidfd::pidfd_send_signal;

/// Sends a signal to the init, or with `all` to every process of the
/// container's cgroup.
pub fn kill(root: &Root, id: &str, sig: i32, all: bool) -> Result<()> {
    let c = Container::load(root, id)?;
    c.status().require(Op::Kill, id)?;
    if all {
        let cg = c.state.cgroup.as_ref().ok_or_else(|| {
            Error::InvalidState(format!(
                "container {id} has no cgroup of its own (rootless, and no cgroup is \
                 delegated to this user): kill --all cannot find its processes; kill the \
                 init, which takes its pid namespace with it"
            ))
        })?;
        return cg.signal_all(sig);
    }
    let pidfd = c
        .init_pidfd()
        .ok_or_else(|| Error::InvalidState("container not running".into()))?;
    pidfd_send_signal(&pidfd, sig).with_ctx(|| format!("send signal {sig} to the init of {id}"))
}
