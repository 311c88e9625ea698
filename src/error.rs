//! The library's error type. Every variant renders as one line that names
//! what was wrong: the field, the path or the container id.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// config.json is missing, malformed, or asks for something invalid.
    #[error("{file}: {msg}")]
    Config { file: PathBuf, msg: String },

    /// rt's own settings file (`cgroup::hybrid`) is unreadable or malformed.
    #[error("rt settings {file}: {msg}")]
    Settings { file: PathBuf, msg: String },

    #[error("invalid container id {id:?}: {reason}")]
    InvalidId { id: String, reason: &'static str },

    #[error("container with given ID already exists: {0}")]
    Exists(String),

    #[error("container does not exist: {0}")]
    NotFound(String),

    /// An operation that the container's current status does not allow.
    #[error("{0}")]
    InvalidState(String),

    /// The state directory of a container is unreadable or corrupt.
    #[error("state file {path}: {msg}")]
    CorruptState { path: PathBuf, msg: String },

    /// Something rt does not implement (yet): never silently skipped.
    #[error("{0}: not supported by rt")]
    Unsupported(String),

    /// The host lacks what the config needs (a cgroup controller, the
    /// cgroup2 filesystem): the config is fine, this machine cannot run it.
    #[error("{0}")]
    HostLacks(String),

    /// A failure inside the container's init before it could exec.
    #[error("container init: {0}")]
    Init(String),

    /// The init (or, with `exec`, the process `rt exec` started) failed
    /// before it could exec, with the errno of the failing call if any.
    #[error("{}{msg}", if *exec { "exec failed: " } else { "container init: " })]
    ChildFailed {
        exec: bool,
        errno: Option<nix::errno::Errno>,
        msg: String,
    },

    /// A failure of the process `rt exec` started, before it could exec.
    #[error("exec failed: {0}")]
    Exec(String),

    /// A config.json field whose value rt refuses. `field` is its path as
    /// config.json writes it (`linux.resources.memory.limit`,
    /// `mounts[2]`), with the value when that names it better.
    #[error("{field}: {reason}")]
    InvalidField { field: String, reason: String },

    /// A command-line argument (or a value a caller passed the library
    /// for one) that rt refuses: `arg` is the flag, with its value.
    #[error("{arg}: {reason}")]
    InvalidArgument { arg: String, reason: String },

    /// Flags, environment and config that do not go together; the message
    /// says what to give instead. Fixed words, no value to carry.
    #[error("{0}")]
    Usage(&'static str),

    /// A signal name or number rt does not know (runc's words).
    #[error("unknown signal {0:?}")]
    UnknownSignal(String),

    /// Something at `path` (mostly in the container's root) is not what
    /// it must be, so rt refuses to use it rather than be misled
    /// (a procfs that is not one, a device node that is not the device).
    #[error("{} {reason}", path.display())]
    UnsafePath { path: PathBuf, reason: String },

    /// A failure while applying `field` (the config's, or what rt was
    /// doing): the cause is kept whole, its kind and errno with it.
    #[error("{field}: {source}")]
    InField {
        field: String,
        #[source]
        source: Box<Error>,
    },

    /// A hook failed (runc's words, which callers match: "error running
    /// prestart hook #1: ..."). `stopped`: rt stopped the container for
    /// it (a poststart hook).
    #[error(
        "error running {stage} hook #{index}: {}: {reason}{}",
        path.display(),
        if *stopped { "; the container was stopped" } else { "" }
    )]
    Hook {
        stage: &'static str,
        index: usize,
        path: PathBuf,
        reason: String,
        stopped: bool,
    },

    /// The container's program cannot be started (runc's words, which
    /// callers match), with the errno that says why when there is one.
    #[error("unable to start container process: exec: {arg0:?}: {reason}")]
    Program {
        arg0: String,
        reason: String,
        errno: Option<nix::errno::Errno>,
    },

    /// The container's program is rt's own binary (CVE-2019-5736), maybe
    /// through the interpreter its `#!` line names.
    #[error(
        "exec: {program:?}{}: is the container runtime's own binary; refused, since a container could overwrite it through /proc (CVE-2019-5736)",
        interpreter.as_ref().map(|p| format!(" (through its interpreter {})", p.display())).unwrap_or_default()
    )]
    RuntimeBinary {
        program: String,
        interpreter: Option<PathBuf>,
    },

    /// The kernel refused a value written to a cgroup interface file.
    #[error(
        "cgroup {}: write {value:?} to {file}: {}",
        dir.display(),
        if error.kind() == std::io::ErrorKind::NotFound {
            "no such interface file in this cgroup".to_string()
        } else {
            error.to_string()
        }
    )]
    CgroupWrite {
        dir: PathBuf,
        file: String,
        value: String,
        /// Not a `#[source]`: the message says it in its own words when
        /// the file is missing, and a printed chain would repeat it.
        error: std::io::Error,
    },

    /// Something rt waited for did not happen in time.
    #[error("{what} (waited {after:?})")]
    TimedOut {
        what: String,
        after: std::time::Duration,
    },

    /// Two of rt's own processes (rt, the init, rt-shim) did not follow
    /// their protocol: a message that is malformed, unexpected or missing.
    #[error("{0}")]
    Protocol(String),

    /// Data rt serializes or parses for itself (state.json, a message).
    #[error("{what}: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },

    /// A failure another of rt's processes (the forked child that becomes
    /// rt-shim) reported as text, with the kind and errno it had there.
    #[error("{msg}")]
    Reported {
        msg: String,
        kind: ErrorKind,
        errno: Option<nix::errno::Errno>,
    },

    /// rt broke an assumption of its own: a bug.
    #[error("internal: {0}")]
    Internal(&'static str),

    /// execve of the container's program failed, in runc's words, which
    /// callers match ("exec /run.sh: no such file or directory"; Docker
    /// turns that one into exit 127).
    #[error("exec {}: {}", path.display(), go_strerror(*errno))]
    Execve { path: PathBuf, errno: nix::Error },

    /// The kernel would not start a process in a cgroup (clone3's
    /// CLONE_INTO_CGROUP; EBUSY: it hands controllers down), in runc's
    /// words ("adding pid ... to cgroups: ...cgroup.procs: device or
    /// resource busy", which exec.bats matches).
    #[error(
        "clone3 into cgroup {}: adding pid to cgroups: {}/cgroup.procs: {}",
        dir.display(),
        dir.display(),
        go_strerror(*errno)
    )]
    JoinCgroup { dir: PathBuf, errno: nix::Error },

    /// An existing cgroup a container was to be placed in is in use.
    #[error("cgroup {dir}: {why}; rt does not place a container in a cgroup in use (another container's?)")]
    CgroupInUse { dir: PathBuf, why: String },
    /// `--systemd-cgroup` on a host where systemd is not running (or its
    /// bus cannot be reached).
    #[error("--systemd-cgroup: systemd is not running on this host ({0}), so rt cannot ask it for the container's cgroup")]
    SystemdNotRunning(String),

    /// systemd refused or failed a request over D-Bus.
    #[error("systemd: {what}: {msg}")]
    Systemd { what: String, msg: String },

    /// CRIU cannot be used on this host: the binary is missing, or it
    /// cannot start (its version or its own check of the kernel failed),
    /// with CRIU's reason.
    #[error("CRIU cannot be used ({}): {reason}", criu.display())]
    CriuUnavailable { criu: PathBuf, reason: String },

    /// CRIU ran and failed a request (dump, restore), with its reason
    /// (its message, the first error line of its log, and the log).
    #[error("criu {request} failed: {reason}")]
    Criu {
        request: &'static str,
        reason: String,
    },

    /// Mounts rt made in the host's mount namespace (a container without
    /// a mount namespace of its own) that it could not unmount, each
    /// with its reason.
    #[error("unmount the container's mounts in the host's mount namespace: {0}")]
    Unmount(String),

    /// An operation failed, and undoing what it had made failed too.
    #[error("{cause} (cleaning up failed too: {cleanup})")]
    CleanupFailed { cause: Box<Error>, cleanup: String },

    #[error("{context}: {source}")]
    Sys {
        context: String,
        #[source]
        source: nix::Error,
    },

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

