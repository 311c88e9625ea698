//! The mount plan's mounts (`config/mount_plan.rs`), one at a time, each
//! resolved inside the root and mounted through its descriptor: bind and
//! remount flags, propagation, idmapped binds, the cgroup filesystem
//! (tmpfs in tmpfs.rs). Nothing of the config is parsed or decided here.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{open, OFlag};
use nix::mount::{mount, MsFlags};
use nix::sys::stat::Mode;

use super::Setup;
use crate::config::mount_options::{
    bind_needs_remount, bind_remount_retry, lockable_flags_of, MountOptions,
};
use crate::config::mount_plan::{Bind, Kind, PlannedMount};
use crate::error::{Context, Error, Result};
use crate::rootfs::resolve::{create_in_root, fd_path, is_dir, open_in_root, try_open_in_root};
use crate::sys::mount::{self, MountAttr};

fn mount_err<'a>(what: &'a str, m: &'a Path) -> impl FnOnce() -> String + 'a {
    let what = what.to_string();
    move || format!("{what} {}", m.display())
}

pub(super) fn prefix_err(e: Error, prefix: &str) -> Error {
    match e {
        Error::Sys { context, source } => Error::Sys {
            context: format!("{prefix}: {context}"),
            source,
        },
        Error::Io { context, source } => Error::Io {
            context: format!("{prefix}: {context}"),
            source,
        },
        other => other.in_field(prefix),
    }
}

/// Makes one mount of the plan, through descriptors in the root; its
/// descriptors (a bind tree rt cloned, an idmap's user namespace) are
/// closed once it is made.
pub(super) fn mount_one(s: &Setup, root: BorrowedFd<'_>, m: PlannedMount) -> Result<()> {
    let dest = m.destination.as_path();
    let opts = &m.options;
    let typ = m.typ.as_str();
    let source_is_procfs = match &m.kind {
        Kind::Bind(b) => nix::sys::statfs::statfs(&b.source)
            .is_ok_and(|f| f.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC),
        _ => false,
    };
    super::proc_mount::check(
        &super::proc_mount::resolve(root, dest)?,
        typ,
        source_is_procfs,
    )?;

    match m.kind {
        Kind::Bind(mut b) => {
            if b.tree_from_rt {
                // rt clones and idmaps it in this mount namespace now,
                // with the mounts made so far.
                b.tree = Some((s.bind_tree)(m.index)?);
            }
            mount_bind(root, dest, opts, b)
        }
        // The config's destination, as rt has always mounted a cgroup.
        Kind::Cgroup { flags } => mount_cgroup(s, root, &m.config_destination, flags, opts),
        Kind::Tmpfs { source, flags } => {
            let made = super::tmpfs::mount_tmpfs(root, dest, &source, flags, opts)?;
            finish_mount(root, dest, opts, made)
        }
        Kind::Filesystem {
            source,
            flags,
            data,
            ordinary_dir_only,
        } => {
            if ordinary_dir_only {
                // Only on a real directory, never through a symlink
                // (CVE-2019-16884, CVE-2019-19921).
                if let Some(fd) = try_open_in_root(root, dest, libc::O_PATH | libc::O_NOFOLLOW)? {
                    if !is_dir(fd.as_fd())? {
                        // runc's words, which callers match.
                        return Err(Error::UnsafePath {
                            path: dest.to_path_buf(),
                            reason: format!(
                                "is not an ordinary directory: filesystem {typ:?} must be mounted on ordinary directory"
                            ),
                        });
                    }
                }
            }
            mount_filesystem(s, root, dest, typ, &source, flags, data, opts)
        }
    }
}

