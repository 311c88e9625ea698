//! The library's error type. Every variant renders as one line that names
//! what was wrong: the field, the path or the container id.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// config.json is missing, malformed, or asks for something invalid.
    #[error("{file}: {msg}")]
    Config { file: PathBuf, msg: String },

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

    #[error("{0}")]
    Invalid(String),

    /// execve of the container's program failed, in runc's words, which
    /// callers match ("exec /run.sh: no such file or directory"; Docker
    /// turns that one into exit 127).
    #[error("exec {}: {}", path.display(), go_strerror(*errno))]
    Execve { path: PathBuf, errno: nix::Error },

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
    /// Anything else: a system call, the init, I/O.
    Other,
}

impl Error {
    /// The kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::Exists(_) => ErrorKind::AlreadyExists,
            Error::InvalidState(_) => ErrorKind::WrongState,
            Error::Config { .. }
            | Error::InvalidId { .. }
            | Error::Invalid(_)
            | Error::CgroupInUse { .. } => ErrorKind::InvalidInput,
            Error::Unsupported(_) => ErrorKind::Unsupported,
            Error::HostLacks(_) => ErrorKind::HostLacks,
            Error::CleanupFailed { cause, .. } => cause.kind(),
            _ => ErrorKind::Other,
        }
    }

    /// The errno behind this error, if it came from a system call.
    pub fn errno(&self) -> Option<nix::errno::Errno> {
        match self {
            Error::Sys { source, .. } => Some(*source),
            Error::Execve { errno, .. } => Some(*errno),
            Error::ChildFailed { errno, .. } => *errno,
            Error::CleanupFailed { cause, .. } => cause.errno(),
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
}
