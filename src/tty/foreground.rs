//! `rt run` in the foreground: rt stays the init's parent, forwards
//! signals to it, proxies the terminal when there is one, and returns the
//! init's exit status. The pidfd from the clone is watched from the start,
//! so an init that exits at once is never missed.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use crate::error::{Context, Result};
use crate::spawn::Init;
use crate::sys::pidfd::pidfd_send_signal;
use crate::tty::console;
use crate::tty::raw::RawMode;

/// How the init ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

impl Exit {
    /// The shell convention: the code, or 128 + the signal.
    pub fn code(self) -> i32 {
        match self {
            Exit::Code(c) => c,
            Exit::Signal(s) => 128 + s,
        }
    }
}

/// Signals rt forwards to the container instead of acting on them.
const FORWARDED: &[Signal] = &[
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
    Signal::SIGCONT,
    Signal::SIGALRM,
];

/// Blocks the forwarded signals so they queue for the signalfd. Call this
/// before the clone: the init unblocks them itself before its exec.
pub fn block_signals() -> Result<SigSet> {
    let mut set = SigSet::empty();
    for s in FORWARDED {
        set.add(*s);
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None).ctx("block signals")?;
    Ok(set)
}

/// Waits for the init, forwarding signals and (with `console`) proxying
/// rt's stdin/stdout to the container's pty.
pub fn supervise(init: &Init, signals: &SigSet, console: Option<OwnedFd>) -> Result<Exit> {
    let sfd = SignalFd::with_flags(signals, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .ctx("signalfd")?;
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let mut stdin_open = console.is_some();
    let _raw = match &console {
        Some(master) if nix::unistd::isatty(&stdin).unwrap_or(false) => {
            if let Some((rows, cols)) = console::get_size(&stdin.as_fd()) {
                let _ = console::set_size(master, rows, cols);
            }
            let (raw, cooked) = RawMode::enter(stdin.as_fd())?;
            if cooked.ended {
                stdin_open = false;
            }
            write_all(master.as_fd(), &cooked.lines);
            Some(raw)
        }
        _ => None,
    };
    let mut master_open = console.is_some();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let mut fds: Vec<PollFd> = vec![
            PollFd::new(init.pidfd.as_fd(), PollFlags::POLLIN),
            PollFd::new(sfd.as_fd(), PollFlags::POLLIN),
        ];
        if let Some(m) = &console {
            if master_open {
                fds.push(PollFd::new(m.as_fd(), PollFlags::POLLIN));
            }
            if stdin_open {
                fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            }
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(e).ctx("poll"),
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        if ready[1] {
            while let Ok(Some(info)) = sfd.read_signal() {
                let sig = i32::try_from(info.ssi_signo).unwrap_or(0);
                if sig == libc::SIGWINCH {
                    if let (Some(m), Some((r, c))) = (&console, console::get_size(&stdin.as_fd())) {
                        let _ = console::set_size(m, r, c);
                    }
                }
                let _ = pidfd_send_signal(&init.pidfd, sig);
            }
        }
        if let Some(m) = &console {
            let mut i = 2;
            if master_open {
                if ready[i] {
                    match nix::unistd::read(m, &mut buf) {
                        Ok(0) | Err(nix::Error::EIO) => master_open = false,
                        Ok(n) => write_all(stdout.as_fd(), &buf[..n]),
                        Err(nix::Error::EAGAIN) | Err(nix::Error::EINTR) => {}
                        Err(_) => master_open = false,
                    }
                }
                i += 1;
            }
            if stdin_open && ready.get(i).copied().unwrap_or(false) {
                match nix::unistd::read(stdin.as_fd(), &mut buf) {
                    // End of rt's stdin is not passed on as a ^D, as under runc:
                    // the pty's line discipline may echo it ("^@" on Debian 12's
                    // 6.1 kernel) into the container's output.
                    Ok(0) => stdin_open = false,
                    Ok(n) => write_all(m.as_fd(), &buf[..n]),
                    Err(nix::Error::EAGAIN) | Err(nix::Error::EINTR) => {}
                    Err(_) => stdin_open = false,
                }
            }
        }
        if ready[0] {
            // Drain what the container printed last.
            if let (Some(m), true) = (&console, master_open) {
                drain(m.as_fd(), stdout.as_fd(), &mut buf);
            }
            return wait(init);
        }
    }
}

fn drain(from: BorrowedFd<'_>, to: BorrowedFd, buf: &mut [u8]) {
    loop {
        let mut fds = [PollFd::new(from.as_fd(), PollFlags::POLLIN)];
        if !matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0) {
            return;
        }
        match nix::unistd::read(from, buf) {
            Ok(n) if n > 0 => write_all(to, &buf[..n]),
            _ => return,
        }
    }
}

fn write_all(fd: BorrowedFd, mut data: &[u8]) {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(nix::Error::EINTR) | Err(nix::Error::EAGAIN) => continue,
            Err(_) => return,
        }
    }
}

/// Reaps the init through its pidfd.
pub fn wait(init: &Init) -> Result<Exit> {
    let (code, status) =
        crate::sys::pidfd::wait_exited(&init.pidfd).ctx("wait for the container init")?;
    Ok(if code == libc::CLD_EXITED {
        Exit::Code(status)
    } else {
        Exit::Signal(status)
    })
}
