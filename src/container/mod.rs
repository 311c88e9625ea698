//! The container lifecycle: create, start, state, kill, delete, list.
//! creating -> created -> running -> stopped, with every transition taken
//! under the container's lock and every failed create undone.

pub mod exec;
pub mod shim;
pub mod signal;

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::fcntl::{open, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::stat::Mode;
use oci_spec::runtime::LinuxNamespaceType;
use serde::Serialize;

use crate::cgroup::{self, Placement};
use crate::config::spec::{Bundle, OCI_VERSION};
use crate::error::{Context, Error, Result};
use crate::hooks::{self, Kind};
use crate::init::InitArgs;
use crate::spawn::namespaces::{self, Plan};
use crate::spawn::{self, Init};
use crate::state::validate_id;
use crate::state::ExitRecord;
use crate::state::{now_rfc3339, write_atomic, Locked, Phase, Root, State, EXEC_FIFO};
use crate::sys::pidfd::{pidfd_open, pidfd_send_signal};
use crate::sys::process::start_time;
use crate::tty::console;

/// The status of a container, as `rt state` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// The OCI state JSON, fields in runc's order.
#[derive(Debug, Clone, Serialize)]
pub struct OciState {
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub status: Status,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub annotations: HashMap<String, String>,
    /// How a stopped container's init ended, when a shim watched it.
    /// Extra fields: runc's parsers ignore them.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub exit: Option<ExitView>,
}

/// The exit as `rt state` shows it; `exitStatus` is null when the shim
/// died without recording it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ExitView {
    #[serde(rename = "exitStatus")]
    pub status: Option<i32>,
    #[serde(rename = "exitSignal", skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    #[serde(rename = "exitedAt", skip_serializing_if = "Option::is_none")]
    pub exited_at: Option<String>,
}

impl ExitView {
    fn of(record: Option<ExitRecord>) -> ExitView {
        match record {
            Some(r) => ExitView {
                status: Some(r.status),
                signal: r.signal.map(crate::container::signal::name),
                exited_at: Some(r.exited_at),
            },
            None => ExitView {
                status: None,
                signal: None,
                exited_at: None,
            },
        }
    }
}

/// How to create a container (the flags of `rt create`).
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub id: String,
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
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

/// A loaded container and the live view of it.
pub struct Container {
    pub state: State,
    pub dir: PathBuf,
}

impl Container {
    pub fn load(root: &Root, id: &str) -> Result<Container> {
        Ok(Container {
            state: root.load(id)?,
            dir: root.dir_of(id),
        })
    }

    fn from_locked(l: &Locked) -> Result<Container> {
        Ok(Container {
            state: l.load()?,
            dir: l.dir.clone(),
        })
    }

    /// A pidfd on the init if it is still the same live process.
    pub fn init_pidfd(&self) -> Option<OwnedFd> {
        if self.state.pid <= 0 {
            return None;
        }
        let fd = pidfd_open(self.state.pid).ok()?;
        // Checked after opening: the pidfd then surely names this process.
        (start_time(self.state.pid) == Some(self.state.pid_start)).then_some(fd)
    }

    /// A pidfd on the container's rt-shim while it runs.
    pub fn shim_pidfd(&self) -> Option<OwnedFd> {
        let s = &self.state;
        if !s.shim || s.creator_pid <= 0 {
            return None;
        }
        let fd = pidfd_open(s.creator_pid).ok()?;
        (start_time(s.creator_pid) == Some(s.creator_start)).then_some(fd)
    }

    pub fn status(&self) -> Status {
        let s = &self.state;
        if s.phase == Phase::Creating {
            return if s.creator_pid > 0 && start_time(s.creator_pid) == Some(s.creator_start) {
                Status::Creating
            } else {
                Status::Stopped
            };
        }
        if s.pid <= 0 || start_time(s.pid) != Some(s.pid_start) {
            return Status::Stopped;
        }
        if self.dir.join(EXEC_FIFO).exists() {
            return Status::Created;
        }
        if s.cgroup.as_ref().is_some_and(|c| c.is_frozen()) {
            return Status::Paused;
        }
        Status::Running
    }

