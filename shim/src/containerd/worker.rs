//! The shim's container maker. The rt library expects a process of its own
//! for each create, start, exec and delete: it clones the init and runs
//! Rust code in the child, joins namespaces for its children and waits
//! for the hooks it spawns. The shim serves ttrpc on several threads and
//! reaps every child on another, so none of that can happen in it.
//!
//! So at start-up, while the shim is still single-threaded, it forks a
//! *zygote*. The zygote stays single-threaded and forks a fresh *worker*
//! for each request; the worker makes the library call and exits. The
//! init (or exec process) it made is reparented to the shim, the nearest
//! child subreaper, which reaps it. No runtime binary is spawned.
//!
//! The library's warnings (a resource field ignored, or skipped on a
//! hybrid host) are a worker's too: the zygote's logger keeps them, the
//! worker sends them with its reply, and the shim logs them to containerd.

use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use nix::sys::wait::waitpid;
use nix::unistd::{dup2_stderr, dup2_stdin, dup2_stdout, ForkResult};
use rt::container::exec::{self, ExecOptions, ProcessSource};
use rt::container::{self, CreateOptions};
use rt::error::ErrorKind;
use rt::spawn::channel::Channel;
use rt::state::Root;
use rt::sys::process::{exit_now, fork_single_threaded};
use serde::{Deserialize, Serialize};

/// The mounts containerd's snapshotter prepared for the root filesystem.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RootfsMount {
    pub kind: String,
    pub source: String,
    pub options: Vec<String>,
}

/// What the shim asks of the zygote. The process's stdin, stdout and
/// stderr follow as three descriptor-bearing `Stdio` packets for
/// `Create` and `Exec`.
#[derive(Debug, Serialize, Deserialize)]
pub enum Request {
    Create {
        root: PathBuf,
        id: String,
        bundle: PathBuf,
        rootfs: Vec<RootfsMount>,
        terminal: bool,
        systemd_cgroup: bool,
    },
    Start {
        root: PathBuf,
        id: String,
    },
    Exec {
        root: PathBuf,
        id: String,
        /// The OCI process, as JSON.
        process: String,
        terminal: bool,
    },
    Delete {
        root: PathBuf,
        id: String,
        force: bool,
        /// Unmounted after the container is gone.
        rootfs: Option<PathBuf>,
    },
    /// containerd's `Checkpoint` (a dump through CRIU).
    Checkpoint {
        root: PathBuf,
        id: String,
        dump: super::checkpoint::Dump,
    },
    /// The `Start` of a task created from a checkpoint: the snapshot
    /// mounted, then the container restored with the task's stdio.
    Restore {
        root: PathBuf,
        id: String,
        bundle: PathBuf,
        rootfs: Vec<RootfsMount>,
        image_path: PathBuf,
        /// Into a systemd scope, as `Create` would make it.
        systemd_cgroup: bool,
    },
}

/// One of a process's three standard descriptors, attached.
#[derive(Debug, Serialize, Deserialize)]
pub struct Stdio;

/// The answer; a terminal's pty master comes attached to `Made`.
#[derive(Debug, Serialize, Deserialize)]
pub enum Reply {
    /// A process was made (the init, or an exec'd process).
    Made {
        pid: i32,
    },
    Done,
    /// The request failed: what kind of failure (so that containerd is
    /// answered with the matching code) and its message.
    Failed {
        kind: ErrorKind,
        error: String,
    },
}

impl Reply {
    /// The library refused or failed.
    fn failed(e: &rt::Error) -> Reply {
        Reply::Failed {
            kind: e.kind(),
            error: e.to_string(),
        }
    }

    /// The zygote's own machinery (a fork, a channel, a mount) failed.
    fn broken(error: impl Into<String>) -> Reply {
        Reply::Failed {
            kind: ErrorKind::Other,
            error: error.into(),
        }
    }
}

/// What a worker answers: the reply, and a descriptor to pass with it.
type Answer = (Reply, Option<OwnedFd>);

/// A reply on the channels, with the warnings the library logged while
/// making it.
#[derive(Debug, Serialize, Deserialize)]
struct Answered {
    reply: Reply,
    warnings: Vec<String>,
}

/// The zygote's logger: warnings kept (in each worker's copy) until the
/// worker answers.
struct Keep;

static KEPT: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

impl log::Log for Keep {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= log::Level::Warn
    }

    fn log(&self, r: &log::Record) {
        if self.enabled(r.metadata()) {
            KEPT.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(r.args().to_string());
        }
    }

    fn flush(&self) {}
}

