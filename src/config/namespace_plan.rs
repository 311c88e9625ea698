//! How a container gets its namespaces, as data: which are created by the
//! one clone3 (or unshared by the init, or by rt for its children), which
//! are joined by path, by whom (rt before the clone, or the init after
//! it) and in what order, whether a new pid namespace inside a joined
//! user namespace takes an intermediate process, who writes a new user
//! namespace's id maps and how, the time namespace's offsets and the
//! hostname and domainname. It is computed once, in the parent, from the
//! validated config (`rt exec`'s from the init's namespaces), so a bad
//! entry is refused with its field before anything exists; `spawn/`
//! opens the paths it names and the init (and rt's side of the clone)
//! only applies it. This is the model of `cgroup/resources.rs`: plan,
//! then apply. Its tests are `namespace_plan_tests.rs`.

use std::collections::HashSet;
use std::path::PathBuf;

use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Spec};

use crate::config::namespaces::{flag, name};
use crate::rootless::Mode;

/// The caller rt runs as: what decides who may join or map what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Host {
    pub mode: Mode,
    /// rt's effective uid and gid (a rootless rt maps its own alone).
    pub uid: u32,
    pub gid: u32,
}

impl Host {
    /// This process.
    pub fn detect() -> Host {
        Host {
            mode: crate::rootless::detect(),
            uid: nix::unistd::geteuid().as_raw(),
            gid: nix::unistd::getegid().as_raw(),
        }
    }
}

/// A namespace joined by path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NsJoin {
    pub typ: LinuxNamespaceType,
    pub path: PathBuf,
}

/// How one id map of a new user namespace is written, by rt, through the
/// init's /proc files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapWriter {
    /// rt writes the map itself (root in its own user namespace, or a
    /// rootless rt mapping only its own id).
    Kernel,
    /// A rootless rt mapping its own gid alone: setgroups is denied in
    /// the namespace first, as the kernel then requires.
    KernelDenySetgroups,
    /// Any other map of a rootless rt: the setuid helper (newuidmap or
    /// newgidmap), within /etc/subuid and /etc/subgid.
    Helper,
}

/// The id maps of a new user namespace, written by rt once the init
/// exists and before the init goes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdMaps {
    pub uid: Vec<LinuxIdMapping>,
    pub gid: Vec<LinuxIdMapping>,
    pub uid_writer: MapWriter,
    pub gid_writer: MapWriter,
    /// The init stays dumpable until they are written (a rootless rt
    /// writes them through the init's /proc files).
    pub keep_dumpable: bool,
}

impl IdMaps {
    /// The maps `uid` and `gid` of a new user namespace, to be written by
    /// rt running as `host`.
    pub fn new(uid: Vec<LinuxIdMapping>, gid: Vec<LinuxIdMapping>, host: Host) -> IdMaps {
        IdMaps {
            uid_writer: writer(host, &uid, host.uid, false),
            gid_writer: writer(host, &gid, host.gid, true),
            uid,
            gid,
            keep_dumpable: host.mode.is_rootless(),
        }
    }
}

/// The container's namespaces, planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespacePlan {
    /// Passed to clone3: the namespaces the init is created in.
    pub clone_flags: CloneFlags,
    /// Created by the init with unshare(2) after joining a user namespace
    /// by path, so that they are owned by that user namespace.
    pub unshare_flags: CloneFlags,
    /// Joined by rt itself before the clone, in this order (pid and time
    /// act on children; a user namespace first when rt must be in it to
    /// join them).
    pub parent_joins: Vec<NsJoin>,
    /// Joined by the init, in this order: the user namespace first.
    pub child_joins: Vec<NsJoin>,
    /// The user namespace given by path is joined by rt itself, first of
    /// `parent_joins`: a rootless rt may join a pid or time namespace
    /// only from inside the user namespace that owns it (the kernel asks
    /// for CAP_SYS_ADMIN in the caller's own user namespace too).
    pub user_in_parent: bool,
    /// The init joins the user namespace (first of `child_joins`) and
    /// becomes its root, as runc's init does.
    pub user_joined_by_init: bool,
    /// While still privileged where it is, the init tries every other
    /// namespace of `child_joins` before the user namespace; those
    /// refused then are joined after it (runc's order for a namespace the
    /// joined user namespace does not own).
    pub join_others_before_user: bool,
    /// A new pid namespace inside a user namespace joined by path: an
    /// intermediate process joins the other namespaces, then that user
    /// namespace, unshares the pid namespace (so that the user namespace
    /// owns it) and clones the init as rt's child (CLONE_PARENT), pid 1
    /// there. The init then skips the user namespace and the namespaces
    /// it is in already.
    pub pid_intermediate: bool,
    /// rt unshares a new time namespace for its children before the clone
    /// so the offsets can be written before any process is inside it.
    pub new_time: bool,
    /// `linux.timeOffsets` as /proc/self/timens_offsets takes them, one
    /// clock a line, by clock name.
    pub time_offsets: Option<String>,
    /// A new user namespace: its maps, written by rt; the init waits for
    /// them and becomes its root.
    pub id_maps: Option<IdMaps>,
    pub new_user: bool,
    pub new_mount: bool,
    pub new_uts: bool,
    pub new_cgroup: bool,
    /// The init is in a mount namespace of the container's (new or
    /// joined): the root is built there; otherwise its mounts go under
    /// the root in the host's, and it enters the root by chroot.
    pub own_mounts: bool,
    /// The container's processes are in a user namespace that is not the
    /// initial one (theirs, or rt's own as under rootless Podman): what
    /// a user namespace forbids is forbidden then.
    pub in_userns: bool,
    /// `hostname` and `domainname`, set by the init in the container's
    /// uts namespace (new or joined, as runc 1.1.5 does); an empty one is
    /// not set.
    pub hostname: Option<String>,
    pub domainname: Option<String>,
}

