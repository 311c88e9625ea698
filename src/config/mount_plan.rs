//! The container's mounts as data: one entry per config mount, in order,
//! with its options parsed (the one place they are), its destination as
//! the path in the container, and its kind with what the init needs to
//! make it; plus the /dev facts. Computed once in rt from the validated
//! config and the bundle, so a bad mount is refused, named, before
//! anything exists; the init only applies the plan. The resources rt
//! makes for a mount before the clone (an idmapped bind's user namespace,
//! a bind tree cloned with rt's rights) are held by the mount's entry and
//! handed to the init with the plan.

use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

use nix::mount::MsFlags;
use oci_spec::runtime::{LinuxIdMapping, Mount, Spec};

use crate::config::mount_options::MountOptions;

/// The container's /dev.
pub const DEV: &str = "/dev";

/// Every mount of the config, and what /dev becomes.
#[derive(Debug, Default)]
pub struct MountPlan {
    pub mounts: Vec<PlannedMount>,
    pub dev: DevPlan,
}

/// The /dev facts, from the config's mounts on /dev.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DevPlan {
    /// A config mount binds something on /dev: rt makes no /dev of its
    /// own (no devices, links, /dev/pts).
    pub is_bind: bool,
    /// The last /dev mount is a read-only tmpfs: it is mounted writable,
    /// so what goes in it can be made, and remounted with these flags at
    /// the end (runc the same).
    pub readonly_tmpfs: Option<MsFlags>,
}

/// One config mount, ready to be made.
#[derive(Debug)]
pub struct PlannedMount {
    /// Its index in `mounts`.
    pub index: usize,
    /// The destination as the config says it (the mount's name in
    /// messages; a mount on "/" covers the root).
    pub config_destination: PathBuf,
    /// The destination as the path in the container: one written as the
    /// root's host path names the place in the container (runc the same).
    pub destination: PathBuf,
    /// The config's `type` ("" when absent).
    pub typ: String,
    pub options: MountOptions,
    pub kind: Kind,
}

/// What a mount is, with what making it takes.
#[derive(Debug)]
pub enum Kind {
    Bind(Bind),
    /// A tmpfs: its source (the name shown in mountinfo) and flags (a
    /// /dev tmpfs is writable until `DevPlan::readonly_tmpfs`).
    Tmpfs {
        source: String,
        flags: MsFlags,
    },
    /// The cgroup filesystem, with the flags it keeps.
    Cgroup {
        flags: MsFlags,
    },
    /// Any other filesystem; `ordinary_dir_only` for proc and sysfs,
    /// which go only on a real directory, never through a symlink
    /// (CVE-2019-16884, CVE-2019-19921).
    Filesystem {
        source: String,
        flags: MsFlags,
        data: Option<String>,
        ordinary_dir_only: bool,
    },
}

/// A bind mount.
#[derive(Debug)]
pub struct Bind {
    /// The source as rt sees it (a relative one is in the bundle).
    pub source: PathBuf,
    /// `rbind`: the submounts too.
    pub recursive: bool,
    /// The flags a bind ignores, applied with a remount of it.
    pub remount_flags: MsFlags,
    /// The flags options cleared (`rw`, `dev`...): the remount clears
    /// them, and may not take them from a source that locks them.
    pub cleared_flags: MsFlags,
    /// The source lies inside the root: it may be made by an earlier
    /// mount of the container, so only the init, in order, may open it.
    pub source_in_root: bool,
    pub idmap: Option<Idmapping>,
    /// The source's tree, cloned (and idmapped) by rt before the clone
    /// (a container with a user namespace); the init attaches it.
    pub tree: Option<OwnedFd>,
    /// An idmapped bind of a source inside the root, in a user namespace:
    /// the init may not idmap it, and rt cannot clone it before an
    /// earlier mount of the container made it, so the init asks rt for
    /// the tree when it reaches this mount, and rt clones and idmaps it
    /// in the init's mount namespace then (`spawn::bind_sources`).
    pub tree_from_rt: bool,
}

