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
            return Err(Error::Protocol(
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

/// devpts' superblock magic, the inode number devpts gives its ptmx, and
/// the major of the ptys it hands out (UNIX98_PTY_SLAVE_MAJOR and the
/// seven after it).
const DEVPTS_SUPER_MAGIC: i64 = 0x1cd1;
const DEVPTS_PTMX_INO: u64 = 2;
const PTY_SLAVE_MAJORS: std::ops::RangeInclusive<u64> = 136..=143;

/// A new pty from the container's devpts: (master, peer). The master is
/// `/dev/pts/ptmx`, resolved in the root without following a symlink at
/// the end and checked to be devpts' own ptmx (superblock, inode, device)
/// before it is opened for reading and writing, then checked again once
/// open (CVE-2025-52565: a container controls its /dev, and an `exec -t`
/// into it must not open a FIFO, a file or a procfs file as its
/// terminal). The peer is got from the master with TIOCGPTPEER, never by
/// path, and checked to be a pty of devpts too.
pub fn open_pty(root: BorrowedFd<'_>) -> Result<(OwnedFd, OwnedFd)> {
    let path = Path::new("/dev/pts/ptmx");
    let probe = match crate::rootfs::resolve::try_open_in_root(
        root,
        path,
        libc::O_PATH | libc::O_NOFOLLOW,
    )? {
        Some(fd) => fd,
        None => {
            return Err(Error::InvalidField {
                field: "process.terminal".into(),
                reason: "/dev/pts/ptmx does not exist in the container (a terminal needs a devpts mounted at /dev/pts)".into(),
            })
        }
    };
    let id = check_ptmx(&probe)?;
    let master = open_in_root(root, path, libc::O_RDWR | libc::O_NOCTTY | libc::O_NOFOLLOW)?;
    if check_ptmx(&master)? != id {
        return Err(Error::UnsafePath {
            path: path.to_path_buf(),
            reason: "in the container changed while it was opened: refusing it as the terminal"
                .into(),
        });
    }
    let peer = sys::unlock_and_open_peer(&master).map_err(|(what, e)| Error::Sys {
        context: what.into(),
        source: e,
    })?;
    let st = nix::sys::stat::fstat(&peer).ctx("stat the pty peer")?;
    let on_devpts = nix::sys::statfs::fstatfs(&peer)
        .ctx("statfs the pty peer")?
        .filesystem_type()
        .0 as i64
        == DEVPTS_SUPER_MAGIC;
    if !on_devpts || !PTY_SLAVE_MAJORS.contains(&nix::sys::stat::major(st.st_rdev)) {
        return Err(Error::UnsafePath {
            path: path.to_path_buf(),
            reason: "in the container gave a peer that is not a devpts pty: refusing it as the \
                     terminal"
                .into(),
        });
    }
    Ok((master, peer))
}

/// That `fd` is devpts' ptmx (character device 5:2, devpts' ptmx inode on
/// a devpts superblock); returns its (device, inode) to compare a reopen.
fn check_ptmx(fd: &OwnedFd) -> Result<(u64, u64)> {
    let st = nix::sys::stat::fstat(fd).ctx("stat /dev/pts/ptmx")?;
    let fs = nix::sys::statfs::fstatfs(fd).ctx("statfs /dev/pts/ptmx")?;
    let chr = nix::sys::stat::SFlag::from_bits_truncate(st.st_mode) & nix::sys::stat::SFlag::S_IFMT
        == nix::sys::stat::SFlag::S_IFCHR;
    if fs.filesystem_type().0 as i64 != DEVPTS_SUPER_MAGIC
        || !chr
        || st.st_rdev != nix::sys::stat::makedev(5, 2)
        || st.st_ino != DEVPTS_PTMX_INO
    {
        return Err(Error::UnsafePath {
            path: "/dev/pts/ptmx".into(),
            reason: "in the container is not devpts' ptmx: refusing it as the terminal".into(),
        });
    }
    Ok((st.st_dev, st.st_ino))
}

/// Sets the terminal's window size (TIOCSWINSZ). A dimension beyond the
/// kernel's 16 bits (an oversized `process.consoleSize`, a client's
/// resize) is clamped to 65535, never truncated to its low bits.
pub fn set_size(fd: &impl AsFd, rows: impl Into<u64>, cols: impl Into<u64>) -> Result<()> {
    sys::set_winsize(
        fd,
        clamp_dimension(rows.into()),
        clamp_dimension(cols.into()),
    )
    .ctx("set terminal size")
}

/// One window dimension in the kernel's u16, saturating.
fn clamp_dimension(n: u64) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_sizes_clamp_instead_of_truncating() {
        assert_eq!(clamp_dimension(0), 0);
        assert_eq!(clamp_dimension(80), 80);
        assert_eq!(clamp_dimension(65535), 65535);
        // 65536 + 24 would truncate to 24 rows.
        assert_eq!(clamp_dimension(65536 + 24), u16::MAX);
        assert_eq!(clamp_dimension(u64::MAX), u16::MAX);
    }

    #[test]
    fn an_oversized_size_reaches_the_terminal_clamped() {
        let Ok(pty) = nix::pty::openpty(None, None) else {
            return; // no devpts here
        };
        set_size(&pty.master, (1u64 << 32) | 24, 80u32).unwrap();
        assert_eq!(get_size(&pty.master), Some((u16::MAX, 80)));
        set_size(&pty.master, 24u16, 70_000u64).unwrap();
        assert_eq!(get_size(&pty.master), Some((24, u16::MAX)));
    }
}
