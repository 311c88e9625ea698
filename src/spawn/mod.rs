//! Making the container's init: one clone3 with every new namespace at
//! once (into its cgroup with CLONE_INTO_CGROUP), a pidfd held from the
//! moment of the clone, and the parent's half of the setup: id maps, then
//! waiting for the init to report ready or failed.

pub mod bind_sources;
pub mod channel;
pub mod idmap;
pub mod namespaces;

use std::convert::Infallible;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use nix::unistd::Pid;
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Spec};

use crate::config::namespace_plan::{Host, IdMaps, MapWriter};
use crate::error::{Context, Error, Result};
use crate::spawn::channel::{Channel, FromInit, ToInit};
use crate::spawn::namespaces::Plan;
use crate::sys::clone::clone3;
use crate::sys::fd::close_in_child;
use crate::sys::pidfd::pidfd_send_signal;
use crate::sys::process::runtime_exe;

/// The init process, as seen by rt.
#[derive(Debug)]
pub struct Init {
    pub pid: Pid,
    /// A pidfd on the init: signals and exit are never confused with a
    /// recycled pid.
    pub pidfd: OwnedFd,
}

/// What rt does when the init asks for it during its setup (each gets the
/// init's pid).
pub struct ParentCalls<'a> {
    /// Runs the prestart and createRuntime hooks; returns the state JSON
    /// for the init's hooks.
    pub on_hooks: &'a mut dyn FnMut(Pid) -> Result<String>,
    /// Takes the seccomp notification listener to the agent.
    pub on_listener: &'a mut dyn FnMut(Pid, OwnedFd) -> Result<()>,
    /// Clones mount `index`'s idmapped tree in the init's mount namespace
    /// (`bind_sources::clone_in_init_ns`).
    pub on_bind_tree: &'a mut dyn FnMut(Pid, usize) -> Result<OwnedFd>,
    /// Records the mounts the init made in the host's mount namespace.
    pub on_mounts_made: &'a mut dyn FnMut(Pid) -> Result<()>,
}

/// Clones the init and drives the parent's side of its setup. On error the
/// init is killed and reaped before returning.
/// The child runs `init` with its end of the sync channel; `state_lock`
/// is rt's lock descriptor, closed in the child.
pub fn spawn<F: FnOnce(Channel) -> Infallible>(
    spec: &Spec,
    plan: &Plan,
    state_lock: Option<RawFd>,
    cgroup: Option<&OwnedFd>,
    init: F,
    calls: ParentCalls<'_>,
) -> Result<Init> {
    let child_init = init;
    let (parent_ch, child_ch) = Channel::pair()?;

    let entered = plan.enter_parent_namespaces()?;
    if plan.ns.new_time {
        nix::sched::unshare(nix::sched::CloneFlags::from_bits_retain(
            libc::CLONE_NEWTIME,
        ))
        .ctx("create the time namespace")?;
        if let Some(text) = &plan.ns.time_offsets {
            std::fs::write("/proc/self/timens_offsets", text)
                .ctx("linux.timeOffsets: write /proc/self/timens_offsets")?;
        }
    }

    let parent_raw = parent_ch.as_raw_fd();
    let cgroup_raw = cgroup.map(|c| c.as_raw_fd());
    // Rootless, rt writes the maps of the new user namespace through the
    // init's /proc files: the init stays dumpable until they are written.
    let dumpable = plan.ns.id_maps.as_ref().is_some_and(|m| m.keep_dumpable);
    let child = move || {
        // The child keeps only its own end of the channel, so that it
        // sees EOF if rt dies, and none of rt's lock (see
        // InitArgs::state_lock). The child never drops its copies of
        // `parent_ch` or of the lock (it leaves with _exit or exec).
        close_in_child(parent_raw);
        if let Some(fd) = state_lock {
            close_in_child(fd);
        }
        // The cgroup directory was for clone3 only.
        if let Some(fd) = cgroup_raw {
            close_in_child(fd);
        }
        child_init(child_ch)
    };
    let init = match &plan.new_pid_in {
        Some(userns) => clone_in_user_pid_ns(
            userns,
            &plan.child_joins,
            clone_bits(plan.ns.clone_flags),
            cgroup,
            child,
        )?,
        None => clone_into(clone_bits(plan.ns.clone_flags), cgroup, dumpable, child)?,
    };
    entered.leave();
    match parent_side(&init, spec, plan, &parent_ch, calls) {
        Ok(()) => Ok(init),
        Err(e) => {
            kill_and_reap(&init);
            Err(e)
        }
    }
}

