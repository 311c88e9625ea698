//! The container's root filesystem: the mounts of the config in order,
//! /dev with its default devices, masked and read-only paths, pivot_root,
//! and the read-only root. Runs inside the init, in its mount namespace.
//!
//! Every destination is resolved inside the root with RESOLVE_IN_ROOT and
//! mounted through its descriptor, so symlinks in the image cannot redirect
//! a mount to the host.

mod dev;
mod masked;
mod mounts;
mod proc_mount;
pub mod procfs;
pub mod resolve;
mod tmpfs;

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{open, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::Mode;
use nix::unistd::{chdir, pivot_root};
use oci_spec::runtime::{Mount, Spec};

use crate::config::mount_options::propagation;
use crate::error::{Context, Error, Result};

pub use dev::bind_console;
use dev::setup_dev;
pub use masked::mask_and_protect;
use mounts::{mount_one, prefix_err};

/// What the rootfs setup needs to know besides the config.
pub struct Setup<'a> {
    pub spec: &'a Spec,
    pub rootfs: &'a Path,
    pub bundle: &'a Path,
    /// The init is in a new user namespace: device nodes are bound from
    /// the host, since mknod is not allowed there.
    pub in_userns: bool,
    /// The init has its own cgroup namespace (a cgroup mount is a fresh
    /// cgroup2 then, else a bind of the container's cgroup).
    pub cgroupns: bool,
    pub cgroup_dir: Option<&'a Path>,
    pub no_pivot: bool,
    /// The user namespaces of the config's idmapped mounts.
    pub idmaps: &'a [crate::spawn::idmap::IdmappedMount],
    /// Bind mounts rt made ready before the clone (a container with a
    /// user namespace), attached instead of opening their source here.
    pub prepared_binds: &'a std::cell::RefCell<Vec<crate::spawn::bind_sources::PreparedBind>>,
}

/// Makes the rest of the host's mount tree invisible to propagation, binds
/// the root onto itself (pivot_root needs a mount point) and does every
/// mount of the config. Returns a descriptor on the root.
pub fn prepare(s: &Setup) -> Result<OwnedFd> {
    // Nothing we mount may propagate back to the host.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .ctx("make / rslave")?;
    mount(
        Some(s.rootfs),
        s.rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .with_ctx(|| format!("bind the root {} onto itself", s.rootfs.display()))?;
    let open_root = || {
        open(
            s.rootfs,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .with_ctx(|| format!("open root {}", s.rootfs.display()))
    };
    let mut root = open_root()?;

    let mounts: &[Mount] = s.spec.mounts().as_deref().unwrap_or(&[]);
    for (i, m) in mounts.iter().enumerate() {
        mount_one(s, root.as_fd(), i, m)
            .map_err(|e| prefix_err(e, &format!("mounts[{i}] ({})", m.destination().display())))?;
        // A mount on "/" (a rootless overlay root, made in the container's
        // user namespace) covers the root: what follows goes on top of it.
        if m.destination() == Path::new("/") {
            root = open_root()?;
        }
    }

    let dev_is_bind = mounts.iter().any(|m| {
        m.destination() == Path::new("/dev")
            && (m.typ().as_deref() == Some("bind")
                || m.options()
                    .iter()
                    .flatten()
                    .any(|o| o == "bind" || o == "rbind"))
    });
    if !dev_is_bind {
        setup_dev(s, root.as_fd())?;
    }
    Ok(root)
}

/// Makes the root the process's `/`: pivot_root and detach the old root,
/// or (`--no-pivot`) move it over / and chroot.
pub fn enter(s: &Setup) -> Result<()> {
    chdir(s.rootfs).with_ctx(|| format!("chdir {}", s.rootfs.display()))?;
    if s.no_pivot {
        mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
            .ctx("move the root over /")?;
        nix::unistd::chroot(".").ctx("chroot")?;
    } else {
        pivot_root(".", ".").ctx("pivot_root")?;
        // The old root is now stacked on "."; umount2 resolves to the top
        // mount, so this detaches it. Its unmount stays local because
        // prepare() made the whole old tree rslave. (A propagation change
        // on "." here would hit the new root's tree instead, since mount(2)
        // does not cross onto the mount stacked on the cwd, and would undo
        // every `shared` mount of the config.)
        umount2(".", MntFlags::MNT_DETACH).ctx("detach the old root")?;
    }
    chdir("/").ctx("chdir /")?;
    Ok(())
}

/// A container in the host's mount namespace: its root entered with
/// chroot (as runc does), nothing mounted or moved.
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
    if let Some(p) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().as_deref())
    {
        let flags = propagation(p)
            .ok_or_else(|| Error::Invalid(format!("linux.rootfsPropagation: {p:?}")))?;
        mount(None::<&str>, "/", None::<&str>, flags, None::<&str>)
            .with_ctx(|| format!("linux.rootfsPropagation: set {p} on /"))?;
    }
    Ok(())
}
