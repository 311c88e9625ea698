//! The container's root filesystem: the mounts of the config in order,
//! /dev with its default devices, masked and read-only paths, pivot_root,
//! and the read-only root. Runs inside the init, in its mount namespace.
//!
//! Every destination is resolved inside the root with RESOLVE_IN_ROOT and
//! mounted through its descriptor, so symlinks in the image cannot redirect
//! a mount to the host.

pub mod procfs;
pub mod resolve;

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{open, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{makedev, Mode, SFlag};
use nix::unistd::{chdir, fchownat, pivot_root, Gid, Uid};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Mount, Spec};

use crate::config::mount_options::{propagation, MountOptions};
use crate::error::{Context, Error, Result};
use crate::rootfs::resolve::{create_in_root, fd_path, is_dir, open_in_root, try_open_in_root};
use crate::sys::mount::{self, MountAttr};

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
}

/// The default devices every container gets (runc's list).
const DEFAULT_DEVICES: &[(&str, u64, u64)] = &[
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/tty", 5, 0),
    ("/dev/urandom", 1, 9),
    ("/dev/random", 1, 8),
];

const DEV_SYMLINKS: &[(&str, &str)] = &[
    ("/proc/self/fd", "/dev/fd"),
    ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"),
    ("/proc/self/fd/2", "/dev/stderr"),
];

