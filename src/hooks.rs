//! OCI hooks: programs the config asks to run at points of the lifecycle,
//! each with the container's state JSON on stdin, its own args and env,
//! and an optional timeout. Where a hook runs (rt's namespaces or the
//! container's) is the caller's business; this module runs one list.

use std::io::{Read, Seek, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use oci_spec::runtime::{Hook, Hooks};

use crate::error::{Context, Error, Result};
use crate::sys::pidfd::pidfd_open;

/// The lifecycle points, named as in config.json.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl Kind {
    /// Every kind, in lifecycle order.
    pub const ALL: [Kind; 6] = [
        Kind::Prestart,
        Kind::CreateRuntime,
        Kind::CreateContainer,
        Kind::StartContainer,
        Kind::Poststart,
        Kind::Poststop,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Prestart => "prestart",
            Kind::CreateRuntime => "createRuntime",
            Kind::CreateContainer => "createContainer",
            Kind::StartContainer => "startContainer",
            Kind::Poststart => "poststart",
            Kind::Poststop => "poststop",
        }
    }

    /// The hooks of this kind in `hooks`, in order.
    pub fn of(self, hooks: Option<&Hooks>) -> &[Hook] {
        let Some(h) = hooks else { return &[] };
        #[allow(deprecated)] // prestart is deprecated but still run
        let list = match self {
            Kind::Prestart => h.prestart(),
            Kind::CreateRuntime => h.create_runtime(),
            Kind::CreateContainer => h.create_container(),
            Kind::StartContainer => h.start_container(),
            Kind::Poststart => h.poststart(),
            Kind::Poststop => h.poststop(),
        };
        list.as_deref().unwrap_or(&[])
    }
}

/// Checks what can be checked before anything runs: absolute paths and a
/// positive timeout (config.md, POSIX-platform Hooks).
pub fn validate(hooks: &Hooks) -> std::result::Result<(), String> {
    for kind in Kind::ALL {
        for (i, h) in kind.of(Some(hooks)).iter().enumerate() {
            if !h.path().is_absolute() {
                return Err(format!(
                    "hooks.{}[{i}].path: {} is not an absolute path",
                    kind.name(),
                    h.path().display()
                ));
            }
            if h.timeout().is_some_and(|t| t <= 0) {
                return Err(format!(
                    "hooks.{}[{i}].timeout: must be greater than zero",
                    kind.name()
                ));
            }
        }
    }
    Ok(())
}

/// Runs the hooks of `kind` in order; the first failure stops the list
/// and is returned. Each hook's output goes to the log.
pub fn run(kind: Kind, hooks: &[Hook], state: &[u8]) -> Result<()> {
    run_with_env(kind, hooks, state, &[])
}

/// As [`run`], but a hook that gives no `env` of its own gets `inherited`
/// (startContainer hooks: the container process's environment, as under
/// runc, whose hooks inherit the environment of the init running them).
pub fn run_with_env(kind: Kind, hooks: &[Hook], state: &[u8], inherited: &[String]) -> Result<()> {
    for (i, h) in hooks.iter().enumerate() {
        run_one(kind, h, state, inherited).map_err(|msg| {
            // runc's wording, which callers match: "error running prestart hook #1: ".
            Error::Hook {
                stage: kind.name(),
                index: i,
                path: h.path().clone(),
                reason: msg,
                stopped: false,
            }
        })?;
    }
    Ok(())
}

/// The prestart then the createRuntime hooks, each list stopped by its
/// first failure: what runs in rt's namespaces once the init's exist
/// (after create's mounts, or CRIU's `setup-namespaces` on restore).
pub fn run_create_runtime(hooks: Option<&Hooks>, state: &[u8]) -> Result<()> {
    run(Kind::Prestart, Kind::Prestart.of(hooks), state)?;
    run(Kind::CreateRuntime, Kind::CreateRuntime.of(hooks), state)
}