/// The namespace flags as clone3's u64 takes them.
#[allow(clippy::cast_sign_loss)] // CLONE_NEW* are positive bits of an int
fn clone_bits(flags: nix::sched::CloneFlags) -> u64 {
    flags.bits() as u64
}

/// Starts a process in a running container (`rt exec`): rt joins the
/// container's pid and time namespaces for its children, clones straight
/// into the container's cgroup (when it has one), and the child joins the
/// rest. Returns once
/// the child has exec'd (its end of the channel closed on exec), or the
/// child's error.
pub fn spawn_exec<F: FnOnce(Channel) -> Infallible>(
    plan: &Plan,
    exec: F,
    cgroup: Option<&OwnedFd>,
    on_listener: &mut dyn FnMut(Pid, OwnedFd) -> Result<()>,
) -> Result<Init> {
    let (parent_ch, child_ch) = Channel::pair()?;
    let entered = plan.enter_parent_namespaces()?;
    let parent_raw = parent_ch.as_raw_fd();
    let child = clone_into(0, cgroup, false, move || {
        close_in_child(parent_raw);
        exec(child_ch)
    })?;
    entered.leave();
    loop {
        match parent_ch.recv_with_fd::<FromInit>() {
            Ok(None) => return Ok(child),
            Ok(Some((FromInit::SeccompListener, Some(fd)))) => {
                if let Err(e) = on_listener(child.pid, fd) {
                    kill_and_reap(&child);
                    return Err(e);
                }
            }
            Ok(Some((FromInit::Failed { errno, error }, _))) => {
                let _ = nix::sys::wait::waitpid(child.pid, None);
                return Err(Error::ChildFailed {
                    exec: true,
                    errno: errno.map(nix::errno::Errno::from_raw),
                    msg: error,
                });
            }
            Ok(Some((other, _))) => {
                kill_and_reap(&child);
                return Err(Error::Exec(format!("unexpected message {other:?}")));
            }
            Err(e) => {
                kill_and_reap(&child);
                return Err(e);
            }
        }
    }
}

/// A process that only waits to be killed (and dies with rt): it holds a
/// new systemd scope until the init is cloned into it.
pub fn placeholder() -> Result<Init> {
    clone_into(0, None, false, || {
        let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
        loop {
            nix::unistd::pause();
        }
    })
}

/// clone3 with a pidfd (and into `cgroup` when given); the child runs
/// `child`, which never returns. The parent gets the new process; its copy
/// of whatever `child` captured is dropped.
/// `dumpable`: see [`clone3`]; the child must then make itself not
/// dumpable.
/// The init of a new pid namespace inside a user namespace joined by
/// path: an intermediate (in the container's cgroup) joins `userns`,
/// unshares the pid namespace, so that `userns` owns it, and clones the
/// init with CLONE_PARENT, so that the init is rt's child and pid 1 of
/// the new namespace; it sends the init's pidfd and exits.
fn clone_in_user_pid_ns<F: FnOnce() -> std::convert::Infallible>(
    userns: &OwnedFd,
    joins: &[namespaces::Join],
    flags: u64,
    cgroup: Option<&OwnedFd>,
    child: F,
) -> Result<Init> {
    let (rt_end, mid_end) = Channel::pair()?;
    let rt_raw = rt_end.as_raw_fd();
    let mid = clone_into(0, cgroup, false, move || {
        close_in_child(rt_raw);
        // The namespaces the user namespace does not own can only be
        // joined from out here (the init then skips those it is in).
        for j in joins.iter().filter(|j| j.typ != LinuxNamespaceType::User) {
            let _ = nix::sched::setns(j.fd.as_fd(), namespaces::flag(j.typ));
        }
        let made = nix::sched::setns(userns.as_fd(), nix::sched::CloneFlags::CLONE_NEWUSER)
            .and_then(|()| nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWPID))
            .and_then(|()| {
                crate::sys::clone::clone3(flags | libc::CLONE_PARENT as u64, None, false, child)
            });
        let code = match made {
            Ok((pid, pidfd)) => {
                let _ = mid_end.send_with_fd(&pid.as_raw(), Some(pidfd.as_fd()));
                0
            }
            Err(e) => {
                let _ = mid_end.send(&-(e as i32));
                1
            }
        };
        crate::sys::process::exit_now(code)
    })?;
    let got = rt_end.recv_with_fd::<i32>();
    let _ = crate::sys::pidfd::wait_exited(&mid.pidfd);
    match got? {
        Some((pid, Some(pidfd))) if pid > 0 => Ok(Init {
            pid: Pid::from_raw(pid),
            pidfd,
        }),
        Some((e, _)) if e < 0 => Err(Error::Sys {
            context: "linux.namespaces: make the pid namespace in the joined user namespace".into(),
            source: nix::Error::from_raw(-e),
        }),
        _ => Err(Error::Protocol(
            "linux.namespaces: the process making the pid namespace in the joined user namespace exited".into(),
        )),
    }
}

