//! What `create` and `exec` both check and prepare before a process is
//! cloned: the terminal and console socket agree, the seccomp profile
//! compiles, and a notify listener has an agent to go to.

use std::os::fd::OwnedFd;
use std::path::Path;

use nix::unistd::Pid;
use oci_spec::runtime::Spec;

use super::OciState;
use crate::error::{Error, Result};
use crate::seccomp::Compiled;

/// Who is asking, for the wording of the errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Caller {
    Create,
    Exec,
}

/// `process.terminal` needs a console socket (or rt holding the pty
/// itself), and a console socket needs a terminal.
pub(super) fn check_console(
    caller: Caller,
    terminal: bool,
    console_socket: Option<&Path>,
    own_console: bool,
) -> Result<()> {
    let msg = match (caller, terminal, console_socket.is_some()) {
        (_, true, false) if own_console => return Ok(()),
        (Caller::Create, true, false) => {
            "process.terminal is true: --console-socket is required (or run in the foreground)"
        }
        (Caller::Exec, true, false) => {
            "a terminal (--tty) in a detached exec needs --console-socket"
        }
        (Caller::Create, false, true) => "--console-socket was given but process.terminal is false",
        (Caller::Exec, false, true) => {
            "--console-socket was given but the process has no terminal (--tty)"
        }
        _ => return Ok(()),
    };
    Err(Error::Usage(msg))
}

/// The container's seccomp profile compiled, if it has one.
pub(super) fn compile_seccomp(spec: &Spec) -> Result<Option<Compiled>> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
        .map(crate::seccomp::compile)
        .transpose()
}

/// The handler for the seccomp listener the new process sends: it goes to
/// the profile's agent with the container's state. For `create` the state
/// names the new init; for `exec`, the container's init as it is.
pub(super) fn listener_to_agent<'a>(
    caller: Caller,
    seccomp: Option<&'a Compiled>,
    mut state: OciState,
) -> impl FnMut(Pid, OwnedFd) -> Result<()> + 'a {
    let agent = seccomp.and_then(|c| c.notify.as_ref()).map(|(_, a)| a);
    move |pid: Pid, fd: OwnedFd| {
        let Some(agent) = agent else {
            let msg = "a seccomp listener nobody asked for".to_string();
            return Err(match caller {
                Caller::Create => Error::Init(msg),
                Caller::Exec => Error::Exec(msg),
            });
        };
        if caller == Caller::Create {
            state.pid = pid.as_raw();
        }
        let json = serde_json::to_string(&state).expect("state serializes");
        crate::seccomp::notify::send(agent, fd, pid.as_raw(), &json)
    }
}
