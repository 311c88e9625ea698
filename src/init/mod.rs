//! What the container's init does between the clone and the exec: join
//! namespaces, build the root filesystem, drop privileges, report to rt,
//! wait for `start`, exec. Runs in the child of clone3 (a copy of rt's
//! single-threaded address space) and never returns.

pub mod capabilities;
pub mod sched;
pub mod sysctl;

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{openat, OFlag};
use nix::sys::stat::Mode;
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::{PosixRlimitType, Process, Spec};

use crate::error::{Context, Error, Result};
use crate::hooks;
use crate::rootfs;
use crate::rootfs::procfs::ProcFs;
use crate::rootfs::resolve::{create_in_root, open_in_root};
use crate::spawn::channel::{Channel, FromInit, ToInit};
use crate::spawn::namespaces::{self, Plan};
use crate::state::EXEC_FIFO;
use crate::tty::console;

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Everything the init needs, prepared by rt before the clone.
pub struct InitArgs<'a> {
    pub spec: &'a Spec,
    pub rootfs: &'a Path,
    pub bundle: &'a Path,
    pub plan: &'a Plan,
    /// The container's state directory (O_PATH): the exec fifo is opened
    /// through it after the pivot.
    pub state_dir: OwnedFd,
    pub console_socket: Option<OwnedFd>,
    pub cgroup_dir: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    /// Descriptors 3..3+n stay open across the exec.
    pub preserve_fds: i32,
    /// Extra environment (LISTEN_FDS, LISTEN_PID).
    pub extra_env: Vec<String>,
    pub seccomp: Option<&'a crate::seccomp::Compiled>,
    /// User namespaces for the idmapped mounts.
    pub idmaps: Vec<crate::spawn::idmap::IdmappedMount>,
    /// The creating rt's descriptor of its lock on the state directory.
    /// The child closes its inherited copy at once: a flock lives while
    /// any copy is open, so an init holding one would keep the id locked
    /// forever after rt was killed mid-create (`delete -f` would hang).
    pub state_lock: Option<RawFd>,
}

/// Runs the init. Reports failure to rt over the channel and exits.
pub fn run(args: InitArgs, channel: Channel) -> ! {
    match setup(&args, &channel) {
        Ok((exec, hook_state)) => {
            if channel.send(&FromInit::Ready).is_err() {
                exit(1);
            }
            drop(channel);
            let start_hooks = hooks::Kind::StartContainer.of(args.spec.hooks().as_ref());
            let err = wait_and_exec(&args.state_dir, &exec, start_hooks, hook_state.as_deref());
            // Nobody is listening any more: say it on the container's stderr.
            let msg = format!("rt: container init: {err}\n");
            let _ = nix::unistd::write(std::io::stderr(), msg.as_bytes());
            exit(127)
        }
        Err(e) => {
            let _ = channel.send(&FromInit::Failed {
                error: e.to_string(),
            });
            exit(1)
        }
    }
}

/// Everything a process entering a running container (`rt exec`) needs.
pub struct ExecArgs<'a> {
    pub process: &'a Process,
    /// The container's namespaces to join (user first), from its init.
    pub plan: &'a Plan,
    pub console_socket: Option<OwnedFd>,
    pub in_userns: bool,
    pub preserve_fds: i32,
    pub seccomp: Option<&'a crate::seccomp::Compiled>,
}

/// Runs the child of `rt exec`: joins the container, sets the process up
/// and execs. Success is the channel closing on exec; a failure is sent
/// as a message.
pub fn run_exec(args: ExecArgs, channel: Channel) -> ! {
    let err = match exec_setup(&args, &channel) {
        Ok(exec) => {
            reset_signals();
            exec.exec()
        }
        Err(e) => e,
    };
    let _ = channel.send(&FromInit::Failed {
        error: err.to_string(),
    });
    exit(1)
}

