//! The init's last step: the program found as execve would find it, rt's
//! own binary refused, the start fifo waited on, the startContainer hooks,
//! signals reset, the late seccomp filters, execve.

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{openat, OFlag};
use nix::sys::stat::Mode;

use super::exit;
use crate::error::{Error, Result};
use crate::hooks;
use crate::spawn::channel::{Channel, FromInit};
use crate::state::EXEC_FIFO;

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A program ready for execve.
pub struct Exec {
    pub(super) path: CString,
    pub(super) argv: Vec<CString>,
    pub(super) envp: Vec<CString>,
    /// The seccomp filters, installed right before execve so a profile
    /// need not allow the runtime's own last steps; None once installed.
    pub(super) seccomp: Option<crate::seccomp::Compiled>,
    /// CAP_SYS_ADMIN held for installing the filters without no_new_privs,
    /// dropped right after them.
    pub(super) release_admin: Option<ReleaseAdmin>,
    /// The AppArmor profile to switch to at the execve.
    pub(super) apparmor: Option<super::apparmor::OnExec>,
}

/// CAP_SYS_ADMIN to drop after the seccomp filters; `permitted` says
/// whether it stays in the permitted set.
#[derive(Debug, Clone, Copy)]
pub struct ReleaseAdmin {
    pub permitted: bool,
}

impl Exec {
    /// Installs the seccomp filters now, for a profile with an agent: the
    /// listener goes to rt over the channel, which rt forwards at once,
    /// so syscalls of ours the profile notifies are answered.
    pub(super) fn install_seccomp_now(&mut self, channel: &Channel) -> Result<()> {
        let Some(f) = self.seccomp.take() else {
            return Ok(());
        };
        let listener = crate::seccomp::install(&f)?;
        self.release_held_admin()?;
        if let Some(listener) = listener {
            channel.send_with_fd(&FromInit::SeccompListener, Some(listener.as_fd()))?;
        }
        Ok(())
    }

    fn release_held_admin(&mut self) -> Result<()> {
        match self.release_admin.take() {
            Some(r) => super::capabilities::release_admin(r.permitted),
            None => Ok(()),
        }
    }

    /// The AppArmor profile for the exec, then the seccomp filters, then
    /// CAP_SYS_ADMIN held for them dropped; each once.
    fn confine(&mut self) -> Result<()> {
        // Before the filters: writing the attr file is a syscall the
        // profile may deny.
        if let Some(a) = self.apparmor.take() {
            a.apply()?;
        }
        if let Some(f) = self.seccomp.take() {
            crate::seccomp::install(&f)?;
        }
        self.release_held_admin()
    }

    /// Confines the process, if not yet, and execs. Returns only on error.
    pub(super) fn exec(&mut self) -> Error {
        if let Err(e) = self.confine() {
            return e;
        }
        match nix::unistd::execve(&self.path, &self.argv, &self.envp) {
            Err(e) => Error::Execve {
                path: PathBuf::from(std::ffi::OsStr::from_bytes(self.path.as_bytes())),
                errno: e,
            },
            Ok(never) => match never {},
        }
    }
}

/// Where the init finds the exec fifo.
pub enum Fifo {
    /// An O_PATH descriptor of the fifo itself, reopened for writing
    /// through the container's procfs (/proc/self/fd/N): the waiting init
    /// holds no host directory.
    Path(OwnedFd),
    /// The state directory (O_PATH), for a container without procfs on
    /// /proc.
    StateDir(OwnedFd),
}

impl Fifo {
    pub(super) fn raw_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        match self {
            Fifo::Path(fd) | Fifo::StateDir(fd) => fd.as_raw_fd(),
        }
    }

    /// Opens the fifo for writing; blocks until `rt start` opens it.
    fn open_for_writing(&self) -> nix::Result<OwnedFd> {
        use std::os::fd::AsRawFd;
        match self {
            Fifo::Path(fd) => {
                // The container's /proc, which rt mounted: procfs or refused.
                let proc = Path::new("/proc");
                let fs = nix::sys::statfs::statfs(proc)?;
                if fs.filesystem_type() != nix::sys::statfs::PROC_SUPER_MAGIC {
                    return Err(nix::Error::EXDEV);
                }
                nix::fcntl::open(
                    &proc.join(format!("self/fd/{}", fd.as_raw_fd())),
                    OFlag::O_WRONLY | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
            }
            Fifo::StateDir(dir) => openat(
                dir,
                EXEC_FIFO,
                OFlag::O_WRONLY | OFlag::O_CLOEXEC,
                Mode::empty(),
            ),
        }
    }
}

