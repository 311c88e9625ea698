//! `rt create`: everything is checked before anything is made; then the
//! state directory, the exec fifo, the cgroup (limited before the init
//! exists), the init; and any failure undoes what was made.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;
use oci_spec::runtime::LinuxNamespaceType;

use super::prelude::{self, Caller};
use super::{OciState, Status};
use crate::cgroup::devices::Program;
use crate::cgroup::resources::Write;
use crate::cgroup::systemd::{self, Scope, Systemd};
use crate::cgroup::{self, Placement};
use crate::config::mount_plan::MountPlan;
use crate::config::spec::Bundle;
use crate::error::{Context, Error, Result};
use crate::hooks;
use crate::init::{Fifo, InitArgs};
use crate::resctrl;
use crate::rootless;
use crate::seccomp::Compiled;
use crate::spawn::channel::Channel;
use crate::spawn::namespaces::Plan;
use crate::spawn::{self, Init};
use crate::state::{now_rfc3339, validate_id, write_atomic, Locked, Phase, Root, State, EXEC_FIFO};
use crate::sys::process::start_time;
use crate::tty::console;

/// How to create a container (the flags of `rt create`).
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub id: String,
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    /// `--pidfd-socket`: a pidfd of the init goes there.
    pub pidfd_socket: Option<PathBuf>,
    /// rt itself receives the pty master (foreground `run` with a terminal).
    pub own_console: bool,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: i32,
    pub systemd_cgroup: bool,
    /// The creating process stays on as the init's monitor (rt-shim): it
    /// is recorded so that `delete` and `wait` can find it.
    pub shim: bool,
}

/// A container that `create` made: the init waits for `start`.
pub struct Created {
    pub init: Init,
    /// The pty master, when rt asked for it (`own_console`).
    pub console: Option<OwnedFd>,
}

/// What the config asks, checked and compiled before anything exists.
struct Checked {
    terminal: bool,
    plan: Plan,
    cgroup_mount: PathBuf,
    /// None: rootless without a delegated cgroup, the container stays in
    /// rt's own.
    cgroup_path: Option<String>,
    limits: Vec<Write>,
    /// None: rootless, no device program (loading one needs root).
    devices: Option<Program>,
    seccomp: Option<Compiled>,
    /// With `--systemd-cgroup`: the bus connection and the scope to ask for.
    systemd: Option<(Systemd, Scope)>,
    /// `linux.intelRdt`: the resctrl groups to make.
    rdt: Option<resctrl::Plan>,
    /// `linux.netDevices`: the host interfaces to move in.
    netdevs: Option<super::netdev::Plan>,
}

/// Creates a container: validates everything first, then makes the state
/// directory, cgroup and init. On any error nothing is left behind.
pub fn create(root: &Root, opts: &CreateOptions) -> Result<Created> {
    validate_id(&opts.id)?;
    let mut bundle = Bundle::load(&opts.bundle)?;
    let checked = check(root, &bundle, opts)?;
    // The plan of the mounts goes to the init, with what rt makes for it.
    let mounts = std::mem::take(&mut bundle.mounts);
    let console = console::endpoints(checked.terminal, opts.console_socket.as_deref())?;
    let pidfd_sock = opts
        .pidfd_socket
        .as_deref()
        .map(super::pidfd_socket::connect_socket)
        .transpose()?;
    let mut undo = Undo {
        locked: Some(root.create_dir(&opts.id)?),
        cgroup: None,
        resctrl: None,
        unit: None,
        host_mounts: None,
        init: None,
    };
    match make(
        &mut undo, &bundle, mounts, &checked, opts, console, pidfd_sock,
    ) {
        Ok(console) => {
            let init = undo.init.take().expect("made");
            // Success: keep everything; release the lock.
            drop(undo);
            Ok(Created { init, console })
        }
        Err(e) => Err(undo.run(e)),
    }
}

