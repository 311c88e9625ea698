//! recvmsg with SCM_RIGHTS, turning the received descriptor into an
//! `OwnedFd`.

use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};

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