    pub fn oci_state(&self) -> OciState {
        let status = self.status();
        let mut o = OciState::of(&self.state, status);
        if status == Status::Stopped {
            o.pid = 0;
            if self.state.shim {
                o.exit = Some(ExitView::of(ExitRecord::read(&self.dir)));
            }
        }
        o
    }
}

impl OciState {
    /// The state JSON of `s` with a status the caller already knows.
    fn of(s: &State, status: Status) -> OciState {
        OciState {
            oci_version: OCI_VERSION.into(),
            id: s.id.clone(),
            pid: s.pid,
            status,
            bundle: s.bundle.clone(),
            rootfs: s.rootfs.clone(),
            created: s.created.clone(),
            owner: s.owner.clone(),
            annotations: s.annotations.clone(),
            exit: None,
        }
    }
}

/// Undoes a create that failed part way: kills the init if there is one,
/// removes the cgroup and the state directory.
struct Undo<'a> {
    locked: Option<Locked>,
    cgroup: Option<&'a Placement>,
    init: Option<&'a Init>,
}

impl Undo<'_> {
    fn run(mut self) {
        if let Some(init) = self.init {
            spawn::kill_and_reap(init);
        }
        if let Some(cg) = self.cgroup {
            let _ = cg.kill_all(Duration::from_secs(5));
            let _ = cg.remove();
        }
        if let Some(l) = self.locked.take() {
            let _ = l.remove();
        }
    }
}