/// Every check that needs nothing made: the console, the namespaces, the
/// cgroup's controllers and path, the device program, the seccomp filter.
fn check(root: &Root, bundle: &Bundle, opts: &CreateOptions) -> Result<Checked> {
    let spec = &bundle.spec;
    let process = spec.process().as_ref().expect("validated");
    let terminal = process.terminal().unwrap_or(false);
    prelude::check_console(
        Caller::Create,
        terminal,
        opts.console_socket.as_deref(),
        opts.own_console,
    )?;
    let linux = spec.linux().as_ref();
    let nss = linux
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    if !bundle.namespaces.own_mounts {
        host_mount_ns_allows(spec, &bundle.rootfs, bundle.namespaces.in_userns).map_err(|msg| {
            Error::Config {
                file: bundle.dir.join("config.json"),
                msg: format!("{msg} (no mount namespace in linux.namespaces)"),
            }
        })?;
    }
    // Before anything else about the cgroup: without systemd, say so.
    let systemd = opts
        .systemd_cgroup
        .then(|| cgroup::connect_scope(linux.and_then(|l| l.cgroups_path().as_deref()), &opts.id))
        .transpose()?;
    let rdt = linux
        .and_then(|l| l.intel_rdt().as_ref())
        .map(|r| resctrl::check(r, &opts.id))
        .transpose()?;
    let netdevs = match linux.and_then(|l| l.net_devices().as_ref()) {
        Some(d) if !d.is_empty() => {
            let joined = nss
                .iter()
                .find(|n| n.typ() == LinuxNamespaceType::Network)
                .and_then(|n| n.path().as_deref());
            Some(super::netdev::check(d, joined)?)
        }
        _ => None,
    };
    let cgroup_mount = cgroup::find_mount()?;
    let limits = match linux.and_then(|l| l.resources().as_ref()) {
        Some(r) => cgroup::check_resources(r, &cgroup_mount)?,
        None => vec![],
    };
    let devices = Program::from_spec(spec)?;
    let seccomp = prelude::compile_seccomp(spec)?;
    let plan = Plan::open(bundle.namespaces.clone())?;
    let cgroup_path = cgroup::resolve_path(
        linux.and_then(|l| l.cgroups_path().as_deref()),
        &root.path,
        &opts.id,
        opts.systemd_cgroup,
    )?;
    let mode = rootless::detect();
    let (cgroup_path, devices) = if mode.is_rootless() {
        let own = cgroup::own_path()?;
        let dir = cgroup_mount.join(cgroup_path.trim_start_matches('/'));
        let path = if systemd.is_some() {
            // The user's manager makes the scope with Delegate=yes; where
            // it is (under user@<uid>.service) is known once it exists.
            log::debug!("rootless: the user's systemd makes and delegates the scope");
            Some(cgroup_path)
        } else if rootless::cgroup_delegated(&cgroup_mount, &own, &cgroup_path) {
            log::debug!(
                "rootless: cgroup {} is delegated to this user",
                dir.display()
            );
            Some(cgroup_path)
        } else if !limits.is_empty() {
            let files: Vec<&str> = limits.iter().map(|w| w.file.as_str()).collect();
            return Err(Error::Config {
                file: bundle.dir.join("config.json"),
                msg: format!(
                    "linux.resources asks for limits ({}), but the cgroup {} is not delegated \
                     to this user (uid {}): remove the limits, or have an admin delegate a \
                     cgroup this user owns and name it in linux.cgroupsPath",
                    files.join(", "),
                    dir.display(),
                    // Inside rootless Podman's user namespace: who outside.
                    cgroup::user_bus::namespaced_root_uid()
                        .unwrap_or_else(|| nix::unistd::geteuid().as_raw())
                ),
            });
        } else {
            log::debug!(
                "rootless: cgroup {} is not delegated to this user and no limit is asked: \
                 the container runs without a cgroup of its own (in rt's, {own})",
                dir.display()
            );
            None
        };
        log::debug!(
            "rootless: device rules are not enforced (a BPF device program needs root); \
             the container's devices are the host's, bound with this user's permissions"
        );
        (path, None)
    } else {
        (Some(cgroup_path), Some(devices))
    };
    Ok(Checked {
        terminal,
        plan,
        cgroup_mount,
        cgroup_path,
        limits,
        devices,
        seccomp,
        systemd,
        rdt,
        netdevs,
    })
}

