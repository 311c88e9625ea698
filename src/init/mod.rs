//! What the container's init does between the clone and the exec, in the
//! order it happens: enter the namespaces, build the root filesystem, the
//! console, the kernel settings of its namespaces, the createContainer
//! hooks, pivot_root, then the process's own settings (process.rs) and
//! the exec (program.rs). Runs in the child of clone3 (a copy of rt's
//! single-threaded address space) and never returns.

pub mod affinity;
pub mod apparmor;
pub mod capabilities;
mod process;
mod program;
pub mod sysctl;

use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use nix::unistd::{Gid, Uid};
use oci_spec::runtime::{Process, Spec};

use crate::config::namespace_plan::NamespacePlan;
use crate::config::process_plan::{Last, ProcessPlan};
use crate::error::{Context, Error, Result};
use crate::hooks;
use crate::rootfs;
use crate::rootfs::procfs::ProcFs;
use crate::rootfs::resolve::create_in_root;
use crate::spawn::channel::{Channel, FromInit, ToInit};
use crate::spawn::namespaces::{self, Plan};
use crate::tty::console;

pub use process::{finish_process, ProcessSetup};
use program::wait_and_exec;
pub use program::{reset_signals, Exec, Fifo};

/// Everything the init needs, prepared by rt before the clone.
pub struct InitArgs<'a> {
    pub spec: &'a Spec,
    pub rootfs: &'a Path,
    pub plan: &'a Plan,
    /// The process's own kernel settings, computed when the config was
    /// loaded; the init only applies them.
    pub process_plan: &'a ProcessPlan,
    /// How the init reaches the exec fifo once `start` comes.
    pub exec_fifo: Fifo,
    pub console_socket: Option<OwnedFd>,
    pub cgroup_dir: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    /// Descriptors 3..3+n stay open across the exec.
    pub preserve_fds: i32,
    /// Extra environment (LISTEN_FDS, LISTEN_PID).
    pub extra_env: Vec<String>,
    pub seccomp: Option<&'a crate::seccomp::Compiled>,
    /// The mounts, planned by rt with what it made for them (idmapped
    /// binds' user namespaces, bind trees it cloned); the init applies
    /// the plan, each mount's descriptors closed once it is made.
    pub mounts: crate::config::mount_plan::MountPlan,
    /// The creating rt's descriptor of its lock on the state directory.
    /// The child closes its inherited copy at once: a flock lives while
    /// any copy is open, so an init holding one would keep the id locked
    /// forever after rt was killed mid-create (`delete -f` would hang).
    pub state_lock: Option<RawFd>,
}