pub fn clone_into<F: FnOnce() -> std::convert::Infallible>(
    flags: u64,
    cgroup: Option<&OwnedFd>,
    dumpable: bool,
    child: F,
) -> Result<Init> {
    // Known before the child exists, so it can refuse to exec rt itself.
    runtime_exe();
    let (pid, pidfd) = clone3(flags, cgroup.map(|c| c.as_fd()), dumpable, child).map_err(|e| {
        let hint = if e == nix::Error::EINVAL || e == nix::Error::EPERM {
            " (are all asked namespace types supported here?)"
        } else {
            ""
        };
        Error::Sys {
            context: format!("clone3 the container process{hint}"),
            source: e,
        }
    })?;
    Ok(Init { pid, pidfd })
}

fn parent_side(
    init: &Init,
    spec: &Spec,
    plan: &Plan,
    ch: &Channel,
    calls: ParentCalls<'_>,
) -> Result<()> {
    set_oom_score_adj(init.pid, spec)?;
    if let Some(maps) = &plan.ns.id_maps {
        write_planned_maps(init.pid, maps)?;
        ch.send(&ToInit::IdMapsWritten)?;
    }
    loop {
        match ch.recv_with_fd::<FromInit>()? {
            Some((FromInit::CreateHooks, _)) => {
                let state = (calls.on_hooks)(init.pid)?;
                ch.send(&ToInit::HooksDone { state })?;
            }
            Some((FromInit::BindTree { index }, _)) => {
                let tree = (calls.on_bind_tree)(init.pid, index)?;
                ch.send_with_fd(&ToInit::BindTree, Some(tree.as_fd()))?;
            }
            Some((FromInit::MountsMade, _)) => {
                (calls.on_mounts_made)(init.pid)?;
                ch.send(&ToInit::MountsRecorded)?;
            }
            Some((FromInit::SeccompListener, Some(fd))) => (calls.on_listener)(init.pid, fd)?,
            Some((FromInit::SeccompListener, None)) => {
                return Err(Error::Init(
                    "seccomp listener message without its descriptor".into(),
                ))
            }
            Some((FromInit::Ready, _)) => return Ok(()),
            Some((FromInit::Failed { errno, error }, _)) => {
                return Err(Error::ChildFailed {
                    exec: false,
                    errno: errno.map(nix::errno::Errno::from_raw),
                    msg: error,
                })
            }
            None => {
                return Err(Error::Init(format!(
                    "exited during setup ({})",
                    describe_exit(init)
                )))
            }
        }
    }
}

/// `process.oomScoreAdj`, written from outside (as runc does) before the
/// init changes its credentials: an init in a user namespace it joined
/// (a pod's) cannot open its own /proc files, which stay owned by the
/// host's root.
fn set_oom_score_adj(pid: Pid, spec: &Spec) -> Result<()> {
    let Some(adj) = spec.process().as_ref().and_then(|p| p.oom_score_adj()) else {
        return Ok(());
    };
    let file = format!("/proc/{pid}/oom_score_adj");
    std::fs::write(&file, adj.to_string())
        .with_ctx(|| format!("process.oomScoreAdj: write {adj} to {file}"))
}

