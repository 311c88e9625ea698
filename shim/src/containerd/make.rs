//! Asking the zygote: `call` for any request, `make` for one that makes
//! a process (the init or an exec), with its stdio wired up before and
//! registered after.

use std::fs::File;
use std::os::fd::AsFd;
use std::sync::mpsc::Receiver;

use containerd_shim::protos::ttrpc::Code;
use containerd_shim::TtrpcResult;
use log::warn;

use super::error::{code, status};
use super::tasks::Io;
use super::worker::{Reply, Request, StdioFds};
use super::{stdio, Inner};

impl Inner {
    /// Sends `req` to the zygote and waits for its answer; a refusal
    /// comes back with the code of its kind.
    pub(super) fn call(
        &self,
        req: &Request,
        stdio: Option<StdioFds>,
    ) -> TtrpcResult<(Reply, Option<File>)> {
        let z = self.zygote.lock().unwrap_or_else(|p| p.into_inner());
        let z = z
            .as_ref()
            .map_err(|why| status(Code::INTERNAL, format!("the shim has no zygote: {why}")))?;
        match z.call(req, stdio) {
            Ok((Reply::Failed { kind, error }, _)) => Err(status(code(kind), error)),
            Ok((r, fd)) => Ok((r, fd.map(File::from))),
            Err(e) => Err(status(Code::INTERNAL, e)),
        }
    }

    /// Makes a process (the init or an exec) and registers it.
    pub(super) fn make(&self, id: &str, exec_id: &str, req: Request, io: &Io) -> TtrpcResult<i32> {
        self.tasks().begin_make();
        let made = self.make_and_register(id, exec_id, req, io);
        self.tasks().end_make();
        let (pid, early) = made?;
        if let Some((code, _)) = early {
            self.on_exit(pid, super::tasks::status_i32(code));
        }
        Ok(pid)
    }

    /// `make`'s work; the pid and its exit if the process has already
    /// ended.
    fn make_and_register(
        &self,
        id: &str,
        exec_id: &str,
        req: Request,
        io: &Io,
    ) -> TtrpcResult<(i32, Option<super::tasks::Exit>)> {
        let (fds, writer) = open_stdio(io)?;
        let (reply, console) = self.call(&req, Some(fds))?;
        let Reply::Made { pid } = reply else {
            return Err(status(
                Code::INTERNAL,
                format!("unexpected answer {reply:?}"),
            ));
        };
        let output_done = match copy_stdio(io, console.as_ref(), &writer) {
            Ok(d) => d,
            Err(e) => {
                self.unmake(id, exec_id, pid);
                return Err(status(Code::INTERNAL, e));
            }
        };
        let early = {
            let mut tasks = self.tasks();
            let p = tasks.process_mut(id, exec_id)?;
            p.stdin_writer = writer;
            p.console = console;
            p.output_done = output_done;
            tasks.register(id, exec_id, pid)?
        };
        Ok((pid, early))
    }

    /// Undoes a process `make` made but could not hand over: an init's
    /// container is deleted (state, cgroup, mount), an exec is killed.
    fn unmake(&self, id: &str, exec_id: &str, pid: i32) {
        if exec_id.is_empty() {
            let rootfs = self.tasks().get(id).and_then(|t| t.rootfs.clone());
            let req = Request::Delete {
                root: self.root(),
                id: id.to_string(),
                force: true,
                rootfs,
            };
            if let Err(e) = self.call(&req, None) {
                warn!("delete {id} after a failed create: {e:?}");
            }
        } else if let Ok(fd) = rt::sys::pidfd::pidfd_open(pid) {
            let _ = rt::sys::pidfd::pidfd_send_signal(&fd, libc::SIGKILL);
        }
    }
}

/// The descriptors the process gets, and the writer of its stdin pipe.
/// Every path is checked before anything is opened. A terminal's process
/// gets no stdio of its own (its pty is copied instead, see `copy_stdio`).
fn open_stdio(io: &Io) -> TtrpcResult<(StdioFds, stdio::StdinWriter)> {
    let bad = |e: String| status(Code::INVALID_ARGUMENT, e);
    for p in [&io.stdin, &io.stdout, &io.stderr] {
        stdio::check_scheme(p).map_err(bad)?;
    }
    let (stdin, stdout, stderr) = if io.terminal {
        ("", "", "")
    } else {
        (io.stdin.as_str(), io.stdout.as_str(), io.stderr.as_str())
    };
    let (i, w) = stdio::open_input(stdin).map_err(bad)?;
    let fds = StdioFds {
        stdin: i,
        stdout: stdio::open_output(stdout).map_err(bad)?,
        stderr: stdio::open_output(stderr).map_err(bad)?,
    };
    Ok((fds, w))
}

/// Starts copying containerd's FIFOs for a made process: both ways
/// through a terminal's pty master, or into the stdin pipe. The receiver
/// says when a terminal's output is done.
fn copy_stdio(
    io: &Io,
    console: Option<&File>,
    writer: &stdio::StdinWriter,
) -> Result<Option<Receiver<()>>, String> {
    match (console, io.terminal) {
        (Some(m), true) => stdio::copy_console(m.as_fd(), &io.stdin, &io.stdout).map(Some),
        _ => {
            stdio::copy_input(&io.stdin, writer);
            Ok(None)
        }
    }
}
