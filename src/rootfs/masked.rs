//! Masked paths (a read-only empty file or tmpfs over them) and read-only
//! paths (a read-only bind), checked to be what they claim.

use std::ffi::CStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::sys::stat::{makedev, SFlag};
use oci_spec::runtime::Spec;

use crate::error::{Context, Error, Result};
use crate::rootfs::resolve::{is_dir, open_in_root, try_open_in_root};
use crate::sys::mount::{self, MountAttr};

/// `linux.maskedPaths` and `linux.readonlyPaths`, before the pivot.
pub fn mask_and_protect(spec: &Spec, root: BorrowedFd<'_>) -> Result<()> {
    let Some(linux) = spec.linux().as_ref() else {
        return Ok(());
    };
    // Read-only paths first, then masked ones (runc's order, which shows
    // in the container's mount table).
    for p in linux.readonly_paths().as_deref().unwrap_or(&[]) {
        let p = Path::new(p);
        // Resolved in the root, following the image's symlinks inside it
        // (runc makes a link's target read-only, not the link), then made
        // read-only on a detached copy before it is attached over the very
        // object opened: nothing looks the path up again, so a racing swap
        // cannot send the flag elsewhere.
        let Some(fd) = try_open_in_root(root, p, libc::O_PATH)? else {
            continue;
        };
        let tree = mount::open_tree_clone(&fd, true)
            .with_ctx(|| format!("linux.readonlyPaths: bind {}", p.display()))?;
        let ro = MountAttr {
            attr_set: mount::MOUNT_ATTR_RDONLY,
            ..Default::default()
        };
        mount::mount_setattr(&tree, true, &ro)
            .with_ctx(|| format!("linux.readonlyPaths: make {} read-only", p.display()))?;
        mount::move_mount(&tree, &fd)
            .with_ctx(|| format!("linux.readonlyPaths: attach {} read-only", p.display()))?;
    }
    let masked = linux.masked_paths().as_deref().unwrap_or(&[]);
    if !masked.is_empty() {
        // The /dev/null bound over masked files must be the real one (1:3).
        let null = open_in_root(root, Path::new("/dev/null"), libc::O_PATH)?;
        let st = nix::sys::stat::fstat(null.as_fd()).ctx("stat /dev/null")?;
        if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFCHR
            || st.st_rdev != makedev(1, 3)
        {
            return Err(Error::UnsafePath {
                path: "/dev/null".into(),
                reason: "in the container is not the 1:3 character device: refusing to mask paths with it".into(),
            });
        }
        // Every masked directory shows one read-only tmpfs of one block
        // and one inode: the first is mounted, the rest are detached
        // copies of it attached by descriptor. One superblock, however
        // many paths (a node with many CPUs masks ~100 per container),
        // and nothing to fill even if a path made it writable.
        let mut shared: Option<(OwnedFd, bool)> = None;
        for p in masked {
            let p = Path::new(p);
            let Some(fd) = try_open_in_root(root, p, libc::O_PATH | libc::O_NOFOLLOW)? else {
                continue;
            };
            let at = || format!("linux.maskedPaths: mask {}", p.display());
            if !is_dir(fd.as_fd())? {
                let copy = mount::open_tree_clone(&null, false).with_ctx(at)?;
                mount::move_mount(&copy, &fd).with_ctx(at)?;
                continue;
            }
            let (tmpfs, attached) = match shared.take() {
                Some(s) => s,
                None => (masking_tmpfs().with_ctx(at)?, false),
            };
            // The detached tmpfs itself goes on the first directory; once
            // attached it can be cloned for the others.
            if attached {
                let copy = mount::open_tree_clone(&tmpfs, false).with_ctx(at)?;
                mount::move_mount(&copy, &fd).with_ctx(at)?;
            } else {
                mount::move_mount(&tmpfs, &fd).with_ctx(at)?;
            }
            shared = Some((tmpfs, true));
        }
    }
    Ok(())
}

/// The tmpfs over masked directories, detached: read-only, one block and
/// one inode (the root's). Kernels that refuse so small a tmpfs get
/// size=4k.
fn masking_tmpfs() -> nix::Result<OwnedFd> {
    let make =
        |opts: &[(&CStr, &CStr)]| mount::fs_detached(c"tmpfs", opts, mount::MOUNT_ATTR_RDONLY);
    match make(&[
        (c"nr_blocks", c"1"),
        (c"nr_inodes", c"1"),
        (c"mode", c"755"),
    ]) {
        Err(nix::Error::EINVAL) => make(&[(c"size", c"4k"), (c"mode", c"755")]),
        r => r,
    }
}
