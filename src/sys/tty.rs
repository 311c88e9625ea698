//! Terminal ioctls: unlocking a pty and opening its peer from the master
//! (TIOCGPTPEER, never by path), window sizes, the controlling terminal.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

/// Unlocks the pty `master` (TIOCSPTLCK 0) and opens its peer with
/// TIOCGPTPEER (O_RDWR | O_NOCTTY | O_CLOEXEC).
pub fn unlock_and_open_peer(master: impl AsFd) -> Result<OwnedFd, (&'static str, nix::Error)> {
    let fd = master.as_fd().as_raw_fd();
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads one int from a valid pointer; `fd` is open.
    if unsafe { libc::ioctl(fd, libc::TIOCSPTLCK, &unlock) } < 0 {
        return Err(("unlock pty", nix::Error::last()));
    }
    // SAFETY: TIOCGPTPEER takes open flags and returns a new descriptor.
    let peer = unsafe {
        libc::ioctl(
            fd,
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if peer < 0 {
        return Err(("open pty peer (TIOCGPTPEER)", nix::Error::last()));
    }
    // SAFETY: a new descriptor nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(peer) })
}

/// TIOCSWINSZ.
pub fn set_winsize(fd: impl AsFd, rows: u16, cols: u16) -> nix::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize from a valid pointer.
    let r = unsafe { libc::ioctl(fd.as_fd().as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    nix::errno::Errno::result(r).map(drop)
}

/// TIOCGWINSZ: (rows, cols).
pub fn get_winsize(fd: impl AsFd) -> nix::Result<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a winsize to a valid pointer.
    let r = unsafe { libc::ioctl(fd.as_fd().as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    nix::errno::Errno::result(r).map(|_| (ws.ws_row, ws.ws_col))
}

/// TIOCSCTTY on stdin: the terminal there becomes the controlling terminal
/// of the calling session leader.
pub fn make_stdin_controlling() -> nix::Result<()> {
    // SAFETY: TIOCSCTTY with arg 0 on descriptor 0.
    nix::errno::Errno::result(unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) }).map(drop)
}