/// Creates a container: validates everything first, then makes the state
/// directory, cgroup and init. On any error nothing is left behind.
pub fn create(root: &Root, opts: &CreateOptions) -> Result<Created> {
    validate_id(&opts.id)?;
    let bundle = Bundle::load(&opts.bundle)?;
    let spec = &bundle.spec;
    let process = spec.process().as_ref().expect("validated");
    let terminal = process.terminal().unwrap_or(false);
    if terminal && opts.console_socket.is_none() && !opts.own_console {
        return Err(Error::Invalid(
            "process.terminal is true: --console-socket is required (or run in the foreground)"
                .into(),
        ));
    }
    if !terminal && opts.console_socket.is_some() {
        return Err(Error::Invalid(
            "--console-socket was given but process.terminal is false".into(),
        ));
    }
    let nss = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    if !namespaces::has(&nss, LinuxNamespaceType::Mount) {
        return Err(Error::Config {
            file: bundle.dir.join("config.json"),
            msg: "linux.namespaces: rt needs a mount namespace to set up the root filesystem"
                .into(),
        });
    }
    let cgroup_mount = cgroup::find_mount()?;
    let limits = match spec.linux().as_ref().and_then(|l| l.resources().as_ref()) {
        Some(r) => cgroup::check_resources(r, &cgroup_mount)?,
        None => vec![],
    };
    let devices = crate::cgroup::devices::Program::from_spec(spec)?;
    let seccomp = match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        Some(p) => Some(crate::seccomp::compile(p)?),
        None => None,
    };
    let plan = Plan::new(&nss)?;
    let cgroup_path = cgroup::resolve_path(
        spec.linux()
            .as_ref()
            .and_then(|l| l.cgroups_path().as_deref()),
        &opts.id,
        opts.systemd_cgroup,
    )?;

    let (console_sock, console_recv) =
        console::endpoints(terminal, opts.console_socket.as_deref())?;

    // From here on, things exist that a failure must undo.
    let locked = root.create_dir(&opts.id)?;
    let creator = std::process::id() as i32;
    let mut state = State {
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
        annotations: spec.annotations().clone().unwrap_or_default(),
        cgroup: None,
        shim: opts.shim,
        config: spec.clone(),
    };
    let mut undo = Undo {
        locked: Some(locked),
        cgroup: None,
        init: None,
    };
    macro_rules! try_undo {
        ($e:expr) => {
            match $e {
                Ok(v) => v,
                Err(e) => {
                    undo.run();
                    return Err(e);
                }
            }
        };
    }
    let locked = undo.locked.as_ref().expect("set above");
    try_undo!(locked.save(&state));
    let fifo = locked.dir.join(EXEC_FIFO);
    try_undo!(nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o622))
        .with_ctx(|| format!("mkfifo {}", fifo.display())));
    // The mode given to mkfifo is filtered by the umask.
    try_undo!(nix::sys::stat::fchmodat(
        nix::fcntl::AT_FDCWD,
        &fifo,
        Mode::from_bits_truncate(0o622),
        nix::sys::stat::FchmodatFlags::FollowSymlink
    )
    .with_ctx(|| format!("chmod {}", fifo.display())));

    let placement = try_undo!(Placement::create(&cgroup_mount, &cgroup_path));
    let placement_ref: &Placement = &placement;
    undo.cgroup = Some(placement_ref);
    state.cgroup = Some(placement.clone());
    // Saved now so that a killed create can still be cleaned up by delete.
    try_undo!(undo.locked.as_ref().unwrap().save(&state));
    let cgroup_fd = try_undo!(placement.open_dir());
    try_undo!(devices.attach(&cgroup_fd));
    // Before the init exists: it is cloned into a cgroup already limited.
    try_undo!(crate::cgroup::resources::apply(
        &cgroup_mount,
        &placement.dir,
        &limits
    ));

    let state_dir = try_undo!(open(
        &undo.locked.as_ref().unwrap().dir,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty()
    )
    .ctx("open state dir"));
    let (listen_fds, extra_env) = listen_fds();
    let args = InitArgs {
        spec,
        rootfs: &bundle.rootfs,
        bundle: &bundle.dir,
        plan: &plan,
        state_dir,
        console_socket: console_sock,
        cgroup_dir: Some(placement.dir.clone()),
        no_pivot: opts.no_pivot,
        no_new_keyring: opts.no_new_keyring,
        preserve_fds: opts.preserve_fds + listen_fds,
        extra_env,
        seccomp: seccomp.as_ref(),
        idmaps: try_undo!(crate::spawn::idmap::prepare(spec)),
        state_lock: undo.locked.as_ref().map(Locked::raw_fd),
    };
    // prestart and createRuntime run here, in rt's namespaces, once the
    // init has made the mounts; the state they get is "creating".
    let mut hook_state = OciState::of(&state, Status::Creating);
    let mut on_hooks = |pid: nix::unistd::Pid| -> Result<String> {
        hook_state.pid = pid.as_raw();
        let json = serde_json::to_string(&hook_state).expect("state serializes");
        let h = spec.hooks().as_ref();
        hooks::run(Kind::Prestart, Kind::Prestart.of(h), json.as_bytes())?;
        hooks::run(
            Kind::CreateRuntime,
            Kind::CreateRuntime.of(h),
            json.as_bytes(),
        )?;
        Ok(json)
    };
    let agent = seccomp
        .as_ref()
        .and_then(|c| c.notify.as_ref())
        .map(|(_, a)| a);
    let mut agent_state = OciState::of(&state, Status::Creating);
    let mut on_listener = |pid: nix::unistd::Pid, fd: OwnedFd| -> Result<()> {
        let agent =
            agent.ok_or_else(|| Error::Init("a seccomp listener nobody asked for".into()))?;
        agent_state.pid = pid.as_raw();
        let json = serde_json::to_string(&agent_state).expect("state serializes");
        crate::seccomp::notify::send(agent, fd, pid.as_raw(), &json)
    };
    let (spec, plan, state_lock) = (args.spec, args.plan, args.state_lock);
    let init = try_undo!(spawn::spawn(
        spec,
        plan,
        state_lock,
        Some(&cgroup_fd),
        move |ch| -> std::convert::Infallible { crate::init::run(args, ch) },
        &mut on_hooks,
        &mut on_listener
    ));
    let init_ref = &init;
    undo.init = Some(init_ref);
    let console = try_undo!(console_recv
        .as_ref()
        .map(console::receive_master)
        .transpose());

    state.pid = init.pid.as_raw();
    state.pid_start = try_undo!(
        start_time(state.pid).ok_or_else(|| Error::Init("exited right after setup".into()))
    );
    state.phase = Phase::Created;
    try_undo!(undo.locked.as_ref().unwrap().save(&state));
    if let Some(p) = &opts.pid_file {
        try_undo!(write_pid_file(p, state.pid));
    }
    // Success: keep everything; release the lock.
    drop(undo);
    Ok(Created { init, console })
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