/// Runs the init. Reports failure to rt over the channel and exits.
pub fn run(mut args: InitArgs, channel: Channel) -> ! {
    match setup(&mut args, &channel) {
        Ok((mut exec, hook_state)) => {
            if channel.send(&FromInit::Ready).is_err() {
                exit(1);
            }
            drop(channel);
            let start_hooks = hooks::Kind::StartContainer.of(args.spec.hooks().as_ref());
            let err = wait_and_exec(
                &args.exec_fifo,
                &mut exec,
                start_hooks,
                hook_state.as_deref(),
            );
            // Nobody is listening any more: say it on the container's
            // stderr; a failed execve in runc's words, alone on its line.
            let msg = match err {
                Error::Execve { .. } => format!("{err}\n"),
                _ => format!("rt: container init: {err}\n"),
            };
            let _ = nix::unistd::write(std::io::stderr(), msg.as_bytes());
            exit(127)
        }
        Err(e) => {
            let _ = channel.send(&FromInit::Failed {
                errno: e.errno().map(|n| n as i32),
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
    /// rt proxies the terminal itself (no `--console-socket`): ONLCR is
    /// cleared here, before the process can write its first line.
    pub console_proxied: bool,
    pub in_userns: bool,
    pub preserve_fds: i32,
    pub seccomp: Option<&'a crate::seccomp::Compiled>,
    /// The process's own kernel settings (with the container's
    /// `linux.personality`, as its init has it, and what its CPU affinity
    /// ends as), computed by rt; the child only applies them.
    pub process_plan: &'a ProcessPlan,
}

/// Runs the child of `rt exec`: joins the container, sets the process up
/// and execs. Success is the channel closing on exec; a failure is sent
/// as a message.
pub fn run_exec(args: ExecArgs, channel: Channel) -> ! {
    let err = match exec_setup(&args, &channel) {
        Ok(mut exec) => {
            reset_signals();
            exec.exec()
        }
        Err(e) => e,
    };
    let _ = channel.send(&FromInit::Failed {
        errno: err.errno().map(|n| n as i32),
        error: err.to_string(),
    });
    exit(1)
}

fn exec_setup(a: &ExecArgs, channel: &Channel) -> Result<Exec> {
    join_all(
        &a.plan.child_joins,
        a.plan.ns.join_others_before_user,
        false,
    )?;
    nix::unistd::setsid().ctx("setsid")?;
    let last = &a.process_plan.affinity.last;
    if *last == Last::Reset {
        affinity::reset()?;
    }
    if let Some(p) = a.process_plan.personality {
        process::apply_personality(p)?;
    }
    if a.process.terminal().unwrap_or(false) {
        let sock = a
            .console_socket
            .as_ref()
            .ok_or(Error::Usage("a terminal needs a console socket"))?;
        // After joining the mount namespace, / is the container's root.
        let root = nix::fcntl::open(
            "/",
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .ctx("open the container root")?;
        let (master, peer) = console::open_pty(root.as_fd())?;
        if let Some(sz) = a.process.console_size() {
            console::set_size(&master, sz.height(), sz.width())?;
        }
        if a.console_proxied {
            console::clear_onlcr(&master)?;
        }
        console::send_master(sock.as_fd(), master.as_fd())?;
        drop(master);
        console::become_controlling(peer.as_fd())?;
    }
    // `final` goes last before the exec, ahead of the seccomp filters
    // (which may deny sched_setaffinity); with an agent the filters go in
    // within finish_process, so it goes before that.
    let agent = a.seccomp.is_some_and(|f| f.has_agent());
    if let (Last::Final(set), true) = (last, agent) {
        affinity::apply_final(set)?;
    }
    let exec = finish_process(&ProcessSetup {
        process: a.process,
        plan: a.process_plan,
        in_userns: a.in_userns,
        no_new_keyring: false,
        preserve_fds: a.preserve_fds,
        extra_env: &[],
        seccomp: a.seccomp,
        channel,
        keep_fds: &[],
    })?;
    if let (Last::Final(set), false) = (last, agent) {
        affinity::apply_final(set)?;
    }
    Ok(exec)
}

/// Descriptors the program keeps for itself in its child processes
/// (the binary's --log file): every other descriptor rt inherited is
/// closed in the init and in `rt exec`'s child before the exec.
static KEEP_IN_CHILD: std::sync::Mutex<Vec<RawFd>> = std::sync::Mutex::new(Vec::new());

/// Keeps `fd` open in the container's init and exec'd processes until
/// their exec (close-on-exec, as every descriptor of rt's).
pub fn keep_in_child(fd: RawFd) {
    if let Ok(mut k) = KEEP_IN_CHILD.lock() {
        k.push(fd);
    }
}

fn kept_in_child() -> Vec<RawFd> {
    KEEP_IN_CHILD.lock().map(|k| k.clone()).unwrap_or_default()
}

pub(crate) fn exit(code: i32) -> ! {
    // Not rt's destructors or atexit handlers: they belong to the
    // parent's copy of the program.
    crate::sys::process::exit_now(code)
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

fn setup(a: &mut InitArgs, channel: &Channel) -> Result<(Exec, Option<String>)> {
    let mounts = std::mem::take(&mut a.mounts);
    let a: &InitArgs = a;
    let spec = a.spec;
    let process = spec.process().as_ref().ok_or_else(|| Error::InvalidField {
        field: "process".into(),
        reason: "missing".into(),
    })?;
    enter_namespaces(a, channel)?;
    affinity::reset()?;
    // rt itself may be in a user namespace that is not the initial one
    // (rootless Podman makes one and runs rt inside): what a user
    // namespace forbids is forbidden then too (the plan says).
    let in_userns = a.plan.ns.in_userns;
    // An idmapped bind of a source inside the root, in a user namespace:
    // rt clones it in this mount namespace when the mount is reached.
    let bind_tree = |index: usize| -> Result<OwnedFd> {
        channel.send(&FromInit::BindTree { index })?;
        match channel.recv_with_fd::<ToInit>()? {
            Some((ToInit::BindTree, Some(tree))) => Ok(tree),
            other => Err(Error::Protocol(format!(
                "waiting for the tree of mounts[{index}], got {:?}",
                other.map(|(m, _)| m)
            ))),
        }
    };
    // Without a mount namespace, a config that mounts nothing has nothing
    // made at all: the init is only chrooted (into the host's `/` too).
    let host_ns = !a.plan.ns.own_mounts;
    let mounts_nothing = host_ns && crate::config::mount_plan::first_mounting_field(spec).is_none();
    let setup = rootfs::Setup {
        spec,
        rootfs: a.rootfs,
        in_userns,
        cgroupns: a.plan.ns.new_cgroup,
        cgroup_dir: a.cgroup_dir.as_deref(),
        no_pivot: a.no_pivot,
        host_ns,
        dev: mounts.dev,
        bind_tree: &bind_tree,
    };
    let (console_peer, hook_state) = if mounts_nothing {
        kernel_settings(spec, &a.plan.ns)?;
        let root = nix::fcntl::open(
            a.rootfs,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .with_ctx(|| format!("open root {}", a.rootfs.display()))?;
        create_in_root(root.as_fd(), process.cwd(), false)
            .map_err(|e| e.in_field("process.cwd"))?;
        drop(root);
        let hook_state = create_container_hooks(spec, channel)?;
        rootfs::enter_by_chroot(a.rootfs)?;
        (None, hook_state)
    } else {
        let root = rootfs::prepare(&setup, mounts.mounts)?;
        let console_peer = make_console(a, process, root.as_fd())?;
        kernel_settings(spec, &a.plan.ns)?;
        // Like runc, make the cwd if the image lacks it.
        create_in_root(root.as_fd(), process.cwd(), false)
            .map_err(|e| e.in_field("process.cwd"))?;
        rootfs::finish_dev(&mounts.dev, root.as_fd())?;
        rootfs::mask_and_protect(spec, root.as_fd())?;
        drop(root);
        if host_ns {
            // Every mount is made (root.readonly only remounts one): rt
            // records them in the state, for delete.
            mounts_made(channel)?;
        }
        // createContainer hooks run from the root, as under runc (which
        // enters it before them): a hook's relative paths are the
        // container's.
        nix::unistd::chdir(a.rootfs).with_ctx(|| format!("chdir {}", a.rootfs.display()))?;
        let hook_state = create_container_hooks(spec, channel)?;
        if host_ns {
            rootfs::enter_by_chroot(a.rootfs)?;
        } else {
            rootfs::enter(&setup)?;
        }
        rootfs::finish(spec)?;
        rootfs::reopen_dev_null()?;
        (console_peer, hook_state)
    };
    if let Some(peer) = &console_peer {
        console::become_controlling(peer.as_fd())?;
    }
    drop(console_peer);
    if let Some(p) = a.process_plan.personality {
        process::apply_personality(p)?;
    }
    if let Some(p) = &a.process_plan.memory_policy {
        process::apply_memory_policy(p)?;
    }
    let exec = finish_process(&ProcessSetup {
        process,
        plan: a.process_plan,
        in_userns,
        no_new_keyring: a.no_new_keyring,
        preserve_fds: a.preserve_fds,
        extra_env: &a.extra_env,
        seccomp: a.seccomp,
        channel,
        keep_fds: &[a.exec_fifo.raw_fd()],
    })?;
    Ok((exec, hook_state))
}

/// The new user namespace first (rt writes its maps; the init becomes its
/// root), then the namespaces to join, then the other new ones, then a
/// session of its own.
fn enter_namespaces(a: &InitArgs, channel: &Channel) -> Result<()> {
    if a.plan.ns.id_maps.is_some() {
        match channel.recv::<ToInit>()? {
            Some(ToInit::IdMapsWritten) => {
                // A rootless rt kept the init dumpable to write the maps
                // (see sys::clone::clone3); from here on it is not.
                nix::sys::prctl::set_dumpable(false).ctx("prctl(PR_SET_DUMPABLE, 0)")?;
            }
            Some(other) => return Err(Error::Protocol(format!("unexpected message {other:?}"))),
            None => {
                return Err(Error::Protocol(
                    "rt went away before writing the id maps".into(),
                ))
            }
        }
        nix::unistd::setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0))
            .ctx("setresgid 0 in the user namespace")?;
        nix::unistd::setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0))
            .ctx("setresuid 0 in the user namespace")?;
    }
    // The intermediate that made the pid namespace joined the user one.
    join_all(
        &a.plan.child_joins,
        a.plan.ns.join_others_before_user,
        a.plan.ns.pid_intermediate,
    )?;
    // Root of a joined user namespace, as runc's init becomes (files it
    // makes in the root then belong to that namespace's root).
    if a.plan.ns.user_joined_by_init {
        nix::unistd::setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0))
            .ctx("setresgid 0 in the joined user namespace")?;
        nix::unistd::setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0))
            .ctx("setresuid 0 in the joined user namespace")?;
    }
    if !a.plan.ns.unshare_flags.is_empty() {
        nix::sched::unshare(a.plan.ns.unshare_flags).ctx("unshare the new namespaces")?;
    }
    nix::unistd::setsid().ctx("setsid")?;
    Ok(())
}

