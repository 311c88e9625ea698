//! `rt exec`: another process in a running container. It joins every
//! namespace of the container's init (opened once from /proc/<pid>/ns while
//! a pidfd proves the init is still the same process), is cloned straight
//! into the container's cgroup, and takes the container's process settings
//! unless the caller overrides them.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{open, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::stat::Mode;
use oci_spec::runtime::{Capability, Process};

use super::prelude::{self, Caller};
use super::{Container, Op};
use crate::config::namespace_plan::{Host, NamespacePlan, NsJoin, EXEC_ORDER};
use crate::config::process_plan::{self, ProcessPlan};
use crate::error::{Context, Error, Result};
use crate::init::ExecArgs;
use crate::spawn::namespaces::Plan;
use crate::spawn::{self, Init};
use crate::state::validate_id;
use crate::state::{write_atomic, Root};
use crate::tty::console;

/// How to start the process (the flags of `rt exec` that are not about
/// the process itself).
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub id: String,
    pub console_socket: Option<PathBuf>,
    /// `--pidfd-socket`: a pidfd of the process goes there.
    pub pidfd_socket: Option<PathBuf>,
    /// rt itself receives the pty master (a foreground `exec -t`).
    pub own_console: bool,
    pub pid_file: Option<PathBuf>,
    pub preserve_fds: i32,
    pub ignore_paused: bool,
    /// A cgroup below the container's to put the process in (`--cgroup`).
    pub sub_cgroup: Option<String>,
}

/// The process-shaping flags of `rt exec`, applied over the container's
/// own `process` from config.json.
#[derive(Debug, Clone, Default)]
pub struct ProcessFlags {
    pub args: Vec<String>,
    pub tty: bool,
    pub cwd: Option<PathBuf>,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub additional_gids: Vec<u32>,
    pub caps: Vec<String>,
    pub no_new_privs: bool,
    pub process_label: Option<String>,
    pub apparmor: Option<String>,
}

/// Where the exec'd process comes from.
#[derive(Debug, Clone)]
pub enum ProcessSource {
    /// A complete process (containerd's), checked as it is entered.
    Given(Box<Process>),
    /// A complete process read and checked by [`process_from_file`]
    /// (`--process FILE`), with its plan.
    File {
        process: Box<Process>,
        plan: Box<ProcessPlan>,
    },
    /// The container's own process with the command line's overrides.
    Flags(ProcessFlags),
}

/// A started exec process.
pub struct Executed {
    pub process: Init,
    pub console: Option<OwnedFd>,
}

/// Reads a `--process` file: an OCI process JSON, checked and planned
/// (the error names the file and the field).
pub fn process_from_file(path: &Path) -> Result<ProcessSource> {
    let data = std::fs::read(path).with_ctx(|| format!("--process {}", path.display()))?;
    let mut doc: serde_json::Value = serde_json::from_slice(&data).map_err(|e| Error::Config {
        file: path.to_path_buf(),
        msg: format!("malformed JSON: {e}"),
    })?;
    if let Some(obj) = doc.as_object_mut() {
        // runc takes a process without "user" as uid 0, gid 0.
        obj.entry("user")
            .or_insert_with(|| serde_json::json!({"uid": 0, "gid": 0}));
    }
    crate::config::sched::spec_flag_names(&mut doc);
    let p: Process = serde_path_to_error::deserialize(doc).map_err(|e| Error::Config {
        file: path.to_path_buf(),
        msg: format!("{}: {}", e.path(), e.inner()),
    })?;
    let plan = crate::config::spec::check_process(&p).map_err(|msg| Error::Config {
        file: path.to_path_buf(),
        msg,
    })?;
    Ok(ProcessSource::File {
        process: Box::new(p),
        plan: Box::new(plan),
    })
}