/// Makes the container, step by step; what it made is in `undo`.
/// Returns the pty master when rt asked for it.
fn make(
    undo: &mut Undo,
    bundle: &Bundle,
    mut mounts: MountPlan,
    c: &Checked,
    opts: &CreateOptions,
    (console_sock, console_recv): (Option<OwnedFd>, Option<Channel>),
    pidfd_sock: Option<OwnedFd>,
) -> Result<Option<OwnedFd>> {
    let mut state = initial_state(bundle, opts);
    let locked = undo.locked.as_ref().expect("set by create");
    locked.save(&state)?;
    make_exec_fifo(&locked.dir.join(EXEC_FIFO))?;

    // With systemd, a placeholder process holds the scope until the init
    // is cloned into it (systemd makes no scope without a process).
    let mut holder = None;
    let placement = match (&c.systemd, &c.cgroup_path) {
        (Some((sd, scope)), _) => {
            undo.unit = Some(scope.unit.clone());
            let (placement, h) = start_scope(
                sd,
                scope,
                &opts.id,
                &c.cgroup_mount,
                &c.limits,
                c.devices.as_ref(),
            )?;
            holder = Some(h);
            undo.cgroup = Some(placement.clone());
            state.cgroup = Some(placement.clone());
            // Saved now so that a killed create can still be cleaned up.
            locked.save(&state)?;
            Some(placement)
        }
        (None, Some(path)) => {
            // The plan is saved before the mkdir, so that a killed create
            // can still be cleaned up by delete, which removes only a
            // cgroup that rt made for this container.
            let mut placement = Placement::plan(&c.cgroup_mount, path)?;
            state.cgroup = Some(placement.clone());
            locked.save(&state)?;
            let changed = placement.make();
            undo.cgroup = Some(placement.clone());
            if changed? {
                state.cgroup = Some(placement.clone());
                locked.save(&state)?;
            }
            Some(placement)
        }
        (None, None) => None,
    };
    let cgroup_fd = placement.as_ref().map(|p| p.open_dir()).transpose()?;
    if let (Some(fd), Some(devices)) = (&cgroup_fd, &c.devices) {
        devices.attach(fd.as_fd())?;
    }
    if let Some(placement) = &placement {
        // Before the init exists: it is cloned into a cgroup already limited.
        crate::cgroup::resources::apply(&c.cgroup_mount, &placement.dir, &c.limits)?;
    }
    if let Some(plan) = &c.rdt {
        let mut groups = resctrl::Groups::default();
        let made = plan.make(&mut groups);
        undo.resctrl = Some(groups.clone());
        state.resctrl = Some(groups);
        locked.save(&state)?;
        made?;
    }

    let exec_fifo = exec_fifo_handle(&locked.dir, &bundle.spec)?;
    let (listen_fds, extra_env) = listen_fds();
    let spec = &bundle.spec;
    crate::spawn::idmap::prepare(&mut mounts)?;
    // In a user namespace the init may not reach a source rt can, nor
    // idmap a host file system: rt clones (and idmaps) the binds itself.
    // Rootless, rt could not either: the init does as before.
    // Only root in the initial user namespace may clone host mounts.
    let host_root = crate::rootless::detect() == crate::rootless::Mode::Root;
    let in_root_trees = if (c.plan.ns.new_user || c.plan.ns.user_joined_by_init) && host_root {
        crate::spawn::bind_sources::prepare(&mut mounts, &bundle.rootfs)?
    } else {
        vec![]
    };
    // Without a mount namespace the mounts go under the root in the
    // host's: what exists before the init mounts anything tells rt which
    // are the container's.
    let host_snapshot = if !c.plan.ns.own_mounts
        && crate::config::mount_plan::first_mounting_field(spec).is_some()
    {
        let snap = crate::rootfs::host_mounts::Snapshot::take()?;
        undo.host_mounts = Some((snap.clone(), bundle.rootfs.clone()));
        Some(snap)
    } else {
        None
    };
    let args = InitArgs {
        spec,
        rootfs: &bundle.rootfs,
        plan: &c.plan,
        process_plan: &bundle.process,
        exec_fifo,
        console_socket: console_sock,
        // Without a cgroup of its own (rootless, none delegated), a cgroup
        // mount shows the one the container is in: rt's.
        cgroup_dir: match &placement {
            Some(p) => Some(p.dir.clone()),
            None => Some(
                c.cgroup_mount
                    .join(cgroup::own_path()?.trim_start_matches('/')),
            ),
        },
        no_pivot: opts.no_pivot,
        no_new_keyring: opts.no_new_keyring,
        preserve_fds: opts.preserve_fds + listen_fds,
        extra_env,
        seccomp: c.seccomp.as_ref(),
        mounts,
        state_lock: Some(locked.raw_fd()),
    };
    // prestart and createRuntime run here, in rt's namespaces, once the
    // init has made the mounts; the state they get is "creating".
    let mut hook_state = OciState::of(&state, Status::Creating);
    let mut on_hooks = |pid: nix::unistd::Pid| -> Result<String> {
        hook_state.pid = pid.as_raw();
        let json = serde_json::to_string(&hook_state).expect("state serializes");
        hooks::run_create_runtime(spec.hooks().as_ref(), json.as_bytes())?;
        Ok(json)
    };
    let mut on_listener = prelude::listener_to_agent(
        Caller::Create,
        c.seccomp.as_ref(),
        OciState::of(&state, Status::Creating),
    );
    let mut on_bind_tree = |pid: nix::unistd::Pid, index: usize| -> Result<OwnedFd> {
        let req = in_root_trees
            .iter()
            .find(|t| t.index == index)
            .ok_or_else(|| {
                Error::Protocol(format!(
                    "the init asked for the tree of mounts[{index}], which is not rt's to make"
                ))
            })?;
        crate::spawn::bind_sources::clone_in_init_ns(pid, &bundle.rootfs, req)
    };
    // Recorded and saved before the hooks run: a create killed after this
    // leaves a state whose delete unmounts them.
    let mut host_mounts = Vec::new();
    let mut on_mounts_made = |pid: nix::unistd::Pid| -> Result<()> {
        let snap = host_snapshot.as_ref().ok_or(Error::Internal(
            "the init made mounts in the host's mount namespace, unplanned",
        ))?;
        host_mounts = snap.made_since(Some(pid.as_raw()), &bundle.rootfs)?;
        let mut recorded = state.clone();
        recorded.host_mounts.clone_from(&host_mounts);
        locked.save(&recorded)
    };
    let state_lock = args.state_lock;
    let init = spawn::spawn(
        spec,
        &c.plan,
        state_lock,
        cgroup_fd.as_ref(),
        move |ch| -> std::convert::Infallible { crate::init::run(args, ch) },
        spawn::ParentCalls {
            on_hooks: &mut on_hooks,
            on_listener: &mut on_listener,
            on_bind_tree: &mut on_bind_tree,
            on_mounts_made: &mut on_mounts_made,
        },
    )?;
    state.host_mounts = host_mounts;
    let pid = init.pid.as_raw();
    let init = undo.init.insert(init);
    if let Some(sock) = &pidfd_sock {
        super::pidfd_socket::send(sock, init.pidfd.as_fd())?;
    }
    // The init waits on the exec fifo: it joins before its program runs.
    if let Some(groups) = &state.resctrl {
        resctrl::join(groups, pid)?;
    }
    // Its network namespace exists now. Should a move fail, the undo
    // kills the init: the kernel then gives physical devices back to the
    // host and deletes virtual ones with the namespace.
    if let Some(devices) = &c.netdevs {
        devices.move_into(pid)?;
    }
    // The init holds the scope now.
    drop(holder);
    let console = console_recv
        .as_ref()
        .map(console::receive_master)
        .transpose()?;

    state.pid = pid;
    state.pid_start =
        start_time(pid).ok_or_else(|| Error::Init("exited right after setup".into()))?;
    state.phase = Phase::Created;
    locked.save(&state)?;
    if let Some(p) = &opts.pid_file {
        write_pid_file(p, init.pid.as_raw())?;
    }
    Ok(console)
}

