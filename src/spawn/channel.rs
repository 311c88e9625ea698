//! The parent/init sync channel: a SOCK_SEQPACKET socketpair carrying typed
//! messages (JSON, one message per packet), and descriptors with SCM_RIGHTS.

use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use nix::sys::socket::{
    sendmsg, socketpair, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType,
};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::error::{Context, Error, Result};

/// Messages from rt to the init.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum ToInit {
    /// uid_map and gid_map of the new user namespace are written.
    IdMapsWritten,
    /// The prestart and createRuntime hooks ran; here is the state JSON
    /// for the createContainer and startContainer hooks.
    HooksDone { state: String },
    /// The tree asked for with `FromInit::BindTree` (attached), cloned and
    /// idmapped by rt in the init's mount namespace.
    BindTree,
    /// The mounts rt found the init made in the host's mount namespace
    /// are recorded in the container's state.
    MountsRecorded,
}

/// Messages from the init to rt.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum FromInit {
    /// The mounts are made (pivot_root not yet): time for the prestart
    /// and createRuntime hooks.
    CreateHooks,
    /// The init reached mount `index` of the plan, an idmapped bind of a
    /// source inside the root that rt clones in the init's mount
    /// namespace (`spawn::bind_sources`): rt answers `ToInit::BindTree`.
    BindTree { index: usize },
    /// A container in the host's mount namespace: every mount is made
    /// under its root; rt records them (for delete) and answers
    /// `ToInit::MountsRecorded`.
    MountsMade,
    /// The seccomp notification listener (attached) for the agent at the
    /// profile's listenerPath.
    SeccompListener,
    /// The container is set up; the init now waits for `start`.
    Ready,
    /// Setup failed; the init exits after sending this.
    Failed {
        /// The errno behind the failure, when a system call failed.
        errno: Option<i32>,
        error: String,
    },
}

const MAX_MSG: usize = 64 * 1024;

#[derive(Debug)]
pub struct Channel {
    fd: OwnedFd,
}

impl AsRawFd for Channel {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl Channel {
    /// A connected pair; both ends close on exec.
    pub fn pair() -> Result<(Channel, Channel)> {
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .ctx("socketpair for the init sync channel")?;
        Ok((Channel { fd: a }, Channel { fd: b }))
    }

    pub fn from_fd(fd: OwnedFd) -> Channel {
        Channel { fd }
    }

    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }

    pub fn send<T: Serialize>(&self, msg: &T) -> Result<()> {
        self.send_with_fd(msg, None)
    }

    /// Sends a message, with one descriptor attached if given.
    pub fn send_with_fd<T: Serialize>(&self, msg: &T, fd: Option<BorrowedFd>) -> Result<()> {
        let buf = serde_json::to_vec(msg).map_err(|source| Error::Json {
            what: "encode message".into(),
            source,
        })?;
        let iov = [IoSlice::new(&buf)];
        let fds: Vec<RawFd> = fd.iter().map(|f| f.as_raw_fd()).collect();
        let cmsgs: Vec<ControlMessage> = if fds.is_empty() {
            vec![]
        } else {
            vec![ControlMessage::ScmRights(&fds)]
        };
        sendmsg::<()>(
            self.fd.as_raw_fd(),
            &iov,
            &cmsgs,
            MsgFlags::MSG_NOSIGNAL,
            None,
        )
        .ctx("send on sync channel")?;
        Ok(())
    }

    /// Receives one message; `Ok(None)` when the other end closed.
    pub fn recv<T: DeserializeOwned>(&self) -> Result<Option<T>> {
        Ok(self.recv_with_fd()?.map(|(m, _)| m))
    }

    /// Receives one message and the descriptor sent with it, if any.
    pub fn recv_with_fd<T: DeserializeOwned>(&self) -> Result<Option<(T, Option<OwnedFd>)>> {
        let Some((bytes, fd)) = self.recv_bytes_with_fd()? else {
            return Ok(None);
        };
        let msg = serde_json::from_slice(&bytes).map_err(|source| Error::Json {
            what: "malformed message on sync channel".into(),
            source,
        })?;
        Ok(Some((msg, fd)))
    }

    /// Receives one packet as bytes, with its descriptor if any; `None`
    /// when the other end closed.
    pub fn recv_bytes_with_fd(&self) -> Result<Option<(Vec<u8>, Option<OwnedFd>)>> {
        let mut buf = vec![0u8; MAX_MSG];
        let (n, fd) = loop {
            match crate::sys::socket::recv_with_fd(&self.fd, &mut buf) {
                Ok(r) => break r,
                Err(nix::Error::EINTR) => continue,
                Err(e) => return Err(e).ctx("receive on sync channel"),
            }
        };
        if n == 0 && fd.is_none() {
            return Ok(None);
        }
        buf.truncate(n);
        Ok(Some((buf, fd)))
    }
}

impl AsFd for Channel {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_round_trip_and_close() {
        let (a, b) = Channel::pair().unwrap();
        a.send(&FromInit::Failed {
            errno: Some(libc::EPERM),
            error: "mount /proc: EPERM".into(),
        })
        .unwrap();
        a.send(&FromInit::Ready).unwrap();
        assert_eq!(
            b.recv::<FromInit>().unwrap(),
            Some(FromInit::Failed {
                errno: Some(libc::EPERM),
                error: "mount /proc: EPERM".into()
            })
        );
        assert_eq!(b.recv::<FromInit>().unwrap(), Some(FromInit::Ready));
        drop(a);
        assert_eq!(b.recv::<FromInit>().unwrap(), None);
    }

    #[test]
    fn passes_a_descriptor() {
        let (a, b) = Channel::pair().unwrap();
        let f = std::fs::File::open("/dev/null").unwrap();
        a.send_with_fd(&ToInit::IdMapsWritten, Some(f.as_fd()))
            .unwrap();
        let (m, fd) = b.recv_with_fd::<ToInit>().unwrap().unwrap();
        assert_eq!(m, ToInit::IdMapsWritten);
        let fd = fd.unwrap();
        let st = nix::sys::stat::fstat(fd.as_fd()).unwrap();
        assert_eq!(st.st_rdev, nix::sys::stat::makedev(1, 3));
    }
}