/// Adds a description of what was being done to a low-level error.
pub trait Context<T> {
    fn ctx<S: Into<String>>(self, context: S) -> Result<T>;
    fn with_ctx<S: Into<String>, F: FnOnce() -> S>(self, f: F) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, nix::Error> {
    fn ctx<S: Into<String>>(self, context: S) -> Result<T> {
        self.map_err(|source| Error::Sys {
            context: context.into(),
            source,
        })
    }
    fn with_ctx<S: Into<String>, F: FnOnce() -> S>(self, f: F) -> Result<T> {
        self.map_err(|source| Error::Sys {
            context: f().into(),
            source,
        })
    }
}

impl<T> Context<T> for std::result::Result<T, std::io::Error> {
    fn ctx<S: Into<String>>(self, context: S) -> Result<T> {
        self.map_err(|source| Error::Io {
            context: context.into(),
            source,
        })
    }
    fn with_ctx<S: Into<String>, F: FnOnce() -> S>(self, f: F) -> Result<T> {
        self.map_err(|source| Error::Io {
            context: f().into(),
            source,
        })
    }
}

/// What kind of failure an [`Error`] is, for callers that answer in
/// another protocol (containerd's shim maps these to gRPC codes).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ErrorKind {
    /// No container with that id.
    NotFound,
    /// A container with that id exists already.
    AlreadyExists,
    /// The container's status does not allow the operation.
    WrongState,
    /// The config, an id or an argument is invalid.
    InvalidInput,
    /// rt does not implement what was asked.
    Unsupported,
    /// The host lacks what it takes (a controller, a filesystem).
    HostLacks,
    /// Something rt needs is not there now but may be later: systemd or
    /// its bus unreachable, a wait that timed out.
    Unavailable,
    /// Anything else: a system call, the init, I/O, a hook.
    #[default]
    Other,
}

