//! Masked paths (a read-only empty file or tmpfs over them) and read-only
//! paths (a read-only bind), checked to be what they claim.

use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use nix::mount::{mount, MsFlags};
use nix::sys::stat::{makedev, SFlag};
use nix::sys::statvfs::{fstatvfs, FsFlags};
use oci_spec::runtime::Spec;

use crate::error::{Context, Error, Result};
use crate::rootfs::resolve::{fd_path, is_dir, open_in_root, try_open_in_root};

/// `linux.maskedPaths` and `linux.readonlyPaths`, before the pivot.
pub fn mask_and_protect(spec: &Spec, root: BorrowedFd<'_>) -> Result<()> {
    let Some(linux) = spec.linux().as_ref() else {
        return Ok(());
    };
    // Read-only paths first, then masked ones (runc's order, which shows
    // in the container's mount table).
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
        // The bind keeps the flags of the mount it comes from (as runc's
        // does; in a user namespace they are locked anyway), read-only added.
        let kept = fstatvfs(&fd)
            .with_ctx(|| format!("linux.readonlyPaths: statfs {}", p.display()))?
            .flags();
        let mut flags =
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_REC;
        for (st, ms) in [
            (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
            (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
            (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
            (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
            (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
            (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
        ] {
            if kept.contains(st) {
                flags |= ms;
            }
        }
        mount(
            None::<&str>,
            fd_path(&fd).as_str(),
            None::<&str>,
            flags,
            None::<&str>,
        )
        .with_ctx(|| format!("linux.readonlyPaths: remount {} read-only", p.display()))?;
    }
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
            if is_dir(fd.as_fd())? {
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
    Ok(())
}