/// Runs every hook of `kind`, logging failures as warnings (poststop: the
/// spec says its failure must not stop the lifecycle).
pub fn run_warn(kind: Kind, hooks: &[Hook], state: &[u8]) {
    for (i, h) in hooks.iter().enumerate() {
        if let Err(msg) = run_one(kind, h, state, &[]) {
            log::warn!(
                "error running {} hook #{}: {}: {msg}",
                kind.name(),
                i,
                h.path().display()
            );
        }
    }
}

/// Where rt's own hooks start: the state's bundle, when it is a
/// directory; else `/`.
fn own_hooks_dir(state: &[u8]) -> std::path::PathBuf {
    serde_json::from_slice::<serde_json::Value>(state)
        .ok()
        .and_then(|v| v.get("bundle")?.as_str().map(std::path::PathBuf::from))
        .filter(|b| b.is_absolute() && b.is_dir())
        .unwrap_or_else(|| "/".into())
}

fn run_one(
    kind: Kind,
    h: &Hook,
    state: &[u8],
    inherited: &[String],
) -> std::result::Result<(), String> {
    let mut cmd = Command::new(h.path());
    // The container's hooks start where its init is (createContainer: the
    // root, not yet entered; startContainer: the process's cwd), as under
    // runc; rt's own in the bundle, as runc's (runc create and run chdir
    // to the bundle; its suite's host-mntns.bats has a createRuntime hook
    // touch a relative path there), or at / without one.
    if !matches!(kind, Kind::CreateContainer | Kind::StartContainer) {
        cmd.current_dir(own_hooks_dir(state));
    }
    if let Some(args) = h.args() {
        if let Some((arg0, rest)) = args.split_first() {
            cmd.arg0(arg0).args(rest);
        }
    }
    cmd.env_clear();
    let env = match h.env() {
        Some(e) if !e.is_empty() => e.as_slice(),
        _ => inherited,
    };
    for e in env {
        match e.split_once('=') {
            Some((k, v)) => cmd.env(k, v),
            None => cmd.env(e, ""),
        };
    }
    // Output goes to an anonymous file, not a pipe: a hook that writes a
    // lot cannot block on a reader nobody runs.
    let out = memfd("rt-hook-output").map_err(|e| e.to_string())?;
    let out_file = std::fs::File::from(out);
    cmd.stdin(Stdio::piped())
        .stdout(out_file.try_clone().map_err(|e| e.to_string())?)
        .stderr(out_file.try_clone().map_err(|e| e.to_string())?)
        // Its own process group, so that a timeout kills what the hook
        // started too (a script's `sleep`), not just the hook.
        .process_group(0);
    #[allow(clippy::cast_possible_wrap)] // pid_max is at most 2^22: a pid fits an int
    let parent = std::process::id() as libc::pid_t;
    // A hook does not outlive the rt that waits for it: if rt is killed
    // mid-create, the hook goes too.
    crate::sys::process::die_with_parent(&mut cmd, parent);
    let mut child = cmd.spawn().map_err(|e| format!("start: {e}"))?;
    #[allow(clippy::cast_possible_wrap)] // pid_max is at most 2^22: a pid fits an int
    let child_pid = child.id() as i32;
    let pidfd = pidfd_open(child_pid).map_err(|e| format!("pidfd_open: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine.
        let _ = stdin.write_all(state);
    }
    // validate() refused a timeout that is not above zero.
    let timeout = h
        .timeout()
        .map(|t| Duration::from_secs(u64::try_from(t).unwrap_or(0)));
    let exited = wait_pidfd(pidfd.as_fd(), timeout);
    if !exited {
        // The hook leads its process group (process_group(0) above).
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(child_pid),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = child.kill();
        let _ = child.wait();
        return Err(format!(
            "timed out after {}s",
            timeout.map(|t| t.as_secs()).unwrap_or(0)
        ));
    }
    let status = child.wait().map_err(|e| format!("wait: {e}"))?;
    let output = read_back(out_file);
    for line in output.lines().filter(|l| !l.trim().is_empty()) {
        log::info!("hook {}: {line}", h.path().display());
    }
    if status.success() {
        return Ok(());
    }
    let how = match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(s)) => format!(
            "killed by signal {} ({})",
            nix::sys::signal::Signal::try_from(s).map_or(s.to_string(), |n| n.to_string()),
            signal_description(s)
        ),
        _ => status.to_string(),
    };
    let last = output.lines().rev().find(|l| !l.trim().is_empty());
    Err(match last {
        Some(l) => format!("{how}: {}", l.trim()),
        None => how,
    })
}

