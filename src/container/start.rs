//! `rt start`: the init is waiting on the exec fifo; opening it lets the
//! init exec the user's program (or report a failed startContainer hook).

use std::os::fd::AsFd;

use nix::fcntl::{open, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::stat::Mode;

use super::{hook_state_json, Container, Op, Status};
use crate::error::{Context, Error, Result};
use crate::hooks::{self, Kind};
use crate::state::{Phase, Root, EXEC_FIFO};
use crate::sys::pidfd::pidfd_send_signal;

/// Lets the init exec the user's program.
pub fn start(root: &Root, id: &str) -> Result<()> {
    let locked = root.lock(id)?;
    let c = Container::from_locked(&locked)?;
    c.status().require(Op::Start, id)?;
    let pidfd = c
        .init_pidfd()
        .ok_or_else(|| Error::InvalidState("cannot start a container that has stopped".into()))?;
    let fifo_path = locked.dir.join(EXEC_FIFO);
    let fifo = open(
        &fifo_path,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_ctx(|| format!("open {}", fifo_path.display()))?;
    // Wait for the init's word, or for the init to die. The init writes
    // "0" when it is about to exec, or "1<error>" when a startContainer
    // hook failed.
    let mut word = Vec::new();
    loop {
        let mut fds = [
            PollFd::new(fifo.as_fd(), PollFlags::POLLIN),
            PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(e).ctx("wait for the container init"),
        }
        let fifo_ready = fds[0]
            .revents()
            .is_some_and(|r| r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP));
        if fifo_ready {
            let mut b = [0u8; libc::PIPE_BUF];
            match nix::unistd::read(&fifo, &mut b) {
                Ok(n) if n > 0 => {
                    word.extend_from_slice(&b[..n]);
                    break;
                }
                Ok(_) | Err(nix::Error::EAGAIN) => {}
                Err(e) => return Err(e).ctx("read exec fifo"),
            }
        }
        if fds[1]
            .revents()
            .is_some_and(|r| r.contains(PollFlags::POLLIN))
        {
            return Err(Error::InvalidState(format!(
                "container {id}: the init exited before start"
            )));
        }
    }
    let _ = std::fs::remove_file(&fifo_path);
    if word.first() != Some(&b'0') {
        // The init exits after a failed startContainer hook; make sure.
        let _ = pidfd_send_signal(&pidfd, libc::SIGKILL);
        let msg = String::from_utf8_lossy(word.get(1..).unwrap_or_default()).into_owned();
        return Err(Error::Init(msg));
    }
    let mut state = c.state;
    state.phase = Phase::Running;
    locked.save(&state)?;
    let json = hook_state_json(&state, Status::Running);
    let list = Kind::Poststart.of(state.config.hooks().as_ref());
    // runtime-spec 1.3: a failing poststart hook is an error, and the
    // container is stopped (delete then destroys it, as after any exit).
    if let Err(e) = hooks::run(Kind::Poststart, list, json.as_bytes()) {
        let _ = pidfd_send_signal(&pidfd, libc::SIGKILL);
        wait_exit(&pidfd);
        // hooks::run fails with Error::Hook only.
        return Err(match e {
            Error::Hook {
                stage,
                index,
                path,
                reason,
                ..
            } => Error::Hook {
                stage,
                index,
                path,
                reason,
                stopped: true,
            },
            other => other,
        });
    }
    Ok(())
}

/// Waits until the process behind `pidfd` has exited, so that the caller
/// sees the container stopped when the error reaches it.
fn wait_exit(pidfd: &std::os::fd::OwnedFd) {
    loop {
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::Error::EINTR) => continue,
            _ => return,
        }
    }
}
