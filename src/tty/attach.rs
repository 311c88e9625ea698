//! `rt attach`: the client's side of the shim's attach socket, and the
//! frames it sends. The shim sends the terminal's output as plain bytes;
//! the client sends typed frames, so that input and window sizes cannot
//! be confused: a kind byte, a 4-byte little-endian length, the payload.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, UnixAddr};

use crate::error::{Context, Error, Result};
use crate::state::ATTACH_SOCKET;
use crate::tty::console;
use crate::tty::raw::RawMode;

const KIND_INPUT: u8 = 0;
const KIND_RESIZE: u8 = 1;
/// Bytes a frame's payload may have at most.
pub const MAX_PAYLOAD: usize = 64 * 1024;

/// What an attached client sends the shim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Input(Vec<u8>),
    Resize { rows: u16, cols: u16 },
}

impl Frame {
    pub fn encode(&self) -> Vec<u8> {
        let (kind, payload) = match self {
            Frame::Input(d) => (KIND_INPUT, d.clone()),
            Frame::Resize { rows, cols } => {
                let mut p = rows.to_le_bytes().to_vec();
                p.extend_from_slice(&cols.to_le_bytes());
                (KIND_RESIZE, p)
            }
        };
        let mut out = vec![kind];
        #[allow(clippy::cast_possible_truncation)] // a resize, or one read of a pty: a few KiB
        let len = payload.len() as u32;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&payload);
        out
    }

    /// Takes one whole frame off the front of `buf`, if there is one.
    pub fn decode(buf: &mut Vec<u8>) -> std::result::Result<Option<Frame>, String> {
        if buf.len() < 5 {
            return Ok(None);
        }
        let len = u32::from_le_bytes(buf[1..5].try_into().expect("4 bytes")) as usize;
        if len > MAX_PAYLOAD {
            return Err(format!("frame of {len} bytes is too long"));
        }
        if buf.len() < 5 + len {
            return Ok(None);
        }
        let kind = buf[0];
        let payload: Vec<u8> = buf.drain(..5 + len).skip(5).collect();
        match kind {
            KIND_INPUT => Ok(Some(Frame::Input(payload))),
            KIND_RESIZE if payload.len() == 4 => Ok(Some(Frame::Resize {
                rows: u16::from_le_bytes([payload[0], payload[1]]),
                cols: u16::from_le_bytes([payload[2], payload[3]]),
            })),
            k => Err(format!("unknown frame kind {k}")),
        }
    }
}

/// Connects to the attach socket in a container's state directory. The
/// path goes through the directory's descriptor: a socket path is limited
/// to 108 bytes, a state directory is not.
pub fn connect_to(container_dir: &Path) -> Result<OwnedFd> {
    let dir = nix::fcntl::open(
        container_dir,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .with_ctx(|| format!("open {}", container_dir.display()))?;
    let sock = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .ctx("socket")?;
    let path = format!("/proc/self/fd/{}/{ATTACH_SOCKET}", dir.as_raw_fd());
    let addr = UnixAddr::new(path.as_str()).ctx("attach socket address")?;
    connect(sock.as_raw_fd(), &addr).map_err(|e| match e {
        nix::Error::ENOENT | nix::Error::ECONNREFUSED => Error::InvalidState(
            "the container has no terminal to attach to (it has none, or it has exited): use rt logs"
                .into(),
        ),
        e => Error::Sys {
            context: "connect to the attach socket".into(),
            source: e,
        },
    })?;
    Ok(sock)
}

/// How an attach session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The container's terminal closed (it exited).
    Closed,
    /// The user typed the detach keys (Ctrl-P Ctrl-Q).
    Detached,
}