/// The state JSON a hook gets on stdin.
/// (The status is the lifecycle point's, not looked up: the hook runs at a
/// known moment and the init's pid is given even after it exited.)
fn hook_state_json(state: &State, status: Status) -> String {
    serde_json::to_string(&OciState::of(state, status)).expect("state serializes")
}

/// Checks that the descriptors a create will pass on (`--preserve-fds`
/// and socket activation's `LISTEN_FDS`, from 3 up) are open in rt. The
/// CLI calls this before it opens anything itself: otherwise a caller that
/// forgot a descriptor would hand the container one of rt's own files.
pub fn check_passed_fds(preserve_fds: i32) -> Result<()> {
    if preserve_fds < 0 {
        return Err(Error::Invalid("--preserve-fds must not be negative".into()));
    }
    let n = preserve_fds + listen_fds().0;
    for fd in 3..3 + n {
        if !crate::sys::fd::is_open(fd) {
            return Err(Error::Invalid(format!(
                "descriptor {fd} is not open, but --preserve-fds/LISTEN_FDS ask to pass 3..{}",
                2 + n
            )));
        }
    }
    Ok(())
}

/// Writes the pid file atomically (a manager may be polling for it).
fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let path = std::path::absolute(path).with_ctx(|| format!("--pid-file {}", path.display()))?;
    write_atomic(&path, pid.to_string().as_bytes(), 0o644)
}

/// Lets the init exec the user's program.
pub fn start(root: &Root, id: &str) -> Result<()> {
    let locked = root.lock(id)?;
    let c = Container::from_locked(&locked)?;
    match c.status() {
        Status::Created => {}
        Status::Stopped => {
            return Err(Error::InvalidState(
                "cannot start a container that has stopped".into(),
            ))
        }
        Status::Running | Status::Paused => {
            return Err(Error::InvalidState(
                "cannot start an already running container".into(),
            ))
        }
        Status::Creating => {
            return Err(Error::InvalidState(format!(
                "container {id} is still being created"
            )))
        }
    }
    let pidfd = c
        .init_pidfd()
        .ok_or_else(|| Error::InvalidState("cannot start a container that has stopped".into()))?;
    let fifo_path = locked.dir.join(EXEC_FIFO);
    let fifo = open(
        &fifo_path,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_ctx(|| format!("open {}", fifo_path.display()))?;
    // Wait for the init's word, or for the init to die. The init writes
    // "0" when it is about to exec, or "1<error>" when a startContainer
    // hook failed.
    let mut word = Vec::new();
    loop {
        let mut fds = [
            PollFd::new(fifo.as_fd(), PollFlags::POLLIN),
            PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(e).ctx("wait for the container init"),
        }
        let fifo_ready = fds[0]
            .revents()
            .is_some_and(|r| r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP));
        if fifo_ready {
            let mut b = [0u8; libc::PIPE_BUF];
            match nix::unistd::read(&fifo, &mut b) {
                Ok(n) if n > 0 => {
                    word.extend_from_slice(&b[..n]);
                    break;
                }
                Ok(_) | Err(nix::Error::EAGAIN) => {}
                Err(e) => return Err(e).ctx("read exec fifo"),
            }
        }
        if fds[1]
            .revents()
            .is_some_and(|r| r.contains(PollFlags::POLLIN))
        {
            return Err(Error::InvalidState(format!(
                "container {id}: the init exited before start"
            )));
        }
    }
    let _ = std::fs::remove_file(&fifo_path);
    if word.first() != Some(&b'0') {
        // The init exits after a failed startContainer hook; make sure.
        let _ = pidfd_send_signal(&pidfd, libc::SIGKILL);
        let msg = String::from_utf8_lossy(word.get(1..).unwrap_or_default()).into_owned();
        return Err(Error::Init(msg));
    }
    let mut state = c.state;
    state.phase = Phase::Running;
    locked.save(&state)?;
    let json = hook_state_json(&state, Status::Running);
    let list = Kind::Poststart.of(state.config.hooks().as_ref());
    hooks::run_warn(Kind::Poststart, list, json.as_bytes());
    Ok(())
}

