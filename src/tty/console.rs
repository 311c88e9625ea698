//! Terminals: the pty the init creates inside the container, and passing
//! its master to whoever asked with `--console-socket` (SCM_RIGHTS).

use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;

use nix::sys::socket::{
    connect, sendmsg, socket, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType, UnixAddr,
};

use crate::error::{Context, Error, Result};
use crate::rootfs::resolve::open_in_root;
use crate::spawn::channel::Channel;
use crate::sys::tty as sys;

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

/// Receives the pty master the process sent on rt's end of `endpoints`,
/// for rt to proxy in the foreground: with ONLCR cleared, so that the
/// container's "\n" reaches the caller as "\n", not "\r\n" (runc's
/// proxy does the same; termios set on the master apply to its peer).
pub fn receive_master(ch: &Channel) -> Result<OwnedFd> {
    let master = match ch.recv_bytes_with_fd()? {
        Some((_, Some(fd))) => fd,
        _ => {
            return Err(Error::Invalid(
                "the container process sent no pty master".into(),
            ))
        }
    };
    clear_onlcr(&master)?;
    Ok(master)
}

/// Clears ONLCR on a pty (set on the master, it applies to its peer).
/// `exec` does it in the child before the master is sent, since the
/// process runs while rt receives it.
pub fn clear_onlcr(master: &impl AsFd) -> Result<()> {
    let mut t = nix::sys::termios::tcgetattr(master).ctx("read the pty's mode")?;
    t.output_flags.remove(nix::sys::termios::OutputFlags::ONLCR);
    nix::sys::termios::tcsetattr(master, nix::sys::termios::SetArg::TCSANOW, &t)
        .ctx("clear ONLCR on the pty")
}

/// A new pty from the container's /dev/ptmx: (master, peer). The peer is
/// got from the master with TIOCGPTPEER, never by path.
pub fn open_pty(root: BorrowedFd<'_>) -> Result<(OwnedFd, OwnedFd)> {
    let master = open_in_root(root, Path::new("/dev/ptmx"), libc::O_RDWR | libc::O_NOCTTY)?;
    let peer = sys::unlock_and_open_peer(&master).map_err(|(what, e)| Error::Sys {
        context: what.into(),
        source: e,
    })?;
    Ok((master, peer))
}

pub fn set_size(fd: &impl AsFd, rows: u16, cols: u16) -> Result<()> {
    sys::set_winsize(fd, rows, cols).ctx("set terminal size")
}

pub fn get_size(fd: &impl AsFd) -> Option<(u16, u16)> {
    sys::get_winsize(fd).ok()
}

/// Sends the master over the console socket, as runc does: the payload is
/// the pty's name, the descriptor rides in SCM_RIGHTS.
pub fn send_master(sock: BorrowedFd<'_>, master: BorrowedFd<'_>) -> Result<()> {
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
pub fn become_controlling(peer: BorrowedFd<'_>) -> Result<()> {
    for target in 0..=2 {
        crate::sys::fd::dup2_onto(peer, target).ctx("dup the console onto stdio")?;
    }
    sys::make_stdin_controlling().ctx("make the console the controlling terminal")?;
    Ok(())
}