/// Relays the caller's terminal to the container's until either side is
/// done. Ctrl-P Ctrl-Q detaches, as in Docker.
pub fn relay(sock: BorrowedFd<'_>) -> Result<Ended> {
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let tty = nix::unistd::isatty(stdin.as_fd()).unwrap_or(false);
    let mut stdin_open = true;
    let mut typed_ahead = Vec::new();
    let _raw = if tty {
        let (raw, cooked) = RawMode::enter(stdin.as_fd())?;
        stdin_open = !cooked.ended;
        typed_ahead = cooked.lines;
        Some(raw)
    } else {
        None
    };
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGWINCH);
    mask.thread_block().ctx("block SIGWINCH")?;
    let winch = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .ctx("signalfd")?;
    let size =
        || console::get_size(&stdin.as_fd()).map(|(rows, cols)| Frame::Resize { rows, cols });
    // Once the container's side has closed (its process exited), input is
    // dropped and what it wrote before is still read to the end.
    let mut sending = send(sock, size())?;
    if sending && !typed_ahead.is_empty() {
        sending = send(sock, Some(Frame::Input(typed_ahead)))?;
    }
    let mut ctrl_p = false;
    let mut buf = [0u8; 8192];
    let ended = loop {
        let mut fds = vec![
            PollFd::new(sock.as_fd(), PollFlags::POLLIN),
            PollFd::new(winch.as_fd(), PollFlags::POLLIN),
        ];
        if stdin_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(nix::Error::EINTR) => {}
            Err(e) => return Err(e).ctx("poll"),
        }
        let ready = |i: usize| {
            fds.get(i)
                .and_then(|f| f.revents())
                .is_some_and(|r| !r.is_empty())
        };
        let (sock_ready, winch_ready, stdin_ready) = (ready(0), ready(1), ready(2));
        if sock_ready {
            match nix::unistd::read(sock, &mut buf) {
                Ok(0) => break Ended::Closed,
                Ok(n) => write_all(stdout.as_fd(), &buf[..n])?,
                Err(nix::Error::EINTR | nix::Error::EAGAIN) => {}
                Err(nix::Error::ECONNRESET) => break Ended::Closed,
                Err(e) => return Err(e).ctx("read from the container's terminal"),
            }
        }
        if winch_ready {
            while let Ok(Some(_)) = winch.read_signal() {}
            if sending {
                sending = send(sock, size())?;
            }
        }
        if stdin_ready {
            match nix::unistd::read(stdin.as_fd(), &mut buf) {
                Ok(0) => stdin_open = false,
                Ok(n) => {
                    let mut input = Vec::with_capacity(n);
                    for &b in &buf[..n] {
                        // Ctrl-P Ctrl-Q detaches; a lone Ctrl-P goes through.
                        if ctrl_p && b == 0x11 {
                            return Ok(Ended::Detached);
                        }
                        if ctrl_p {
                            input.push(0x10);
                        }
                        ctrl_p = tty && b == 0x10;
                        if !ctrl_p {
                            input.push(b);
                        }
                    }
                    if sending && !input.is_empty() {
                        sending = send(sock, Some(Frame::Input(input)))?;
                    }
                }
                Err(nix::Error::EINTR | nix::Error::EAGAIN) => {}
                Err(e) => return Err(e).ctx("read stdin"),
            }
        }
    };
    Ok(ended)
}

/// Sends a frame to the container's side; false once that side has closed.
fn send(sock: BorrowedFd, frame: Option<Frame>) -> Result<bool> {
    match frame.map(|f| write_all(sock, &f.encode())) {
        None | Some(Ok(())) => Ok(true),
        Some(Err(e)) if matches!(e.errno(), Some(nix::Error::EPIPE | nix::Error::ECONNRESET)) => {
            Ok(false)
        }
        Some(Err(e)) => Err(e),
    }
}

fn write_all(fd: BorrowedFd, mut data: &[u8]) -> Result<()> {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(nix::Error::EINTR | nix::Error::EAGAIN) => continue,
            Err(e) => return Err(e).ctx("write"),
        }
    }
    Ok(())
}

/// Unblocks SIGWINCH again (for callers that go on after a session).
pub fn restore_signals() {
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGWINCH);
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&mask), None);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_wait_for_their_whole_payload() {
        let a = Frame::Input(b"ls\r".to_vec());
        let b = Frame::Resize {
            rows: 40,
            cols: 120,
        };
        let mut buf = a.encode();
        buf.extend(b.encode());
        let mut partial = buf[..3].to_vec();
        assert_eq!(Frame::decode(&mut partial), Ok(None));
        assert_eq!(Frame::decode(&mut buf), Ok(Some(a)));
        assert_eq!(Frame::decode(&mut buf), Ok(Some(b)));
        assert!(buf.is_empty());
        let mut bad = vec![9, 0, 0, 0, 0];
        assert!(Frame::decode(&mut bad).is_err());
        let mut huge = vec![0, 0xff, 0xff, 0xff, 0xff];
        assert!(Frame::decode(&mut huge).is_err());
    }
}
