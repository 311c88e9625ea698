//! The mounts of a container left in the host's mount namespace: rt
//! records which mounts the init made under the root (new mount ids in
//! mountinfo, their mount points under the root), and `delete` (or a
//! failed create) unmounts exactly those, deepest first, each proved by
//! its descriptor to be the recorded mount. A mount that was under the
//! root before (the root itself when it is a mount, as containerd's
//! overlay) is never touched.

use std::collections::HashSet;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{open, OFlag};
use nix::mount::{umount2, MntFlags};
use nix::sys::stat::Mode;

use super::resolve::fd_path;
use crate::error::{Context, Error, Result};
use crate::state::HostMount;
use crate::sys::openat2::openat2_beneath;

/// The ids of the mounts that exist before the container's are made.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    ids: HashSet<u64>,
}

/// (id, mount point) of every line of a mountinfo text.
fn entries(mountinfo: &str) -> impl Iterator<Item = (u64, PathBuf)> + '_ {
    mountinfo.lines().filter_map(|line| {
        let mut f = line.split(' ');
        let id = f.next()?.parse().ok()?;
        let point = f.nth(3)?;
        Some((id, PathBuf::from(super::unescape(point))))
    })
}

impl Snapshot {
    /// The mounts of rt's mount namespace now.
    pub fn take() -> Result<Snapshot> {
        let info =
            std::fs::read_to_string("/proc/self/mountinfo").ctx("read /proc/self/mountinfo")?;
        Ok(Snapshot::of(&info))
    }

    fn of(mountinfo: &str) -> Snapshot {
        Snapshot {
            ids: entries(mountinfo).map(|(id, _)| id).collect(),
        }
    }

    /// The mounts of `mountinfo` that are not in the snapshot and lie at
    /// or under `rootfs` (a canonical host path), in mountinfo's order
    /// (the order they were made in).
    pub fn new_under(&self, mountinfo: &str, rootfs: &Path) -> Vec<HostMount> {
        entries(mountinfo)
            .filter(|(id, point)| !self.ids.contains(id) && point.starts_with(rootfs))
            .map(|(id, point)| HostMount { id, point })
            .collect()
    }

    /// The mounts made under `rootfs` since the snapshot, as the process
    /// `pid` (in this mount namespace) sees them; `None` for rt's own view.
    pub fn made_since(&self, pid: Option<i32>, rootfs: &Path) -> Result<Vec<HostMount>> {
        let file = match pid {
            Some(p) => format!("/proc/{p}/mountinfo"),
            None => "/proc/self/mountinfo".into(),
        };
        let info = std::fs::read_to_string(&file).with_ctx(|| format!("read {file}"))?;
        let rootfs = std::fs::canonicalize(rootfs)
            .with_ctx(|| format!("resolve the root {}", rootfs.display()))?;
        Ok(self.new_under(&info, &rootfs))
    }
}

/// The order to unmount in: the deepest mount point first, and of mounts
/// at the same depth the one made last first (a mount stacked on another
/// goes before it).
pub fn unmount_order(mounts: &[HostMount]) -> Vec<&HostMount> {
    let mut order: Vec<&HostMount> = mounts.iter().rev().collect();
    // Stable: the reversed order of making stays among equals.
    order.sort_by_key(|m| std::cmp::Reverse(m.point.components().count()));
    order
}

