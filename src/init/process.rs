//! The process's own settings, applied once its namespaces and root are in
//! place, in an order set by what each step needs (a keyring before any
//! seccomp filter, rlimits and scheduling while privileged, capabilities
//! kept across the uid switch, the cwd entered as the container user):
//! shared by the init and by `rt exec`.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, RawFd};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::Process;

use super::capabilities;
use super::program::{find_executable, refuse_runtime_binary, Exec, ReleaseAdmin};
use crate::config::mempolicy::MemPolicy;
use crate::config::process_plan::{ProcessPlan, Rlimit};
use crate::error::{Context, Error, Result};
use crate::rootfs::resolve::open_in_root;
use crate::spawn::channel::Channel;

/// What the last steps of making a container process need; shared by the
/// init and by `rt exec`.
pub struct ProcessSetup<'a> {
    pub process: &'a Process,
    /// Its kernel settings, computed by rt from the validated process.
    pub plan: &'a ProcessPlan,
    /// In a user namespace, setgroups may be denied; an empty group list
    /// is then fine.
    pub in_userns: bool,
    pub no_new_keyring: bool,
    /// Descriptors 3..3+n stay open across the exec.
    pub preserve_fds: i32,
    pub extra_env: &'a [String],
    /// The container's seccomp filters, installed right before the exec
    /// (with an agent, at the end of [`finish_process`]).
    pub seccomp: Option<&'a crate::seccomp::Compiled>,
    /// To rt: a seccomp agent's listener goes there.
    pub channel: &'a Channel,
    /// Descriptors the process still needs until its exec (besides the
    /// channel): every other one above the preserved ones is closed.
    pub keep_fds: &'a [std::os::fd::RawFd],
}

/// The process's own settings: session keyring, rlimits and scheduling,
/// identity and capabilities, umask, cwd, no_new_privs, the program to
/// exec and the descriptors it keeps. Returns what to pass to execve;
/// every descriptor but stdio and the preserved ones is close-on-exec by
/// then.
///
/// The seccomp filters go in after all of this, so a profile need only
/// allow what the container's program needs: rt's own last syscalls are
/// the exec itself and, without no_new_privs, capget and capset to drop
/// the CAP_SYS_ADMIN that installing the filter needed (older profiles,
/// Docker's of 2017 among them, allow none of openat2, close_range or
/// clone3). With a seccomp agent the filters go in at the end of this
/// function instead, for the listener to reach rt over the channel.
pub fn finish_process(a: &ProcessSetup) -> Result<Exec> {
    let process = a.process;
    let nnp = process.no_new_privileges().unwrap_or(false);
    // Opened while rt's procfs access is not yet filtered or dropped;
    // written right before execve.
    let apparmor = process
        .apparmor_profile()
        .as_deref()
        .filter(|p| !p.is_empty())
        .map(super::apparmor::prepare)
        .transpose()?;
    if !a.no_new_keyring {
        join_session_keyring()?;
    }
    limits_and_scheduling(a.plan)?;
    // The cwd is entered with rt's rights first, as runc does: a cwd only
    // root can enter still works for a container user. Denied, it is
    // tried again as the user (a directory rt's root may not search: a
    // user namespace's, a root-squashed NFS export's).
    let in_cwd = enter_cwd_as_root(process)?;
    give_stdio_to_user(Uid::from_raw(process.user().uid()))?;
    let hold_admin = a.seccomp.is_some() && !nnp;
    let held = set_identity(process, a.plan, a.in_userns, hold_admin)?;
    set_umask(process);
    if !in_cwd {
        enter_cwd(process).map_err(|e| cwd_error(process, e))?;
    }
    if nnp {
        nix::sys::prctl::set_no_new_privs().ctx("noNewPrivileges: prctl")?;
    }
    let mut exec = program(process, a.extra_env)?;
    // The AppArmor attr file stays open for the write at the execve.
    let apparmor_fd = apparmor.as_ref().map(|p| p.as_fd().as_raw_fd());
    exec.apparmor = apparmor;
    close_inherited_fds(a, apparmor_fd)?;
    exec.seccomp = a.seccomp.cloned();
    exec.release_admin = held;
    if a.seccomp.is_some_and(|f| f.has_agent()) {
        exec.install_seccomp_now(a.channel)?;
    }
    Ok(exec)
}

/// The process's stdio (its terminal, or the pipes its caller made) is
/// made the container user's, as runc does: rt made them as root, and a
/// non-root process could not otherwise reopen its own `/dev/pts/N` or
/// `/proc/self/fd/1`. Only the owner changes (the group is devpts' tty
/// group); `/dev/null` (1:3) is never touched, nor what the user already
/// owns. A descriptor whose owner cannot be changed from here (an id not
/// mapped in the user namespace, a read-only `/dev`) is left as it is.
fn give_stdio_to_user(uid: Uid) -> Result<()> {
    use nix::sys::stat::{fstat, major, minor};
    let (stdin, stdout, stderr) = (std::io::stdin(), std::io::stdout(), std::io::stderr());
    for fd in [stdin.as_fd(), stdout.as_fd(), stderr.as_fd()] {
        let Ok(st) = fstat(fd) else { continue };
        let is_null = st.st_mode & nix::libc::S_IFMT == nix::libc::S_IFCHR
            && major(st.st_rdev) == 1
            && minor(st.st_rdev) == 3;
        if is_null || st.st_uid == uid.as_raw() {
            continue;
        }
        match nix::unistd::fchown(fd, Some(uid), None) {
            Ok(()) | Err(nix::Error::EINVAL | nix::Error::EPERM | nix::Error::EROFS) => {}
            Err(e) => {
                return Err(e).with_ctx(|| {
                    format!("process.user.uid: chown stdio {} to {uid}", fd.as_raw_fd())
                })
            }
        }
    }
    Ok(())
}

