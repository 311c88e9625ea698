//! The container lifecycle on the parent's side, one file per operation:
//! creating -> created -> running (-> paused) -> stopped, with every
//! transition taken under the container's lock (state/), checked against
//! one table of what each status allows (status.rs), and every failed
//! create undone.

mod create;
mod delete;
pub mod exec;
mod kill;
mod netdev;
mod pause;
mod pidfd_socket;
mod prelude;
mod query;
pub mod shim;
pub mod signal;
mod start;
mod status;
mod update;

use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use serde::Serialize;

use crate::config::spec::OCI_VERSION;
use crate::error::Result;
use crate::state::{ExitRecord, Locked, Phase, Root, State, EXEC_FIFO};
use crate::sys::pidfd::pidfd_open;
use crate::sys::process::start_time;

pub(crate) use create::start_scope;
pub use create::{check_passed_fds, create, CreateOptions, Created};
pub use delete::delete;
pub use kill::kill;
pub use pause::{pause, resume};
pub use query::{cgroup_of, is_live, list, pids, state, wait, Listed};
pub use start::start;
pub use status::{Op, Status};
pub use update::{update, update_intel_rdt};

/// The OCI state JSON, fields in runc's order.
#[derive(Debug, Clone, Serialize)]
pub struct OciState {
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub status: Status,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub annotations: HashMap<String, String>,
    /// How a stopped container's init ended, when a shim watched it.
    /// Extra fields: runc's parsers ignore them.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub exit: Option<ExitView>,
}

/// The exit as `rt state` shows it; `exitStatus` is null when the shim
/// died without recording it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ExitView {
    #[serde(rename = "exitStatus")]
    pub status: Option<i32>,
    #[serde(rename = "exitSignal", skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    #[serde(rename = "exitedAt", skip_serializing_if = "Option::is_none")]
    pub exited_at: Option<String>,
}

impl ExitView {
    fn of(record: Option<ExitRecord>) -> ExitView {
        match record {
            Some(r) => ExitView {
                status: Some(r.status),
                signal: r.signal.map(crate::container::signal::name),
                exited_at: Some(r.exited_at),
            },
            None => ExitView {
                status: None,
                signal: None,
                exited_at: None,
            },
        }
    }
}

/// A loaded container and the live view of it.
pub struct Container {
    pub state: State,
    pub dir: PathBuf,
}

impl Container {
    pub fn load(root: &Root, id: &str) -> Result<Container> {
        Ok(Container {
            state: root.load(id)?,
            dir: root.dir_of(id),
        })
    }

    pub(crate) fn from_locked(l: &Locked) -> Result<Container> {
        Ok(Container {
            state: l.load()?,
            dir: l.dir.clone(),
        })
    }

    /// A pidfd on the init if it is still the same live process.
    pub fn init_pidfd(&self) -> Option<OwnedFd> {
        if self.state.pid <= 0 {
            return None;
        }
        let fd = pidfd_open(self.state.pid).ok()?;
        // Checked after opening: the pidfd then surely names this process.
        (start_time(self.state.pid) == Some(self.state.pid_start)).then_some(fd)
    }

    /// A pidfd on the container's rt-shim while it runs.
    pub fn shim_pidfd(&self) -> Option<OwnedFd> {
        let s = &self.state;
        if !s.shim || s.creator_pid <= 0 {
            return None;
        }
        let fd = pidfd_open(s.creator_pid).ok()?;
        (start_time(s.creator_pid) == Some(s.creator_start)).then_some(fd)
    }

    pub fn status(&self) -> Status {
        let s = &self.state;
        if s.phase == Phase::Creating {
            return if s.creator_pid > 0 && start_time(s.creator_pid) == Some(s.creator_start) {
                Status::Creating
            } else {
                Status::Stopped
            };
        }
        if s.pid <= 0 || start_time(s.pid) != Some(s.pid_start) {
            return Status::Stopped;
        }
        if self.dir.join(EXEC_FIFO).exists() {
            return Status::Created;
        }
        if s.cgroup.as_ref().is_some_and(|c| c.is_frozen()) {
            return Status::Paused;
        }
        Status::Running
    }

    pub fn oci_state(&self) -> OciState {
        let status = self.status();
        let mut o = OciState::of(&self.state, status);
        if status == Status::Stopped {
            o.pid = 0;
            if self.state.shim {
                o.exit = Some(ExitView::of(ExitRecord::read(&self.dir)));
            }
        }
        o
    }
}

impl OciState {
    /// The state JSON of `s` with a status the caller already knows.
    pub(crate) fn of(s: &State, status: Status) -> OciState {
        OciState {
            oci_version: OCI_VERSION.into(),
            id: s.id.clone(),
            pid: s.pid,
            status,
            bundle: s.bundle.clone(),
            rootfs: s.rootfs.clone(),
            created: s.created.clone(),
            owner: s.owner.clone(),
            annotations: s.annotations.clone(),
            exit: None,
        }
    }
}

/// The state JSON a hook gets on stdin.
/// (The status is the lifecycle point's, not looked up: the hook runs at a
/// known moment and the init's pid is given even after it exited.)
pub(crate) fn hook_state_json(state: &State, status: Status) -> String {
    serde_json::to_string(&OciState::of(state, status)).expect("state serializes")
}

/// Waits until the process behind `pidfd` has exited (or `timeout`).
pub fn wait_exit(pidfd: BorrowedFd<'_>, timeout: Duration) -> bool {
    let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
    loop {
        match poll(
            &mut fds,
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(n) => return n > 0,
            Err(nix::Error::EINTR) => continue,
            Err(_) => return false,
        }
    }
}