/// Unmounts the recorded mounts, deepest first. Each mount point is
/// opened from the host's `/` without following any symlink, and only
/// when the mount found there is the recorded one (its mount id) is it
/// detached, through that descriptor; one gone already is skipped, one
/// that is not found as recorded (another mount over it, a symlink on the
/// way) is left, with a warning naming it. Every mount is tried; the
/// failures are reported together.
pub fn unmount(mounts: &[HostMount]) -> Result<()> {
    if mounts.is_empty() {
        return Ok(());
    }
    let root = open(
        "/",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx("open /")?;
    let mut failed = Vec::new();
    for m in unmount_order(mounts) {
        if let Err(e) = unmount_one(root.as_fd(), m) {
            failed.push(e.to_string());
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Error::Unmount(failed.join("; ")))
    }
}

fn unmount_one(root: std::os::fd::BorrowedFd<'_>, m: &HostMount) -> Result<()> {
    let rel = m.point.strip_prefix("/").unwrap_or(&m.point);
    let rel = if rel.as_os_str().is_empty() {
        ".".to_string()
    } else {
        rel.to_string_lossy().into_owned()
    };
    let fd = match openat2_beneath(
        root,
        &rel,
        libc::O_PATH | libc::O_NOFOLLOW,
        libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS,
    ) {
        Ok(fd) => fd,
        // Gone with its mount point (or with a mount above it).
        Err(nix::Error::ENOENT) => return Ok(()),
        // A symlink on the way: not the path rt recorded; never followed.
        Err(nix::Error::ELOOP | nix::Error::EXDEV) => {
            log::warn!(
                "{}: a symlink is on the way to rt's mount {} now: left mounted",
                m.point.display(),
                m.id
            );
            return Ok(());
        }
        Err(e) => return Err(e).with_ctx(|| format!("open mount point {}", m.point.display())),
    };
    let shown = mount_id(fd.as_fd())?;
    if shown != m.id {
        // Not provably rt's: left, and the container is deleted anyway
        // (a delete that can never finish helps nobody).
        if is_mounted(m.id)? {
            log::warn!(
                "{}: rt's mount {} is not the one found there (mount {shown}, made over it?): left mounted",
                m.point.display(),
                m.id
            );
        }
        // Else unmounted already (with a mount above it, or by hand).
        return Ok(());
    }
    umount2(fd_path(&fd).as_str(), MntFlags::MNT_DETACH)
        .with_ctx(|| format!("unmount {}", m.point.display()))
}

/// The id of the mount a descriptor is on, as mountinfo numbers it.
fn mount_id(fd: std::os::fd::BorrowedFd<'_>) -> Result<u64> {
    let file = format!("/proc/self/fdinfo/{}", fd.as_raw_fd());
    let text = std::fs::read_to_string(&file).with_ctx(|| format!("read {file}"))?;
    text.lines()
        .find_map(|l| l.strip_prefix("mnt_id:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| Error::Protocol(format!("{file}: no mnt_id")))
}

fn is_mounted(id: u64) -> Result<bool> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ctx("read /proc/self/mountinfo")?;
    let found = entries(&info).any(|(i, _)| i == id);
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = "27 1 254:0 / / rw shared:1 - ext4 /dev/vda rw\n\
        60 27 0:50 / /b/rootfs rw shared:9 - overlay overlay rw\n\
        61 60 0:51 / /b/rootfs/mnt/pre rw - tmpfs tmpfs rw\n";

    #[test]
    fn only_new_mounts_under_the_root_are_the_containers() {
        let snap = Snapshot::of(BEFORE);
        let after = format!(
            "{BEFORE}70 60 0:50 / /b/rootfs rw - overlay overlay rw\n\
             71 70 0:51 / /b/rootfs/mnt/pre rw - tmpfs tmpfs rw\n\
             72 70 0:60 / /b/rootfs/proc rw - proc proc rw\n\
             73 70 0:61 / /b/rootfs/dev rw - tmpfs tmpfs rw\n\
             74 73 0:62 / /b/rootfs/dev/pts rw - devpts devpts rw\n\
             75 27 0:63 / /b/rootfs2 rw - tmpfs tmpfs rw\n\
             76 27 0:64 / /srv/x\\040y rw - tmpfs tmpfs rw\n"
        );
        let got = snap.new_under(&after, Path::new("/b/rootfs"));
        let ids: Vec<u64> = got.iter().map(|m| m.id).collect();
        assert_eq!(
            ids,
            vec![70, 71, 72, 73, 74],
            "not the root's own mount (60), nor the mount that was under it (61), nor a sibling"
        );
        assert_eq!(got[4].point, Path::new("/b/rootfs/dev/pts"));
    }

    #[test]
    fn deepest_first_and_stacked_last_made_first() {
        let m = |id, p: &str| HostMount {
            id,
            point: p.into(),
        };
        let made = [
            m(70, "/b/rootfs"),
            m(72, "/b/rootfs/proc"),
            m(73, "/b/rootfs/dev"),
            m(74, "/b/rootfs/dev/pts"),
            m(75, "/b/rootfs/proc"),
        ];
        let order: Vec<u64> = unmount_order(&made).iter().map(|m| m.id).collect();
        assert_eq!(order, vec![74, 75, 73, 72, 70]);
    }
}