/// The state of a container being created by this process.
fn initial_state(bundle: &Bundle, opts: &CreateOptions) -> State {
    #[allow(clippy::cast_possible_wrap)] // pid_max is at most 2^22: a pid fits an int
    let creator = std::process::id() as i32;
    State {
        id: opts.id.clone(),
        phase: Phase::Creating,
        pid: 0,
        pid_start: 0,
        creator_pid: creator,
        creator_start: start_time(creator).unwrap_or(0),
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        created: now_rfc3339(),
        owner: String::new(),
        annotations: bundle.spec.annotations().clone().unwrap_or_default(),
        cgroup: None,
        shim: opts.shim,
        resctrl: None,
        host_mounts: vec![],
        config: bundle.spec.clone(),
    }
}

/// The init's way to the exec fifo: the fifo itself (O_PATH) when the
/// container has procfs on /proc to reopen it through, else the state
/// directory.
fn exec_fifo_handle(state_dir: &Path, spec: &oci_spec::runtime::Spec) -> Result<Fifo> {
    let has_proc = spec
        .mounts()
        .iter()
        .flatten()
        .any(|m| m.destination() == Path::new("/proc") && m.typ().as_deref() == Some("proc"));
    let (path, flags) = if has_proc {
        (state_dir.join(EXEC_FIFO), OFlag::O_PATH | OFlag::O_CLOEXEC)
    } else {
        (
            state_dir.to_path_buf(),
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        )
    };
    let fd = open(&path, flags, Mode::empty()).with_ctx(|| format!("open {}", path.display()))?;
    Ok(if has_proc {
        Fifo::Path(fd)
    } else {
        Fifo::StateDir(fd)
    })
}

