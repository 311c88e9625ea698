//! The container's root filesystem: the mounts of the config in order,
//! /dev with its default devices, masked and read-only paths, pivot_root,
//! and the read-only root. Runs inside the init, in its mount namespace.
//!
//! Every destination is resolved inside the root with RESOLVE_IN_ROOT and
//! mounted through its descriptor, so symlinks in the image cannot redirect
//! a mount to the host.

mod dev;
pub mod host_mounts;
mod masked;
mod mounts;
mod proc_mount;
pub mod procfs;
pub mod resolve;
mod tmpfs;

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{open, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::Mode;
use nix::unistd::{chdir, fchdir, pivot_root};
use oci_spec::runtime::Spec;

use crate::config::mount_options::propagation;
use crate::config::mount_plan::{DevPlan, PlannedMount, DEV};
use crate::error::{Context, Error, Result};

use dev::setup_dev;
pub use dev::{bind_console, reopen_dev_null};
pub use masked::mask_and_protect;
use mounts::{mount_one, prefix_err};
pub use proc_mount::resolve as resolve_in_root;

/// What the rootfs setup needs to know besides the config.
pub struct Setup<'a> {
    pub spec: &'a Spec,
    pub rootfs: &'a Path,
    /// The init is in a new user namespace: device nodes are bound from
    /// the host, since mknod is not allowed there.
    pub in_userns: bool,
    /// The init has its own cgroup namespace (a cgroup mount is a fresh
    /// cgroup2 then, else a bind of the container's cgroup).
    pub cgroupns: bool,
    pub cgroup_dir: Option<&'a Path>,
    pub no_pivot: bool,
    /// The container has no mount namespace of its own: its mounts go
    /// under its root in the host's (`prepare`), and it enters the root
    /// by chroot.
    pub host_ns: bool,
    /// The /dev facts of the mount plan.
    pub dev: DevPlan,
    /// Asks rt for the tree of mount `index`, a bind it clones in this
    /// mount namespace when the init reaches it (`Bind::tree_from_rt`).
    pub bind_tree: &'a dyn Fn(usize) -> Result<OwnedFd>,
}