/// A bind: rt's clone serves an idmapped bind, and a source the init may
/// not open; any other bind is made here, in the config's order.
fn mount_bind(root: BorrowedFd<'_>, dest: &Path, opts: &MountOptions, mut b: Bind) -> Result<()> {
    let opened = if b.tree.is_some() && b.idmap.is_some() {
        Err(nix::Error::EPERM)
    } else {
        open(&b.source, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
    };
    let src_fd = match (opened, b.tree.take()) {
        (Err(nix::Error::EACCES | nix::Error::EPERM), Some(tree)) => {
            let target = create_in_root(root, dest, !is_dir(tree.as_fd())?)?;
            let made = Made::bind_of(tree.as_fd())?;
            mount::move_mount(&tree, &target)
                .with_ctx(mount_err("attach the bind mount onto", dest))?;
            remount_bind_as_asked(root, dest, made, tree.as_fd(), &b)?;
            return finish_mount(root, dest, opts, made);
        }
        (opened, _) => opened.with_ctx(|| format!("open bind source {}", b.source.display()))?,
    };
    let target = create_in_root(root, dest, !is_dir(src_fd.as_fd())?)?;
    let made = Made::bind_of(src_fd.as_fd())?;
    if let Some(idm) = &b.idmap {
        let userns = idm.userns.as_ref().ok_or(Error::Internal(
            "an idmapped bind mount without its user namespace",
        ))?;
        idmapped_bind(&src_fd, &target, userns, idm.recursive, b.recursive)
            .with_ctx(mount_err("idmapped bind mount onto", dest))?;
    } else {
        let mut flags = MsFlags::MS_BIND;
        if b.recursive {
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
    remount_bind_as_asked(root, dest, made, src_fd.as_fd(), &b)?;
    finish_mount(root, dest, opts, made)
}

/// A bind ignores the other flags: where options set or cleared any, the
/// new mount (reopened: the old descriptor is the covered dir) is
/// remounted with those asked alone, the rest cleared. Where the kernel
/// refuses that (the source's flags locked in a user namespace), once
/// more with the source's lockable flags kept, if that is still what was
/// asked (`mount_options::bind_remount_retry`); else the first refusal,
/// naming the locked flag the options asked to change.
fn remount_bind_as_asked(
    root: BorrowedFd<'_>,
    dest: &Path,
    made: Made,
    source: BorrowedFd<'_>,
    b: &Bind,
) -> Result<()> {
    if !bind_needs_remount(b.remount_flags, b.cleared_flags) {
        return Ok(());
    }
    let target = reopen_mounted(root, dest, made)?;
    let Err(refused) = remount_bind(target.as_fd(), b.remount_flags, dest) else {
        return Ok(());
    };
    let st = nix::sys::statvfs::fstatvfs(source)
        .with_ctx(|| format!("statvfs {}", b.source.display()))?;
    let source_flags = lockable_flags_of(st.flags().bits());
    match bind_remount_retry(b.remount_flags, b.cleared_flags, source_flags) {
        Ok(flags) if flags != b.remount_flags => remount_bind(target.as_fd(), flags, dest),
        Ok(_) => Err(refused),
        // The refusal says which locked flag the options asked to change.
        Err(locked) => Err(match refused {
            Error::Sys { context, source } => Error::Sys {
                context: format!("{context} ({locked})"),
                source,
            },
            other => other,
        }),
    }
}

/// Any other filesystem: a fresh mount of its type.
#[allow(clippy::too_many_arguments)]
fn mount_filesystem(
    s: &Setup,
    root: BorrowedFd<'_>,
    dest: &Path,
    typ: &str,
    source: &str,
    flags: MsFlags,
    mut data: Option<String>,
    opts: &MountOptions,
) -> Result<()> {
    let target = create_in_root(root, dest, false)?;
    let mut made = Made::fresh_over(target.as_fd())?;
    if typ == "devpts" && s.in_userns {
        data = data.map(|d| devpts_data_in_userns(&d, &read_gid_map()));
    }
    match mount(
        Some(source),
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
            made = Made::bind_of_path(Path::new("/sys"))?;
            let target = reopen_mounted(root, dest, made)?;
            remount_bind(target.as_fd(), flags, dest)?;
        }
        Err(e) => return Err(e).with_ctx(mount_err(&format!("mount {typ}"), dest)),
    }
    finish_mount(root, dest, opts, made)
}

/// The gid map of the init's user namespace (inside id, outside id,
/// count), as the init sees it.
fn read_gid_map() -> Vec<(u32, u32, u32)> {
    std::fs::read_to_string("/proc/self/gid_map")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<u32> = l
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            (f.len() == 3).then(|| (f[0], f[1], f[2]))
        })
        .collect()
}

/// devpts options in a user namespace: a `gid=N` the namespace does not
/// map is refused by the kernel (EINVAL), so it is dropped and the ptys
/// belong to the mounting process's group, as with runc's rootless spec.
fn devpts_data_in_userns(data: &str, gid_map: &[(u32, u32, u32)]) -> String {
    data.split(',')
        .filter(
            |o| match o.strip_prefix("gid=").and_then(|g| g.parse::<u32>().ok()) {
                Some(g) => {
                    let mapped = gid_map
                        .iter()
                        .any(|&(inside, _, n)| g >= inside && (g - inside) < n);
                    if !mapped {
                        log::debug!(
                        "devpts: gid={g} is not mapped in the container's user namespace: dropped"
                    );
                    }
                    mapped
                }
                None => true,
            },
        )
        .collect::<Vec<_>>()
        .join(",")
}

pub(super) fn remount_bind(target: BorrowedFd<'_>, flags: MsFlags, dest: &Path) -> Result<()> {
    mount(
        None::<&str>,
        fd_path(target).as_str(),
        None::<&str>,
        flags | MsFlags::MS_BIND | MsFlags::MS_REMOUNT,
        None::<&str>,
    )
    .with_ctx(mount_err("remount", dest))
}

/// What a mount just made at a destination shows there, to prove that the
/// destination opened again is that mount (a racing container may have
/// swapped the path for a symlink meanwhile): a bind shows its source's
/// inode; a fresh filesystem a device other than the directory it covers.
#[derive(Clone, Copy)]
pub(super) enum Made {
    Bind { dev: u64, ino: u64 },
    Fresh { covered_dev: u64 },
}

impl Made {
    pub(super) fn bind_of(src: BorrowedFd<'_>) -> Result<Made> {
        let st = nix::sys::stat::fstat(src).ctx("stat the bind source")?;
        Ok(Made::Bind {
            dev: st.st_dev,
            ino: st.st_ino,
        })
    }