/// Joins `joins` in the plan's order (a user namespace first, if any;
/// `skip_user` when it is joined already). A namespace that user
/// namespace does not own (the host's network, say) cannot be joined from
/// inside it: with `others_first` (the plan's `join_others_before_user`),
/// while still privileged where we are, every other one is tried first,
/// and only those refused then are joined again after the user
/// namespace, as runc does.
fn join_all(joins: &[namespaces::Join], others_first: bool, skip_user: bool) -> Result<()> {
    use oci_spec::runtime::LinuxNamespaceType::User;
    let join = |j: &namespaces::Join| {
        nix::sched::setns(j.fd.as_fd(), namespaces::flag(j.typ)).with_ctx(|| {
            format!(
                "join {} namespace {}",
                crate::config::namespaces::name(j.typ),
                j.path.display()
            )
        })
    };
    let user = joins.iter().find(|j| j.typ == User);
    let mut later: Vec<&namespaces::Join> = Vec::new();
    // Joined already (by the process that made the pid namespace in the
    // user namespace, which tried them first): a second setns from
    // inside the user namespace would be refused.
    let member = |j: &namespaces::Join| {
        let own = format!("/proc/self/ns/{}", crate::config::namespaces::name(j.typ));
        match (
            nix::sys::stat::fstat(&j.fd),
            nix::sys::stat::stat(own.as_str()),
        ) {
            (Ok(a), Ok(b)) => (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino),
            _ => false,
        }
    };
    for j in joins.iter().filter(|j| j.typ != User && !member(j)) {
        // Refused now, it is tried again below, where its error is told.
        if others_first && nix::sched::setns(j.fd.as_fd(), namespaces::flag(j.typ)).is_ok() {
            continue;
        }
        later.push(j);
    }
    if let Some(u) = user.filter(|_| !skip_user) {
        join(u)?;
    }
    for j in later {
        join(j)?;
    }
    Ok(())
}

