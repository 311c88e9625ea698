//! `rt restore`: a container made again from a checkpoint. Everything
//! that can be refused is checked first (the bundle's config, the image
//! directory, the console socket, that CRIU can be used); then rt makes
//! the state directory and the cgroup, binds the container's root where
//! CRIU restores into it, and asks CRIU to restore with the plan. The
//! restored init becomes rt's child (`rst_sibling`); rt records it as a
//! running container, so `state`, `ps`, `exec`, `kill` and `delete`
//! work on it. If anything fails, what was made is undone.

use std::fs;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::fcntl::{open, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::Mode;

use super::plan::{self, RestoreFlags};
use super::rpc::{self, Criu, Notify};
use super::{Descriptors, DESCRIPTORS_FILE};
use crate::cgroup::devices::Program;
use crate::cgroup::systemd::{Scope, Systemd};
use crate::cgroup::{self, Placement};
use crate::config::spec::Bundle;
use crate::container::shim::Handoff;
use crate::container::Created;
use crate::error::{Context, Error, Result};
use crate::spawn::Init;
use crate::state::{now_rfc3339, validate_id, Locked, Phase, Root, State};
use crate::sys::pidfd::{pidfd_open, pidfd_send_signal};
use crate::sys::process::start_time;

/// Where the container's root is bound for CRIU, in its state directory.
const CRIU_ROOT: &str = "criu-root";

/// The descriptors a restored init's stdio is remapped to, in place of
/// the caller's own (containerd-shim-rt-v2 hands the task's).
#[derive(Debug)]
pub struct RestoreStdio {
    pub stdin: OwnedFd,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

/// `rt restore`'s options.
#[derive(Debug)]
pub struct RestoreOptions {
    pub id: String,
    /// `--criu`: the CRIU binary (default `criu` from PATH).
    pub criu: Option<PathBuf>,
    pub bundle: PathBuf,
    pub image_path: PathBuf,
    /// `--work-path` (default: the image path): CRIU's log goes there.
    pub work_path: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    /// `--systemd-cgroup`: the container's cgroup is a scope unit
    /// (`slice:prefix:name`), as `rt create` makes it.
    pub systemd_cgroup: bool,
    pub flags: RestoreFlags,
    /// The restored init's stdin, stdout and stderr; `None`: the caller's
    /// own (`rt restore`).
    pub stdio: Option<RestoreStdio>,
}

/// The restored container's init (rt's child).
#[derive(Debug)]
pub struct Restored {
    pub pid: i32,
}

/// Restores the container `opts.id` from its checkpoint; its init is the
/// caller's child.
pub fn restore(root: &Root, opts: &RestoreOptions) -> Result<Restored> {
    restore_as(root, opts, false)
}

/// `rt restore --detach` by hand: the restored init is held by an rt-shim
/// as `rt create`'s is (its exit recorded for `rt wait` and `rt state`,
/// its leftovers reaped). Returns its pid. Must be called from a
/// single-threaded process (it forks).
pub fn restore_with_shim(root: &Root, opts: &RestoreOptions, handoff: &Handoff) -> Result<i32> {
    crate::container::shim::spawn(root, &opts.id, handoff, || {
        let r = restore_as(root, opts, true)?;
        match pidfd_open(r.pid).ctx("pidfd of the restored init") {
            Ok(pidfd) => Ok(Created {
                init: Init {
                    pid: nix::unistd::Pid::from_raw(r.pid),
                    pidfd,
                },
                console: None,
            }),
            Err(e) => {
                let _ = crate::container::delete(root, &opts.id, true);
                Err(e)
            }
        }
    })
}

/// `shim`: the caller becomes the init's rt-shim (recorded in the state).
fn restore_as(root: &Root, opts: &RestoreOptions, shim: bool) -> Result<Restored> {
    validate_id(&opts.id)?;
    super::refuse_lazy_pages(&opts.flags.common)?;
    if crate::rootless::detect() != crate::rootless::Mode::Root {
        return Err(Error::Unsupported("rt restore without root".into()));
    }
    let bundle = Bundle::load(&opts.bundle)?;
    if root.dir_of(&opts.id).exists() {
        return Err(Error::Exists(opts.id.clone()));
    }
    let images_meta = fs::metadata(&opts.image_path).map_err(|e| Error::InvalidArgument {
        arg: format!("--image-path {}", opts.image_path.display()),
        reason: format!("no checkpoint there ({e})"),
    })?;
    if !images_meta.is_dir() {
        return Err(Error::InvalidArgument {
            arg: format!("--image-path {}", opts.image_path.display()),
            reason: "not a directory".into(),
        });
    }
    let console = opts
        .console_socket
        .as_deref()
        .map(crate::tty::console::connect_socket)
        .transpose()?;
    let spec = &bundle.spec;
    let linux = spec.linux().as_ref();
    // Without systemd, say so before anything is made.
    let systemd = opts
        .systemd_cgroup
        .then(|| cgroup::connect_scope(linux.and_then(|l| l.cgroups_path().as_deref()), &opts.id))
        .transpose()?;
    let cgroup_mount = cgroup::find_mount()?;
    let cgroup_path = cgroup::resolve_path(
        linux.and_then(|l| l.cgroups_path().as_deref()),
        &root.path,
        &opts.id,
        opts.systemd_cgroup,
    )?;
    let limits = match linux.and_then(|l| l.resources().as_ref()) {
        Some(r) => cgroup::check_resources(r, &cgroup_mount)?,
        None => vec![],
    };
    // The device rules hold for the restored processes as for created ones.
    let devices = Program::from_spec(spec)?;
    let descriptors = read_descriptors(&opts.image_path)?;
    let locked = root.create_dir(&opts.id)?;
    let criu_root = locked.dir.join(CRIU_ROOT);
    let plan = plan::restore(
        spec,
        &bundle.dir,
        &bundle.rootfs,
        &criu_root,
        Some(&cgroup_path),
        &opts.flags,
    );
    let plan = match plan {
        Ok(p) => p,
        Err(e) => {
            let _ = locked.remove();
            return Err(e);
        }
    };
    // CRIU is asked last among the checks, with the state directory held
    // so that no other restore or create of this id runs meanwhile.
    let criu = Criu::new(opts.criu.as_deref());
    if let Err(e) = criu.usable() {
        return Err(Undo::new(locked).run(e));
    }

    let mut undo = Undo::new(locked);
    let mut state = State {
        id: opts.id.clone(),
        phase: Phase::Creating,
        pid: 0,
        pid_start: 0,
        #[allow(clippy::cast_possible_wrap)] // pid_max is at most 2^22
        creator_pid: std::process::id() as i32,
        creator_start: 0,
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        created: now_rfc3339(),
        owner: String::new(),
        annotations: spec.annotations().clone().unwrap_or_default(),
        cgroup: None,
        shim,
        resctrl: None,
        host_mounts: vec![],
        config: spec.clone(),
    };
    state.creator_start = start_time(state.creator_pid).unwrap_or(0);
    match make(
        &mut undo,
        &mut state,
        &criu,
        &plan,
        opts,
        &Cgroup {
            mount: &cgroup_mount,
            path: &cgroup_path,
            limits: &limits,
            devices: &devices,
            systemd: systemd.as_ref(),
        },
        &descriptors,
        console.as_ref(),
    ) {
        Ok(pid) => {
            undo.done();
            Ok(Restored { pid })
        }
        Err(e) => Err(undo.run(e)),
    }
}

/// What the restored container's cgroup is to be.
struct Cgroup<'a> {
    mount: &'a Path,
    path: &'a str,
    limits: &'a [cgroup::resources::Write],
    devices: &'a Program,
    systemd: Option<&'a (Systemd, Scope)>,
}

#[allow(clippy::too_many_arguments)]
fn make(
    undo: &mut Undo,
    state: &mut State,
    criu: &Criu,
    plan: &plan::RestorePlan,
    opts: &RestoreOptions,
    cg: &Cgroup,
    descriptors: &Descriptors,
    console: Option<&OwnedFd>,
) -> Result<i32> {
    let locked = undo.locked.as_ref().expect("held until done");
    locked.save(state)?;
    // With systemd, the scope's placeholder holds it until criu swrk,
    // whose children the restored processes are, is in it.
    let mut holder = None;
    let placement = if let Some((sd, scope)) = cg.systemd {
        undo.unit = Some(scope.unit.clone());
        let (placement, h) = crate::container::start_scope(
            sd,
            scope,
            &state.id,
            cg.mount,
            cg.limits,
            Some(cg.devices),
        )?;
        holder = Some(h);
        undo.cgroup = Some(placement.clone());
        state.cgroup = Some(placement.clone());
        locked.save(state)?;
        placement
    } else {
        let mut placement = Placement::plan(cg.mount, cg.path)?;
        state.cgroup = Some(placement.clone());
        locked.save(state)?;
        let changed = placement.make();
        undo.cgroup = Some(placement.clone());
        if changed? {
            state.cgroup = Some(placement.clone());
            locked.save(state)?;
        }
        placement
    };
    // As create does under systemd too: not every limit is a unit property.
    cgroup::resources::apply(cg.mount, &placement.dir, cg.limits)?;
    cg.devices.attach(placement.open_dir()?.as_fd())?;
    // Where systemd put the scope is known only now.
    let plan = &plan::RestorePlan {
        cgroup_root: Some(placement.path.clone()),
        ..plan.clone()
    };

    make_mountpoints(&state.config, &state.bundle, &state.rootfs)?;
    fs::create_dir(&plan.root).with_ctx(|| format!("mkdir {}", plan.root.display()))?;
    mount(
        Some(&state.rootfs),
        &plan.root,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .with_ctx(|| {
        format!(
            "bind the container's root {} on {}",
            state.rootfs.display(),
            plan.root.display()
        )
    })?;
    undo.criu_root = Some(plan.root.clone());

    let images = open_dir(&opts.image_path, "--image-path")?;
    let work_path = opts.work_path.as_deref().unwrap_or(&opts.image_path);
    let work = open_dir(work_path, "--work-path")?;
    // Inherited by criu swrk (no O_CLOEXEC; rt is single-threaded): the
    // namespaces joined by path, and the stdio for the init's pipes.
    let joined: Vec<OwnedFd> = plan
        .joined
        .iter()
        .map(|(_, path)| {
            open(path, OFlag::O_RDONLY, Mode::empty())
                .with_ctx(|| format!("open namespace {}", path.display()))
        })
        .collect::<Result<_>>()?;
    let mut stdio = Vec::new();
    let mut stdio_keys = Vec::new();
    for (fd, was) in descriptors.0.iter().enumerate() {
        // Only pipes are remapped: CRIU reopens a path itself.
        if was.starts_with("pipe:") {
            let given = opts.stdio.as_ref().map(|s| match fd {
                0 => s.stdin.as_fd(),
                1 => s.stdout.as_fd(),
                _ => s.stderr.as_fd(),
            });
            let dup = match (given, fd) {
                (Some(g), _) => g.try_clone_to_owned(),
                (None, 0) => std::io::stdin().as_fd().try_clone_to_owned(),
                (None, 1) => std::io::stdout().as_fd().try_clone_to_owned(),
                (None, _) => std::io::stderr().as_fd().try_clone_to_owned(),
            }
            .ctx("duplicate the stdio for the restored init")?;
            crate::sys::fd::clear_cloexec(dup.as_raw_fd()).ctx("stdio for criu")?;
            stdio_keys.push((was.clone(), dup.as_raw_fd()));
            stdio.push(dup);
        }
    }
    let joined_fds: Vec<i32> = joined.iter().map(AsRawFd::as_raw_fd).collect();
    let req = rpc::request(
        rust_criu::rust_criu_protobuf::rpc::Criu_req_type::RESTORE,
        Some(plan.to_opts(
            images.as_raw_fd(),
            work.as_raw_fd(),
            &joined_fds,
            &stdio_keys,
        )),
    );
    let mut restored_pid = 0;
    let criu_in_cgroup = Criu {
        binary: criu.binary.clone(),
        cgroup: Some(placement.dir.clone()),
    };
    // prestart and createRuntime run once CRIU has made the restored
    // init's namespaces, as runc runs them on restore; the state they get
    // is "creating", with that init's pid. A failing hook fails the
    // restore (CRIU is told, and undoes it).
    let mut hook_state = crate::container::OciState::of(state, crate::container::Status::Creating);
    let hooks = state.config.hooks().clone();
    let resp = criu_in_cgroup.call(req, &mut |n: Notify| {
        match n.script.as_str() {
            "setup-namespaces" => {
                hook_state.pid = n.pid;
                let json = serde_json::to_string(&hook_state).expect("state serializes");
                crate::hooks::run_create_runtime(hooks.as_ref(), json.as_bytes())?;
            }
            "post-restore" => restored_pid = n.pid,
            "orphan-pts-master" => {
                if let (Some(sock), Some(master)) = (console, &n.fd) {
                    crate::tty::console::send_master(sock.as_fd(), master.as_fd())?;
                }
            }
            _ => {}
        }
        Ok(())
    });
    drop(joined);
    drop(stdio);
    drop(holder);
    let resp = resp.map_err(|e| super::with_log(e, &work_path.join(plan.log_file)))?;
    let pid = match resp.restore.as_ref().map(|r| r.pid()) {
        Some(p) if p > 0 => p,
        _ => restored_pid,
    };
    if pid <= 0 {
        return Err(Error::Protocol(
            "criu restore succeeded but named no restored process".into(),
        ));
    }
    undo.pid = Some(pid);
    state.pid = pid;
    state.pid_start = start_time(pid)
        .ok_or_else(|| Error::Init("the restored init exited right after the restore".into()))?;
    state.phase = Phase::Running;
    // The restored mount namespace holds its own root: rt's bind goes.
    if let Some(r) = undo.criu_root.take() {
        unbind(&r)?;
    }
    locked.save(state)?;
    if let Some(p) = &opts.pid_file {
        let p = std::path::absolute(p).with_ctx(|| format!("--pid-file {}", p.display()))?;
        crate::state::write_atomic(&p, pid.to_string().as_bytes(), 0o644)?;
    }
    Ok(pid)
}

/// Makes the mountpoints where CRIU will mount (see
/// [`plan::mountpoints`]); a bind whose source is missing is left to
/// CRIU, which names it.
fn make_mountpoints(spec: &oci_spec::runtime::Spec, bundle: &Path, rootfs: &Path) -> Result<()> {
    let open_base = |p: &Path| {
        open(
            p,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .with_ctx(|| format!("open {}", p.display()))
    };
    let root = open_base(rootfs)?;
    let mut targets = Vec::new();
    for (dest, source) in plan::mounts(spec, bundle, rootfs)? {
        let dir = match &source {
            Some(src) => match fs::metadata(src) {
                Ok(meta) => meta.is_dir(),
                Err(_) => continue,
            },
            None => true,
        };
        let dest = crate::rootfs::resolve_in_root(root.as_fd(), Path::new(&dest))?;
        targets.push(plan::MountTarget { dest, source, dir });
    }
    for m in plan::mountpoints(&targets) {
        let base = m.base.as_deref().map(open_base).transpose()?;
        let base = base.as_ref().map_or(root.as_fd(), AsFd::as_fd);
        crate::rootfs::resolve::create_in_root(base, &m.path, m.file)?;
    }
    Ok(())
}

fn read_descriptors(images: &Path) -> Result<Descriptors> {
    let path = images.join(DESCRIPTORS_FILE);
    match fs::read(&path) {
        Ok(data) => serde_json::from_slice(&data).map_err(|source| Error::Json {
            what: format!("read {}", path.display()),
            source,
        }),
        // A checkpoint made without it (by CRIU by hand): nothing remapped.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Descriptors::default()),
        Err(e) => Err(e).with_ctx(|| format!("read {}", path.display())),
    }
}

fn open_dir(path: &Path, flag: &str) -> Result<OwnedFd> {
    open(
        path,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_ctx(|| format!("{flag} {}", path.display()))
}

fn unbind(dir: &Path) -> Result<()> {
    umount2(dir, MntFlags::MNT_DETACH).with_ctx(|| format!("unmount {}", dir.display()))?;
    fs::remove_dir(dir).with_ctx(|| format!("remove {}", dir.display()))
}

/// What a restore made, undone if it fails: the restored processes, the
/// cgroup, the root's bind, the state directory.
struct Undo {
    locked: Option<Locked>,
    cgroup: Option<Placement>,
    criu_root: Option<PathBuf>,
    pid: Option<i32>,
    /// The scope unit asked for (it may exist even if the start failed).
    unit: Option<String>,
}

impl Undo {
    fn new(locked: Locked) -> Undo {
        Undo {
            locked: Some(locked),
            cgroup: None,
            criu_root: None,
            pid: None,
            unit: None,
        }
    }

    /// Success: everything stays; the lock is released.
    fn done(mut self) {
        self.locked.take();
    }

    fn run(mut self, cause: Error) -> Error {
        let mut failed = Vec::new();
        if let Some(pid) = self.pid.take() {
            if let Ok(fd) = pidfd_open(pid) {
                let _ = pidfd_send_signal(&fd, libc::SIGKILL);
                crate::container::wait_exit(fd.as_fd(), Duration::from_secs(5));
            }
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
        }
        if let Some(cg) = self.cgroup.take().filter(Placement::is_own) {
            if let Err(e) = cg
                .kill_all(Duration::from_secs(5))
                .and_then(|()| cg.remove())
            {
                failed.push(e.to_string());
            }
        }
        if let Some(r) = self.criu_root.take() {
            if let Err(e) = unbind(&r) {
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
