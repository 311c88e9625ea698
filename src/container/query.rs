//! What the read-only commands ask of containers: `state`, `list`, `ps`,
//! `wait`, and the cgroup `events` reads.

use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::Duration;

use super::{wait_exit, Container, OciState, Op, Status};
use crate::error::{Error, Result};
use crate::state::{ExitRecord, Root};

/// The state of one container.
pub fn state(root: &Root, id: &str) -> Result<OciState> {
    Ok(Container::load(root, id)?.oci_state())
}

/// A container in `rt list`: its state and the owner of its directory.
pub struct Listed {
    pub state: OciState,
    pub owner: String,
}

/// Every container under the root. One that vanishes while being listed
/// is skipped; one whose state is unreadable is reported in the log.
pub fn list(root: &Root) -> Result<Vec<Listed>> {
    let mut out = Vec::new();
    for id in root.ids()? {
        match Container::load(root, &id) {
            Ok(c) => {
                let uid = std::fs::metadata(&c.dir).map(|m| m.uid()).unwrap_or(0);
                out.push(Listed {
                    owner: user_name(uid),
                    state: c.oci_state(),
                });
            }
            Err(Error::NotFound(_)) => {}
            Err(e) => log::warn!("{e}"),
        }
    }
    Ok(out)
}

fn user_name(uid: u32) -> String {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| format!("#{uid}"))
}

/// The cgroup directory of a live container (`rt events`), or why there
/// is none.
pub fn cgroup_of(root: &Root, id: &str) -> Result<PathBuf> {
    let c = Container::load(root, id)?;
    c.status().require(Op::Stats, id)?;
    c.state
        .cgroup
        .as_ref()
        .map(|cg| cg.dir.clone())
        .ok_or_else(|| {
            Error::InvalidState(format!(
                "container {id} has no cgroup of its own (rootless, and no cgroup is \
                 delegated to this user): no stats"
            ))
        })
}

/// Whether the container is still alive (created, running or paused).
pub fn is_live(root: &Root, id: &str) -> bool {
    Container::load(root, id).is_ok_and(|c| c.status().is_live())
}

/// The pids of every process in the container's cgroup (`rt ps`).
pub fn pids(root: &Root, id: &str) -> Result<Vec<i32>> {
    let c = Container::load(root, id)?;
    if c.status() == Status::Stopped {
        return Ok(vec![]);
    }
    match &c.state.cgroup {
        Some(cg) => cg.pids(),
        None => Err(Error::InvalidState(format!(
            "container {id} has no cgroup of its own (rootless, and no cgroup is delegated \
             to this user): its processes cannot be listed"
        ))),
    }
}

/// Blocks until the container's init has exited and returns how, as its
/// shim recorded it (`rt wait`).
pub fn wait(root: &Root, id: &str) -> Result<ExitRecord> {
    let c = Container::load(root, id)?;
    if !c.state.shim {
        return Err(Error::InvalidState(format!(
            "container {id} has no rt-shim (it was created with --shim=never, --pid-file or --console-socket): its exit status is not recorded"
        )));
    }
    if let Some(shim) = c.shim_pidfd() {
        // The shim exits right after writing the record.
        while !wait_exit(shim.as_fd(), Duration::from_secs(3600)) {}
    }
    ExitRecord::read(&c.dir).ok_or_else(|| {
        Error::InvalidState(format!(
            "container {id}: its rt-shim is gone without recording how the container ended"
        ))
    })
}