fn exec_setup(a: &ExecArgs, channel: &Channel) -> Result<Exec> {
    for j in &a.plan.child_joins {
        nix::sched::setns(j.fd.as_fd(), namespaces::flag(j.typ)).with_ctx(|| {
            format!(
                "join the container's {} namespace",
                crate::config::namespaces::name(j.typ)
            )
        })?;
    }
    nix::unistd::setsid().ctx("setsid")?;
    if a.process.terminal().unwrap_or(false) {
        let sock = a
            .console_socket
            .as_ref()
            .ok_or_else(|| Error::Invalid("a terminal needs a console socket".into()))?;
        // After joining the mount namespace, / is the container's root.
        let root = nix::fcntl::open(
            "/",
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .ctx("open the container root")?;
        let (master, peer) = console::open_pty(&root)?;
        if let Some(sz) = a.process.console_size() {
            console::set_size(&master, sz.height() as u16, sz.width() as u16)?;
        }
        console::send_master(sock, &master)?;
        drop(master);
        console::become_controlling(&peer)?;
    }
    finish_process(&ProcessSetup {
        process: a.process,
        in_userns: a.in_userns,
        no_new_keyring: false,
        preserve_fds: a.preserve_fds,
        extra_env: &[],
        seccomp: a.seccomp,
        channel,
    })
}

fn exit(code: i32) -> ! {
    // Not rt's destructors or atexit handlers: they belong to the
    // parent's copy of the program.
    crate::sys::process::exit_now(code)
}

/// A program ready for execve.
pub struct Exec {
    path: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
    /// With no_new_privs, the seccomp filters go in right before execve,
    /// so a profile need not allow the runtime's own last steps.
    seccomp: Option<crate::seccomp::Compiled>,
}

impl Exec {
    /// Installs the late seccomp filters, if any, and execs. Returns only
    /// on error.
    fn exec(&self) -> Error {
        if let Some(f) = &self.seccomp {
            if let Err(e) = crate::seccomp::install(f) {
                return e;
            }
        }
        match nix::unistd::execve(&self.path, &self.argv, &self.envp) {
            Err(e) => Error::Sys {
                context: format!("exec {:?}", self.path),
                source: e,
            },
            Ok(never) => match never {},
        }
    }
}

/// Whether the init stops before pivot_root for rt to run the hooks that
/// belong to the runtime's namespaces (and to get the state JSON).
pub fn needs_hook_sync(spec: &Spec) -> bool {
    use hooks::Kind::*;
    let h = spec.hooks().as_ref();
    [Prestart, CreateRuntime, CreateContainer, StartContainer]
        .iter()
        .any(|k| !k.of(h).is_empty())
}

fn setup(a: &InitArgs, channel: &Channel) -> Result<(Exec, Option<String>)> {
    let spec = a.spec;
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::Invalid("process: missing".into()))?;
    let linux = spec.linux().as_ref();

    if a.plan.new_user {
        match channel.recv::<ToInit>()? {
            Some(ToInit::IdMapsWritten) => {}
            Some(other) => return Err(Error::Invalid(format!("unexpected message {other:?}"))),
            None => {
                return Err(Error::Invalid(
                    "rt went away before writing the id maps".into(),
                ))
            }
        }
        // Become root of the new user namespace.
        nix::unistd::setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0))
            .ctx("setresgid 0 in the user namespace")?;
        nix::unistd::setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0))
            .ctx("setresuid 0 in the user namespace")?;
    }
    for j in &a.plan.child_joins {
        nix::sched::setns(j.fd.as_fd(), namespaces::flag(j.typ)).with_ctx(|| {
            format!(
                "join {} namespace {}",
                crate::config::namespaces::name(j.typ),
                j.path.display()
            )
        })?;
    }
    if !a.plan.unshare_flags.is_empty() {
        nix::sched::unshare(a.plan.unshare_flags).ctx("unshare the new namespaces")?;
    }
    nix::unistd::setsid().ctx("setsid")?;

    let in_userns = a.plan.new_user
        || a.plan
            .child_joins
            .iter()
            .any(|j| j.typ == oci_spec::runtime::LinuxNamespaceType::User);
    let setup = rootfs::Setup {
        spec,
        rootfs: a.rootfs,
        bundle: a.bundle,
        in_userns,
        cgroupns: a.plan.new_cgroup,
        cgroup_dir: a.cgroup_dir.as_deref(),
        no_pivot: a.no_pivot,
        idmaps: &a.idmaps,
    };
    let root = rootfs::prepare(&setup)?;

    // The terminal: made from the container's own devpts.
    let mut console_peer = None;
    if process.terminal().unwrap_or(false) {
        let sock = a.console_socket.as_ref().ok_or_else(|| {
            Error::Invalid("process.terminal is true but no --console-socket was given".into())
        })?;
        let (master, peer) = console::open_pty(&root)?;
        if let Some(sz) = process.console_size() {
            console::set_size(&master, sz.height() as u16, sz.width() as u16)?;
        }
        rootfs::bind_console(&root, &peer)?;
        console::send_master(sock, &master)?;
        console_peer = Some(peer);
    }

    // Writes to procfs go through the host's procfs, checked to be procfs,
    // while the container's /proc/sys is still writable; we are already in
    // the container's namespaces, which is what these files reflect.
    let proc = ProcFs::open(Path::new("/proc"))?;
    if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(h).with_ctx(|| format!("hostname: set {h:?}"))?;
    }
    if let Some(d) = spec.domainname().as_deref().filter(|h| !h.is_empty()) {
        sysctl::write(&proc, "kernel.domainname", d)
            .map_err(|e| Error::Invalid(format!("domainname: {e}")))?;
    }
    if let Some(sysctls) = linux.and_then(|l| l.sysctl().as_ref()) {
        let mut keys: Vec<_> = sysctls.iter().collect();
        keys.sort();
        for (k, v) in keys {
            sysctl::write(&proc, k, v).map_err(|e| Error::Invalid(format!("linux.sysctl: {e}")))?;
        }
    }
    if let Some(adj) = process.oom_score_adj() {
        let fd = proc.open_beneath("self/oom_score_adj", libc::O_WRONLY)?;
        nix::unistd::write(&fd, adj.to_string().as_bytes())
            .ctx("process.oomScoreAdj: write /proc/self/oom_score_adj")?;
    }
    // Like runc, make the cwd if the image lacks it.
    create_in_root(&root, process.cwd(), false)
        .map_err(|e| Error::Invalid(format!("process.cwd: {e}")))?;

    rootfs::mask_and_protect(spec, &root)?;
    drop(root);

    // Hooks: rt runs prestart and createRuntime in its namespaces, then
    // createContainer runs here, in the container's, before pivot_root.
    let mut hook_state = None;
    if needs_hook_sync(spec) {
        channel.send(&FromInit::CreateHooks)?;
        let state = match channel.recv::<ToInit>()? {
            Some(ToInit::HooksDone { state }) => state,
            other => {
                return Err(Error::Invalid(format!(
                    "waiting for the hooks, got {other:?}"
                )))
            }
        };
        let list = hooks::Kind::CreateContainer.of(spec.hooks().as_ref());
        hooks::run(hooks::Kind::CreateContainer, list, state.as_bytes())?;
        hook_state = Some(state);
    }
    rootfs::enter(&setup)?;
    rootfs::finish(spec)?;

    if let Some(peer) = &console_peer {
        console::become_controlling(peer)?;
    }
    drop(console_peer);
    if let Some(p) = spec.linux().as_ref().and_then(|l| l.personality().as_ref()) {
        crate::init::sched::apply_personality(p)?;
    }

    let exec = finish_process(&ProcessSetup {
        process,
        in_userns,
        no_new_keyring: a.no_new_keyring,
        preserve_fds: a.preserve_fds,
        extra_env: &a.extra_env,
        seccomp: a.seccomp,
        channel,
    })?;
    Ok((exec, hook_state))
}