impl Error {
    /// `cause`, or, when undoing what failed left `failed` behind, `cause`
    /// with those failures named (one source for every undo path).
    pub fn after_cleanup(cause: Error, failed: Vec<String>) -> Error {
        if failed.is_empty() {
            cause
        } else {
            Error::CleanupFailed {
                cause: Box::new(cause),
                cleanup: failed.join("; "),
            }
        }
    }

    /// The kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::Exists(_) => ErrorKind::AlreadyExists,
            Error::InvalidState(_) => ErrorKind::WrongState,
            Error::Config { .. }
            | Error::InvalidId { .. }
            | Error::InvalidField { .. }
            | Error::InvalidArgument { .. }
            | Error::Usage(_)
            | Error::UnknownSignal(_)
            | Error::UnsafePath { .. }
            | Error::Program { .. }
            | Error::RuntimeBinary { .. }
            | Error::CgroupWrite { .. }
            | Error::JoinCgroup { .. }
            | Error::CgroupInUse { .. } => ErrorKind::InvalidInput,
            Error::Unsupported(_) => ErrorKind::Unsupported,
            Error::HostLacks(_) | Error::Settings { .. } | Error::CriuUnavailable { .. } => {
                ErrorKind::HostLacks
            }
            Error::SystemdNotRunning(_) | Error::TimedOut { .. } => ErrorKind::Unavailable,
            Error::CleanupFailed { cause, .. } => cause.kind(),
            Error::InField { source, .. } => source.kind(),
            Error::Reported { kind, .. } => *kind,
            Error::Init(_)
            | Error::ChildFailed { .. }
            | Error::Exec(_)
            | Error::Execve { .. }
            | Error::Systemd { .. }
            | Error::Hook { .. }
            | Error::Protocol(_)
            | Error::Criu { .. }
            | Error::Unmount(_)
            | Error::Json { .. }
            | Error::Internal(_)
            | Error::CorruptState { .. }
            | Error::Sys { .. }
            | Error::Io { .. } => ErrorKind::Other,
        }
    }

    /// A config check's message, which names its field first
    /// ("rlimits[0]: ..."), as [`Error::InvalidField`] with the field
    /// under `prefix` ("process."). A message without a field is the
    /// prefix's.
    pub fn field_message(prefix: &str, msg: &str) -> Error {
        match msg.split_once(": ") {
            Some((field, reason)) => Error::InvalidField {
                field: format!("{prefix}{field}"),
                reason: reason.to_string(),
            },
            None => Error::InvalidField {
                field: prefix.trim_end_matches('.').to_string(),
                reason: msg.to_string(),
            },
        }
    }

    /// This error as the cause of a failure while applying `field`.
    pub fn in_field(self, field: impl Into<String>) -> Error {
        Error::InField {
            field: field.into(),
            source: Box::new(self),
        }
    }

    /// The errno behind this error, if it came from a system call.
    pub fn errno(&self) -> Option<nix::errno::Errno> {
        match self {
            Error::Sys { source, .. } => Some(*source),
            Error::Execve { errno, .. } => Some(*errno),
            Error::ChildFailed { errno, .. } => *errno,
            Error::CleanupFailed { cause, .. } => cause.errno(),
            Error::InField { source, .. } => source.errno(),
            Error::Program { errno, .. } | Error::Reported { errno, .. } => *errno,
            Error::CgroupWrite { error, .. } => {
                error.raw_os_error().map(nix::errno::Errno::from_raw)
            }
            Error::Io { source, .. } => source.raw_os_error().map(nix::errno::Errno::from_raw),
            _ => None,
        }
    }
}