/// Waits for the process behind `pidfd` to exit; false on timeout.
fn wait_pidfd(pidfd: BorrowedFd<'_>, timeout: Option<Duration>) -> bool {
    let deadline = timeout.map(|t| std::time::Instant::now() + t);
    loop {
        let left = match deadline {
            Some(d) => {
                let now = std::time::Instant::now();
                if now >= d {
                    return false;
                }
                PollTimeout::try_from(d - now).unwrap_or(PollTimeout::MAX)
            }
            None => PollTimeout::NONE,
        };
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, left) {
            Ok(n) if n > 0 => return true,
            Ok(_) => {}
            Err(nix::Error::EINTR) => {}
            Err(_) => return true,
        }
    }
}

fn read_back(mut f: std::fs::File) -> String {
    let mut s = String::new();
    if f.seek(std::io::SeekFrom::Start(0)).is_ok() {
        let mut buf = Vec::new();
        let _ = f.read_to_end(&mut buf);
        s = String::from_utf8_lossy(&buf).into_owned();
    }
    s
}

fn memfd(name: &str) -> Result<OwnedFd> {
    use nix::sys::memfd::{memfd_create, MFdFlags};
    memfd_create(name, MFdFlags::MFD_CLOEXEC).ctx("memfd_create for hook output")
}

/// What a signal that killed a hook means, in strsignal's (and Go's)
/// lower-case words, which callers of runc match ("bad system call").
fn signal_description(sig: i32) -> &'static str {
    const WORDS: &[(i32, &str)] = &[
        (libc::SIGHUP, "hangup"),
        (libc::SIGINT, "interrupt"),
        (libc::SIGQUIT, "quit"),
        (libc::SIGILL, "illegal instruction"),
        (libc::SIGTRAP, "trace/breakpoint trap"),
        (libc::SIGABRT, "aborted"),
        (libc::SIGBUS, "bus error"),
        (libc::SIGFPE, "floating point exception"),
        (libc::SIGKILL, "killed"),
        (libc::SIGUSR1, "user defined signal 1"),
        (libc::SIGSEGV, "segmentation fault"),
        (libc::SIGUSR2, "user defined signal 2"),
        (libc::SIGPIPE, "broken pipe"),
        (libc::SIGALRM, "alarm clock"),
        (libc::SIGTERM, "terminated"),
        (libc::SIGXCPU, "CPU time limit exceeded"),
        (libc::SIGXFSZ, "file size limit exceeded"),
        (libc::SIGSYS, "bad system call"),
    ];
    WORDS
        .iter()
        .find(|(n, _)| *n == sig)
        .map_or("signal", |(_, w)| w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_hooks_start_in_the_bundle() {
        let d = tempfile::tempdir().unwrap();
        let state = format!(
            r#"{{"ociVersion":"1.2.0","id":"c","bundle":"{}"}}"#,
            d.path().display()
        );
        assert_eq!(own_hooks_dir(state.as_bytes()), d.path());
        let gone = br#"{"id":"c","bundle":"/nonexistent/bundle"}"#;
        assert_eq!(own_hooks_dir(gone), std::path::Path::new("/"));
        assert_eq!(own_hooks_dir(b"not json"), std::path::Path::new("/"));
    }
}