/// An idmapped bind's mapping, and the user namespace that carries it.
#[derive(Debug)]
pub struct Idmapping {
    pub uid: Vec<LinuxIdMapping>,
    pub gid: Vec<LinuxIdMapping>,
    /// `ridmap`: the submounts of an rbind are idmapped too.
    pub recursive: bool,
    /// The user namespace the container joins by path, whose mapping an
    /// `idmap` without maps of its own uses (`uid`, `gid` empty then).
    pub joined_userns: Option<PathBuf>,
    /// Made (or, joined, opened) by rt before the clone (`spawn::idmap`).
    pub userns: Option<OwnedFd>,
}

impl MountPlan {
    /// The plan of `spec`'s mounts; `bundle` holds relative bind sources,
    /// `rootfs` is the root's absolute host path. An error names the
    /// mount: `mounts[3] (/dest): ...`.
    pub fn new(spec: &Spec, bundle: &Path, rootfs: &Path) -> Result<MountPlan, String> {
        let mut plan = MountPlan::default();
        for (i, m) in spec.mounts().iter().flatten().enumerate() {
            let options = MountOptions::parse(m.options().as_deref().unwrap_or(&[]))
                .map_err(|e| format!("mounts[{i}]: {e}"))?;
            let entry = plan_one(spec, bundle, rootfs, i, m, options)?;
            if entry.config_destination == Path::new(DEV) {
                let bind = matches!(entry.kind, Kind::Bind(_));
                plan.dev.is_bind |= bind;
                // The last /dev mount decides.
                plan.dev.readonly_tmpfs = match &entry.kind {
                    Kind::Tmpfs { .. } if entry.options.flags.contains(MsFlags::MS_RDONLY) => Some(
                        entry.options.flags
                            - MsFlags::MS_REMOUNT
                            - MsFlags::MS_BIND
                            - MsFlags::MS_REC,
                    ),
                    _ => None,
                };
            }
            plan.mounts.push(entry);
        }
        Ok(plan)
    }

    /// The binds, for rt to attach what it makes for them.
    pub fn binds_mut(&mut self) -> impl Iterator<Item = (usize, &mut Bind)> {
        self.mounts.iter_mut().filter_map(|m| match &mut m.kind {
            Kind::Bind(b) => Some((m.index, b)),
            _ => None,
        })
    }
}