/// What the last steps of making a container process need; shared by the
/// init and by `rt exec`.
pub struct ProcessSetup<'a> {
    pub process: &'a Process,
    /// In a user namespace, setgroups may be denied; an empty group list
    /// is then fine.
    pub in_userns: bool,
    pub no_new_keyring: bool,
    /// Descriptors 3..3+n stay open across the exec.
    pub preserve_fds: i32,
    pub extra_env: &'a [String],
    /// The container's seccomp filters, installed last (or, without
    /// no_new_privs, before the capabilities are dropped: installing them
    /// then needs CAP_SYS_ADMIN).
    pub seccomp: Option<&'a crate::seccomp::Compiled>,
    /// To rt: a seccomp agent's listener goes there.
    pub channel: &'a Channel,
}

/// The process's own settings, applied once its namespaces and root are in
/// place: rlimits, session keyring, identity and capabilities, umask, cwd,
/// no_new_privs, environment, and the program to exec. Returns what to
/// pass to execve; every descriptor but stdio and the preserved ones is
/// close-on-exec by then.
pub fn finish_process(a: &ProcessSetup) -> Result<Exec> {
    let process = a.process;
    let in_userns = a.in_userns;
    let nnp = process.no_new_privileges().unwrap_or(false);
    // Before any seccomp filter: the container's own profile may deny
    // keyctl (Docker's default does, and sets no noNewPrivileges, so the
    // filter goes in early below).
    if !a.no_new_keyring {
        // A fresh session keyring, so the container cannot read the host's.
        match crate::sys::process::join_new_session_keyring() {
            Ok(()) | Err(nix::Error::ENOSYS) => {}
            Err(e) => return Err(e).ctx("join a new session keyring"),
        }
    }
    // Early without no_new_privs (it needs CAP_SYS_ADMIN), and with a
    // seccomp agent, which must get its listener from rt while the
    // channel is open (rt forwards it at once, so a notifying syscall of
    // ours is answered).
    let early = a.seccomp.filter(|f| !nnp || f.has_agent());
    if let Some(f) = early {
        if let Some(listener) = crate::seccomp::install(f)? {
            a.channel
                .send_with_fd(&FromInit::SeccompListener, Some(listener.as_fd()))?;
        }
    }
    for rl in process.rlimits().iter().flatten() {
        set_rlimit(rl.typ(), rl.soft(), rl.hard())?;
    }
    // While the capabilities to raise them (CAP_SYS_NICE) are still held.
    if let Some(s) = process.scheduler() {
        crate::init::sched::apply_scheduler(s)?;
    }
    if let Some(p) = process.io_priority() {
        crate::init::sched::apply_io_priority(p)?;
    }

    // Identity: groups, gid, uid, keeping capabilities across the switch.
    let user = process.user();
    if let Some(caps) = process.capabilities() {
        capabilities::drop_bounding(caps)?;
    }
    let groups: Vec<Gid> = user
        .additional_gids()
        .iter()
        .flatten()
        .map(|g| Gid::from_raw(*g))
        .collect();
    match nix::unistd::setgroups(&groups) {
        Ok(()) => {}
        // With setgroups denied in a user namespace, only an empty list could work.
        Err(nix::Error::EPERM) if in_userns && groups.is_empty() => {}
        Err(e) => return Err(e).ctx("process.user.additionalGids: setgroups"),
    }
    let gid = Gid::from_raw(user.gid());
    let uid = Uid::from_raw(user.uid());
    nix::unistd::setresgid(gid, gid, gid)
        .with_ctx(|| format!("process.user.gid: setresgid {gid}"))?;
    let _ = nix::sys::prctl::set_keepcaps(true);
    nix::unistd::setresuid(uid, uid, uid)
        .with_ctx(|| format!("process.user.uid: setresuid {uid}"))?;
    let _ = nix::sys::prctl::set_keepcaps(false);
    if let Some(caps) = process.capabilities() {
        capabilities::apply(caps)?;
    }
    if let Some(mask) = user.umask() {
        nix::sys::stat::umask(Mode::from_bits_truncate(mask));
    } else {
        nix::sys::stat::umask(Mode::from_bits_truncate(0o022));
    }

    // The cwd as the container user, resolved inside the root and never
    // through a magic link (CVE-2024-21626).
    let slash = nix::fcntl::open(
        "/",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx("open /")?;
    let cwd = open_in_root(&slash, process.cwd(), libc::O_PATH | libc::O_DIRECTORY)
        .map_err(|e| Error::Invalid(format!("process.cwd: {e}")))?;
    nix::unistd::fchdir(&cwd)
        .with_ctx(|| format!("process.cwd: chdir {}", process.cwd().display()))?;
    drop(cwd);
    drop(slash);

    if nnp {
        nix::sys::prctl::set_no_new_privs().ctx("noNewPrivileges: prctl")?;
    }

    let mut env: Vec<String> = process.env().clone().unwrap_or_default();
    env.extend(a.extra_env.iter().cloned());
    let mut env = dedup_env(env);
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", home_of(user.uid())));
    }
    let args = process.args().as_deref().unwrap_or(&[]);
    let arg0 = args
        .first()
        .ok_or_else(|| Error::Invalid("process.args: must not be empty".into()))?;
    let path = find_executable(arg0, &env)?;
    refuse_runtime_binary(&path)?;

    // Only stdio and the preserved descriptors cross the exec
    // (CVE-2024-21626): everything else is marked close-on-exec.
    let first = 3 + a.preserve_fds.max(0) as u32;
    crate::sys::fd::cloexec_from(first).ctx("mark descriptors close-on-exec")?;
    for fd in 3..first as i32 {
        // A caller-passed number; harmless if closed.
        let _ = crate::sys::fd::clear_cloexec(fd);
    }

    let cstr = |s: &str| {
        CString::new(s).map_err(|_| Error::Invalid(format!("process: {s:?} contains a NUL byte")))
    };
    Ok(Exec {
        path: cstr(&path)?,
        argv: args.iter().map(|s| cstr(s)).collect::<Result<_>>()?,
        envp: env.iter().map(|s| cstr(s)).collect::<Result<_>>()?,
        seccomp: if early.is_none() {
            a.seccomp.cloned()
        } else {
            None
        },
    })
}