/// The container's process with the command line's overrides, as runc
/// applies them: the args replace the config's, `-e` entries override
/// same-named ones, `--cap` adds to the bounding, effective and permitted
/// sets (and ambient when the config has inheritable ones).
pub fn process_from_flags(base: &Process, f: &ProcessFlags) -> Result<Process> {
    if f.args.is_empty() {
        return Err(Error::Usage(
            "exec: no command given (give COMMAND [ARG...] or --process FILE)",
        ));
    }
    if f.process_label.as_deref().is_some_and(|l| !l.is_empty()) {
        return Err(Error::Unsupported("--process-label (SELinux)".into()));
    }
    let mut p = base.clone();
    if let Some(profile) = f.apparmor.as_deref().filter(|l| !l.is_empty()) {
        crate::config::apparmor::check(profile).map_err(|reason| Error::InvalidArgument {
            arg: "--apparmor".into(),
            reason,
        })?;
        p.set_apparmor_profile(Some(profile.to_string()));
    }
    p.set_args(Some(f.args.clone()));
    p.set_terminal(Some(f.tty));
    p.set_console_size(None);
    if let Some(cwd) = &f.cwd {
        if !cwd.is_absolute() {
            return Err(Error::InvalidArgument {
                arg: format!("--cwd {}", cwd.display()),
                reason: "must be an absolute path".into(),
            });
        }
        p.set_cwd(cwd.clone());
    }
    if !f.env.is_empty() {
        let mut env = p.env().clone().unwrap_or_default();
        for e in &f.env {
            if !e.contains('=') {
                return Err(Error::InvalidArgument {
                    arg: format!("--env {e:?}"),
                    reason: "want KEY=VALUE".into(),
                });
            }
            env.push(e.clone());
        }
        p.set_env(Some(env));
    }
    let mut user = p.user().clone();
    if let Some(spec) = &f.user {
        let (uid, gid) = match spec.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (spec.as_str(), None),
        };
        let bad = |reason: String| Error::InvalidArgument {
            arg: format!("--user {spec:?}"),
            reason,
        };
        // (uid_t)-1 means "leave unchanged" to setresuid: it would keep root.
        let id = |s: &str| {
            match s.parse::<u32>() {
            Ok(u32::MAX) => Err(bad(format!(
                "{} is not a valid id (the kernel reads it as \"leave unchanged\", which would keep root)",
                u32::MAX
            ))),
            Ok(n) => Ok(n),
            Err(_) => Err(bad("want UID[:GID] as numbers".into())),
        }
        };
        user.set_uid(id(uid)?);
        if let Some(g) = gid {
            user.set_gid(id(g)?);
        }
    }
    if !f.additional_gids.is_empty() {
        let mut gids = user.additional_gids().clone().unwrap_or_default();
        gids.extend(&f.additional_gids);
        user.set_additional_gids(Some(gids));
    }
    p.set_user(user);
    if f.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if !f.caps.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        for name in &f.caps {
            let cap: Capability = serde_json::from_value(serde_json::Value::String(name.clone()))
                .map_err(|_| Error::InvalidArgument {
                arg: format!("--cap {name:?}"),
                reason: "unknown capability".into(),
            })?;
            let add = |set: &Option<oci_spec::runtime::Capabilities>| {
                let mut s = set.clone().unwrap_or_default();
                s.insert(cap);
                Some(s)
            };
            caps.set_bounding(add(caps.bounding()));
            caps.set_effective(add(caps.effective()));
            caps.set_permitted(add(caps.permitted()));
            if caps.inheritable().as_ref().is_some_and(|s| !s.is_empty()) {
                caps.set_ambient(add(caps.ambient()));
            }
        }
        p.set_capabilities(Some(caps));
    }
    Ok(p)
}