fn plan_one(
    spec: &Spec,
    bundle: &Path,
    rootfs: &Path,
    i: usize,
    m: &Mount,
    options: MountOptions,
) -> Result<PlannedMount, String> {
    let config_destination = m.destination().clone();
    let named = |e: String| format!("mounts[{i}] ({}): {e}", config_destination.display());
    let destination =
        within_root(rootfs, &config_destination).unwrap_or_else(|| config_destination.clone());
    let typ = m.typ().clone().unwrap_or_default();
    let bind = typ == "bind" || options.bind;
    // Said for the idmap as config validation always said it.
    let idmap = crate::config::idmap::mappings(spec, m, &options)
        .map_err(|e| format!("mounts[{i}]: {e}"))?;
    if options.tmpcopyup && (bind || typ != "tmpfs") {
        // runc acts on it for tmpfs only, and ignores it elsewhere.
        log::warn!(
            "mounts[{i}] ({}): \"tmpcopyup\" applies to tmpfs mounts only: ignored on {}",
            destination.display(),
            if bind { "a bind mount" } else { &typ }
        );
    }
    let kind = if bind {
        let source = m
            .source()
            .as_ref()
            .ok_or_else(|| named("a bind mount needs a source".into()))?;
        let source = if source.is_absolute() {
            source.clone()
        } else {
            bundle.join(source)
        };
        Kind::Bind(Bind {
            source_in_root: within_root(rootfs, &source).is_some(),
            source,
            recursive: options.recursive_bind,
            remount_flags: options.flags
                - (MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT),
            cleared_flags: options.cleared,
            idmap: idmap.map(|map| Idmapping {
                uid: map.uid.to_vec(),
                gid: map.gid.to_vec(),
                recursive: map.recursive,
                joined_userns: map.joined.map(Path::to_path_buf),
                userns: None,
            }),
            tree: None,
            tree_from_rt: false,
        })
    } else {
        match typ.as_str() {
            "" => return Err(named("mount type missing (and not a bind mount)".into())),
            "cgroup" | "cgroup2" => Kind::Cgroup {
                flags: options.flags
                    & (MsFlags::MS_NOSUID
                        | MsFlags::MS_NODEV
                        | MsFlags::MS_NOEXEC
                        | MsFlags::MS_RDONLY
                        | MsFlags::MS_RELATIME
                        | MsFlags::MS_NOATIME
                        | MsFlags::MS_STRICTATIME),
            },
            "tmpfs" => {
                let mut flags = options.flags - MsFlags::MS_REMOUNT;
                if destination == Path::new(DEV) {
                    // /dev/pts, the devices and links still go in:
                    // read-only comes after them (DevPlan::readonly_tmpfs).
                    flags -= MsFlags::MS_RDONLY;
                }
                Kind::Tmpfs {
                    source: m
                        .source()
                        .as_ref()
                        .map_or("tmpfs".into(), |p| p.to_string_lossy().into_owned()),
                    flags,
                }
            }
            _ => Kind::Filesystem {
                source: m
                    .source()
                    .as_ref()
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_else(|| typ.clone()),
                flags: options.flags - MsFlags::MS_REMOUNT,
                data: options.data_string(),
                ordinary_dir_only: matches!(typ.as_str(), "proc" | "sysfs"),
            },
        }
    };
    Ok(PlannedMount {
        index: i,
        config_destination,
        destination,
        typ,
        options,
        kind,
    })
}

/// The first field of `spec` that asks rt to mount or make something
/// under the root (the mounts, masked or read-only paths, devices, a
/// read-only root, a terminal's /dev/console), named for a message;
/// `None` when a container without a mount namespace needs nothing
/// mounted at all (it is only chrooted into its root).
pub fn first_mounting_field(spec: &Spec) -> Option<&'static str> {
    let linux = spec.linux().as_ref();
    let non_empty = |v: Option<&Vec<String>>| v.is_some_and(|v| !v.is_empty());
    if spec.mounts().as_ref().is_some_and(|m| !m.is_empty()) {
        return Some("mounts");
    }
    if non_empty(linux.and_then(|l| l.masked_paths().as_ref())) {
        return Some("linux.maskedPaths");
    }
    if non_empty(linux.and_then(|l| l.readonly_paths().as_ref())) {
        return Some("linux.readonlyPaths");
    }
    if linux
        .and_then(|l| l.devices().as_ref())
        .is_some_and(|d| !d.is_empty())
    {
        return Some("linux.devices");
    }
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        return Some("root.readonly");
    }
    if spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false)
    {
        return Some("process.terminal");
    }
    None
}

/// The absolute path `p` with `.` and `..` taken as written (no file is
/// looked at; `..` at `/` stays there).
pub fn lexical_clean(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::Normal(s) => out.push(s),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// `path` as a path in the container when it names a place inside the
/// host path of the root `rootfs`, compared as written (no file is
/// looked at): `/b/rootfs/mnt` -> `/mnt`. runc takes such a mount
/// destination or source as the place in the container it names.
pub fn within_root(rootfs: &Path, path: &Path) -> Option<PathBuf> {
    if !rootfs.is_absolute() || !path.is_absolute() {
        return None;
    }
    let rest = lexical_clean(path)
        .strip_prefix(lexical_clean(rootfs))
        .ok()?
        .to_path_buf();
    Some(Path::new("/").join(rest))
}

#[cfg(test)]
#[path = "mount_plan_tests.rs"]
mod tests;