/// The terminal, made from the container's own devpts: the master goes to
/// the console socket, the peer is bound on /dev/console and returned.
fn make_console(a: &InitArgs, process: &Process, root: BorrowedFd<'_>) -> Result<Option<OwnedFd>> {
    if !process.terminal().unwrap_or(false) {
        return Ok(None);
    }
    let sock = a.console_socket.as_ref().ok_or(Error::Usage(
        "process.terminal is true but no --console-socket was given",
    ))?;
    let (master, peer) = console::open_pty(root)?;
    if let Some(sz) = process.console_size() {
        console::set_size(&master, sz.height(), sz.width())?;
    }
    rootfs::bind_console(root, peer.as_fd())?;
    console::send_master(sock.as_fd(), master.as_fd())?;
    Ok(Some(peer))
}

/// hostname and domainname (the plan's), and sysctls. The procfs writes go
/// through the host's procfs, checked to be procfs, while the container's
/// /proc/sys is still writable; we are already in the container's
/// namespaces, which is what these files reflect.
fn kernel_settings(spec: &Spec, ns: &NamespacePlan) -> Result<()> {
    let proc = ProcFs::open(Path::new("/proc"))?;
    if let Some(h) = &ns.hostname {
        nix::unistd::sethostname(h).with_ctx(|| format!("hostname: set {h:?}"))?;
    }
    if let Some(d) = &ns.domainname {
        sysctl::write(&proc, "kernel.domainname", d).map_err(|e| e.in_field("domainname"))?;
    }
    if let Some(sysctls) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) {
        let mut keys: Vec<_> = sysctls.iter().collect();
        keys.sort();
        for (k, v) in keys {
            sysctl::write(&proc, k, v).map_err(|e| e.in_field("linux.sysctl"))?;
        }
    }
    // process.oomScoreAdj is written from outside (spawn).
    Ok(())
}

/// A container in the host's mount namespace: rt records the mounts the
/// init made under the root before anything else runs.
fn mounts_made(channel: &Channel) -> Result<()> {
    channel.send(&FromInit::MountsMade)?;
    match channel.recv::<ToInit>()? {
        Some(ToInit::MountsRecorded) => Ok(()),
        other => Err(Error::Protocol(format!(
            "waiting for rt to record the mounts, got {other:?}"
        ))),
    }
}

/// rt runs prestart and createRuntime in its namespaces when told, then
/// createContainer runs here, in the container's, before pivot_root.
/// Returns the state JSON rt sent, for the startContainer hooks.
fn create_container_hooks(spec: &Spec, channel: &Channel) -> Result<Option<String>> {
    if !needs_hook_sync(spec) {
        return Ok(None);
    }
    channel.send(&FromInit::CreateHooks)?;
    let state = match channel.recv::<ToInit>()? {
        Some(ToInit::HooksDone { state }) => state,
        other => {
            return Err(Error::Protocol(format!(
                "waiting for the hooks, got {other:?}"
            )))
        }
    };
    let list = hooks::Kind::CreateContainer.of(spec.hooks().as_ref());
    hooks::run(hooks::Kind::CreateContainer, list, state.as_bytes())?;
    Ok(Some(state))
}