/// The warnings kept so far, taken.
fn kept() -> Vec<String> {
    std::mem::take(&mut *KEPT.lock().unwrap_or_else(|p| p.into_inner()))
}

/// The shim's end. Its owner serializes calls (one request at a time).
pub struct Zygote {
    ch: Channel,
}

/// What the shim passes along with a `Create` or `Exec`.
pub struct StdioFds {
    pub stdin: OwnedFd,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

impl Zygote {
    /// Forks the zygote. Call while the process is single-threaded (a
    /// fork from more threads is refused, EDEADLK).
    pub fn spawn() -> rt::Result<Zygote> {
        let (shim_end, zygote_end) = Channel::pair()?;
        // The child leaves only through `exit_now`: no destructors or
        // atexit handlers of the parent's run twice.
        match fork_single_threaded() {
            Ok(ForkResult::Child) => {
                drop(shim_end);
                // containerd reads the shim's stdout until EOF to learn
                // its address: the zygote must not hold it open.
                if let Ok(null) = File::options().write(true).open("/dev/null") {
                    let _ = dup2_stdout(&null);
                }
                // The shim sets its logger after this fork: the zygote's
                // is its own.
                if log::set_boxed_logger(Box::new(Keep)).is_ok() {
                    log::set_max_level(log::LevelFilter::Warn);
                }
                serve(zygote_end);
                exit_now(0)
            }
            Ok(ForkResult::Parent { .. }) => Ok(Zygote { ch: shim_end }),
            Err(e) => Err(rt::Error::Sys {
                context: "fork the shim's zygote".into(),
                source: e,
            }),
        }
    }