/// The fifo `start` opens to let the init exec: writable by anyone (the
/// init may run as any user), whatever the umask.
fn make_exec_fifo(fifo: &Path) -> Result<()> {
    let mode = Mode::from_bits_truncate(0o622);
    nix::unistd::mkfifo(fifo, mode).with_ctx(|| format!("mkfifo {}", fifo.display()))?;
    nix::sys::stat::fchmodat(
        nix::fcntl::AT_FDCWD,
        fifo,
        mode,
        nix::sys::stat::FchmodatFlags::FollowSymlink,
    )
    .with_ctx(|| format!("chmod {}", fifo.display()))
}

/// Undoes a create that failed part way: kills the init if there is one,
/// removes the cgroup and the state directory.
struct Undo {
    locked: Option<Locked>,
    cgroup: Option<Placement>,
    /// The systemd scope asked for (it may exist even if the start failed).
    unit: Option<String>,
    /// The resctrl groups made for the container.
    resctrl: Option<resctrl::Groups>,
    /// A container in the host's mount namespace: the mounts before its
    /// own, and its root; what is new under the root is unmounted.
    host_mounts: Option<(crate::rootfs::host_mounts::Snapshot, PathBuf)>,
    init: Option<Init>,
}

/// The placeholder process that holds a new systemd scope: killed and
/// reaped when dropped.
pub(crate) struct Holder(Init);

/// Starts the container's scope unit with its limits and device rules,
/// held by a placeholder process until the container's first process is
/// in it (systemd makes no scope without a process): keep the holder
/// until then. The caller stops the unit if anything after fails.
pub(crate) fn start_scope(
    sd: &Systemd,
    scope: &Scope,
    id: &str,
    cgroup_mount: &Path,
    limits: &[Write],
    devices: Option<&Program>,
) -> Result<(Placement, Holder)> {
    let h = Holder(spawn::placeholder()?);
    let mut props = systemd::properties(limits);
    if let Some(d) = devices {
        props.extend(systemd::device_properties(&d.rules));
    }
    sd.start_scope(
        scope,
        h.0.pid.as_raw(),
        &format!("rt container {id}"),
        props,
    )?;
    let path = cgroup::cgroup_of(h.0.pid.as_raw())?;
    log::debug!("systemd put {} at {path}", scope.unit);
    let placement = Placement {
        dir: cgroup_mount.join(path.trim_start_matches('/')),
        path,
        created: vec![],
        unit: Some(scope.unit.clone()),
    };
    Ok((placement, h))
}

impl Drop for Holder {
    fn drop(&mut self) {
        spawn::kill_and_reap(&self.0);
    }
}

