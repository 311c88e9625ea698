//! A container's status and the rules of which operation each allows,
//! in one table, with runc's wording (managers and tests match on it).

use serde::Serialize;

use crate::error::{Error, Result};

/// The status of a container, as `rt state` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// An operation on an existing container, for [`Status::require`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Start,
    /// `all`: `kill --all`, which runc allows on a stopped container too
    /// (what is left in its cgroup, when it shared a pid namespace).
    Kill {
        all: bool,
    },
    Pause,
    Resume,
    Update,
    /// Reading the cgroup's usage (`rt events`).
    Stats,
    Delete {
        force: bool,
    },
    Exec {
        ignore_paused: bool,
    },
    /// `rt checkpoint`: CRIU dumps running processes (a paused
    /// container's too: CRIU freezes the cgroup anyway).
    Checkpoint,
}

impl Status {
    /// Whether this container is alive: created, running or paused.
    pub fn is_live(self) -> bool {
        matches!(self, Status::Created | Status::Running | Status::Paused)
    }

    /// Ok when `op` is allowed in this status; otherwise the error a user
    /// of runc would see.
    pub fn require(self, op: Op, id: &str) -> Result<()> {
        use Status::*;
        let refuse = |msg: String| Err(Error::InvalidState(msg));
        match (op, self) {
            (_, Creating) if !matches!(op, Op::Delete { .. }) => {
                refuse(format!("container {id} is still being created"))
            }
            (Op::Start, Created) => Ok(()),
            (Op::Start, Stopped) => refuse("cannot start a container that has stopped".into()),
            (Op::Start, Paused) => refuse("cannot start a container in the paused state".into()),
            (Op::Start, _) => refuse("cannot start an already running container".into()),
            (Op::Kill { all: false }, Stopped) => refuse("container not running".into()),
            (Op::Kill { .. }, _) => Ok(()),
            (Op::Pause, Running) | (Op::Resume, Paused) => Ok(()),
            // runc's words first (callers match them), then why.
            (Op::Pause, Paused) => refuse(format!("container not running: {id} is already paused")),
            (Op::Resume, s) => refuse(format!("container not paused: {id} is {s}")),
            (Op::Pause, s) => refuse(format!(
                "container not running: {id} is {s}, and only a running container can be paused"
            )),
            (Op::Update, s) if s.is_live() => Ok(()),
            (Op::Update, s) => refuse(format!(
                "container {id} is {s}: only a live container can be updated"
            )),
            (Op::Stats, s) if s.is_live() => Ok(()),
            (Op::Stats, s) => refuse(format!("container {id} is {s}: it has no resource usage")),
            (Op::Delete { .. }, Stopped | Created | Creating) => Ok(()),
            (Op::Delete { force: true }, _) => Ok(()),
            (Op::Delete { force: false }, s) => refuse(format!(
                "cannot delete container {id} that is not stopped: {s}"
            )),
            (Op::Exec { .. }, Running | Created) => Ok(()),
            (
                Op::Exec {
                    ignore_paused: true,
                },
                Paused,
            ) => Ok(()),
            (
                Op::Exec {
                    ignore_paused: false,
                },
                Paused,
            ) => {
                refuse("cannot exec in a paused container (use --ignore-paused to override)".into())
            }
            (Op::Exec { .. }, s) => refuse(format!("cannot exec in a {s} container")),
            (Op::Checkpoint, Running | Paused) => Ok(()),
            // runc's words first, then why.
            (Op::Checkpoint, s) => refuse(format!(
                "container not running: {id} is {s}, and only a running container can be checkpointed"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_operation_is_allowed_only_where_runc_allows_it() {
        use Status::*;
        let all = [Creating, Created, Running, Paused, Stopped];
        let allowed = |op: Op| -> Vec<Status> {
            all.into_iter()
                .filter(|s| s.require(op, "c").is_ok())
                .collect()
        };
        assert_eq!(allowed(Op::Start), [Created]);
        assert_eq!(allowed(Op::Kill { all: false }), [Created, Running, Paused]);
        assert_eq!(
            allowed(Op::Kill { all: true }),
            [Created, Running, Paused, Stopped]
        );
        assert_eq!(allowed(Op::Pause), [Running]);
        assert_eq!(allowed(Op::Resume), [Paused]);
        assert_eq!(allowed(Op::Update), [Created, Running, Paused]);
        assert_eq!(allowed(Op::Stats), [Created, Running, Paused]);
        assert_eq!(
            allowed(Op::Delete { force: false }),
            [Creating, Created, Stopped]
        );
        assert_eq!(allowed(Op::Delete { force: true }), all);
        assert_eq!(
            allowed(Op::Exec {
                ignore_paused: false
            }),
            [Created, Running]
        );
        assert_eq!(
            allowed(Op::Exec {
                ignore_paused: true
            }),
            [Created, Running, Paused]
        );
        assert_eq!(allowed(Op::Checkpoint), [Running, Paused]);
        let msg = Running.require(Op::Start, "c").unwrap_err().to_string();
        assert_eq!(msg, "cannot start an already running container");
    }
}