    /// Sends `req` (with `stdio` when it makes a process) and waits for
    /// the answer.
    pub fn call(
        &self,
        req: &Request,
        stdio: Option<StdioFds>,
    ) -> Result<(Reply, Option<OwnedFd>), String> {
        let ch = &self.ch;
        let io = |e: rt::Error| format!("the shim's zygote: {e}");
        ch.send(req).map_err(io)?;
        if let Some(s) = &stdio {
            for fd in [&s.stdin, &s.stdout, &s.stderr] {
                ch.send_with_fd(&Stdio, Some(fd.as_fd())).map_err(io)?;
            }
        }
        drop(stdio);
        match ch.recv_with_fd::<Answered>().map_err(io)? {
            Some((a, fd)) => {
                for w in a.warnings {
                    log::warn!("{w}");
                }
                Ok((a.reply, fd))
            }
            None => Err("the shim's zygote is gone".into()),
        }
    }
}

/// The zygote's loop: a worker per request, until the shim goes away.
fn serve(ch: Channel) {
    loop {
        let req = match ch.recv::<Request>() {
            Ok(Some(r)) => r,
            _ => return,
        };
        let stdio = if matches!(
            req,
            Request::Create { .. } | Request::Exec { .. } | Request::Restore { .. }
        ) {
            match recv_stdio(&ch) {
                Some(s) => Some(s),
                None => return,
            }
        } else {
            None
        };
        let (answered, fd) = run_worker(req, stdio);
        if ch
            .send_with_fd(&answered, fd.as_ref().map(|f| f.as_fd()))
            .is_err()
        {
            return;
        }
    }
}

/// The three `Stdio` packets that follow a `Create` or `Exec`; `None`
/// when the shim is gone or sent something else.
fn recv_stdio(ch: &Channel) -> Option<StdioFds> {
    let next = || match ch.recv_with_fd::<Stdio>() {
        Ok(Some((Stdio, Some(fd)))) => Some(fd),
        _ => None,
    };
    Some(StdioFds {
        stdin: next()?,
        stdout: next()?,
        stderr: next()?,
    })
}

/// Forks a worker for `req` and relays its answer.
fn run_worker(req: Request, stdio: Option<StdioFds>) -> (Answered, Option<OwnedFd>) {
    let broken = |e: String| {
        let reply = Reply::broken(e);
        (
            Answered {
                reply,
                warnings: vec![],
            },
            None,
        )
    };
    let (mine, theirs) = match Channel::pair() {
        Ok(p) => p,
        Err(e) => return broken(e.to_string()),
    };
    // The zygote is single-threaded; the child leaves via `exit_now`.
    match fork_single_threaded() {
        Ok(ForkResult::Child) => {
            drop(mine);
            let (reply, fd) = work(req, stdio);
            let answered = Answered {
                reply,
                warnings: kept(),
            };
            let _ = theirs.send_with_fd(&answered, fd.as_ref().map(|f| f.as_fd()));
            exit_now(0)
        }
        Ok(ForkResult::Parent { child }) => {
            drop(theirs);
            drop(stdio);
            let got = mine.recv_with_fd::<Answered>();
            let _ = waitpid(child, None);
            match got {
                Ok(Some(a)) => a,
                Ok(None) => broken("the worker died before answering".into()),
                Err(e) => broken(e.to_string()),
            }
        }
        Err(e) => broken(format!("fork a worker: {e}")),
    }
}

/// The worker: one library call, in a process of its own.
fn work(req: Request, stdio: Option<StdioFds>) -> Answer {
    let stdio = match (&req, stdio) {
        // A restore hands them to CRIU by name, not as the worker's own.
        (Request::Restore { .. }, s) => s,
        (_, Some(s)) => {
            // The library's processes inherit their maker's stdio.
            let _ = dup2_stdin(&s.stdin);
            let _ = dup2_stdout(&s.stdout);
            let _ = dup2_stderr(&s.stderr);
            None
        }
        (_, None) => None,
    };
    match req {
        Request::Create {
            root,
            id,
            bundle,
            rootfs,
            terminal,
            systemd_cgroup,
        } => {
            let opts = CreateOptions {
                id,
                bundle,
                own_console: terminal,
                systemd_cgroup,
                ..Default::default()
            };
            create(&Root::new(root), &opts, &rootfs)
        }
        Request::Start { root, id } => done(container::start(&Root::new(root), &id)),
        Request::Exec {
            root,
            id,
            process,
            terminal,
        } => exec_process(&Root::new(root), id, &process, terminal),
        Request::Delete {
            root,
            id,
            force,
            rootfs,
        } => {
            let r = container::delete(&Root::new(root), &id, force);
            if let Some(dir) = rootfs {
                unmount(&dir);
            }
            done(r)
        }
        Request::Checkpoint { root, id, dump } => {
            let r = dump.flags().and_then(|flags| {
                let opts = rt::checkpoint::CheckpointOptions {
                    criu: None,
                    image_path: dump.image_path.clone(),
                    work_path: dump.work_path.clone(),
                    flags,
                };
                rt::checkpoint::checkpoint(&Root::new(root), &id, &opts)
            });
            done(r)
        }
        Request::Restore {
            root,
            id,
            bundle,
            rootfs,
            image_path,
            systemd_cgroup,
        } => {
            let opts = rt::checkpoint::RestoreOptions {
                id,
                criu: None,
                bundle,
                image_path,
                work_path: None,
                console_socket: None,
                pid_file: None,
                systemd_cgroup,
                flags: rt::checkpoint::RestoreFlags::default(),
                stdio: stdio.map(|s| rt::checkpoint::RestoreStdio {
                    stdin: s.stdin,
                    stdout: s.stdout,
                    stderr: s.stderr,
                }),
            };
            restore(&Root::new(root), &rootfs, opts)
        }
    }
}

/// Mounts the snapshot and restores the container into it; the restored
/// init is this worker's child (CRIU's `rst_sibling`) and passes to the
/// shim, the subreaper, when the worker exits. A failure leaves nothing
/// mounted.
fn restore(root: &Root, rootfs: &[RootfsMount], opts: rt::checkpoint::RestoreOptions) -> Answer {
    let target = opts.bundle.join("rootfs");
    if let Err(e) = mount_rootfs(&target, rootfs) {
        unmount(&target);
        return (Reply::failed(&e), None);
    }
    match rt::checkpoint::restore(root, &opts) {
        Ok(r) => (Reply::Made { pid: r.pid }, None),
        Err(e) => {
            if !rootfs.is_empty() {
                unmount(&target);
            }
            (Reply::failed(&e), None)
        }
    }
}

fn done(r: rt::Result<()>) -> Answer {
    match r {
        Ok(()) => (Reply::Done, None),
        Err(e) => (Reply::failed(&e), None),
    }
}

/// Mounts the snapshot, then makes the container in it; a failure leaves
/// nothing mounted.
fn create(root: &Root, opts: &CreateOptions, rootfs: &[RootfsMount]) -> Answer {
    let target = opts.bundle.join("rootfs");
    if let Err(e) = mount_rootfs(&target, rootfs) {
        // The mounts that did succeed go too.
        unmount(&target);
        return (Reply::failed(&e), None);
    }
    match container::create(root, opts) {
        Ok(c) => (
            Reply::Made {
                pid: c.init.pid.as_raw(),
            },
            c.console,
        ),
        Err(e) => {
            if !rootfs.is_empty() {
                unmount(&target);
            }
            (Reply::failed(&e), None)
        }
    }
}

/// Starts `process` (OCI JSON) in container `id`.
fn exec_process(root: &Root, id: String, process: &str, terminal: bool) -> Answer {
    let process = match serde_json::from_str(process) {
        Ok(p) => p,
        Err(e) => {
            let e = rt::Error::InvalidArgument {
                arg: "the exec's process spec".into(),
                reason: e.to_string(),
            };
            return (Reply::failed(&e), None);
        }
    };
    let opts = ExecOptions {
        id,
        own_console: terminal,
        ..Default::default()
    };
    match exec::exec(root, &opts, ProcessSource::Given(Box::new(process))) {
        Ok(e) => (
            Reply::Made {
                pid: e.process.pid.as_raw(),
            },
            e.console,
        ),
        Err(e) => (Reply::failed(&e), None),
    }
}

/// Mounts the snapshot at `target` (`<bundle>/rootfs`): an overlay, or a
/// bind mount of a directory (the native snapshotter), with OCI-style
/// options. (The containerd-shim crate's own helper waits on its reaper
/// thread, which a worker does not have.)
fn mount_rootfs(target: &std::path::Path, mounts: &[RootfsMount]) -> rt::Result<()> {
    use nix::mount::{mount, MsFlags};
    for m in mounts {
        let what = || format!("mount {} {} at {}", m.kind, m.source, target.display());
        // containerd's uidmap=/gidmap= are the mounter's to apply: the
        // lower layers are idmapped; the clones go once the overlay holds
        // them (at the end of this iteration).
        let split =
            super::idmapped::split(&m.options).map_err(|reason| rt::Error::InvalidArgument {
                arg: what(),
                reason,
            })?;
        let (_lowers, options) = match &split.maps {
            Some(maps) if m.kind == "overlay" => {
                let dir = target.with_file_name("rootfs-idmapped-layers");
                let (lowers, options) = super::idmapped::Lowers::idmap(&dir, &split.options, maps)
                    .map_err(|e| e.in_field(what()))?;
                (Some(lowers), options)
            }
            Some(_) => {
                return Err(rt::Error::InvalidArgument {
                    arg: what(),
                    reason: "uidmap=/gidmap= are supported on an overlay only".into(),
                })
            }
            None => (None, split.options),
        };
        let o = rt::config::mount_options::MountOptions::parse(&options).map_err(|reason| {
            rt::Error::InvalidArgument {
                arg: what(),
                reason,
            }
        })?;
        let data = o.data_string();
        if data.as_ref().is_some_and(|d| d.len() >= 4096) {
            return Err(rt::Error::InvalidArgument {
                arg: what(),
                reason: "the options do not fit a page (too many layers)".into(),
            });
        }
        let mut flags = o.flags;
        if o.bind || m.kind == "bind" {
            flags |= MsFlags::MS_BIND;
            if o.recursive_bind {
                flags |= MsFlags::MS_REC;
            }
        }
        let kind = (!m.kind.is_empty() && m.kind != "bind").then_some(m.kind.as_str());
        let first = if flags.contains(MsFlags::MS_BIND) {
            flags - MsFlags::MS_RDONLY
        } else {
            flags
        };
        mount(
            Some(m.source.as_str()),
            target,
            kind,
            first,
            data.as_deref(),
        )
        .map_err(|source| rt::Error::Sys {
            context: what(),
            source,
        })?;
        // A bind mount takes read-only only on a remount.
        if flags.contains(MsFlags::MS_BIND | MsFlags::MS_RDONLY) {
            mount(
                None::<&str>,
                target,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
                None::<&str>,
            )
            .map_err(|source| rt::Error::Sys {
                context: format!("{}: remount read-only", what()),
                source,
            })?;
        }
    }
    Ok(())
}

/// Unmounts the snapshot from the bundle (lazily: a process that still
/// holds it open must not keep the mount from going).
pub fn unmount(dir: &std::path::Path) {
    while nix::mount::umount2(dir, nix::mount::MntFlags::MNT_DETACH).is_ok() {}
}