/// Starts a process in the container. The container's state is read once,
/// under its lock, which is held only while its namespaces are opened,
/// not while the process runs.
pub fn exec(root: &Root, opts: &ExecOptions, source: ProcessSource) -> Result<Executed> {
    validate_id(&opts.id)?;
    // Made absolute now: once the process exists, an error here would
    // have to kill it.
    let pid_file = match &opts.pid_file {
        Some(p) => Some(std::path::absolute(p).with_ctx(|| format!("--pid-file {}", p.display()))?),
        None => None,
    };
    let (target, process, process_plan) = enter_target(root, opts, source)?;
    let pidfd_sock = opts
        .pidfd_socket
        .as_deref()
        .map(super::pidfd_socket::connect_socket)
        .transpose()?;
    let terminal = process.terminal().unwrap_or(false);
    let (console_sock, console_recv) =
        console::endpoints(terminal, opts.console_socket.as_deref())?;
    let in_userns = target.plan.ns.in_userns;
    let args = ExecArgs {
        process: &process,
        plan: &target.plan,
        console_socket: console_sock,
        console_proxied: console_recv.is_some(),
        in_userns,
        preserve_fds: opts.preserve_fds,
        seccomp: target.seccomp.as_ref(),
        process_plan: &process_plan,
    };
    let mut on_listener =
        prelude::listener_to_agent(Caller::Exec, target.seccomp.as_ref(), target.state);
    // The clone inherits rt's affinity: `initial` is taken for it alone.
    let initial = crate::init::affinity::Initial::take(process_plan.affinity.initial.as_ref())?;
    let child = spawn::spawn_exec(
        &target.plan,
        move |ch| -> std::convert::Infallible { crate::init::run_exec(args, ch) },
        target.cgroup.as_ref().map(|(_, fd)| fd),
        &mut on_listener,
    )
    .map_err(|e| match (e, &target.cgroup) {
        (Error::Sys { source, .. }, Some((dir, _))) if source == nix::Error::EBUSY => {
            Error::JoinCgroup {
                dir: dir.clone(),
                errno: source,
            }
        }
        (e, _) => e,
    })?;
    drop(initial);
    let joined = match &target.resctrl {
        Some(groups) => crate::resctrl::join(groups, child.pid.as_raw()),
        None => Ok(()),
    };
    // The process exists: whatever fails now must not leave it behind.
    let finish = || -> Result<Option<OwnedFd>> {
        joined?;
        if let Some(sock) = &pidfd_sock {
            super::pidfd_socket::send(sock, child.pidfd.as_fd())?;
        }
        let console = console_recv
            .as_ref()
            .map(console::receive_master)
            .transpose()?;
        if let Some(path) = &pid_file {
            write_atomic(path, child.pid.as_raw().to_string().as_bytes(), 0o644)?;
        }
        Ok(console)
    };
    match finish() {
        Ok(console) => Ok(Executed {
            process: child,
            console,
        }),
        Err(e) => {
            spawn::kill_and_reap(&child);
            Err(e)
        }
    }
}

/// What the new process enters, read once under the container's lock:
/// its namespaces (opened while a pidfd proves the init is the same
/// process), its cgroup, its seccomp filters, and its state for an agent.
struct Target {
    plan: Plan,
    /// The cgroup to start in, and its directory held open. None:
    /// rootless without a delegated cgroup.
    cgroup: Option<(PathBuf, OwnedFd)>,
    seccomp: Option<crate::seccomp::Compiled>,
    state: super::OciState,
    resctrl: Option<crate::resctrl::Groups>,
}