/// Makes the rest of the host's mount tree invisible to propagation, binds
/// the root onto itself (pivot_root needs a mount point) and makes every
/// mount of the plan, in order. Returns a descriptor on the root.
pub fn prepare(s: &Setup, mounts: Vec<PlannedMount>) -> Result<OwnedFd> {
    if s.host_ns {
        bind_root_in_host_ns(s.rootfs)?;
    } else {
        isolate_and_bind_root(s)?;
    }
    let open_root = || {
        open(
            s.rootfs,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .with_ctx(|| format!("open root {}", s.rootfs.display()))
    };
    let mut root = open_root()?;

    for m in mounts {
        let name = format!("mounts[{}] ({})", m.index, m.config_destination.display());
        // A mount on "/" (a rootless overlay root, made in the container's
        // user namespace) covers the root: what follows goes on top of it.
        let covers_root = m.config_destination == Path::new("/");
        mount_one(s, root.as_fd(), m).map_err(|e| prefix_err(e, &name))?;
        if covers_root {
            root = open_root()?;
        }
    }

    if !s.dev.is_bind {
        setup_dev(s, root.as_fd())?;
    }
    Ok(root)
}

/// A container in the host's mount namespace: the propagation of the
/// host's mounts is left as it is; the root is bound onto itself (the
/// mount `root.readonly` makes read-only after the chroot, and the one
/// every later mount goes on), and that new tree alone is made private,
/// so that nothing mounted in it propagates anywhere. Only the root's
/// path is used here; every mount in it goes through a descriptor
/// resolved inside it.
fn bind_root_in_host_ns(rootfs: &Path) -> Result<()> {
    mount(
        Some(rootfs),
        rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .with_ctx(|| format!("bind the root {} onto itself", rootfs.display()))?;
    let bound = open(
        rootfs,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_ctx(|| format!("open root {}", rootfs.display()))?;
    mount(
        None::<&str>,
        resolve::fd_path(&bound).as_str(),
        None::<&str>,
        MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        None::<&str>,
    )
    .with_ctx(|| format!("make the root's own bind {} private", rootfs.display()))
}

/// The container's own mount namespace: made invisible to propagation,
/// and the root bound onto itself (pivot_root needs a mount point).
fn isolate_and_bind_root(s: &Setup) -> Result<()> {
    // By default / is made rslave: nothing mounted inside propagates back
    // to the host. A `linux.rootfsPropagation` takes its place, as with
    // runc: with `rshared` the host's shared mounts stay peers of their
    // copies here, so a bind of one (Kubernetes' Bidirectional mount
    // propagation) carries a mount made under it inside back to the host.
    match rootfs_propagation(s.spec)? {
        None => mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None::<&str>,
        )
        .ctx("make / rslave")?,
        Some((name, flags)) => {
            mount(None::<&str>, "/", None::<&str>, flags, None::<&str>)
                .with_ctx(|| format!("linux.rootfsPropagation: make / {name}"))?;
            // The root's bind onto itself must not show on the host,
            // pivot_root refuses a root under a shared parent, and an
            // unbindable one cannot be bound at all: it is made private
            // whatever it was (runc 1.3 the same).
            make_parent_private(s.rootfs)?;
        }
    }
    mount(
        Some(s.rootfs),
        s.rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .with_ctx(|| format!("bind the root {} onto itself", s.rootfs.display()))
}

/// A read-only tmpfs on /dev was mounted writable so that what goes in it
/// (/dev/pts, the devices, links, the console) could be made; it turns
/// read-only now, with the rest of its flags (runc the same).
pub fn finish_dev(dev: &DevPlan, root: BorrowedFd<'_>) -> Result<()> {
    let Some(flags) = dev.readonly_tmpfs else {
        return Ok(());
    };
    let dev = Path::new(DEV);
    let fd = resolve::try_open_in_root(root, dev, libc::O_PATH | libc::O_NOFOLLOW)?.ok_or_else(
        || Error::UnsafePath {
            path: DEV.into(),
            reason: "vanished before it was made read-only".into(),
        },
    )?;
    let fs = nix::sys::statfs::fstatfs(&fd).ctx("statfs /dev")?;
    if fs.filesystem_type() != nix::sys::statfs::TMPFS_MAGIC {
        return Err(Error::UnsafePath {
            path: DEV.into(),
            reason: "is not the tmpfs rt mounted there; refused".into(),
        });
    }
    mounts::remount_bind(fd.as_fd(), flags, dev)
}

/// Makes the root the process's `/`: pivot_root and detach the old root,
/// or (`--no-pivot`) move it over / and chroot.
pub fn enter(s: &Setup) -> Result<()> {
    chdir(s.rootfs).with_ctx(|| format!("chdir {}", s.rootfs.display()))?;
    if s.no_pivot {
        hide_host_pseudo_filesystems(s.rootfs)?;
        mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
            .ctx("move the root over /")?;
        nix::unistd::chroot(".").ctx("chroot")?;
    } else {
        // The old root, for after the pivot, if its tree may still be
        // shared with the host's.
        let old_root = match rootfs_propagation(s.spec)? {
            Some(_) => Some(
                open(
                    "/",
                    OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .ctx("open the old root")?,
            ),
            None => None,
        };
        pivot_root(".", ".").ctx("pivot_root")?;
        // The old root is now stacked on "."; umount2 resolves to the top
        // mount, so this detaches it. Its unmount stays local because its
        // whole tree is rslave: prepare() made it so, or (a configured
        // rootfsPropagation) it is made so here, from inside it. (A
        // propagation change on "." from the new root would hit the new
        // root's tree instead, since mount(2) does not cross onto the mount
        // stacked on the cwd, and would undo every `shared` mount of the
        // config.)
        if let Some(old) = old_root {
            fchdir(&old).ctx("enter the old root")?;
            mount(
                None::<&str>,
                ".",
                None::<&str>,
                MsFlags::MS_SLAVE | MsFlags::MS_REC,
                None::<&str>,
            )
            .ctx("make the old root rslave")?;
        }
        umount2(".", MntFlags::MNT_DETACH).ctx("detach the old root")?;
    }
    chdir("/").ctx("chdir /")?;
    Ok(())
}

/// Without pivot_root the host's mounts stay in the container's mount
/// namespace, under its root; the kernel lets a user namespace mount a
/// new procfs or sysfs wherever a full one is already visible there, and
/// that new one would have no masked paths. So every whole procfs and
/// sysfs outside the root is detached first (or, where that is refused,
/// covered with an empty tmpfs), as runc does.
fn hide_host_pseudo_filesystems(rootfs: &Path) -> Result<()> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ctx("read /proc/self/mountinfo")?;
    let rootfs = std::fs::canonicalize(rootfs)
        .with_ctx(|| format!("resolve the root {}", rootfs.display()))?;
    for point in host_pseudo_filesystems(&info, &rootfs).iter().rev() {
        // The unmounts must not reach the host's namespace.
        match mount(
            None::<&str>,
            point,
            None::<&str>,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None::<&str>,
        ) {
            // Gone with a mount detached before it.
            Err(nix::Error::ENOENT) => continue,
            r => r.with_ctx(|| format!("make {} rslave", point.display()))?,
        }
        match umount2(point, MntFlags::MNT_DETACH) {
            Ok(()) => {}
            Err(nix::Error::EINVAL | nix::Error::EPERM) => mount(
                Some("tmpfs"),
                point,
                Some("tmpfs"),
                MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                None::<&str>,
            )
            .with_ctx(|| format!("cover {} with a tmpfs", point.display()))?,
            Err(e) => return Err(e).with_ctx(|| format!("detach {}", point.display())),
        }
    }
    Ok(())
}

/// The mount points of `mountinfo` that are a whole procfs or sysfs (the
/// filesystem's root mounted) outside `rootfs`, in mountinfo's order.
fn host_pseudo_filesystems(mountinfo: &str, rootfs: &Path) -> Vec<std::path::PathBuf> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (head, tail) = line.split_once(" - ")?;
            let fields: Vec<&str> = head.split(' ').collect();
            let fstype = tail.split(' ').next()?;
            let point = std::path::PathBuf::from(unescape(fields.get(4)?));
            (fields.get(3) == Some(&"/")
                && matches!(fstype, "proc" | "sysfs")
                && !point.starts_with(rootfs))
            .then_some(point)
        })
        .collect()
}