/// Whether this process may run on every online CPU.
fn runs_on_every_cpu() -> bool {
    let Ok(set) = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)) else {
        return true;
    };
    let allowed = (0..nix::sched::CpuSet::count())
        .filter(|&c| set.is_set(c).unwrap_or(false))
        .count();
    let online = nix::unistd::sysconf(nix::unistd::SysconfVar::_NPROCESSORS_ONLN)
        .ok()
        .flatten()
        .and_then(|n| usize::try_from(n).ok());
    online.is_none_or(|n| allowed >= n)
}

/// A fresh session keyring, so the container cannot read the host's.
/// Before the seccomp filter, which may deny keyctl (Docker's does).
fn join_session_keyring() -> Result<()> {
    match crate::sys::process::join_new_session_keyring() {
        Ok(()) | Err(nix::Error::ENOSYS) => Ok(()),
        Err(e) => Err(e).ctx("join a new session keyring"),
    }
}

/// rlimits, then the scheduler and I/O priority, while the capabilities
/// to raise them (CAP_SYS_RESOURCE, CAP_SYS_NICE) are still held.
fn limits_and_scheduling(plan: &ProcessPlan) -> Result<()> {
    for rl in &plan.rlimits {
        set_rlimit(rl)?;
    }
    if let Some(attr) = &plan.scheduler {
        crate::sys::sched::sched_setattr(attr).map_err(|e| Error::Sys {
            context: if e == nix::Error::EPERM && !runs_on_every_cpu() {
                // sched_setattr(2): EPERM when the affinity does not
                // cover every CPU (a deadline policy needs them all).
                "process.scheduler: sched_setattr: process scheduler can't be used together \
                 with AllowedCPUs (the container's cpuset leaves it only some CPUs)"
                    .into()
            } else {
                "process.scheduler: sched_setattr".into()
            },
            source: e,
        })?;
    }
    if let Some(value) = plan.io_priority {
        crate::sys::sched::ioprio_set(value).ctx("process.ioPriority: ioprio_set")?;
    }
    Ok(())
}

fn set_rlimit(rl: &Rlimit) -> Result<()> {
    let (typ, soft, hard) = (rl.typ, rl.soft, rl.hard);
    if let Err(e) = crate::sys::process::setrlimit(rl.resource, soft, hard) {
        return Err(Error::Sys {
            context: format!(
                "set {typ:?} to soft {soft} hard {hard}{}",
                if e == nix::Error::EPERM {
                    " (raising a hard limit needs CAP_SYS_RESOURCE)"
                } else {
                    ""
                }
            ),
            source: e,
        }
        .in_field("process.rlimits"));
    }
    Ok(())
}

/// `linux.personality`, before the capabilities go.
pub(super) fn apply_personality(value: libc::c_ulong) -> Result<()> {
    crate::sys::sched::personality(value).ctx("linux.personality")
}

/// `linux.memoryPolicy`, before the capabilities go; the policy is
/// inherited across execve and by every child the program makes.
pub(super) fn apply_memory_policy(p: &MemPolicy) -> Result<()> {
    crate::sys::numa::set_mempolicy(p.mode, &p.nodemask).ctx("linux.memoryPolicy: set_mempolicy")
}

