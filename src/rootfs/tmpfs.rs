//! tmpfs mounts as runc makes them: without `mode=`, the tmpfs root takes
//! the mode of the directory it covers (not tmpfs's own 1777), and keeps
//! tmpfs's 1777 on a directory rt made for it; with
//! `tmpcopyup`, the covered directory's content is copied in.

use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::{lchown, MetadataExt, PermissionsExt};
use std::path::Path;

use nix::fcntl::{open, OFlag};
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{fstat, Mode};

use crate::config::mount_options::MountOptions;
use crate::error::{Context, Result};
use crate::rootfs::resolve::{create_in_root, fd_path, open_in_root, try_open_in_root};

/// Mounts a tmpfs at `dest` inside `root` with `flags` and the options'
/// data.
pub(super) fn mount_tmpfs(
    root: BorrowedFd<'_>,
    dest: &Path,
    source: &str,
    flags: MsFlags,
    opts: &MountOptions,
) -> Result<()> {
    let at = |what: &str| format!("{what} {}", dest.display());
    let existed = try_open_in_root(root, dest, libc::O_PATH)?.is_some();
    let target = create_in_root(root, dest, false)?;
    let st = fstat(target.as_fd()).with_ctx(|| at("stat"))?;
    let mut data = opts.data.clone();
    if existed && !data.iter().any(|d| d.starts_with("mode=")) {
        data.push(format!("mode={:o}", st.st_mode & 0o7777));
    }
    let data = data.join(",");
    // Opened before the mount hides it: what tmpcopyup copies from.
    let covered = if opts.tmpcopyup {
        Some(
            open(
                fd_path(&target).as_str(),
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .with_ctx(|| at("tmpcopyup: open the directory under"))?,
        )
    } else {
        None
    };
    let first = if covered.is_some() {
        flags - MsFlags::MS_RDONLY
    } else {
        flags
    };
    mount(
        Some(source),
        fd_path(&target).as_str(),
        Some("tmpfs"),
        first,
        Some(data.as_str()),
    )
    .with_ctx(|| at("mount tmpfs"))?;
    let Some(covered) = covered else {
        return Ok(());
    };
    let new = open_in_root(root, dest, libc::O_PATH | libc::O_DIRECTORY)?;
    copy_tree(Path::new(&fd_path(&covered)), Path::new(&fd_path(&new)))
        .with_ctx(|| at("tmpcopyup: copy the directory's content into the tmpfs on"))?;
    if flags.contains(MsFlags::MS_RDONLY) {
        mount(
            None::<&str>,
            fd_path(&new).as_str(),
            Some("tmpfs"),
            flags | MsFlags::MS_REMOUNT,
            Some(data.as_str()),
        )
        .with_ctx(|| at("remount read-only the tmpfs on"))?;
    }
    Ok(())
}

/// Copies the entries of `from` into `to`: directories, files, symlinks
/// (never followed) and device nodes, with their modes and owners.
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let (src, dst) = (e.path(), to.join(e.file_name()));
        let md = std::fs::symlink_metadata(&src)?;
        let ft = md.file_type();
        if ft.is_dir() {
            std::fs::create_dir(&dst)?;
            copy_tree(&src, &dst)?;
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dst)?;
        } else if ft.is_file() {
            std::fs::copy(&src, &dst)?;
        } else {
            nix::sys::stat::mknod(
                &dst,
                nix::sys::stat::SFlag::from_bits_truncate(md.mode()),
                Mode::from_bits_truncate(md.mode()),
                md.rdev(),
            )
            .map_err(std::io::Error::from)?;
        }
        lchown(&dst, Some(md.uid()), Some(md.gid()))?;
        if !ft.is_symlink() {
            std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(md.mode() & 0o7777))?;
        }
    }
    Ok(())
}