/// A container in the host's mount namespace: its root entered with
/// chroot (as runc does); what was mounted for it stays where `prepare`
/// put it, under the root.
pub fn enter_by_chroot(rootfs: &Path) -> Result<()> {
    if rootfs != Path::new("/") {
        chdir(rootfs).with_ctx(|| format!("chdir {}", rootfs.display()))?;
        nix::unistd::chroot(".").ctx("chroot")?;
    }
    chdir("/").ctx("chdir /")?;
    Ok(())
}

/// After the pivot: `root.readonly` and `linux.rootfsPropagation`.
pub fn finish(spec: &Spec) -> Result<()> {
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .ctx("root.readonly: remount / read-only")?;
    }
    if let Some((p, flags)) = rootfs_propagation(spec)? {
        mount(None::<&str>, "/", None::<&str>, flags, None::<&str>)
            .with_ctx(|| format!("linux.rootfsPropagation: set {p} on /"))?;
    }
    Ok(())
}

/// `linux.rootfsPropagation`, if the config names one, with its flags.
fn rootfs_propagation(spec: &Spec) -> Result<Option<(&str, MsFlags)>> {
    let Some(p) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().as_deref())
    else {
        return Ok(None);
    };
    let flags = propagation(p).ok_or_else(|| Error::InvalidField {
        field: "linux.rootfsPropagation".into(),
        reason: format!("{p:?}"),
    })?;
    Ok(Some((p, flags)))
}

/// Makes the mount that holds `rootfs` (or is it) private.
fn make_parent_private(rootfs: &Path) -> Result<()> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ctx("read /proc/self/mountinfo")?;
    let rootfs = std::fs::canonicalize(rootfs)
        .with_ctx(|| format!("resolve the root {}", rootfs.display()))?;
    let Some(point) = holding_mount(&info, &rootfs) else {
        return Ok(());
    };
    mount(
        None::<&str>,
        &point,
        None::<&str>,
        MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .with_ctx(|| format!("make {} private", point.display()))
}

/// The mount point in `mountinfo` that holds `path` (the deepest; of
/// stacked mounts, the last).
fn holding_mount(mountinfo: &str, path: &Path) -> Option<std::path::PathBuf> {
    let mut best: Option<std::path::PathBuf> = None;
    for line in mountinfo.lines() {
        let Some(point) = line
            .split(' ')
            .nth(4)
            .map(|p| std::path::PathBuf::from(unescape(p)))
        else {
            continue;
        };
        let deeper = best
            .as_ref()
            .is_none_or(|b| b.components().count() <= point.components().count());
        if path.starts_with(&point) && deeper {
            best = Some(point);
        }
    }
    best
}

/// A mountinfo field with its octal escapes (`\040` for a space) undone.
fn unescape(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mount_holding_a_path_is_the_deepest() {
        let info = "27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n\
                    30 27 0:40 / /tmp rw master:3 - tmpfs tmpfs rw\n\
                    31 30 0:41 / /tmp/a\\040b rw shared:7 master:2 - tmpfs t rw\n";
        let at = |p: &str| holding_mount(info, Path::new(p));
        assert_eq!(at("/tmp/a b/rootfs"), Some("/tmp/a b".into()));
        assert_eq!(at("/tmp/ab/rootfs"), Some("/tmp".into()));
        assert_eq!(at("/srv/rootfs"), Some("/".into()));
    }

    #[test]
    fn no_pivot_hides_whole_procfs_and_sysfs_outside_the_root() {
        let info = "27 1 254:0 / / rw shared:1 - ext4 /dev/vda rw\n\
                    40 27 0:5 / /proc rw - proc proc rw\n\
                    41 27 0:6 / /sys rw - sysfs sysfs rw\n\
                    42 41 0:7 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n\
                    43 27 0:5 /sys /mnt/procsys rw - proc proc rw\n\
                    44 27 0:8 / /run/c/rootfs/proc rw - proc proc rw\n\
                    45 27 0:9 / /srv/my\\040sys rw - sysfs sysfs rw\n";
        let got = host_pseudo_filesystems(info, Path::new("/run/c/rootfs"));
        let want: Vec<std::path::PathBuf> =
            vec!["/proc".into(), "/sys".into(), "/srv/my sys".into()];
        assert_eq!(
            got, want,
            "not a part of one (/mnt/procsys), nor the container's own"
        );
    }
}