/// Blocks until `rt start` opens the fifo, runs the startContainer hooks,
/// tells `start` how they went ("0", or "1" and the error), then execs.
/// Returns only on error.
pub(super) fn wait_and_exec(
    fifo: &Fifo,
    exec: &mut Exec,
    start_hooks: &[oci_spec::runtime::Hook],
    hook_state: Option<&str>,
) -> Error {
    // Until `start`, a signal meant to end the container ends its init,
    // even as pid 1 of its namespace (which ignores unhandled signals).
    crate::sys::process::exit_on(&[
        libc::SIGHUP,
        libc::SIGINT,
        libc::SIGQUIT,
        libc::SIGTERM,
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGALRM,
    ]);
    let fifo = match fifo.open_for_writing() {
        Ok(f) => f,
        Err(e) => {
            return Error::Sys {
                context: "open exec fifo".into(),
                source: e,
            }
        }
    };
    if !start_hooks.is_empty() {
        // The hooks run as the container's code does, under its seccomp
        // filters (runc the same): the init confines itself first.
        if let Err(e) = exec.confine() {
            let mut msg = format!("1{e}").into_bytes();
            msg.truncate(libc::PIPE_BUF - 1);
            let _ = nix::unistd::write(&fifo, &msg);
            exit(1);
        }
        // The state rt sent at create time, now "created": start was called
        // and the program has not run yet.
        let mut state: serde_json::Value =
            serde_json::from_str(hook_state.unwrap_or("{}")).unwrap_or_default();
        state["status"] = "created".into();
        let state = state.to_string();
        let env: Vec<String> = exec
            .envp
            .iter()
            .map(|e| e.to_string_lossy().into_owned())
            .collect();
        if let Err(e) = hooks::run_with_env(
            hooks::Kind::StartContainer,
            start_hooks,
            state.as_bytes(),
            &env,
        ) {
            // One write below PIPE_BUF arrives whole.
            let mut msg = format!("1{e}").into_bytes();
            msg.truncate(libc::PIPE_BUF - 1);
            let _ = nix::unistd::write(&fifo, &msg);
            // `rt start` reports it; nothing more to say here.
            exit(1);
        }
    }
    if let Err(e) = nix::unistd::write(&fifo, b"0") {
        return Error::Sys {
            context: "write exec fifo".into(),
            source: e,
        };
    }
    drop(fifo);
    reset_signals();
    exec.exec()
}

/// rt ignores SIGPIPE and may block signals; the container must start with
/// default dispositions and an empty mask.
pub fn reset_signals() {
    for sig in 1..libc::SIGRTMAX() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        crate::sys::process::default_disposition(sig);
    }
    let _ = nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&nix::sys::signal::SigSet::empty()),
        None,
    );
}

/// Refuses to exec rt's own binary, directly (`/proc/self/exe`, a hard
/// link) or as a script's interpreter (`#!/proc/self/exe`): the process
/// would run rt's executable, whose file a second container process
/// could then open through /proc/<pid>/exe and overwrite on the host
/// (CVE-2019-5736). Follows up to four levels of interpreters, as the
/// kernel does.
pub(super) fn refuse_runtime_binary(path: &str) -> Result<()> {
    use std::io::Read;
    let Some(rt) = crate::sys::process::runtime_exe() else {
        return Ok(());
    };
    let mut p = PathBuf::from(path);
    for _ in 0..5 {
        let Ok(st) = nix::sys::stat::stat(&p) else {
            return Ok(());
        };
        if (st.st_dev, st.st_ino) == rt {
            return Err(Error::RuntimeBinary {
                program: path.to_string(),
                interpreter: (p.as_os_str() != path).then(|| p.clone()),
            });
        }
        let mut head = [0u8; 256];
        let n = match std::fs::File::open(&p).and_then(|mut f| f.read(&mut head)) {
            Ok(n) => n,
            Err(_) => return Ok(()),
        };
        let Some(line) = head[..n].strip_prefix(b"#!") else {
            return Ok(());
        };
        let line = line.split(|&b| b == b'\n').next().unwrap_or_default();
        let interp = line
            .split(|&b| b == b' ' || b == b'\t')
            .find(|w| !w.is_empty());
        match interp {
            Some(i) => p = PathBuf::from(std::ffi::OsStr::from_bytes(i)),
            None => return Ok(()),
        }
    }
    Ok(())
}

/// Finds the program as execve would after a PATH search, inside the
/// container, so a missing program fails `create` with a clear message.
pub(super) fn find_executable(arg0: &str, env: &[String]) -> Result<String> {
    use std::os::unix::fs::PermissionsExt;
    let runnable = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if arg0.contains('/') {
        return if runnable(Path::new(arg0)) {
            Ok(arg0.to_string())
        } else if Path::new(arg0).exists() {
            Err(Error::Program {
                arg0: arg0.to_string(),
                reason: "permission denied (not an executable file)".into(),
                errno: Some(nix::errno::Errno::EACCES),
            })
        } else {
            Err(Error::Program {
                arg0: arg0.to_string(),
                reason: format!("stat {arg0}: no such file or directory"),
                errno: Some(nix::errno::Errno::ENOENT),
            })
        };
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let cand = Path::new(dir).join(arg0);
        if runnable(&cand) {
            return Ok(cand.to_string_lossy().into_owned());
        }
    }
    // runc's words, which callers match.
    Err(Error::Program {
        arg0: arg0.to_string(),
        reason: "executable file not found in $PATH".into(),
        errno: Some(nix::errno::Errno::ENOENT),
    })
}