/// Groups, gid, uid, keeping capabilities across the switch, then the
/// capability sets. In a user namespace setgroups may be denied; an
/// empty group list is then fine. With `hold_admin`, CAP_SYS_ADMIN stays
/// effective for the seccomp filter; returns how to release it then.
fn set_identity(
    process: &Process,
    plan: &ProcessPlan,
    in_userns: bool,
    hold_admin: bool,
) -> Result<Option<ReleaseAdmin>> {
    let user = process.user();
    if let Some(caps) = &plan.capabilities {
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
    match &plan.capabilities {
        Some(caps) => {
            let held = capabilities::apply(caps, hold_admin)?;
            let permitted = caps.permitted.contains(&caps::Capability::CAP_SYS_ADMIN);
            Ok(held.then_some(ReleaseAdmin { permitted }))
        }
        None if hold_admin && capabilities::raise_admin_for_seccomp() => {
            Ok(Some(ReleaseAdmin { permitted: true }))
        }
        None => Ok(None),
    }
}

fn set_umask(process: &Process) {
    let mask = process.user().umask().unwrap_or(0o022);
    nix::sys::stat::umask(Mode::from_bits_truncate(mask));
}

/// The cwd, resolved inside the root and never through a magic link
/// (CVE-2024-21626).
fn enter_cwd(process: &Process) -> Result<()> {
    let slash = nix::fcntl::open(
        "/",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx("open /")?;
    let cwd = open_in_root(
        slash.as_fd(),
        process.cwd(),
        libc::O_PATH | libc::O_DIRECTORY,
    )?;
    nix::unistd::fchdir(&cwd).with_ctx(|| format!("chdir {}", process.cwd().display()))
}

/// The first try, with rt's rights: true when in the cwd, false when
/// permission was denied (to try again as the container user).
fn enter_cwd_as_root(process: &Process) -> Result<bool> {
    match enter_cwd(process) {
        Ok(()) => Ok(true),
        Err(e) if matches!(e.errno(), Some(nix::Error::EACCES | nix::Error::EPERM)) => Ok(false),
        Err(e) => Err(e.in_field("process.cwd")),
    }
}

/// The second try failed too.
fn cwd_error(process: &Process, e: Error) -> Error {
    let who = process.user();
    e.in_field(format!(
        "process.cwd (denied to rt, then to the container user {}:{})",
        who.uid(),
        who.gid()
    ))
}

/// The environment (with HOME) and the program, found and checked.
fn program(process: &Process, extra_env: &[String]) -> Result<Exec> {
    let mut env: Vec<String> = process.env().clone().unwrap_or_default();
    env.extend(extra_env.iter().cloned());
    let mut env = dedup_env(env);
    // An empty HOME is as good as none (runc): the user's, from /etc/passwd.
    env.retain(|e| e != "HOME=");
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", home_of(process.user().uid())));
    }
    let args = process.args().as_deref().unwrap_or(&[]);
    let arg0 = args.first().ok_or_else(|| Error::InvalidField {
        field: "process.args".into(),
        reason: "must not be empty".into(),
    })?;
    let path = find_executable(arg0, &env)?;
    refuse_runtime_binary(&path)?;
    let cstr = |s: &str| {
        CString::new(s).map_err(|_| Error::InvalidField {
            field: "process".into(),
            reason: format!("{s:?} contains a NUL byte"),
        })
    };
    Ok(Exec {
        path: cstr(&path)?,
        argv: args.iter().map(|s| cstr(s)).collect::<Result<_>>()?,
        envp: env.iter().map(|s| cstr(s)).collect::<Result<_>>()?,
        seccomp: None,
        release_admin: None,
        apparmor: None,
    })
}

/// Only stdio and the preserved descriptors cross the exec
/// (CVE-2024-21626): everything else is marked close-on-exec, and what
/// the process no longer needs (rt's cgroup and state directories,
/// whatever rt's caller left open) is closed now, so that a waiting init
/// holds none of the host's descriptors.
fn close_inherited_fds(a: &ProcessSetup, also_keep: Option<RawFd>) -> Result<()> {
    let first = 3 + u32::try_from(a.preserve_fds).unwrap_or(0);
    let mut keep = a.keep_fds.to_vec();
    keep.extend(also_keep);
    keep.push(a.channel.as_raw_fd());
    keep.extend(super::kept_in_child());
    crate::sys::fd::close_from_except(first, &keep)
        .ctx("close the descriptors the container's process does not need")?;
    crate::sys::fd::cloexec_from(first).ctx("mark descriptors close-on-exec")?;
    for fd in 3..i32::try_from(first).unwrap_or(i32::MAX) {
        // A caller-passed number; harmless if closed.
        let _ = crate::sys::fd::clear_cloexec(fd);
    }
    Ok(())
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

/// The home directory of `uid` from the container's /etc/passwd, or "/".
/// The image controls that file: it is opened without blocking (a FIFO
/// there must not hang run and exec), used only if it is a regular file,
/// and read up to a bound.
fn home_of(uid: u32) -> String {
    const MAX_PASSWD: u64 = 16 << 20;
    let regular = |st: nix::sys::stat::FileStat| {
        nix::sys::stat::SFlag::from_bits_truncate(st.st_mode) & nix::sys::stat::SFlag::S_IFMT
            == nix::sys::stat::SFlag::S_IFREG
    };
    let text = (|| -> Option<String> {
        // Looked at before it is opened, so that no device is opened.
        if !regular(nix::sys::stat::stat("/etc/passwd").ok()?) {
            return None;
        }
        let fd = nix::fcntl::open(
            "/etc/passwd",
            OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC | OFlag::O_NOCTTY,
            Mode::empty(),
        )
        .ok()?;
        if !regular(nix::sys::stat::fstat(&fd).ok()?) {
            return None;
        }
        let mut text = String::new();
        std::io::Read::read_to_string(
            &mut std::io::Read::take(std::fs::File::from(fd), MAX_PASSWD),
            &mut text,
        )
        .ok()?;
        Some(text)
    })()
    .unwrap_or_default();
    text.lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 6 && f[2].parse() == Ok(uid)).then(|| f[5].to_string())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "/".into())
}
