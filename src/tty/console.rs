//! Terminals: the pty the init creates inside the container, and passing
//! its master to whoever asked with `--console-socket` (SCM_RIGHTS).

use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::sys::socket::{
    connect, sendmsg, socket, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType, UnixAddr,
};

use crate::error::{Context, Error, Result};
use crate::rootfs::resolve::open_in_root;
use crate::spawn::channel::Channel;

/// Connects to the `--console-socket` (done by rt, before the clone).
pub fn connect_socket(path: &Path) -> Result<OwnedFd> {
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .ctx("create console socket")?;
    let addr = UnixAddr::new(path).with_ctx(|| format!("--console-socket {}", path.display()))?;
    connect(fd.as_raw_fd(), &addr)
        .with_ctx(|| format!("connect to --console-socket {}", path.display()))?;
    Ok(fd)
}

/// Where the pty master of a new process goes: the caller's
/// `--console-socket`, or (no socket) a channel whose other end rt keeps
/// to proxy the terminal itself. Returns (the end the process sends on,
/// rt's end); both None without a terminal.
pub fn endpoints(
    terminal: bool,
    socket: Option<&Path>,
) -> Result<(Option<OwnedFd>, Option<Channel>)> {
    if !terminal {
        return Ok((None, None));
    }
    if let Some(p) = socket {
        return Ok((Some(connect_socket(p)?), None));
    }
    let (a, b) = Channel::pair()?;
    Ok((Some(a.into_fd()), Some(b)))
}

/// Receives the pty master the process sent on rt's end of `endpoints`.
pub fn receive_master(ch: &Channel) -> Result<OwnedFd> {
    match ch.recv_bytes_with_fd()? {
        Some((_, Some(fd))) => Ok(fd),
        _ => Err(Error::Invalid(
            "the container process sent no pty master".into(),
        )),
    }
}

/// A new pty from the container's /dev/ptmx: (master, peer). The peer is
/// got from the master with TIOCGPTPEER, never by path.
pub fn open_pty(root: &OwnedFd) -> Result<(OwnedFd, OwnedFd)> {
    let master = open_in_root(root, Path::new("/dev/ptmx"), libc::O_RDWR | libc::O_NOCTTY)?;
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads one int from a valid pointer; `master` is open.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) } < 0 {
        return Err(nix::Error::last()).ctx("unlock pty");
    }
    // SAFETY: TIOCGPTPEER takes open flags and returns a new descriptor.
    let peer = unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if peer < 0 {
        return Err(nix::Error::last()).ctx("open pty peer (TIOCGPTPEER)");
    }
    // SAFETY: a new descriptor nothing else owns.
    Ok((master, unsafe { OwnedFd::from_raw_fd(peer) }))
}

pub fn set_size(fd: &impl AsRawFd, rows: u16, cols: u16) -> Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize from a valid pointer.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) } < 0 {
        return Err(nix::Error::last()).ctx("set terminal size");
    }
    Ok(())
}

pub fn get_size(fd: &impl AsRawFd) -> Option<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a winsize to a valid pointer.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) } < 0 {
        return None;
    }
    Some((ws.ws_row, ws.ws_col))
}

/// Sends the master over the console socket, as runc does: the payload is
/// the pty's name, the descriptor rides in SCM_RIGHTS.
pub fn send_master(sock: &OwnedFd, master: &OwnedFd) -> Result<()> {
    let name = b"/dev/ptmx";
    let iov = [IoSlice::new(name)];
    let fds: [RawFd; 1] = [master.as_raw_fd()];
    sendmsg::<()>(
        sock.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .ctx("send the pty master over --console-socket")?;
    Ok(())
}

/// Makes the peer the init's stdio and controlling terminal.
pub fn become_controlling(peer: &OwnedFd) -> Result<()> {
    for target in 0..=2 {
        // SAFETY: dup2 onto the standard descriptors, which the init owns.
        if unsafe { libc::dup2(peer.as_fd().as_raw_fd(), target) } < 0 {
            return Err(nix::Error::last()).ctx("dup the console onto stdio");
        }
    }
    // SAFETY: TIOCSCTTY with arg 0 on an open tty; the init leads a session.
    if unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } < 0 {
        return Err(nix::Error::last()).ctx("make the console the controlling terminal");
    }
    Ok(())
}