/// Writes the uid and gid maps of the user namespace of `pid`. As root
/// rt writes them itself. Without root the kernel lets a process map only
/// its own uid and gid (one id, with setgroups denied); any other mapping
/// goes through the setuid helpers newuidmap and newgidmap, which allow
/// the ranges /etc/subuid and /etc/subgid give the user.
pub(crate) fn write_maps(pid: Pid, uid: &[LinuxIdMapping], gid: &[LinuxIdMapping]) -> Result<()> {
    let maps = IdMaps::new(uid.to_vec(), gid.to_vec(), Host::detect());
    write_planned_maps(pid, &maps)
}

/// Writes the maps of a new user namespace as the plan says: each by rt
/// itself, or through newuidmap/newgidmap.
fn write_planned_maps(pid: Pid, maps: &IdMaps) -> Result<()> {
    match maps.uid_writer {
        MapWriter::Helper => {
            log::debug!("rootless: linux.uidMappings maps more than rt's own uid: newuidmap");
            helper_map(pid, "newuidmap", "uidMappings", "/etc/subuid", &maps.uid)?;
        }
        _ => write_map(pid, "uid_map", &maps.uid)?,
    }
    match maps.gid_writer {
        MapWriter::Helper => {
            log::debug!("rootless: linux.gidMappings maps more than rt's own gid: newgidmap");
            helper_map(pid, "newgidmap", "gidMappings", "/etc/subgid", &maps.gid)
        }
        MapWriter::KernelDenySetgroups => {
            // Without CAP_SETGID the kernel takes a gid map only once
            // setgroups is denied in the namespace.
            std::fs::write(format!("/proc/{pid}/setgroups"), "deny")
                .with_ctx(|| format!("linux.gidMappings: write /proc/{pid}/setgroups"))?;
            write_map(pid, "gid_map", &maps.gid)
        }
        MapWriter::Kernel => write_map(pid, "gid_map", &maps.gid),
    }
}

/// Runs newuidmap or newgidmap for `pid` with `maps`.
fn helper_map(
    pid: Pid,
    helper: &str,
    field: &str,
    ranges: &str,
    maps: &[LinuxIdMapping],
) -> Result<()> {
    let Some(bin) = find_in_path(helper) else {
        return Err(Error::HostLacks(format!(
            "linux.{field} maps more than this user's own id: that needs {helper} \
             (Debian's package uidmap), which is not installed"
        )));
    };
    let mut cmd = std::process::Command::new(&bin);
    cmd.arg(pid.to_string());
    for m in maps {
        cmd.args([
            m.container_id().to_string(),
            m.host_id().to_string(),
            m.size().to_string(),
        ]);
    }
    let out = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .with_ctx(|| format!("linux.{field}: run {}", bin.display()))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let err = err.lines().last().unwrap_or("").trim();
        return Err(Error::InvalidField {
            field: format!("linux.{field}"),
            reason: format!(
                "{helper} refused the mapping ({}): {err} (this user's ranges are in {ranges})",
                maps.iter()
                    .map(|m| format!("{} {} {}", m.container_id(), m.host_id(), m.size()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
    Ok(())
}

fn find_in_path(name: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin".into(), "/bin".into()])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

pub(crate) fn write_map(pid: Pid, file: &str, maps: &[LinuxIdMapping]) -> Result<()> {
    let text: String = maps
        .iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect();
    std::fs::write(format!("/proc/{pid}/{file}"), text).with_ctx(|| {
        format!(
            "linux.{}: write /proc/{pid}/{file}",
            if file == "uid_map" {
                "uidMappings"
            } else {
                "gidMappings"
            }
        )
    })
}

/// Kills the init and reaps it (rt is its parent during create).
pub fn kill_and_reap(init: &Init) {
    let _ = pidfd_send_signal(&init.pidfd, libc::SIGKILL);
    let _ = nix::sys::wait::waitpid(init.pid, None);
}

fn describe_exit(init: &Init) -> String {
    match nix::sys::wait::waitpid(init.pid, None) {
        Ok(nix::sys::wait::WaitStatus::Exited(_, c)) => format!("exit status {c}"),
        Ok(nix::sys::wait::WaitStatus::Signaled(_, s, _)) => format!("killed by {s}"),
        Ok(other) => format!("{other:?}"),
        Err(e) => format!("wait: {e}"),
    }
}
