//! Facts about processes read from /proc: a process's start time, and
//! rt's own executable.

/// The device and inode of rt's own executable, looked up once.
pub fn runtime_exe() -> Option<(u64, u64)> {
    static EXE: std::sync::OnceLock<Option<(u64, u64)>> = std::sync::OnceLock::new();
    *EXE.get_or_init(|| {
        let st = nix::sys::stat::stat("/proc/self/exe").ok()?;
        Some((st.st_dev, st.st_ino))
    })
}

/// A process's start time in clock ticks since boot (field 22 of
/// /proc/<pid>/stat), or None if it is gone or a zombie.
pub fn start_time(pid: i32) -> Option<u64> {
    let st = procfs::process::Process::new(pid).ok()?.stat().ok()?;
    if st.state == 'Z' || st.state == 'X' {
        return None;
    }
    Some(st.starttime)
}

/// Ends the process at once: no destructors, no atexit handlers (they
/// belong to the parent's copy of the program in a forked child).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit only ends the process.
    unsafe { libc::_exit(code) }
}

/// How many threads this process has, from /proc/self/status.
pub fn thread_count() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
}

/// fork(2), only from a single-threaded process (EDEADLK otherwise): the
/// child runs arbitrary Rust code, sound only when no other thread can
/// have held a lock at the fork.
pub fn fork_single_threaded() -> nix::Result<nix::unistd::ForkResult> {
    if thread_count() != Some(1) {
        return Err(nix::Error::EDEADLK);
    }
    // SAFETY: the process has one thread (checked above).
    unsafe { nix::unistd::fork() }
}

/// kill(2) with a plain signal number: nix's `Signal` has no real-time
/// signals.
pub fn kill(pid: i32, sig: i32) -> nix::Result<()> {
    // SAFETY: kill takes plain integers.
    nix::errno::Errno::result(unsafe { libc::kill(pid, sig) }).map(drop)
}

/// Sets signal `sig`'s disposition to SIG_DFL.
pub fn default_disposition(sig: i32) {
    // SAFETY: resetting a disposition to SIG_DFL installs no handler.
    unsafe { libc::signal(sig, libc::SIG_DFL) };
}

/// Makes each of `sigs` end the process with status 128 + the signal.
/// A pid namespace's init ignores every signal it has no handler for,
/// SIGKILL aside; this is how an init that has not exec'd yet still dies
/// of the SIGTERM a manager sends it, as runc's does.
pub fn exit_on(sigs: &[i32]) {
    extern "C" fn on_signal(sig: libc::c_int) {
        // SAFETY: _exit is async-signal-safe and only ends the process.
        unsafe { libc::_exit(128 + sig) }
    }
    for &sig in sigs {
        // SAFETY: the handler calls only _exit, which is async-signal-safe,
        // and touches no state of the interrupted code.
        unsafe {
            libc::signal(
                sig,
                on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
            )
        };
    }
}

/// Sets signal `sig`'s disposition to SIG_IGN (SIGPIPE in a process
/// whose peers may go away mid-write: the write fails with EPIPE instead).
pub fn ignore_disposition(sig: i32) -> nix::Result<()> {
    // SAFETY: ignoring a signal installs no handler: no code of ours runs
    // in signal context.
    let r = unsafe { libc::signal(sig, libc::SIG_IGN) };
    if r == libc::SIG_ERR {
        return Err(nix::Error::last());
    }
    Ok(())
}

/// setrlimit(2) with a plain resource number (`RLIMIT_*`).
#[allow(clippy::cast_sign_loss)] // RLIMIT_* are small and positive; glibc types them u32
pub fn setrlimit(resource: libc::c_int, soft: u64, hard: u64) -> nix::Result<()> {
    let lim = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: setrlimit reads a valid rlimit struct.
    nix::errno::Errno::result(unsafe { libc::setrlimit(resource as _, &lim) }).map(drop)
}

/// Joins a new anonymous session keyring (keyctl
/// KEYCTL_JOIN_SESSION_KEYRING with no name).
pub fn join_new_session_keyring() -> nix::Result<()> {
    // SAFETY: keyctl with a NULL name only creates and joins a keyring.
    let r = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            1, /* KEYCTL_JOIN_SESSION_KEYRING */
            std::ptr::null::<libc::c_char>(),
        )
    };
    nix::errno::Errno::result(r).map(drop)
}

/// Makes the child that `cmd` spawns die with this process
/// (PR_SET_PDEATHSIG SIGKILL), or not start if `parent` is gone already.
pub fn die_with_parent(cmd: &mut std::process::Command, parent: libc::pid_t) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before exec and only
    // makes async-signal-safe calls (prctl, getppid, _exit).
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before the prctl took effect.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        })
    };
}