impl Undo {
    /// Undoes everything and returns the error that caused it; a cleanup
    /// that fails too is reported with it, not dropped.
    fn run(mut self, cause: Error) -> Error {
        let mut failed = Vec::new();
        if let Some(init) = self.init.take() {
            spawn::kill_and_reap(&init);
        }
        // The init is gone (spawn reaps it on its own errors): what is new
        // under the root now is what it made.
        if let Some((snap, rootfs)) = self.host_mounts.take() {
            if let Err(e) = snap
                .made_since(None, &rootfs)
                .and_then(|made| crate::rootfs::host_mounts::unmount(&made))
            {
                failed.push(e.to_string());
            }
        }
        // A cgroup rt joined is left as it was: only the init is killed.
        if let Some(cg) = self.cgroup.take().filter(Placement::is_own) {
            if let Err(e) = cg
                .kill_all(Duration::from_secs(5))
                .and_then(|()| cg.remove())
            {
                failed.push(e.to_string());
            }
        }
        if let Some(groups) = self.resctrl.take() {
            if let Err(e) = resctrl::remove(&groups) {
                failed.push(e.to_string());
            }
        }
        if let Some(unit) = self.unit.take() {
            if let Err(e) = Systemd::connect().and_then(|sd| sd.stop(&unit)) {
                failed.push(e.to_string());
            }
        }
        if let Some(l) = self.locked.take() {
            if let Err(e) = l.remove() {
                failed.push(e.to_string());
            }
        }
        Error::after_cleanup(cause, failed)
    }
}

/// `LISTEN_FDS` from systemd socket activation: those descriptors are
/// passed on, and the container is told about them.
fn listen_fds() -> (i32, Vec<String>) {
    let n: i32 = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let for_us = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .is_none_or(|p| p == std::process::id());
    if n > 0 && for_us {
        (n, vec![format!("LISTEN_FDS={n}"), "LISTEN_PID=1".into()])
    } else {
        (0, vec![])
    }
}

/// Checks that the descriptors a create will pass on (`--preserve-fds`
/// and socket activation's `LISTEN_FDS`, from 3 up) are open in rt. The
/// CLI calls this before it opens anything itself: otherwise a caller that
/// forgot a descriptor would hand the container one of rt's own files.
pub fn check_passed_fds(preserve_fds: i32) -> Result<()> {
    if preserve_fds < 0 {
        return Err(Error::Usage("--preserve-fds must not be negative"));
    }
    let n = preserve_fds + listen_fds().0;
    for fd in 3..3 + n {
        if !crate::sys::fd::is_open(fd) {
            return Err(Error::InvalidArgument {
                arg: "--preserve-fds/LISTEN_FDS".into(),
                reason: format!(
                    "descriptor {fd} is not open, but they ask to pass 3..{}",
                    2 + n
                ),
            });
        }
    }
    Ok(())
}

/// Writes the pid file atomically (a manager may be polling for it).
fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let path = std::path::absolute(path).with_ctx(|| format!("--pid-file {}", path.display()))?;
    write_atomic(&path, pid.to_string().as_bytes(), 0o644)
}

/// What a container without a mount namespace of its own may not ask:
/// its mounts go under its root in the host's mount namespace, so a root
/// that is the host's `/` may have none (they would land on the host's
/// own /proc, /dev...; runc 1.1.5 even binds the root over the host's
/// `/`), nor may a container in a user namespace (it may not mount in
/// the host's mount namespace), and `linux.rootfsPropagation` (the propagation of the root,
/// which is the host's there) is refused. Names the field.
fn host_mount_ns_allows(
    spec: &oci_spec::runtime::Spec,
    rootfs: &Path,
    in_userns: bool,
) -> std::result::Result<(), String> {
    if spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().as_ref())
        .is_some()
    {
        return Err("linux.rootfsPropagation: set: without a mount namespace the root's propagation is the host's".into());
    }
    let host_root = std::fs::canonicalize(rootfs).is_ok_and(|p| p == Path::new("/"));
    match crate::config::mount_plan::first_mounting_field(spec) {
        // The host's mount namespace is not its user namespace's: the
        // kernel would refuse every mount (EPERM) half-way through.
        Some(field) if in_userns => Err(format!(
            "{field}: asks for a mount under the root, which a container in a user namespace cannot make in the host's mount namespace"
        )),
        Some(field) if host_root => Err(format!(
            "{field}: asks for a mount under the root, and root.path is the host's /: it would change the host's own mounts"
        )),
        _ => Ok(()),
    }
}
