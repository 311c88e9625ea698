//! How the shim's failures reach containerd: a ttrpc status, whose code
//! containerd turns back into its own error kinds (`errdefs`: not found,
//! already exists, failed precondition, ...). A code other than UNKNOWN
//! is what lets containerd, and its clients, act on a refusal.

use containerd_shim::protos::ttrpc::{self, Code};
use rt::error::ErrorKind;

/// A failure with `code`.
pub(super) fn status(code: Code, msg: impl Into<String>) -> ttrpc::Error {
    ttrpc::Error::RpcStatus(ttrpc::get_status(code, msg.into()))
}

/// The code containerd is answered with for a kind of failure of the rt
/// library (through the zygote's `Reply::Failed` or a direct call).
pub(super) fn code(kind: ErrorKind) -> Code {
    match kind {
        ErrorKind::NotFound => Code::NOT_FOUND,
        ErrorKind::AlreadyExists => Code::ALREADY_EXISTS,
        ErrorKind::WrongState => Code::FAILED_PRECONDITION,
        ErrorKind::InvalidInput => Code::INVALID_ARGUMENT,
        ErrorKind::Unsupported => Code::UNIMPLEMENTED,
        ErrorKind::HostLacks => Code::FAILED_PRECONDITION,
        ErrorKind::Unavailable => Code::UNAVAILABLE,
        ErrorKind::Other => Code::UNKNOWN,
    }
}

/// A library error, with the code of its kind.
pub(super) fn from_rt(e: &rt::Error) -> ttrpc::Error {
    status(code(e.kind()), e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code_of(e: ttrpc::Error) -> (Code, String) {
        match e {
            ttrpc::Error::RpcStatus(s) => (s.code(), s.message().to_string()),
            e => panic!("not a status: {e:?}"),
        }
    }

    #[test]
    fn each_kind_has_its_code() {
        let cases = [
            (rt::Error::NotFound("c1".into()), Code::NOT_FOUND),
            (rt::Error::Exists("c1".into()), Code::ALREADY_EXISTS),
            (
                rt::Error::InvalidState("cannot start a container that has stopped".into()),
                Code::FAILED_PRECONDITION,
            ),
            (
                rt::Error::InvalidField {
                    field: "linux.resources.memory.limit".into(),
                    reason: "-2 is not a limit".into(),
                },
                Code::INVALID_ARGUMENT,
            ),
            (
                rt::Error::InvalidArgument {
                    arg: "--cgroup \"a:b\"".into(),
                    reason: "per-controller paths are for cgroup v1".into(),
                },
                Code::INVALID_ARGUMENT,
            ),
            (
                rt::Error::HostLacks("no cgroup2 filesystem is mounted".into()),
                Code::FAILED_PRECONDITION,
            ),
            (
                rt::Error::SystemdNotRunning("cannot connect to its bus: refused".into()),
                Code::UNAVAILABLE,
            ),
            (
                rt::Error::TimedOut {
                    what: "cgroup /sys/fs/cgroup/x still has processes after SIGKILL".into(),
                    after: std::time::Duration::from_secs(5),
                },
                Code::UNAVAILABLE,
            ),
            // A failed hook is the hook's failure, not a bad request.
            (
                rt::Error::Hook {
                    stage: "poststart",
                    index: 0,
                    path: "/bin/false".into(),
                    reason: "exit status 1".into(),
                    stopped: true,
                },
                Code::UNKNOWN,
            ),
            // A cause wrapped with its field keeps its kind.
            (
                rt::Error::NotFound("c1".into()).in_field("mounts[0]"),
                Code::NOT_FOUND,
            ),
            (
                rt::Error::Reported {
                    msg: "container with given ID already exists: c1".into(),
                    kind: ErrorKind::AlreadyExists,
                    errno: None,
                },
                Code::ALREADY_EXISTS,
            ),
            (
                rt::Error::Unsupported("checkpoint".into()),
                Code::UNIMPLEMENTED,
            ),
            (rt::Error::Init("exec /x: ENOENT".into()), Code::UNKNOWN),
            // Checkpoint and restore: a CRIU that is missing or cannot
            // start here is the host's lack; a failed dump is CRIU's failure.
            (
                rt::Error::CriuUnavailable {
                    criu: "criu".into(),
                    reason: "no such program (install criu, or name it with --criu)".into(),
                },
                Code::FAILED_PRECONDITION,
            ),
            (
                rt::Error::Criu {
                    request: "dump",
                    reason: "Can't dump ghost file".into(),
                },
                Code::UNKNOWN,
            ),
        ];
        for (e, want) in cases {
            let text = e.to_string();
            let (got, msg) = code_of(from_rt(&e));
            assert_eq!(got, want, "{text}");
            assert_eq!(msg, text, "the message is the library's");
        }
    }

    #[test]
    fn a_kind_survives_the_zygote_channel() {
        // The reply crosses a socket as JSON: the kind must come back.
        let e = rt::Error::InvalidState("paused".into());
        let json = serde_json::to_string(&e.kind()).unwrap();
        let back: ErrorKind = serde_json::from_str(&json).unwrap();
        assert_eq!(code(back), Code::FAILED_PRECONDITION);
    }
}
