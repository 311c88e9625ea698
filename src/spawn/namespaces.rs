//! Which namespaces a container gets, and how: created by the one clone3,
//! joined by path with setns, or (pid and time) entered by rt itself before
//! the clone so that the init is born inside them.

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use nix::fcntl::{open, OFlag};
use nix::sched::CloneFlags;
use nix::sys::stat::Mode;
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType};

use crate::error::{Context, Error, Result};

pub fn flag(t: LinuxNamespaceType) -> CloneFlags {
    match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        // CLONE_NEWTIME: nix names it only on some versions.
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

/// A namespace to join: its type and an open descriptor on its nsfs file.
#[derive(Debug)]
pub struct Join {
    pub typ: LinuxNamespaceType,
    pub path: PathBuf,
    pub fd: OwnedFd,
}

/// How each namespace of the config will be set up.
#[derive(Debug)]
pub struct Plan {
    /// Passed to clone3: the namespaces the init is created in.
    pub clone_flags: CloneFlags,
    /// Created by the init with unshare(2) after joining a user namespace
    /// by path, so that they are owned by that user namespace.
    pub unshare_flags: CloneFlags,
    /// Joined by rt itself before the clone (pid and time act on children).
    pub parent_joins: Vec<Join>,
    /// rt unshares a new time namespace for its children before the clone
    /// so the offsets can be written before any process is inside it.
    pub new_time: bool,
    /// Joined by the init, user namespace first.
    pub child_joins: Vec<Join>,
    /// The user namespace given by path is joined by rt itself, first of
    /// `parent_joins`: a rootless rt may join a pid or time namespace
    /// only from inside the user namespace that owns it (the kernel asks
    /// for CAP_SYS_ADMIN in the caller's own user namespace too).
    pub user_in_parent: bool,
    pub new_user: bool,
    pub new_mount: bool,
    pub new_uts: bool,
    pub new_cgroup: bool,
    /// A new pid namespace inside a user namespace joined by path: an
    /// intermediate process joins that user namespace and unshares the pid
    /// namespace (so that the user namespace owns it), then clones the
    /// init as rt's child (CLONE_PARENT), pid 1 there.
    pub new_pid_in: Option<OwnedFd>,
}

impl Plan {
    /// Nothing new and nothing joined: the caller's namespaces.
    pub fn empty() -> Plan {
        Plan {
            clone_flags: CloneFlags::empty(),
            unshare_flags: CloneFlags::empty(),
            parent_joins: Vec::new(),
            new_time: false,
            child_joins: Vec::new(),
            user_in_parent: false,
            new_user: false,
            new_mount: false,
            new_uts: false,
            new_pid_in: None,
            new_cgroup: false,
        }
    }

    pub fn new(nss: &[LinuxNamespace]) -> Result<Plan> {
        let mut plan = Plan::empty();
        let joins_user = nss
            .iter()
            .any(|n| n.typ() == LinuxNamespaceType::User && n.path().is_some());
        for ns in nss {
            let t = ns.typ();
            match ns.path() {
                Some(path) => {
                    let fd = open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
                        .with_ctx(|| {
                            format!(
                                "linux.namespaces: open {} namespace {}",
                                crate::config::namespaces::name(t),
                                path.display()
                            )
                        })?;
                    check_type(t, &fd, path)?;
                    let join = Join {
                        typ: t,
                        path: path.clone(),
                        fd,
                    };
                    match t {
                        LinuxNamespaceType::Pid | LinuxNamespaceType::Time => {
                            plan.parent_joins.push(join)
                        }
                        LinuxNamespaceType::User => plan.child_joins.insert(0, join),
                        _ => plan.child_joins.push(join),
                    }
                }
                None => {
                    match t {
                        LinuxNamespaceType::Time => plan.new_time = true,
                        // With a joined user namespace, new ones must be
                        // made after the join to be owned by it; the pid
                        // namespace before the clone (see new_pid_in).
                        LinuxNamespaceType::Pid if joins_user => {}
                        _ if joins_user => plan.unshare_flags |= flag(t),
                        _ => plan.clone_flags |= flag(t),
                    }
                    match t {
                        LinuxNamespaceType::User => plan.new_user = true,
                        LinuxNamespaceType::Mount => plan.new_mount = true,
                        LinuxNamespaceType::Uts => plan.new_uts = true,
                        LinuxNamespaceType::Cgroup => plan.new_cgroup = true,
                        _ => {}
                    }
                }
            }
        }
        let user_first = plan
            .child_joins
            .first()
            .is_some_and(|j| j.typ == LinuxNamespaceType::User);
        if user_first
            && !plan.parent_joins.is_empty()
            && !crate::rootless::detect().root_in_own_namespace()
        {
            let user = plan.child_joins.remove(0);
            plan.parent_joins.insert(0, user);
            plan.user_in_parent = true;
        }
        let new_pid = nss
            .iter()
            .any(|n| n.typ() == LinuxNamespaceType::Pid && n.path().is_none());
        if joins_user && new_pid {
            if plan.user_in_parent {
                // rt itself is in the user namespace at the clone.
                plan.clone_flags |= CloneFlags::CLONE_NEWPID;
            } else {
                let user = plan
                    .child_joins
                    .iter()
                    .find(|j| j.typ == LinuxNamespaceType::User)
                    .expect("joins_user");
                let owner = user.fd.try_clone().ctx("dup the user namespace")?;
                plan.new_pid_in = Some(owner);
            }
        }
        Ok(plan)
    }

    /// Enters the pid/time namespaces given by path in rt's own process,
    /// for the children it clones next. rt is single-threaded, as setns
    /// requires for these. A joined time namespace is rt's own clock too
    /// (and a pid namespace its hooks'): the returned [`Entered`] takes rt
    /// back once the clone is made, so that the start time rt records of
    /// the init, and what its hooks see, are the host's.
    pub fn enter_parent_namespaces(&self) -> Result<Entered> {
        let mut entered = Entered { back: Vec::new() };
        for j in &self.parent_joins {
            let own = match j.typ {
                LinuxNamespaceType::Pid => Some("/proc/self/ns/pid_for_children"),
                LinuxNamespaceType::Time => Some("/proc/self/ns/time_for_children"),
                _ => None,
            };
            if let Some(own) = own {
                let fd = open(own, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
                    .with_ctx(|| format!("open {own}"))?;
                entered.back.push((j.typ, fd));
            }
            if let Err(e) = nix::sched::setns(j.fd.as_fd(), flag(j.typ)) {
                let hint = if e == nix::Error::EPERM
                    && !self.user_in_parent
                    && !crate::rootless::detect().root_in_own_namespace()
                {
                    " (rootless: give the user namespace that owns it by path too)"
                } else {
                    ""
                };
                return Err(e).with_ctx(|| {
                    format!(
                        "join {} namespace {}{hint}",
                        crate::config::namespaces::name(j.typ),
                        j.path.display()
                    )
                });
            }
        }
        Ok(entered)
    }
}

/// rt's own pid and time namespaces from before it joined a container's.
pub struct Entered {
    back: Vec<(LinuxNamespaceType, OwnedFd)>,
}

impl Entered {
    /// Goes back to them. Where rt may not (rootless, having joined a
    /// user namespace for the clone) it stays: its clock is then the
    /// container's, as it was before this existed.
    pub fn leave(self) {
        for (typ, fd) in self.back.into_iter().rev() {
            if let Err(e) = nix::sched::setns(fd.as_fd(), flag(typ)) {
                log::debug!(
                    "back to rt's own {} namespace: {e}",
                    crate::config::namespaces::name(typ)
                );
            }
        }
    }
}

/// Refuses a namespace file of another type than the entry says (setns
/// would fail with a bare EINVAL later, in the init) or a file that is no
/// namespace at all.
fn check_type(t: LinuxNamespaceType, fd: &OwnedFd, path: &std::path::Path) -> Result<()> {
    use crate::config::namespaces::name;
    let want = flag(t).bits();
    let types = [
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Cgroup,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::User,
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Network,
        LinuxNamespaceType::Time,
    ];
    match crate::sys::ns::ns_type(fd.as_fd()) {
        Ok(got) if got == want => Ok(()),
        Ok(got) => {
            let is = types
                .iter()
                .find(|x| flag(**x).bits() == got)
                .map_or("unknown", |x| name(*x));
            Err(Error::InvalidField {
                field: "linux.namespaces".into(),
                reason: format!(
                    "{} is a {is} namespace, not the {} namespace the entry names",
                    path.display(),
                    name(t)
                ),
            })
        }
        Err(nix::Error::ENOTTY) | Err(nix::Error::EINVAL) => Err(Error::InvalidField {
            field: "linux.namespaces".into(),
            reason: format!(
                "{} (for the {} namespace) is not a namespace file",
                path.display(),
                name(t)
            ),
        }),
        Err(e) => Err(e).with_ctx(|| format!("linux.namespaces: {}", path.display())),
    }
}

/// Returns whether `t` is listed at all (new or joined).
pub fn has(nss: &[LinuxNamespace], t: LinuxNamespaceType) -> bool {
    nss.iter().any(|n| n.typ() == t)
}
