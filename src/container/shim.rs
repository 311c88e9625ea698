//! Handing a new container to its `rt-shim`, and the files the shim keeps
//! in the container's state directory.
//!
//! `rt create` forks; the child leaves rt's session, becomes a child
//! subreaper, creates the container (so it is the init's parent) and then
//! execs `rt-shim`, which reaps the init, records how it ended and keeps
//! its output. The caller learns how that went over a pipe of typed
//! messages. It cannot wait for the pipe's EOF: the init, cloned while the
//! write end was open, keeps a copy until it execs at `start`. So the
//! shim says `Ready` once it runs, and the caller also watches the child
//! with a pidfd in case it dies before saying anything.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::path::PathBuf;

use nix::fcntl::{open, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use nix::unistd::{execv, pipe2, setsid, ForkResult};
use serde::{Deserialize, Serialize};

use crate::container::{self, CreateOptions, Created};
use crate::error::{Context, Error, ErrorKind, Result};
use crate::state::Root;
use crate::sys::fd::{clear_cloexec, cloexec_from, dup2_onto};
use crate::sys::pidfd::pidfd_open;
use crate::sys::process::{exit_now, fork_single_threaded};

/// Whether `rt create` hands the container to a shim (`--shim`, `RT_SHIM`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A shim unless the caller passed `--pid-file` or `--console-socket`:
    /// such callers (containerd's runc shim, conmon) reap the init
    /// themselves and expect runc's behaviour.
    Auto,
    Always,
    Never,
}

impl Mode {
    pub fn wanted(self, opts: &CreateOptions) -> bool {
        self.wanted_by(opts.pid_file.is_some() || opts.console_socket.is_some())
    }

    /// `reaps_itself`: the caller passed `--pid-file` or `--console-socket`
    /// (to `create` or `restore`).
    pub fn wanted_by(self, reaps_itself: bool) -> bool {
        match self {
            Mode::Always => true,
            Mode::Never => false,
            Mode::Auto => !reaps_itself,
        }
    }
}

/// From the forked child (and then rt-shim) to `rt create`.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum Report {
    /// The container exists; its init has this pid.
    Created { pid: i32 },
    /// rt-shim runs and has taken the container over.
    Ready,
    /// Nothing is left of the container; this is why (the error's words,
    /// kind and errno).
    Failed {
        error: String,
        #[serde(default)]
        kind: ErrorKind,
        #[serde(default)]
        errno: Option<i32>,
    },
}

impl Report {
    /// One JSON line, written whole (pipe writes under PIPE_BUF are atomic).
    pub fn send(&self, fd: BorrowedFd<'_>) {
        let mut line = serde_json::to_vec(self).expect("report serializes");
        line.push(b'\n');
        line.truncate(libc::PIPE_BUF);
        // Best effort: a reader that is gone learns from the exit instead.
        let _ = nix::unistd::write(fd, &line);
    }
}

/// How the shim is to be started.
pub struct Handoff {
    /// The rt-shim executable.
    pub shim: PathBuf,
    /// Keep the container's stdout and stderr in `<state>/<id>/log`
    /// instead of passing the caller's descriptors to it.
    pub capture: bool,
}

/// Finds `rt-shim` next to the running executable, or in `PATH`.
pub fn find_binary() -> Result<PathBuf> {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join("rt-shim")));
    let in_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("rt-shim"));
    beside
        .into_iter()
        .chain(in_path)
        .find(|p| nix::unistd::access(p, nix::unistd::AccessFlags::X_OK).is_ok())
        .ok_or_else(|| {
            Error::HostLacks(
                "rt-shim was not found next to rt or in PATH: install it, or pass --shim=never"
                    .into(),
            )
        })
}

/// Creates the container with a shim as the init's parent. Returns the
/// init's pid. On failure nothing of the container is left.
///
/// Must be called from a single-threaded process (it forks).
pub fn create(root: &Root, opts: &CreateOptions, handoff: &Handoff) -> Result<i32> {
    spawn(root, &opts.id, handoff, || {
        let mut opts = opts.clone();
        opts.shim = true;
        // The shim holds the pty master of a terminal container.
        opts.own_console = opts.console_socket.is_none();
        container::create(root, &opts)
    })
}

