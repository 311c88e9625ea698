//! recvmsg with SCM_RIGHTS, and accept4, turning the descriptors the
//! kernel makes into `OwnedFd`s.

use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{accept4, recvmsg, ControlMessageOwned, MsgFlags, SockFlag};

/// One recvmsg on `sock` into `buf` (MSG_CMSG_CLOEXEC): the byte count and
/// the first descriptor sent with it, if any (any others are closed).
pub fn recv_with_fd(sock: impl AsFd, buf: &mut [u8]) -> nix::Result<(usize, Option<OwnedFd>)> {
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let mut iov = [IoSliceMut::new(buf)];
    let r = recvmsg::<()>(
        sock.as_fd().as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    let mut fd = None;
    for c in r.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            for raw in fds {
                // SAFETY: SCM_RIGHTS installed a new descriptor in this
                // process that nothing else owns.
                let owned = unsafe { OwnedFd::from_raw_fd(raw) };
                if fd.is_none() {
                    fd = Some(owned);
                }
            }
        }
    }
    Ok((r.bytes, fd))
}

/// accept4(2) on the listening socket `listener`: the new connection,
/// always close-on-exec, with `flags` (SOCK_NONBLOCK) besides.
pub fn accept(listener: impl AsFd, flags: SockFlag) -> nix::Result<OwnedFd> {
    let fd = accept4(listener.as_fd().as_raw_fd(), flags | SockFlag::SOCK_CLOEXEC)?;
    // SAFETY: accept4 succeeded, so `fd` is a new descriptor in this
    // process that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::{UnixListener, UnixStream};

    #[test]
    fn accept_owns_the_connection_close_on_exec() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let l = UnixListener::bind(&path).unwrap();
        let _c = UnixStream::connect(&path).unwrap();
        let s = accept(&l, SockFlag::SOCK_NONBLOCK).unwrap();
        let fd = nix::fcntl::fcntl(&s, nix::fcntl::FcntlArg::F_GETFD).unwrap();
        assert_ne!(fd & libc::FD_CLOEXEC, 0);
        let fl = nix::fcntl::fcntl(&s, nix::fcntl::FcntlArg::F_GETFL).unwrap();
        assert_ne!(fl & libc::O_NONBLOCK, 0);
        l.set_nonblocking(true).unwrap();
        assert_eq!(
            accept(&l, SockFlag::empty()).unwrap_err(),
            nix::Error::EAGAIN
        );
    }
}