/// Sends a signal to the init, or with `all` to every process of the
/// container's cgroup.
pub fn kill(root: &Root, id: &str, sig: i32, all: bool) -> Result<()> {
    let c = Container::load(root, id)?;
    match c.status() {
        Status::Stopped => return Err(Error::InvalidState("container not running".into())),
        Status::Creating => {
            return Err(Error::InvalidState(format!(
                "container {id} is still being created"
            )))
        }
        _ => {}
    }
    if all {
        let cg = c.state.cgroup.as_ref().ok_or_else(|| {
            Error::InvalidState(format!(
                "container {id} has no cgroup: --all cannot find its processes"
            ))
        })?;
        if sig == libc::SIGKILL && std::fs::write(cg.dir.join("cgroup.kill"), b"1").is_ok() {
            return Ok(());
        }
        for pid in cg.pids()? {
            // A process that is gone already is ESRCH, ignored.
            let _ = crate::sys::process::kill(pid, sig);
        }
        return Ok(());
    }
    let pidfd = c
        .init_pidfd()
        .ok_or_else(|| Error::InvalidState("container not running".into()))?;
    pidfd_send_signal(&pidfd, sig).with_ctx(|| format!("send signal {sig} to the init of {id}"))
}

/// Freezes a running container (`cgroup.freeze`); its status becomes
/// paused.
pub fn pause(root: &Root, id: &str) -> Result<()> {
    set_paused(root, id, true)
}

/// Thaws a paused container.
pub fn resume(root: &Root, id: &str) -> Result<()> {
    set_paused(root, id, false)
}

fn set_paused(root: &Root, id: &str, pause: bool) -> Result<()> {
    let locked = root.lock(id)?;
    let c = Container::from_locked(&locked)?;
    match (c.status(), pause) {
        (Status::Running, true) | (Status::Paused, false) => {}
        (Status::Paused, true) => {
            return Err(Error::InvalidState(format!(
                "container {id} is already paused"
            )))
        }
        (Status::Running, false) => {
            return Err(Error::InvalidState(format!("container {id} is not paused")))
        }
        (s, _) => {
            return Err(Error::InvalidState(format!(
                "container {id} is {s}: only a running container can be paused or resumed"
            )))
        }
    }
    let cg =
        c.state.cgroup.as_ref().ok_or_else(|| {
            Error::InvalidState(format!("container {id} has no cgroup to freeze"))
        })?;
    cg.set_frozen(pause, Duration::from_secs(10))
}

/// Changes a running container's resources (`rt update`). Resources whose
/// cgroup v2 controller is missing are refused naming the controller, and
/// what cgroup v2 cannot do is refused naming the field: never a silent
/// no-op. Device rules cannot be changed on a live container.
pub fn update(root: &Root, id: &str, r: &oci_spec::runtime::LinuxResources) -> Result<()> {
    let locked = root.lock(id)?;
    let c = Container::from_locked(&locked)?;
    match c.status() {
        Status::Running | Status::Paused | Status::Created => {}
        s => {
            return Err(Error::InvalidState(format!(
                "container {id} is {s}: only a live container can be updated"
            )))
        }
    }
    if r.devices().as_ref().is_some_and(|d| !d.is_empty()) {
        return Err(Error::Unsupported(
            "update of linux.resources.devices on a live container".into(),
        ));
    }
    let mount = cgroup::find_mount()?;
    let writes = cgroup::check_resources(r, &mount)?;
    let cg = c
        .state
        .cgroup
        .as_ref()
        .ok_or_else(|| Error::InvalidState(format!("container {id} has no cgroup")))?;
    let check = r
        .memory()
        .as_ref()
        .and_then(|m| m.check_before_update())
        .unwrap_or(false);
    if check {
        check_memory_usage(&cg.dir, &writes)?;
    }
    crate::cgroup::resources::apply(&mount, &cg.dir, &writes)
}