/// Later entries win over earlier ones with the same name (`exec -e`
/// overrides the config's env), keeping the first one's position.
fn dedup_env(env: Vec<String>) -> Vec<String> {
    let key = |e: &str| e.split('=').next().unwrap_or("").to_string();
    let mut out: Vec<String> = Vec::with_capacity(env.len());
    for e in env {
        match out.iter_mut().find(|o| key(o) == key(&e)) {
            Some(slot) => *slot = e,
            None => out.push(e),
        }
    }
    out
}

/// Blocks until `rt start` opens the fifo, runs the startContainer hooks,
/// tells `start` how they went ("0", or "1" and the error), then execs.
/// Returns only on error.
fn wait_and_exec(
    state_dir: &OwnedFd,
    exec: &Exec,
    start_hooks: &[oci_spec::runtime::Hook],
    hook_state: Option<&str>,
) -> Error {
    let fifo = match openat(
        state_dir,
        EXEC_FIFO,
        OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(f) => f,
        Err(e) => {
            return Error::Sys {
                context: "open exec fifo".into(),
                source: e,
            }
        }
    };
    if !start_hooks.is_empty() {
        // The state rt sent at create time, now "created": start was called
        // and the program has not run yet.
        let mut state: serde_json::Value =
            serde_json::from_str(hook_state.unwrap_or("{}")).unwrap_or_default();
        state["status"] = "created".into();
        let state = state.to_string();
        if let Err(e) = hooks::run(hooks::Kind::StartContainer, start_hooks, state.as_bytes()) {
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

fn set_rlimit(typ: PosixRlimitType, soft: u64, hard: u64) -> Result<()> {
    let res = rlimit_resource(typ);
    if let Err(e) = crate::sys::process::setrlimit(res, soft, hard) {
        return Err(Error::Invalid(format!(
            "process.rlimits: set {typ:?} to soft {soft} hard {hard}: {e}{}",
            if e == nix::Error::EPERM {
                " (raising a hard limit needs CAP_SYS_RESOURCE)"
            } else {
                ""
            }
        )));
    }
    Ok(())
}

pub fn rlimit_resource(t: PosixRlimitType) -> libc::c_int {
    use PosixRlimitType::*;
    (match t {
        RlimitCpu => libc::RLIMIT_CPU,
        RlimitFsize => libc::RLIMIT_FSIZE,
        RlimitData => libc::RLIMIT_DATA,
        RlimitStack => libc::RLIMIT_STACK,
        RlimitCore => libc::RLIMIT_CORE,
        RlimitRss => libc::RLIMIT_RSS,
        RlimitNproc => libc::RLIMIT_NPROC,
        RlimitNofile => libc::RLIMIT_NOFILE,
        RlimitMemlock => libc::RLIMIT_MEMLOCK,
        RlimitAs => libc::RLIMIT_AS,
        RlimitLocks => libc::RLIMIT_LOCKS,
        RlimitSigpending => libc::RLIMIT_SIGPENDING,
        RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        RlimitNice => libc::RLIMIT_NICE,
        RlimitRtprio => libc::RLIMIT_RTPRIO,
        RlimitRttime => libc::RLIMIT_RTTIME,
    }) as libc::c_int
}

/// The home directory of `uid` from the container's /etc/passwd, or "/".
fn home_of(uid: u32) -> String {
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() >= 6 && f[2].parse() == Ok(uid)).then(|| f[5].to_string())
            })
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "/".into())
}

/// Refuses to exec rt's own binary, directly (`/proc/self/exe`, a hard
/// link) or as a script's interpreter (`#!/proc/self/exe`): the process
/// would run rt's executable, whose file a second container process
/// could then open through /proc/<pid>/exe and overwrite on the host
/// (CVE-2019-5736). Follows up to four levels of interpreters, as the
/// kernel does.
fn refuse_runtime_binary(path: &str) -> Result<()> {
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
            return Err(Error::Invalid(format!(
                "exec: {path:?}{}: is the container runtime's own binary; refused, since a container could overwrite it through /proc (CVE-2019-5736)",
                if p.as_os_str() == path { String::new() } else { format!(" (through its interpreter {})", p.display()) }
            )));
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
fn find_executable(arg0: &str, env: &[String]) -> Result<String> {
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
            Err(Error::Invalid(format!(
                "exec: {arg0:?}: permission denied (not an executable file)"
            )))
        } else {
            Err(Error::Invalid(format!(
                "exec: {arg0:?}: no such file or directory"
            )))
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
    Err(Error::Invalid(format!(
        "exec: {arg0:?}: executable file not found in $PATH"
    )))
}
