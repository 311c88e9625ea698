//! The config's mounts, one at a time, each resolved inside the root and
//! mounted through its descriptor: bind and remount flags, propagation,
//! idmapped binds, the cgroup filesystem (tmpfs in tmpfs.rs).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{open, OFlag};
use nix::mount::{mount, MsFlags};
use nix::sys::stat::Mode;
use oci_spec::runtime::Mount;

use super::Setup;
use crate::config::mount_options::MountOptions;
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
        Error::Invalid(m) => Error::Invalid(format!("{prefix}: {m}")),
        other => other,
    }
}

/// The container's /dev.
pub(super) const DEV: &str = "/dev";

pub(super) fn mount_one(s: &Setup, root: BorrowedFd<'_>, index: usize, m: &Mount) -> Result<()> {
    // A destination written as the root's host path names the place in
    // the container (runc the same).
    let in_root = crate::config::in_root::within_root(s.rootfs, m.destination());
    let dest = in_root.as_deref().unwrap_or(m.destination());
    let opts =
        MountOptions::parse(m.options().as_deref().unwrap_or(&[])).map_err(Error::Invalid)?;
    let typ = m.typ().as_deref().unwrap_or("");
    let bind = typ == "bind" || opts.bind;
    let source_is_procfs = bind
        && m.source().as_ref().is_some_and(|src| {
            nix::sys::statfs::statfs(&s.bundle.join(src))
                .is_ok_and(|f| f.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC)
        });
    super::proc_mount::check(
        &super::proc_mount::resolve(root, dest)?,
        typ,
        source_is_procfs,
    )
    .map_err(Error::Invalid)?;
    if opts.tmpcopyup && (bind || typ != "tmpfs") {
        // runc acts on it for tmpfs only, and ignores it elsewhere.
        log::warn!(
            "mounts[{index}] ({}): \"tmpcopyup\" applies to tmpfs mounts only: ignored on {}",
            dest.display(),
            if bind { "a bind mount" } else { typ }
        );
    }

    if bind {
        let prepared = {
            let mut list = s.prepared_binds.borrow_mut();
            list.iter()
                .position(|p| p.index == index)
                .map(|i| list.remove(i))
        };
        let src = m
            .source()
            .as_ref()
            .ok_or_else(|| Error::Invalid("a bind mount needs a source".into()))?;
        let src = if src.is_absolute() {
            src.clone()
        } else {
            s.bundle.join(src)
        };
        // rt's clone serves an idmapped bind, and a source the init may
        // not open; any other bind is made here, in the config's order.
        let idmapped = s.idmaps.iter().any(|i| i.index == index);
        let opened = if prepared.is_some() && idmapped {
            Err(nix::Error::EPERM)
        } else {
            open(&src, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
        };
        let src_fd = match (opened, prepared) {
            (Err(nix::Error::EACCES | nix::Error::EPERM), Some(p)) => {
                let target = create_in_root(root, dest, !is_dir(p.tree.as_fd())?)?;
                let made = Made::bind_of(p.tree.as_fd())?;
                mount::move_mount(&p.tree, &target)
                    .with_ctx(mount_err("attach the bind mount onto", dest))?;
                let extra = opts.flags - (MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
                if !extra.is_empty() {
                    let target = reopen_mounted(root, dest, made)?;
                    remount_bind(target.as_fd(), extra, dest)?;
                }
                return finish_mount(root, dest, &opts, made);
            }
            (opened, _) => opened.with_ctx(|| format!("open bind source {}", src.display()))?,
        };
        let target = create_in_root(root, dest, !is_dir(src_fd.as_fd())?)?;
        let made = Made::bind_of(src_fd.as_fd())?;
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
            let target = reopen_mounted(root, dest, made)?;
            remount_bind(target.as_fd(), extra, dest)?;
        }
        return finish_mount(root, dest, &opts, made);
    }

    match typ {
        "cgroup" | "cgroup2" => return mount_cgroup(s, root, m, &opts),
        "proc" | "sysfs" => {
            // Only on a real directory, never through a symlink
            // (CVE-2019-16884, CVE-2019-19921).
            if let Some(fd) = try_open_in_root(root, dest, libc::O_PATH | libc::O_NOFOLLOW)? {
                if !is_dir(fd.as_fd())? {
                    // runc's words, which callers match.
                    return Err(Error::Invalid(format!(
                        "filesystem {typ:?} must be mounted on ordinary directory ({} is not one)",
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
        "tmpfs" => {
            let source = m
                .source()
                .as_ref()
                .map_or("tmpfs".into(), |p| p.to_string_lossy());
            let mut flags = opts.flags - MsFlags::MS_REMOUNT;
            if dest == Path::new(DEV) {
                // /dev/pts, the devices and links still go in: read-only
                // comes after them (super::finish_dev).
                flags -= MsFlags::MS_RDONLY;
            }
            let made = super::tmpfs::mount_tmpfs(root, dest, &source, flags, &opts)?;
            return finish_mount(root, dest, &opts, made);
        }
        _ => {}
    }

    let target = create_in_root(root, dest, false)?;
    let mut made = Made::fresh_over(target.as_fd())?;
    let source = m
        .source()
        .as_ref()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|| typ.to_string());
    let mut data = opts.data_string();
    if typ == "devpts" && s.in_userns {
        data = data.map(|d| devpts_data_in_userns(&d, &read_gid_map()));
    }
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
            made = Made::bind_of_path(Path::new("/sys"))?;
            let target = reopen_mounted(root, dest, made)?;
            remount_bind(target.as_fd(), flags, dest)?;
        }
        Err(e) => return Err(e).with_ctx(mount_err(&format!("mount {typ}"), dest)),
    }
    finish_mount(root, dest, &opts, made)
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
        return Err(Error::Invalid(format!(
            "{} changed while rt mounted it (a racing process?): refusing to change the flags of what is there now",
            dest.display()
        )));
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

pub(super) fn mount_setattr(fd: BorrowedFd<'_>, set: u64, clr: u64) -> nix::Result<()> {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clr,
        ..Default::default()
    };
    mount::mount_setattr(fd, true, &attr)
}

fn mount_cgroup(s: &Setup, root: BorrowedFd<'_>, m: &Mount, opts: &MountOptions) -> Result<()> {
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
    let mut made = Made::fresh_over(target.as_fd())?;
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
        made = Made::bind_of_path(dir)?;
        let target = reopen_mounted(root, dest, made)?;
        remount_bind(target.as_fd(), flags, dest)?;
    }
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