/// An errno as Go prints it (runc's messages): strerror with a lower-case
/// first letter, "no such file or directory".
pub fn go_strerror(e: nix::errno::Errno) -> String {
    let desc = e.desc();
    let mut c = desc.chars();
    match c.next() {
        Some(first) => first.to_lowercase().chain(c).collect(),
        None => desc.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execve_errors_read_as_runc_words_them() {
        let e = Error::Execve {
            path: "/run.sh".into(),
            errno: nix::errno::Errno::ENOENT,
        };
        assert_eq!(e.to_string(), "exec /run.sh: no such file or directory");
        assert_eq!(go_strerror(nix::errno::Errno::ENOEXEC), "exec format error");
    }

    #[test]
    fn runcs_words_stay_byte_for_byte() {
        assert_eq!(
            Error::NotFound("c1".into()).to_string(),
            "container does not exist: c1"
        );
        assert_eq!(
            Error::Exists("c1".into()).to_string(),
            "container with given ID already exists: c1"
        );
        assert_eq!(
            Error::UnknownSignal("SIGFOO".into()).to_string(),
            "unknown signal \"SIGFOO\""
        );
        let e = Error::Program {
            arg0: "nope".into(),
            reason: "executable file not found in $PATH".into(),
            errno: Some(nix::errno::Errno::ENOENT),
        };
        assert_eq!(
            e.to_string(),
            "unable to start container process: exec: \"nope\": executable file not found in $PATH"
        );
        assert_eq!(e.errno(), Some(nix::errno::Errno::ENOENT));
    }

    #[test]
    fn a_field_is_named_and_matchable() {
        let e = Error::InvalidField {
            field: "linux.resources.memory.limit".into(),
            reason: "1 is below the 4096 bytes the container uses now".into(),
        };
        assert_eq!(
            e.to_string(),
            "linux.resources.memory.limit: 1 is below the 4096 bytes the container uses now"
        );
        assert!(
            matches!(&e, Error::InvalidField { field, .. } if field == "linux.resources.memory.limit")
        );
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert_eq!(e.errno(), None);
        let e = Error::field_message("process.", "rlimits[0]: RLIMIT_NOFILE is given twice");
        assert!(matches!(&e, Error::InvalidField { field, reason }
            if field == "process.rlimits[0]" && reason == "RLIMIT_NOFILE is given twice"));
        assert_eq!(
            e.to_string(),
            "process.rlimits[0]: RLIMIT_NOFILE is given twice"
        );
    }

    #[test]
    fn a_wrapped_cause_keeps_its_errno_and_kind() {
        let e = Error::Sys {
            context: "chdir /nope".into(),
            source: nix::errno::Errno::ENOENT,
        }
        .in_field("process.cwd");
        assert_eq!(
            e.to_string(),
            "process.cwd: chdir /nope: ENOENT: No such file or directory"
        );
        assert_eq!(e.errno(), Some(nix::errno::Errno::ENOENT));
        assert_eq!(e.kind(), ErrorKind::Other);
        let Error::InField { field, source } = &e else {
            panic!("{e:?}")
        };
        assert_eq!(field, "process.cwd");
        assert!(matches!(**source, Error::Sys { .. }));
        assert!(std::error::Error::source(&e).is_some());
        let e = Error::NotFound("c1".into()).in_field("mounts[0]");
        assert_eq!(e.kind(), ErrorKind::NotFound);
    }

    #[test]
    fn a_failed_hook_is_not_invalid_input() {
        let mut e = Error::Hook {
            stage: "poststart",
            index: 0,
            path: "/bin/false".into(),
            reason: "exit status 1".into(),
            stopped: false,
        };
        assert_eq!(
            e.to_string(),
            "error running poststart hook #0: /bin/false: exit status 1"
        );
        assert_eq!(e.kind(), ErrorKind::Other);
        if let Error::Hook { stopped, .. } = &mut e {
            *stopped = true;
        }
        assert_eq!(
            e.to_string(),
            "error running poststart hook #0: /bin/false: exit status 1; the container was stopped"
        );
    }

    #[test]
    fn unsafe_paths_and_usage_read_as_before() {
        let e = Error::UnsafePath {
            path: "/proc".into(),
            reason: "is not a procfs mount: refusing to write through it".into(),
        };
        assert_eq!(
            e.to_string(),
            "/proc is not a procfs mount: refusing to write through it"
        );
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        let e = Error::Usage("--preserve-fds must not be negative");
        assert_eq!(e.to_string(), "--preserve-fds must not be negative");
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        let e = Error::InvalidArgument {
            arg: "--env \"X\"".into(),
            reason: "want KEY=VALUE".into(),
        };
        assert_eq!(e.to_string(), "--env \"X\": want KEY=VALUE");
    }

    #[test]
    fn what_may_come_back_later_is_unavailable() {
        let e = Error::TimedOut {
            what: "cgroup /sys/fs/cgroup/x still has processes after SIGKILL".into(),
            after: std::time::Duration::from_secs(5),
        };
        assert_eq!(
            e.to_string(),
            "cgroup /sys/fs/cgroup/x still has processes after SIGKILL (waited 5s)"
        );
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert_eq!(
            Error::SystemdNotRunning("no /run/systemd/system".into()).kind(),
            ErrorKind::Unavailable
        );
    }

    #[test]
    fn a_reported_error_keeps_its_kind_and_errno() {
        let e = Error::Reported {
            msg: "container with given ID already exists: c1".into(),
            kind: ErrorKind::AlreadyExists,
            errno: Some(nix::errno::Errno::EEXIST),
        };
        assert_eq!(e.to_string(), "container with given ID already exists: c1");
        assert_eq!(e.kind(), ErrorKind::AlreadyExists);
        assert_eq!(e.errno(), Some(nix::errno::Errno::EEXIST));
    }

    #[test]
    fn a_cgroup_write_names_the_file_and_keeps_the_errno() {
        let e = Error::CgroupWrite {
            dir: "/sys/fs/cgroup/c1".into(),
            file: "memory.max".into(),
            value: "x".into(),
            error: std::io::Error::from_raw_os_error(libc::EINVAL),
        };
        assert_eq!(e.errno(), Some(nix::errno::Errno::EINVAL));
        assert!(e
            .to_string()
            .starts_with("cgroup /sys/fs/cgroup/c1: write \"x\" to memory.max: "));
        let e = Error::CgroupWrite {
            dir: "/sys/fs/cgroup/c1".into(),
            file: "memory.nope".into(),
            value: "1".into(),
            error: std::io::Error::from_raw_os_error(libc::ENOENT),
        };
        assert_eq!(
            e.to_string(),
            "cgroup /sys/fs/cgroup/c1: write \"1\" to memory.nope: no such interface file in this cgroup"
        );
    }
}
