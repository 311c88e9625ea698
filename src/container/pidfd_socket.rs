//! `--pidfd-socket` (create, run, exec): a pidfd of the new process sent
//! over a unix socket the caller listens on, as runc sends it: SCM_RIGHTS
//! with the payload "pidfd". The socket is connected before anything is
//! made, so a bad path fails with nothing left behind.

use std::io::IoSlice;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;

use nix::sys::socket::{
    connect, sendmsg, socket, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType, UnixAddr,
};

use crate::error::{Context, Result};

/// Connects to the `--pidfd-socket` at `path`.
pub fn connect_socket(path: &Path) -> Result<OwnedFd> {
    let what = || format!("--pidfd-socket {}", path.display());
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .with_ctx(what)?;
    let addr = UnixAddr::new(path).with_ctx(what)?;
    connect(fd.as_raw_fd(), &addr).with_ctx(|| format!("{}: connect", what()))?;
    Ok(fd)
}

/// Sends `pidfd` over the connected socket.
pub fn send(sock: &OwnedFd, pidfd: BorrowedFd<'_>) -> Result<()> {
    let fds: [RawFd; 1] = [pidfd.as_raw_fd()];
    sendmsg::<()>(
        sock.as_raw_fd(),
        &[IoSlice::new(b"pidfd")],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .ctx("--pidfd-socket: send the pidfd")?;
    Ok(())
}