fn mount_err<'a>(what: &'a str, m: &'a Path) -> impl FnOnce() -> String + 'a {
    let what = what.to_string();
    move || format!("{what} {}", m.display())
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
    let root = open(
        s.rootfs,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_ctx(|| format!("open root {}", s.rootfs.display()))?;

    let mounts: &[Mount] = s.spec.mounts().as_deref().unwrap_or(&[]);
    for (i, m) in mounts.iter().enumerate() {
        mount_one(s, &root, i, m)
            .map_err(|e| prefix_err(e, &format!("mounts[{i}] ({})", m.destination().display())))?;
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
        setup_dev(s, &root)?;
    }
    Ok(root)
}

fn prefix_err(e: Error, prefix: &str) -> Error {
    match e {
        Error::Sys { context, source } => Error::Sys {
            context: format!("{prefix}: {context}"),
            source,
        },
        Error::Io { context, source } => Error::Io {
            context: format!("{prefix}: {context}"),
            source,
        },
        Error::Invalid(m) => Error::Invalid(format!("{prefix}: {m}")),
        other => other,
    }
}

fn mount_one(s: &Setup, root: &OwnedFd, index: usize, m: &Mount) -> Result<()> {
    let dest = m.destination();
    let opts =
        MountOptions::parse(m.options().as_deref().unwrap_or(&[])).map_err(Error::Invalid)?;
    let typ = m.typ().as_deref().unwrap_or("");
    let bind = typ == "bind" || opts.bind;

    if bind {
        let src = m
            .source()
            .as_ref()
            .ok_or_else(|| Error::Invalid("a bind mount needs a source".into()))?;
        let src = if src.is_absolute() {
            src.clone()
        } else {
            s.bundle.join(src)
        };
        let src_fd = open(&src, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
            .with_ctx(|| format!("open bind source {}", src.display()))?;
        let target = create_in_root(root, dest, !is_dir(&src_fd)?)?;
        if let Some(idm) = s.idmaps.iter().find(|i| i.index == index) {
            idmapped_bind(&src_fd, &target, idm, opts.recursive_bind)
                .with_ctx(mount_err("idmapped bind mount onto", dest))?;
        } else {
            let mut flags = MsFlags::MS_BIND;
            if opts.recursive_bind {
                flags |= MsFlags::MS_REC;
            }
            mount(
                Some(fd_path(&src_fd).as_str()),
                fd_path(&target).as_str(),
                None::<&str>,
                flags,
                None::<&str>,
            )
            .with_ctx(mount_err("bind mount onto", dest))?;
        }
        // A bind ignores the other flags: apply them with a remount of
        // the new mount (reopened: the old descriptor is the covered dir).
        let extra = opts.flags - (MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
        if !extra.is_empty() {
            let target = open_in_root(root, dest, libc::O_PATH)?;
            remount_bind(&target, extra, dest)?;
        }
        return finish_mount(root, dest, &opts);
    }

    match typ {
        "cgroup" | "cgroup2" => return mount_cgroup(s, root, m, &opts),
        "proc" | "sysfs" => {
            // Only on a real directory, never through a symlink
            // (CVE-2019-16884, CVE-2019-19921).
            if let Some(fd) = try_open_in_root(root, dest, libc::O_PATH | libc::O_NOFOLLOW)? {
                if !is_dir(&fd)? {
                    return Err(Error::Invalid(format!(
                        "{typ} may only be mounted on a directory, {} is not one",
                        dest.display()
                    )));
                }
            }
        }
        "" => {
            return Err(Error::Invalid(
                "mount type missing (and not a bind mount)".into(),
            ))
        }
        _ => {}
    }
    let target = create_in_root(root, dest, false)?;
    let source = m
        .source()
        .as_ref()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|| typ.to_string());
    let data = opts.data_string();
    let flags = opts.flags - MsFlags::MS_REMOUNT;
    match mount(
        Some(source.as_str()),
        fd_path(&target).as_str(),
        Some(typ),
        flags,
        data.as_deref(),
    ) {
        Ok(()) => {}
        // In a user namespace sysfs can only be mounted with a network
        // namespace of that user namespace: bind the host's instead.
        Err(nix::Error::EPERM) if typ == "sysfs" && s.in_userns => {
            mount(
                Some("/sys"),
                fd_path(&target).as_str(),
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .with_ctx(mount_err("bind /sys onto", dest))?;
            let target = open_in_root(root, dest, libc::O_PATH)?;
            remount_bind(&target, flags, dest)?;
        }
        Err(e) => return Err(e).with_ctx(mount_err(&format!("mount {typ}"), dest)),
    }
    finish_mount(root, dest, &opts)
}

fn remount_bind(target: &OwnedFd, flags: MsFlags, dest: &Path) -> Result<()> {
    mount(
        None::<&str>,
        fd_path(target).as_str(),
        None::<&str>,
        flags | MsFlags::MS_BIND | MsFlags::MS_REMOUNT,
        None::<&str>,
    )
    .with_ctx(mount_err("remount", dest))
}

/// Propagation and recursive attributes, applied to the new mount.
fn finish_mount(root: &OwnedFd, dest: &Path, opts: &MountOptions) -> Result<()> {
    if opts.propagation.is_empty() && opts.rec_attr_set == 0 && opts.rec_attr_clr == 0 {
        return Ok(());
    }
    let target = open_in_root(root, dest, libc::O_PATH)?;
    for p in &opts.propagation {
        mount(
            None::<&str>,
            fd_path(&target).as_str(),
            None::<&str>,
            *p,
            None::<&str>,
        )
        .with_ctx(mount_err("set propagation of", dest))?;
    }
    if opts.rec_attr_set != 0 || opts.rec_attr_clr != 0 {
        mount_setattr(&target, opts.rec_attr_set, opts.rec_attr_clr)
            .with_ctx(mount_err("set recursive attributes of", dest))?;
    }
    Ok(())
}

/// A detached copy of the source's mount (open_tree), idmapped with the
/// namespace's mapping (mount_setattr), then attached at the target
/// (move_mount), all through descriptors.
fn idmapped_bind(
    src: &OwnedFd,
    target: &OwnedFd,
    idm: &crate::spawn::idmap::IdmappedMount,
    recursive_bind: bool,
) -> nix::Result<()> {
    let tree = mount::open_tree_clone(src, recursive_bind)?;
    let attr = MountAttr {
        attr_set: mount::MOUNT_ATTR_IDMAP,
        userns_fd: idm.userns.as_raw_fd() as u64,
        ..Default::default()
    };
    mount::mount_setattr(&tree, idm.recursive, &attr)?;
    mount::move_mount(&tree, target)
}

fn mount_setattr(fd: &OwnedFd, set: u64, clr: u64) -> nix::Result<()> {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clr,
        ..Default::default()
    };
    mount::mount_setattr(fd, true, &attr)
}

fn mount_cgroup(s: &Setup, root: &OwnedFd, m: &Mount, opts: &MountOptions) -> Result<()> {
    let dest = m.destination();
    let target = create_in_root(root, dest, false)?;
    let flags = opts.flags
        & (MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV
            | MsFlags::MS_NOEXEC
            | MsFlags::MS_RDONLY
            | MsFlags::MS_RELATIME
            | MsFlags::MS_NOATIME
            | MsFlags::MS_STRICTATIME);
    if s.cgroupns {
        // A fresh cgroup2 whose root is the container's cgroup.
        mount(
            Some("cgroup2"),
            fd_path(&target).as_str(),
            Some("cgroup2"),
            flags,
            None::<&str>,
        )
        .with_ctx(mount_err("mount cgroup2", dest))?;
    } else {
        // Without a cgroup namespace, show the container only its own
        // cgroup: bind it from the host's hierarchy.
        let dir = s
            .cgroup_dir
            .ok_or_else(|| Error::Invalid("a cgroup mount needs the container's cgroup".into()))?;
        mount(
            Some(dir),
            fd_path(&target).as_str(),
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .with_ctx(mount_err("bind the container's cgroup onto", dest))?;
        let target = open_in_root(root, dest, libc::O_PATH)?;
        remount_bind(&target, flags, dest)?;
    }
    finish_mount(root, dest, opts)
}

/// Default devices, `linux.devices`, the /dev symlinks and /dev/ptmx. All
/// through a /dev descriptor resolved inside the root (CVE-2026-41579).
fn setup_dev(s: &Setup, root: &OwnedFd) -> Result<()> {
    create_in_root(root, Path::new("/dev"), false)?;
    let dev = open_in_root(root, Path::new("/dev"), libc::O_PATH | libc::O_DIRECTORY)?;
    let configured: &[LinuxDevice] = s
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().as_deref())
        .unwrap_or(&[]);
    for (path, major, minor) in DEFAULT_DEVICES {
        if configured.iter().any(|d| d.path() == Path::new(path)) {
            continue;
        }
        make_device(
            s,
            root,
            Path::new(path),
            SFlag::S_IFCHR,
            *major,
            *minor,
            0o666,
            0,
            0,
        )?;
    }
    for d in configured {
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            LinuxDeviceType::A => {
                return Err(Error::Invalid(format!(
                    "linux.devices: {} has type \"a\", which is only for cgroup rules",
                    d.path().display()
                )))
            }
        };
        if !d.path().starts_with("/dev") {
            return Err(Error::Invalid(format!(
                "linux.devices: {} is not under /dev",
                d.path().display()
            )));
        }
        make_device(
            s,
            root,
            d.path(),
            kind,
            d.major() as u64,
            d.minor() as u64,
            d.file_mode().unwrap_or(0o666),
            d.uid().unwrap_or(0),
            d.gid().unwrap_or(0),
        )?;
    }
    for (target, link) in DEV_SYMLINKS {
        symlink_in(&dev, target, link.trim_start_matches("/dev/"))?;
    }
    if try_open_in_root(root, Path::new("/proc/kcore"), libc::O_PATH)?.is_some() {
        symlink_in(&dev, "/proc/kcore", "core")?;
    }
    // With a private devpts, /dev/ptmx must be its ptmx.
    let pts_ptmx = try_open_in_root(root, Path::new("/dev/pts/ptmx"), libc::O_PATH)?;
    if pts_ptmx.is_some() {
        let _ = nix::unistd::unlinkat(&dev, "ptmx", nix::unistd::UnlinkatFlags::NoRemoveDir);
        symlink_in(&dev, "pts/ptmx", "ptmx")?;
    }
    Ok(())
}

fn symlink_in(dir: &OwnedFd, target: &str, name: &str) -> Result<()> {
    match nix::unistd::symlinkat(target, dir, name) {
        Ok(()) | Err(nix::Error::EEXIST) => Ok(()),
        Err(e) => Err(e).with_ctx(|| format!("symlink /dev/{name} -> {target}")),
    }
}

#[allow(clippy::too_many_arguments)]
fn make_device(
    s: &Setup,
    root: &OwnedFd,
    path: &Path,
    kind: SFlag,
    major: u64,
    minor: u64,
    mode: u32,
    uid: u32,
    gid: u32,
) -> Result<()> {
    let parent = path.parent().unwrap_or(Path::new("/dev"));
    let name = path
        .file_name()
        .ok_or_else(|| Error::Invalid(format!("linux.devices: bad path {}", path.display())))?;
    let dir = create_in_root(root, parent, false)?;
    let dir =
        open_in_root(root, parent, libc::O_PATH | libc::O_DIRECTORY).or(Ok::<_, Error>(dir))?;
    if s.in_userns {
        // mknod is not allowed in a user namespace: bind the host's node.
        let target = create_in_root(root, path, true)?;
        let host = PathBuf::from(path);
        mount(
            Some(&host),
            fd_path(&target).as_str(),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .with_ctx(|| format!("bind host device {}", host.display()))?;
        return Ok(());
    }
    let _ = nix::unistd::unlinkat(&dir, name, nix::unistd::UnlinkatFlags::NoRemoveDir);
    nix::sys::stat::mknodat(
        &dir,
        name,
        kind,
        Mode::from_bits_truncate(mode & 0o7777),
        makedev(major, minor),
    )
    .with_ctx(|| format!("mknod {}", path.display()))?;
    // mknod's mode is filtered by the umask: set it exactly.
    nix::sys::stat::fchmodat(
        &dir,
        name,
        Mode::from_bits_truncate(mode & 0o7777),
        nix::sys::stat::FchmodatFlags::NoFollowSymlink,
    )
    .or_else(|e| {
        if e == nix::Error::EOPNOTSUPP {
            Ok(())
        } else {
            Err(e)
        }
    })
    .with_ctx(|| format!("chmod {}", path.display()))?;
    fchownat(
        &dir,
        name,
        Some(Uid::from_raw(uid)),
        Some(Gid::from_raw(gid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .with_ctx(|| format!("chown {}", path.display()))?;
    Ok(())
}

/// Binds the pty peer (by descriptor, never by path) onto /dev/console.
pub fn bind_console(root: &OwnedFd, peer: &OwnedFd) -> Result<()> {
    let target = create_in_root(root, Path::new("/dev/console"), true)?;
    mount(
        Some(fd_path(peer).as_str()),
        fd_path(&target).as_str(),
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .ctx("bind the console onto /dev/console")
}

/// `linux.maskedPaths` and `linux.readonlyPaths`, before the pivot.
pub fn mask_and_protect(spec: &Spec, root: &OwnedFd) -> Result<()> {
    let Some(linux) = spec.linux().as_ref() else {
        return Ok(());
    };
    let masked = linux.masked_paths().as_deref().unwrap_or(&[]);
    if !masked.is_empty() {
        // The /dev/null bound over masked files must be the real one (1:3).
        let null = open_in_root(root, Path::new("/dev/null"), libc::O_PATH)?;
        let st = nix::sys::stat::fstat(null.as_fd()).ctx("stat /dev/null")?;
        if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFCHR
            || st.st_rdev != makedev(1, 3)
        {
            return Err(Error::Invalid("/dev/null in the container is not the 1:3 character device: refusing to mask paths with it".into()));
        }
        for p in masked {
            let p = Path::new(p);
            let Some(fd) = try_open_in_root(root, p, libc::O_PATH | libc::O_NOFOLLOW)? else {
                continue;
            };
            if is_dir(&fd)? {
                mount(
                    Some("tmpfs"),
                    fd_path(&fd).as_str(),
                    Some("tmpfs"),
                    MsFlags::MS_RDONLY,
                    Some("size=0,mode=755"),
                )
                .with_ctx(|| format!("linux.maskedPaths: mask {}", p.display()))?;
            } else {
                mount(
                    Some(fd_path(&null).as_str()),
                    fd_path(&fd).as_str(),
                    None::<&str>,
                    MsFlags::MS_BIND,
                    None::<&str>,
                )
                .with_ctx(|| format!("linux.maskedPaths: mask {}", p.display()))?;
            }
        }
    }
    for p in linux.readonly_paths().as_deref().unwrap_or(&[]) {
        let p = Path::new(p);
        let Some(fd) = try_open_in_root(root, p, libc::O_PATH | libc::O_NOFOLLOW)? else {
            continue;
        };
        mount(
            Some(fd_path(&fd).as_str()),
            fd_path(&fd).as_str(),
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .with_ctx(|| format!("linux.readonlyPaths: bind {}", p.display()))?;
        let fd = open_in_root(root, p, libc::O_PATH | libc::O_NOFOLLOW)?;
        mount(
            None::<&str>,
            fd_path(&fd).as_str(),
            None::<&str>,
            MsFlags::MS_BIND
                | MsFlags::MS_REMOUNT
                | MsFlags::MS_RDONLY
                | MsFlags::MS_REC
                | MsFlags::MS_NOSUID
                | MsFlags::MS_NODEV
                | MsFlags::MS_NOEXEC,
            None::<&str>,
        )
        .or_else(|_| {
            // Keep flags the underlying mount has locked (user namespace).
            mount(
                None::<&str>,
                fd_path(&fd).as_str(),
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_REC,
                None::<&str>,
            )
        })
        .with_ctx(|| format!("linux.readonlyPaths: remount {} read-only", p.display()))?;
    }
    Ok(())
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