    fn bind_of_path(src: &Path) -> Result<Made> {
        let st = nix::sys::stat::stat(src).with_ctx(|| format!("stat {}", src.display()))?;
        Ok(Made::Bind {
            dev: st.st_dev,
            ino: st.st_ino,
        })
    }

    pub(super) fn fresh_over(covered: BorrowedFd<'_>) -> Result<Made> {
        let st = nix::sys::stat::fstat(covered).ctx("stat the mount point")?;
        Ok(Made::Fresh {
            covered_dev: st.st_dev,
        })
    }

    fn shown_by(self, st: &nix::sys::stat::FileStat) -> bool {
        match self {
            Made::Bind { dev, ino } => st.st_dev == dev && st.st_ino == ino,
            Made::Fresh { covered_dev } => st.st_dev != covered_dev,
        }
    }
}

/// The mount just made at `dest`, opened again (the descriptor rt mounted
/// through is the covered directory) without following a symlink at the
/// end, and proved to be that mount before flags are applied to it.
pub(super) fn reopen_mounted(root: BorrowedFd<'_>, dest: &Path, made: Made) -> Result<OwnedFd> {
    let fd = open_in_root(root, dest, libc::O_PATH | libc::O_NOFOLLOW)?;
    let st = nix::sys::stat::fstat(&fd).with_ctx(mount_err("stat the new mount at", dest))?;
    if !made.shown_by(&st) {
        return Err(Error::UnsafePath {
            path: dest.to_path_buf(),
            reason: "changed while rt mounted it (a racing process?): refusing to change the flags of what is there now".into(),
        });
    }
    Ok(fd)
}

/// Propagation and recursive attributes, applied to the new mount.
fn finish_mount(root: BorrowedFd<'_>, dest: &Path, opts: &MountOptions, made: Made) -> Result<()> {
    if opts.propagation.is_empty() && opts.rec_attr_set == 0 && opts.rec_attr_clr == 0 {
        return Ok(());
    }
    let target = reopen_mounted(root, dest, made)?;
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
        mount_setattr(target.as_fd(), opts.rec_attr_set, opts.rec_attr_clr)
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
    userns: &OwnedFd,
    recursive_idmap: bool,
    recursive_bind: bool,
) -> nix::Result<()> {
    let tree = mount::open_tree_clone(src, recursive_bind)?;
    let attr = MountAttr {
        attr_set: mount::MOUNT_ATTR_IDMAP,
        userns_fd: crate::sys::fd::as_u64(userns.as_raw_fd()),
        ..Default::default()
    };
    mount::mount_setattr(&tree, recursive_idmap, &attr)?;
    mount::move_mount(&tree, target)
}

pub(super) fn mount_setattr(fd: BorrowedFd<'_>, set: u64, clr: u64) -> nix::Result<()> {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clr,
        ..Default::default()
    };
    mount::mount_setattr(fd, true, &attr)
}

fn mount_cgroup(
    s: &Setup,
    root: BorrowedFd<'_>,
    dest: &Path,
    flags: MsFlags,
    opts: &MountOptions,
) -> Result<()> {
    let target = create_in_root(root, dest, false)?;
    let mut made = Made::fresh_over(target.as_fd())?;
    if s.cgroupns {
        // A fresh cgroup2 whose root is the container's cgroup.
        let fresh = mount(
            Some("cgroup2"),
            fd_path(&target).as_str(),
            Some("cgroup2"),
            flags,
            None::<&str>,
        );
        match fresh {
            Ok(()) => return finish_mount(root, dest, opts, made),
            // The kernel refuses cgroup2 on the root of a cgroup2 mount
            // (EBUSY: a /sys bound from the host brings the host's along)
            // and where the user namespace does not own the cgroup
            // namespace (EPERM). The bind below shows what the fresh mount
            // would have: the container's own cgroup. runc falls back the
            // same way.
            Err(nix::Error::EBUSY | nix::Error::EPERM) if s.cgroup_dir.is_some() => {}
            Err(e) => return Err(e).with_ctx(mount_err("mount cgroup2", dest)),
        }
    }
    // Without a cgroup namespace, show the container only its own cgroup:
    // bind it from the host's hierarchy.
    let dir = s
        .cgroup_dir
        .ok_or_else(|| Error::HostLacks("a cgroup mount needs the container's cgroup".into()))?;
    mount(
        Some(dir),
        fd_path(&target).as_str(),
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .with_ctx(mount_err("bind the container's cgroup onto", dest))?;
    made = Made::bind_of_path(dir)?;
    let target = reopen_mounted(root, dest, made)?;
    remount_bind(target.as_fd(), flags, dest)?;
    finish_mount(root, dest, opts, made)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devpts_gid_dropped_only_when_unmapped() {
        let one = [(0, 1000, 1)];
        assert_eq!(
            devpts_data_in_userns("newinstance,gid=5,mode=0620", &one),
            "newinstance,mode=0620"
        );
        let many = [(0, 1000, 1), (1, 100000, 65536)];
        assert_eq!(
            devpts_data_in_userns("newinstance,gid=5,mode=0620", &many),
            "newinstance,gid=5,mode=0620"
        );
    }
}