/// `memory.checkBeforeUpdate`: a new memory.max below what the container
/// uses now is refused rather than making the kernel reclaim or OOM-kill.
fn check_memory_usage(dir: &Path, writes: &[crate::cgroup::resources::Write]) -> Result<()> {
    let Some(new) = writes
        .iter()
        .find(|w| w.file == "memory.max")
        .and_then(|w| w.value.parse::<u64>().ok())
    else {
        return Ok(());
    };
    let current = std::fs::read_to_string(dir.join("memory.current"))
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok());
    match current {
        Some(cur) if new < cur => Err(Error::Invalid(format!(
            "linux.resources.memory.limit: {new} is below the {cur} bytes the container uses \
             now (checkBeforeUpdate)"
        ))),
        _ => Ok(()),
    }
}

/// The cgroup directory of a live container (`rt events`), or why there
/// is none.
pub fn cgroup_of(root: &Root, id: &str) -> Result<PathBuf> {
    let c = Container::load(root, id)?;
    match c.status() {
        Status::Running | Status::Paused | Status::Created => {}
        s => {
            return Err(Error::InvalidState(format!(
                "container {id} is {s}: it has no resource usage"
            )))
        }
    }
    c.state
        .cgroup
        .as_ref()
        .map(|cg| cg.dir.clone())
        .ok_or_else(|| Error::InvalidState(format!("container {id} has no cgroup")))
}

/// Whether the container is still alive (created, running or paused).
pub fn is_live(root: &Root, id: &str) -> bool {
    Container::load(root, id).is_ok_and(|c| {
        matches!(
            c.status(),
            Status::Running | Status::Paused | Status::Created
        )
    })
}

/// The pids of every process in the container's cgroup (`rt ps`).
pub fn pids(root: &Root, id: &str) -> Result<Vec<i32>> {
    let c = Container::load(root, id)?;
    if c.status() == Status::Stopped {
        return Ok(vec![]);
    }
    match &c.state.cgroup {
        Some(cg) => cg.pids(),
        None => Ok(c
            .init_pidfd()
            .map(|_| vec![c.state.pid])
            .unwrap_or_default()),
    }
}

