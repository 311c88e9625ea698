//! The caller's terminal in raw mode while rt relays it to a container's
//! (`rt run` and `exec -t` in the foreground, `rt attach`), and what a
//! canonical terminal already held when rt switched it.

use std::os::fd::{BorrowedFd, OwnedFd};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::termios::{self, SetArg, Termios};

use crate::error::{Context, Result};

/// The terminal in raw mode; its earlier mode comes back when dropped.
pub struct RawMode {
    fd: OwnedFd,
    saved: Termios,
}

impl RawMode {
    /// Takes what the terminal `fd` has ready in canonical mode, then
    /// makes it raw.
    pub fn enter(fd: BorrowedFd) -> Result<(RawMode, Cooked)> {
        let dup = fd.try_clone_to_owned().ctx("dup the terminal")?;
        let saved = termios::tcgetattr(&dup).ctx("read terminal mode")?;
        let cooked = take_cooked_input(fd, &saved);
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(&dup, SetArg::TCSANOW, &raw).ctx("set terminal raw")?;
        Ok((RawMode { fd: dup, saved }, cooked))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(&self.fd, SetArg::TCSANOW, &self.saved);
    }
}

/// What a terminal in canonical mode already holds when rt makes it raw.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Cooked {
    /// Whole lines typed ahead, passed on as they are.
    pub lines: Vec<u8>,
    /// An end of file (^D) is pending: rt's stdin has ended.
    pub ended: bool,
}

/// Reads what a canonical terminal has ready (whole lines and a pending
/// end of file) before rt switches it to raw mode. Left in place, a pending
/// ^D would turn into a NUL byte once the line discipline is raw, and the
/// container's pty would echo it as "^@" before its output: `script`
/// writes one as soon as its own stdin ends, which is how CI harnesses
/// and runc's suite (run under `script` with stdin at /dev/null) call rt.
fn take_cooked_input(stdin: BorrowedFd, mode: &Termios) -> Cooked {
    let mut cooked = Cooked::default();
    if !mode.local_flags.contains(termios::LocalFlags::ICANON) {
        return cooked;
    }
    let mut buf = [0u8; 4096];
    // In canonical mode poll reports input only for a whole line or an end
    // of file, so each read below returns at once.
    while !cooked.ended {
        let mut fds = [PollFd::new(stdin, PollFlags::POLLIN)];
        if !matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0) {
            break;
        }
        match nix::unistd::read(stdin, &mut buf) {
            Ok(0) => cooked.ended = true,
            Ok(n) => cooked.lines.extend_from_slice(&buf[..n]),
            Err(nix::Error::EINTR) => {}
            Err(_) => break,
        }
    }
    cooked
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use nix::pty::openpty;

    use super::*;

    fn pty() -> (OwnedFd, OwnedFd) {
        let p = openpty(None, None).expect("openpty");
        (p.master, p.slave)
    }

    /// Writes `data` then `marker` to the master and waits for the
    /// marker's echo: the line discipline takes a master's writes in a
    /// kernel worker, and the echo proves it has taken all of `data`.
    fn feed(master: &OwnedFd, data: &[u8], marker: &[u8]) {
        write_all(master.as_fd(), data);
        write_all(master.as_fd(), marker);
        let mut seen = Vec::new();
        let mut buf = [0u8; 256];
        while !seen.ends_with(marker) {
            let mut fds = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
            let ready = poll(&mut fds, PollTimeout::from(5000u16)).expect("poll");
            assert!(ready > 0, "no echo of {marker:?} after {seen:?}");
            let n = nix::unistd::read(master, &mut buf).expect("read master");
            seen.extend_from_slice(&buf[..n]);
        }
    }

    fn write_all(fd: BorrowedFd, data: &[u8]) {
        assert_eq!(nix::unistd::write(fd, data), Ok(data.len()));
    }

    fn make_raw(slave: &OwnedFd) {
        let mut raw = termios::tcgetattr(slave).unwrap();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(slave, SetArg::TCSANOW, &raw).unwrap();
    }

    fn read_raw(slave: &OwnedFd) -> Vec<u8> {
        let mut buf = [0u8; 64];
        let n = nix::unistd::read(slave, &mut buf).unwrap();
        buf[..n].to_vec()
    }

    #[test]
    fn a_pending_end_of_file_ends_stdin_instead_of_becoming_a_nul() {
        let (master, slave) = pty();
        feed(&master, b"ls\n\x04", b"z");
        let mode = termios::tcgetattr(&slave).unwrap();
        let cooked = take_cooked_input(slave.as_fd(), &mode);
        assert_eq!(
            cooked,
            Cooked {
                lines: b"ls\n".to_vec(),
                ended: true
            }
        );
        // What follows the end of file stays for the raw proxy.
        make_raw(&slave);
        assert_eq!(read_raw(&slave), b"z");
    }

    #[test]
    fn left_pending_the_end_of_file_reads_as_a_nul_once_raw() {
        // Why take_cooked_input exists: the kernel keeps a canonical ^D as
        // a NUL in its buffer, readable as data after a switch to raw.
        let (master, slave) = pty();
        feed(&master, b"\x04", b"z");
        make_raw(&slave);
        assert_eq!(read_raw(&slave), b"\0z");
    }

    #[test]
    fn a_partial_line_and_an_idle_terminal_are_left_alone() {
        let (master, slave) = pty();
        let mode = termios::tcgetattr(&slave).unwrap();
        assert_eq!(take_cooked_input(slave.as_fd(), &mode), Cooked::default());
        feed(&master, b"e", b"c");
        assert_eq!(take_cooked_input(slave.as_fd(), &mode), Cooked::default());
        // Raw mode hands the partial line over as it is.
        make_raw(&slave);
        assert_eq!(read_raw(&slave), b"ec");
    }

    #[test]
    fn a_raw_terminal_is_not_read_ahead() {
        let (master, slave) = pty();
        make_raw(&slave);
        write_all(master.as_fd(), b"x\n");
        let raw = termios::tcgetattr(&slave).unwrap();
        assert_eq!(take_cooked_input(slave.as_fd(), &raw), Cooked::default());
    }
}