/// The order `rt exec` joins a running container's namespaces in: the
/// user namespace first (it grants the rights to join the others), the
/// mount namespace last.
pub const EXEC_ORDER: [LinuxNamespaceType; 8] = {
    use LinuxNamespaceType::*;
    [User, Ipc, Uts, Network, Cgroup, Pid, Time, Mount]
};

impl NamespacePlan {
    /// Nothing new and nothing joined: the caller's namespaces.
    pub fn empty() -> NamespacePlan {
        NamespacePlan {
            clone_flags: CloneFlags::empty(),
            unshare_flags: CloneFlags::empty(),
            parent_joins: Vec::new(),
            child_joins: Vec::new(),
            user_in_parent: false,
            user_joined_by_init: false,
            join_others_before_user: false,
            pid_intermediate: false,
            new_time: false,
            time_offsets: None,
            id_maps: None,
            new_user: false,
            new_mount: false,
            new_uts: false,
            new_cgroup: false,
            own_mounts: false,
            in_userns: false,
            hostname: None,
            domainname: None,
        }
    }

    /// The plan of a parsed config (`"path": ""` already read as a new
    /// namespace), for rt running as `host`. The error names the field.
    pub fn new(spec: &Spec, host: Host) -> Result<NamespacePlan, String> {
        let linux = spec.linux().as_ref();
        let nss = linux
            .and_then(|l| l.namespaces().as_deref())
            .unwrap_or_default();
        let mut seen = HashSet::new();
        for (i, ns) in nss.iter().enumerate() {
            if !seen.insert(ns.typ()) {
                return Err(format!(
                    "linux.namespaces[{i}]: duplicate namespace type {:?}",
                    name(ns.typ())
                ));
            }
            if let Some(p) = ns.path() {
                if !p.is_absolute() {
                    return Err(format!(
                        "linux.namespaces[{i}].path: {p:?} must be an absolute path"
                    ));
                }
            }
        }
        let new_ns = |t: LinuxNamespaceType| nss.iter().any(|n| n.typ() == t && n.path().is_none());
        let has_ns = |t: LinuxNamespaceType| nss.iter().any(|n| n.typ() == t);
        let joins_user = has_ns(LinuxNamespaceType::User) && !new_ns(LinuxNamespaceType::User);
        let new_user = new_ns(LinuxNamespaceType::User);

        let mut plan = NamespacePlan::empty();
        if let Some(l) = linux {
            let maps = l.uid_mappings().is_some() || l.gid_mappings().is_some();
            // With a joined user namespace, the maps must be its own
            // (spec.rs reads them there).
            if maps && !joins_user && !new_user {
                return Err(
                    "linux.uidMappings: id mappings need a new user namespace in linux.namespaces"
                        .into(),
                );
            }
            if new_user && l.uid_mappings().as_ref().is_none_or(|m| m.is_empty()) {
                return Err("linux.uidMappings: a new user namespace needs uid mappings".into());
            }
            if new_user && l.gid_mappings().as_ref().is_none_or(|m| m.is_empty()) {
                return Err("linux.gidMappings: a new user namespace needs gid mappings".into());
            }
            if l.time_offsets().is_some() && !new_ns(LinuxNamespaceType::Time) {
                return Err(
                    "linux.timeOffsets: needs a new time namespace in linux.namespaces".into(),
                );
            }
            if let Some(offsets) = l.time_offsets() {
                let mut clocks: Vec<_> = offsets.iter().collect();
                clocks.sort_by(|a, b| a.0.cmp(b.0));
                let mut text = String::new();
                for (clock, off) in clocks {
                    if clock != "monotonic" && clock != "boottime" {
                        return Err(format!(
                            "linux.timeOffsets: unknown clock {clock:?} (monotonic or boottime)"
                        ));
                    }
                    text.push_str(&format!(
                        "{clock} {} {}\n",
                        off.secs().unwrap_or(0),
                        off.nanosecs().unwrap_or(0)
                    ));
                }
                plan.time_offsets = Some(text);
            }
            if new_user {
                let uid = l.uid_mappings().clone().unwrap_or_default();
                let gid = l.gid_mappings().clone().unwrap_or_default();
                plan.id_maps = Some(IdMaps::new(uid, gid, host));
            }
        }
        let nonempty = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
        plan.hostname = nonempty(spec.hostname());
        plan.domainname = nonempty(spec.domainname());
        if (plan.hostname.is_some() || plan.domainname.is_some())
            && !has_ns(LinuxNamespaceType::Uts)
        {
            return Err("hostname: setting a hostname or domainname needs a uts namespace".into());
        }

        for ns in nss {
            let t = ns.typ();
            match ns.path() {
                Some(path) => {
                    let join = NsJoin {
                        typ: t,
                        path: path.clone(),
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
                        // namespace before the clone (pid_intermediate).
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
        if joins_user && !plan.parent_joins.is_empty() && !host.mode.root_in_own_namespace() {
            let user = plan.child_joins.remove(0);
            plan.parent_joins.insert(0, user);
            plan.user_in_parent = true;
        }
        if joins_user && new_ns(LinuxNamespaceType::Pid) {
            if plan.user_in_parent {
                // rt itself is in the user namespace at the clone.
                plan.clone_flags |= CloneFlags::CLONE_NEWPID;
            } else {
                plan.pid_intermediate = true;
            }
        }
        plan.user_joined_by_init = plan
            .child_joins
            .first()
            .is_some_and(|j| j.typ == LinuxNamespaceType::User);
        plan.join_others_before_user = plan.user_joined_by_init && !plan.pid_intermediate;
        plan.own_mounts = has_ns(LinuxNamespaceType::Mount);
        plan.in_userns = plan.new_user
            || plan.user_in_parent
            || plan.user_joined_by_init
            || host.mode == Mode::NamespacedRoot;
        Ok(plan)
    }

    /// `rt exec`'s plan: the running container's namespaces that differ
    /// from rt's own, `differing` (type and path, in [`EXEC_ORDER`]). The
    /// pid and time namespaces are rt's to join for its child; so is the
    /// user namespace that owns them when rt is not root in its own.
    pub fn exec(differing: &[NsJoin], host: Host) -> NamespacePlan {
        let mut plan = NamespacePlan::empty();
        for typ in EXEC_ORDER {
            let Some(join) = differing.iter().find(|j| j.typ == typ).cloned() else {
                continue;
            };
            match typ {
                // Without root, rt may join the container's pid namespace
                // only as a member of the user namespace that owns it:
                // rt joins that first, and its child is born inside both.
                LinuxNamespaceType::User if !host.mode.root_in_own_namespace() => {
                    plan.parent_joins.insert(0, join);
                    plan.user_in_parent = true;
                }
                LinuxNamespaceType::Pid | LinuxNamespaceType::Time => plan.parent_joins.push(join),
                _ => plan.child_joins.push(join),
            }
        }
        plan.user_joined_by_init = plan
            .child_joins
            .first()
            .is_some_and(|j| j.typ == LinuxNamespaceType::User);
        plan.join_others_before_user = plan.user_joined_by_init;
        plan.own_mounts = differing.iter().any(|j| j.typ == LinuxNamespaceType::Mount);
        plan.in_userns =
            plan.user_in_parent || plan.user_joined_by_init || host.mode == Mode::NamespacedRoot;
        plan
    }

    /// Whether `t` is listed at all (created or joined).
    pub fn joins(&self, t: LinuxNamespaceType) -> bool {
        self.parent_joins
            .iter()
            .chain(&self.child_joins)
            .any(|j| j.typ == t)
    }
}

/// Who writes one id map of a new user namespace.
fn writer(host: Host, maps: &[LinuxIdMapping], own: u32, gid: bool) -> MapWriter {
    if host.mode.root_in_own_namespace() {
        return MapWriter::Kernel;
    }
    let own_only = match maps {
        [] => true,
        [m] => m.size() == 1 && m.host_id() == own,
        _ => false,
    };
    match (own_only, gid) {
        (true, false) => MapWriter::Kernel,
        (true, true) => MapWriter::KernelDenySetgroups,
        (false, _) => MapWriter::Helper,
    }
}

#[cfg(test)]
#[path = "namespace_plan_tests.rs"]
mod tests;
