//! `rt kill`: a signal to the init through its pidfd, or with `--all` to
//! every process of the container's cgroup.

use oci_spec::runtime::LinuxNamespaceType;

use super::{Container, Op};
use crate::error::{Context, Error, Result};
use crate::state::Root;
use crate::sys::pidfd::pidfd_send_signal;

/// Sends a signal to the init, or with `all` to every process of the
/// container's cgroup. As runc does, `all` works on a stopped container
/// too, and a SIGKILL to a container without a pid namespace of its own
/// goes to its whole cgroup: there the init's death takes nothing with it
/// (a container that joined another's pid namespace would leave its
/// children running, holding its output open).
pub fn kill(root: &Root, id: &str, sig: i32, all: bool) -> Result<()> {
    let c = Container::load(root, id)?;
    let whole = sig == libc::SIGKILL && !c.has_own_pid_namespace();
    // Its init gone, such a container still has processes to kill.
    c.status().require(Op::Kill { all: all || whole }, id)?;
    match c.state.cgroup.as_ref() {
        Some(cg) if all || whole => return cg.signal_all(sig),
        None if all => {
            return Err(Error::InvalidState(format!(
                "container {id} has no cgroup of its own (rootless, and no cgroup is \
                 delegated to this user): kill --all cannot find its processes; kill the \
                 init, which takes its pid namespace with it"
            )))
        }
        _ => {}
    }
    let pidfd = c
        .init_pidfd()
        .ok_or_else(|| Error::InvalidState("container not running".into()))?;
    pidfd_send_signal(&pidfd, sig).with_ctx(|| format!("send signal {sig} to the init of {id}"))
}

impl Container {
    /// Whether the container's init was made in a new pid namespace (not
    /// the host's, nor one it joined by path).
    pub fn has_own_pid_namespace(&self) -> bool {
        self.state
            .config
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().as_ref())
            .is_some_and(|nss| {
                nss.iter()
                    .any(|n| n.typ() == LinuxNamespaceType::Pid && n.path().is_none())
            })
    }
}