/// Removes a container. A running one needs `force` (it is killed first).
pub fn delete(root: &Root, id: &str, force: bool) -> Result<()> {
    validate_id(id)?;
    let locked = match root.lock(id) {
        Ok(l) => l,
        Err(Error::NotFound(_)) if force => return Ok(()),
        Err(e) => return Err(e),
    };
    let c = match Container::from_locked(&locked) {
        Ok(c) => c,
        // Half-made or corrupt state: with --force, clean up what we can.
        Err(e @ (Error::CorruptState { .. } | Error::NotFound(_))) => {
            if !force {
                return Err(e);
            }
            log::warn!("{e}; removing the container's state anyway");
            remove_default_cgroup(id);
            return locked.remove();
        }
        Err(e) => return Err(e),
    };
    // A create killed between making the default cgroup and recording it
    // (nothing ran in it yet).
    let no_path = |s: &State| {
        s.config
            .linux()
            .as_ref()
            .and_then(|l| l.cgroups_path().as_ref())
            .is_none()
    };
    if c.state.phase == Phase::Creating && c.state.cgroup.is_none() && no_path(&c.state) {
        remove_default_cgroup(id);
    }
    let status = c.status();
    match status {
        Status::Stopped | Status::Created | Status::Creating => {}
        Status::Running | Status::Paused if force => {}
        _ => {
            return Err(Error::InvalidState(format!(
                "cannot delete container {id} that is not stopped: {status}"
            )))
        }
    }
    if let Some(pidfd) = c.init_pidfd() {
        let _ = pidfd_send_signal(&pidfd, libc::SIGKILL);
        wait_exit(&pidfd, Duration::from_secs(10));
    }
    // The shim records the exit and leaves once the init is gone; let it
    // finish before its directory goes.
    if let Some(shim) = c.shim_pidfd() {
        wait_exit(&shim, Duration::from_secs(2));
    }
    if let Some(cg) = &c.state.cgroup {
        if cg.is_frozen() {
            let _ = std::fs::write(cg.dir.join("cgroup.freeze"), b"0");
        }
        cg.kill_all(Duration::from_secs(10))?;
        cg.remove()?;
    }
    let poststop = Kind::Poststop.of(c.state.config.hooks().as_ref());
    let json = hook_state_json(&c.state, Status::Stopped);
    locked.remove()?;
    hooks::run_warn(Kind::Poststop, poststop, json.as_bytes());
    Ok(())
}

/// Kills what is in `/rt/<id>`, the default cgroup, and removes it: for a
/// container whose state does not say where its cgroup is.
fn remove_default_cgroup(id: &str) {
    let default = cgroup::find_mount()
        .ok()
        .map(|m| m.join("rt").join(id))
        .filter(|d| d.exists());
    if let Some(dir) = default {
        let p = Placement {
            dir,
            path: String::new(),
            created: vec![],
        };
        let _ = p.kill_all(Duration::from_secs(5));
        let _ = std::fs::remove_dir(&p.dir);
    }
}

/// Waits until the process behind `pidfd` has exited (or `timeout`).
pub fn wait_exit(pidfd: &OwnedFd, timeout: Duration) -> bool {
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
    loop {
        match poll(
            &mut fds,
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(n) => return n > 0,
            Err(nix::Error::EINTR) => continue,
            Err(_) => return false,
        }
    }
}

/// Blocks until the container's init has exited and returns how, as its
/// shim recorded it (`rt wait`).
pub fn wait(root: &Root, id: &str) -> Result<ExitRecord> {
    let c = Container::load(root, id)?;
    if !c.state.shim {
        return Err(Error::InvalidState(format!(
            "container {id} has no rt-shim (it was created with --shim=never, --pid-file or --console-socket): its exit status is not recorded"
        )));
    }
    if let Some(shim) = c.shim_pidfd() {
        // The shim exits right after writing the record.
        while !wait_exit(&shim, Duration::from_secs(3600)) {}
    }
    ExitRecord::read(&c.dir).ok_or_else(|| {
        Error::InvalidState(format!(
            "container {id}: its rt-shim is gone without recording how the container ended"
        ))
    })
}

/// The state of one container.
pub fn state(root: &Root, id: &str) -> Result<OciState> {
    Ok(Container::load(root, id)?.oci_state())
}

/// A container in `rt list`: its state and the owner of its directory.
pub struct Listed {
    pub state: OciState,
    pub owner: String,
}

/// Every container under the root. One that vanishes while being listed
/// is skipped; one whose state is unreadable is reported in the log.
pub fn list(root: &Root) -> Result<Vec<Listed>> {
    let mut out = Vec::new();
    for id in root.ids()? {
        match Container::load(root, &id) {
            Ok(c) => {
                let uid = std::fs::metadata(&c.dir).map(|m| m.uid()).unwrap_or(0);
                out.push(Listed {
                    owner: user_name(uid),
                    state: c.oci_state(),
                });
            }
            Err(Error::NotFound(_)) => {}
            Err(e) => log::warn!("{e}"),
        }
    }
    Ok(out)
}

fn user_name(uid: u32) -> String {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| format!("#{uid}"))
}