/// Checks the container can take a process, builds the process, and
/// opens what it will enter. The lock is held only for this, not while
/// the process runs.
fn enter_target(
    root: &Root,
    opts: &ExecOptions,
    source: ProcessSource,
) -> Result<(Target, Process, ProcessPlan)> {
    let locked = root.lock(&opts.id)?;
    let c = Container {
        state: locked.load()?,
        dir: locked.dir.clone(),
    };
    c.status().require(
        Op::Exec {
            ignore_paused: opts.ignore_paused,
        },
        &opts.id,
    )?;
    let (process, mut process_plan) = match source {
        ProcessSource::Given(p) => {
            let plan =
                ProcessPlan::of_process(&p).map_err(|m| Error::field_message("process.", &m))?;
            (*p, plan)
        }
        ProcessSource::File { process, plan } => (*process, *plan),
        ProcessSource::Flags(f) => {
            let base = c.state.config.process().as_ref().ok_or_else(|| {
                Error::InvalidState(format!("container {}: its config has no process", opts.id))
            })?;
            let p = process_from_flags(base, &f)?;
            let plan = crate::config::spec::check_process(&p).map_err(|reason| {
                Error::InvalidArgument {
                    arg: "exec".into(),
                    reason,
                }
            })?;
            (p, plan)
        }
    };
    // The container's `linux.personality`, which runc sets for exec'd
    // processes too (its memory policy is the init's alone).
    process_plan.personality = process_plan::personality(c.state.config.linux().as_ref())
        .map_err(|m| Error::field_message("", &m))?;
    prelude::check_console(
        Caller::Exec,
        process.terminal().unwrap_or(false),
        opts.console_socket.as_deref(),
        opts.own_console,
    )?;
    let pidfd = c
        .init_pidfd()
        .ok_or_else(|| Error::InvalidState("cannot exec in a stopped container".into()))?;
    let plan = join_plan(c.state.pid, pidfd.as_fd())?;
    let seccomp = prelude::compile_seccomp(&c.state.config)?;
    let cgroup = match &c.state.cgroup {
        Some(cg) => {
            let dir = match &opts.sub_cgroup {
                Some(sub) => sub_cgroup(&cg.dir, sub)?,
                None => joinable_cgroup(cg, c.state.pid),
            };
            let fd = open(
                &dir,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .with_ctx(|| format!("open cgroup {}", dir.display()))?;
            Some((dir, fd))
        }
        None if opts.sub_cgroup.is_some() => {
            return Err(Error::InvalidState(format!(
                "container {}: --cgroup: the container has no cgroup of its own \
                 (rootless, none delegated)",
                opts.id
            )))
        }
        // Rootless without a delegated cgroup: the process stays in rt's.
        None => None,
    };
    let state = c.oci_state();
    Ok((
        Target {
            plan,
            cgroup,
            seccomp,
            state,
            resctrl: c.state.resctrl.clone(),
        },
        process,
        process_plan,
    ))
}

/// The namespaces of the init that differ from rt's own, opened from
/// /proc/<pid>/ns. `pidfd` is checked afterwards: if the init was still
/// alive then, the descriptors are surely its namespaces, not those of a
/// process that got its pid later.
fn join_plan(pid: i32, pidfd: BorrowedFd<'_>) -> Result<Plan> {
    let mut fds = Vec::new();
    for typ in EXEC_ORDER {
        let name = crate::config::namespaces::name(typ);
        let path = PathBuf::from(format!("/proc/{pid}/ns/{name}"));
        let fd = match open(&path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty()) {
            Ok(fd) => fd,
            // A kernel without this namespace type.
            Err(nix::Error::ENOENT) => continue,
            Err(e) => return Err(e).with_ctx(|| format!("open {}", path.display())),
        };
        let theirs =
            nix::sys::stat::fstat(fd.as_fd()).with_ctx(|| format!("stat {}", path.display()))?;
        let ours = std::fs::metadata(format!("/proc/self/ns/{name}"))
            .with_ctx(|| format!("stat /proc/self/ns/{name}"))?;
        if theirs.st_ino == ours.ino() && theirs.st_dev == ours.dev() {
            continue;
        }
        fds.push((NsJoin { typ, path }, fd));
    }
    let differing: Vec<NsJoin> = fds.iter().map(|(j, _)| j.clone()).collect();
    let ns = NamespacePlan::exec(&differing, Host::detect());
    if ns.user_in_parent {
        log::debug!("rootless: joining the container's user namespace before its pid namespace");
    }
    let plan = Plan::with_fds(ns, |j| {
        let at = fds.iter().position(|(f, _)| f == j).ok_or(Error::Internal(
            "exec: a namespace of the plan was not opened",
        ))?;
        Ok(fds.swap_remove(at).1)
    })?;
    let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
    if poll(&mut fds, PollTimeout::ZERO).ctx("poll the init's pidfd")? > 0 {
        return Err(Error::InvalidState(
            "cannot exec in a stopped container".into(),
        ));
    }
    Ok(plan)
}

/// The container's cgroup, or, once the container has turned on domain
/// controllers for cgroups below its own (it manages its cgroup namespace,
/// as systemd in a container does), the cgroup its init is in now: a
/// cgroup that hands controllers down may hold no process, and clone3
/// into it fails with EBUSY. runc falls back to the init's cgroup the
/// same way. Only a cgroup below the container's is taken; anything else
/// keeps the container's (and its error).
fn joinable_cgroup(cg: &crate::cgroup::Placement, init: i32) -> PathBuf {
    let delegates = std::fs::read_to_string(cg.dir.join("cgroup.subtree_control"))
        .is_ok_and(|c| !c.trim().is_empty());
    if !delegates {
        return cg.dir.clone();
    }
    let own = std::fs::read_to_string(format!("/proc/{init}/cgroup")).unwrap_or_default();
    let below = own
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(|p| Path::new(p.trim_start_matches('/')))
        .and_then(|p| p.strip_prefix(cg.path.trim_start_matches('/')).ok())
        .filter(|rest| {
            rest.components()
                .all(|c| matches!(c, std::path::Component::Normal(_)))
        });
    match below {
        Some(rest) => cg.dir.join(rest),
        None => cg.dir.clone(),
    }
}

/// `--cgroup PATH`: a cgroup below the container's, which must exist.
fn sub_cgroup(base: &Path, sub: &str) -> Result<PathBuf> {
    // runc takes "controller:path" for cgroup v1; v2 has one hierarchy.
    let sub = sub.strip_prefix(':').unwrap_or(sub);
    if sub.contains(':') {
        return Err(Error::InvalidArgument {
            arg: format!("--cgroup {sub:?}"),
            reason: "per-controller paths are for cgroup v1; rt uses cgroup v2".into(),
        });
    }
    // runc's words for both refusals (exec.bats matches them).
    let rel = crate::rootfs::resolve::relative(Path::new(sub))?;
    if rel.split('/').any(|c| c == "..") {
        return Err(Error::InvalidArgument {
            arg: format!("--cgroup {sub:?}"),
            reason: format!("{sub} is not a sub cgroup path"),
        });
    }
    let dir = if rel == "." {
        base.to_path_buf()
    } else {
        base.join(rel)
    };
    if !dir.is_dir() {
        return Err(Error::InvalidArgument {
            arg: format!("--cgroup {sub:?}"),
            reason: format!(
                "adding pid to {}: no such file or directory",
                dir.join("cgroup.procs").display()
            ),
        });
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_cgroups_stay_below_and_exist_in_runcs_words() {
        let base = tempfile::tempdir().unwrap();
        std::fs::create_dir(base.path().join("foo")).unwrap();
        assert_eq!(
            sub_cgroup(base.path(), "foo").unwrap(),
            base.path().join("foo")
        );
        assert_eq!(sub_cgroup(base.path(), "/").unwrap(), base.path());
        let e = sub_cgroup(base.path(), "..").unwrap_err().to_string();
        assert!(e.ends_with(" .. is not a sub cgroup path"), "{e}");
        let e = sub_cgroup(base.path(), "foo/../..")
            .unwrap_err()
            .to_string();
        assert!(e.contains("is not a sub cgroup path"), "{e}");
        let e = sub_cgroup(base.path(), "nonexistent")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(" adding pid ")
                && e.ends_with("/nonexistent/cgroup.procs: no such file or directory"),
            "{e}"
        );
        let e = sub_cgroup(base.path(), "memory:foo")
            .unwrap_err()
            .to_string();
        assert!(e.contains("cgroup v1"), "{e}");
    }
}
