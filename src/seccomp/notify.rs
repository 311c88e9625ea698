//! Hands a seccomp notification listener to the agent named by the
//! profile's `listenerPath`, as the runtime spec's "containerProcessState"
//! says: one message on a unix stream socket, the JSON state with the
//! listener attached (SCM_RIGHTS), `fds` naming it `seccompFd`.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{
    connect, sendmsg, socket, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType, UnixAddr,
};
use serde::Serialize;

use crate::error::{Context, Result};
use crate::seccomp::Agent;

#[derive(Serialize)]
struct ContainerProcessState<'a> {
    #[serde(rename = "ociVersion")]
    oci_version: &'a str,
    fds: [&'a str; 1],
    pid: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<&'a str>,
    state: serde_json::Value,
}

/// Sends `listener` for the process `pid` of the container whose state
/// JSON is `state`.
pub fn send(agent: &Agent, listener: OwnedFd, pid: i32, state: &str) -> Result<()> {
    let path = &agent.listener_path;
    let what = || format!("linux.seccomp.listenerPath {}", path.display());
    let msg = ContainerProcessState {
        oci_version: crate::config::spec::OCI_VERSION,
        fds: ["seccompFd"],
        pid,
        metadata: agent.metadata.as_deref(),
        state: serde_json::from_str(state).expect("the state is JSON"),
    };
    let body = serde_json::to_vec(&msg).expect("process state serializes");
    let sock = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .with_ctx(what)?;
    let addr = UnixAddr::new(path).with_ctx(what)?;
    // runc's words, which callers match.
    connect(sock.as_raw_fd(), &addr)
        .with_ctx(|| format!("{}: failed to connect with seccomp agent", what()))?;
    let fds = [listener.as_raw_fd()];
    sendmsg::<()>(
        sock.as_raw_fd(),
        &[IoSlice::new(&body)],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .with_ctx(|| format!("{}: send the listener", what()))?;
    Ok(())
}