/// Makes the container with `make` in a forked child that then becomes
/// its rt-shim (`make` must leave the init a child of its caller, and
/// record the shim in the state). Returns the init's pid. On failure
/// nothing of the container is left (`make` undoes its own work).
///
/// Must be called from a single-threaded process (it forks).
pub fn spawn(
    root: &Root,
    id: &str,
    handoff: &Handoff,
    make: impl FnOnce() -> Result<Created>,
) -> Result<i32> {
    if crate::sys::process::thread_count() != Some(1) {
        return Err(Error::Internal(
            "shim::spawn needs a single-threaded caller",
        ));
    }
    let (report_r, report_w) = pipe2(OFlag::O_CLOEXEC).ctx("pipe for the shim's report")?;
    // The child never returns from `become_shim`.
    match fork_single_threaded().ctx("fork the shim")? {
        ForkResult::Child => {
            drop(report_r);
            let code = become_shim(root, id, handoff, report_w.as_fd(), make);
            // Not the parent's atexit handlers or destructors again.
            exit_now(code)
        }
        ForkResult::Parent { child } => {
            drop(report_w);
            let pidfd = pidfd_open(child.as_raw()).ctx("pidfd of the shim")?;
            let mut created = None;
            let outcome = await_report(report_r.as_fd(), pidfd.as_fd(), &mut created, id);
            if outcome.is_err() && created.is_some() {
                // The shim died after making the container: whatever is
                // left of it goes. (Before that, `make` undid its own
                // work, and the id may well be another container's.)
                let _ = container::delete(root, id, true);
            }
            outcome
        }
    }
}

/// Reads the child's reports until `Ready` or `Failed`, or until it dies.
fn await_report(
    report: BorrowedFd<'_>,
    pidfd: BorrowedFd<'_>,
    pid: &mut Option<i32>,
    id: &str,
) -> Result<i32> {
    let mut buf = Vec::new();
    let mut child_gone = false;
    // Never a blocking read: the init inherits the pipe's write end until
    // it execs, so a shim killed mid-create leaves the pipe open, and
    // only its pidfd tells.
    nix::fcntl::fcntl(report, nix::fcntl::FcntlArg::F_SETFL(OFlag::O_NONBLOCK))
        .ctx("read the shim's report")?;
    loop {
        let mut fds = [
            PollFd::new(report.as_fd(), PollFlags::POLLIN),
            PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(nix::Error::EINTR) => {}
            Err(e) => return Err(e).ctx("wait for the shim"),
        }
        // Read what is there even when the child is gone: it may have
        // written before dying.
        if fds[1].revents().is_some_and(|r| !r.is_empty()) {
            child_gone = true;
        }
        loop {
            let mut chunk = [0u8; 4096];
            match nix::unistd::read(report, &mut chunk) {
                Ok(0) => {
                    child_gone = true;
                    break;
                }
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(nix::Error::EINTR) => {}
                Err(nix::Error::EAGAIN) => break,
                Err(e) => return Err(e).ctx("read the shim's report"),
            }
        }
        while let Some(nl) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=nl).collect();
            match serde_json::from_slice::<Report>(&line) {
                Ok(Report::Created { pid: p }) => *pid = Some(p),
                Ok(Report::Ready) => {
                    return pid.ok_or_else(|| {
                        Error::Protocol("rt-shim said ready before the container existed".into())
                    })
                }
                Ok(Report::Failed { error, kind, errno }) => {
                    return Err(Error::Reported {
                        msg: error,
                        kind,
                        errno: errno.map(nix::errno::Errno::from_raw),
                    })
                }
                Err(source) => {
                    return Err(Error::Json {
                        what: "rt-shim: bad report".into(),
                        source,
                    })
                }
            }
        }
        if child_gone {
            // Killed, most likely: what it made may be left (`delete -f`
            // removes it; the id may also be another create's).
            return Err(Error::Protocol(format!(
                "container {id}: rt-shim exited before taking the container over (if it is left, `rt delete -f {id}` removes it)"
            )));
        }
    }
}

/// The forked child: leave the caller's session, make the container,
/// exec rt-shim. Returns an exit code only when it failed.
fn become_shim(
    root: &Root,
    id: &str,
    handoff: &Handoff,
    report: BorrowedFd<'_>,
    make: impl FnOnce() -> Result<Created>,
) -> i32 {
    match make_and_exec(root, id, handoff, report, make) {
        Ok(never) => match never {},
        Err(e) => {
            Report::Failed {
                error: e.to_string(),
                kind: e.kind(),
                errno: e.errno().map(|n| n as i32),
            }
            .send(report);
            1
        }
    }
}

fn make_and_exec(
    root: &Root,
    id: &str,
    handoff: &Handoff,
    report: BorrowedFd<'_>,
    make: impl FnOnce() -> Result<Created>,
) -> Result<std::convert::Infallible> {
    setsid().ctx("setsid for the shim")?;
    // Processes the init leaves behind (without a pid namespace) are
    // reparented to the shim, which reaps them.
    nix::sys::prctl::set_child_subreaper(true).ctx("become a child subreaper")?;
    let null = open(
        "/dev/null",
        OFlag::O_RDWR | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ctx("open /dev/null")?;
    // With capture, the init's stdout and stderr are pipes the shim reads.
    let mut captured = None;
    if handoff.capture {
        let (out_r, out_w) = pipe2(OFlag::O_CLOEXEC).ctx("pipe for stdout")?;
        let (err_r, err_w) = pipe2(OFlag::O_CLOEXEC).ctx("pipe for stderr")?;
        dup2_raw(null.as_fd(), 0)?;
        dup2_raw(out_w.as_fd(), 1)?;
        dup2_raw(err_w.as_fd(), 2)?;
        captured = Some((out_r, err_r));
    }
    let created = make()?;
    let pid = created.init.pid.as_raw();
    Report::Created { pid }.send(report);

    let dir = root.dir_of(id);
    let mut argv = vec![
        handoff.shim.as_os_str().to_owned(),
        "--dir".into(),
        dir.as_os_str().to_owned(),
        "--init".into(),
        pid.to_string().into(),
        "--report-fd".into(),
        report.as_raw_fd().to_string().into(),
    ];
    let mut keep = vec![report.as_raw_fd()];
    if let Some((out, err)) = &captured {
        argv.extend([
            "--stdout-fd".into(),
            out.as_raw_fd().to_string().into(),
            "--stderr-fd".into(),
            err.as_raw_fd().to_string().into(),
        ]);
        keep.extend([out.as_raw_fd(), err.as_raw_fd()]);
    }
    if let Some(master) = &created.console {
        argv.extend(["--console-fd".into(), master.as_raw_fd().to_string().into()]);
        keep.push(master.as_raw_fd());
    } else if !handoff.capture {
        // Neither a terminal nor capture: the container writes straight
        // to the caller's descriptors, and the shim keeps no log.
        argv.push("--no-log".into());
    }
    // Nothing else of the caller's passes to the shim: a caller's other
    // descriptors (a pipe it reads to the end) must not stay open for as
    // long as the container lives.
    cloexec_from(3).ctx("mark the caller's descriptors close-on-exec")?;
    for fd in keep {
        // Open until the exec: the report pipe, `captured` and `created`.
        clear_cloexec(fd).ctx("pass a descriptor to rt-shim")?;
    }
    // The shim must not hold the caller's stdio (a caller reading our
    // output would wait for the container's end).
    for fd in 0..3 {
        dup2_raw(null.as_fd(), fd)?;
    }
    let argv: Vec<std::ffi::CString> = argv
        .into_iter()
        .map(|a| {
            std::ffi::CString::new(std::os::unix::ffi::OsStringExt::into_vec(a))
                .expect("no NUL in paths from the OS")
        })
        .collect();
    let err = execv(&argv[0], &argv).unwrap_err();
    let context = format!("run rt-shim {}", handoff.shim.display());
    crate::spawn::kill_and_reap(&created.init);
    let _ = container::delete(root, id, true);
    Err(Error::Sys {
        context,
        source: err,
    })
}

fn dup2_raw(from: BorrowedFd<'_>, to: RawFd) -> Result<()> {
    dup2_onto(from, to).ctx("set up the shim's stdio")
}

#[cfg(test)]
mod tests {
    use super::Mode;

    #[test]
    fn auto_uses_a_shim_unless_the_caller_reaps_the_init() {
        // --pid-file or --console-socket (create or restore): the caller
        // (containerd's runc shim, conmon) reaps it, as with runc.
        assert!(Mode::Auto.wanted_by(false));
        assert!(!Mode::Auto.wanted_by(true));
        assert!(Mode::Always.wanted_by(true));
        assert!(!Mode::Never.wanted_by(false));
    }
}
