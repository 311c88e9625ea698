//! tmpfs mounts as runc makes them: without `mode=`, the tmpfs root takes
//! the mode of the directory it covers (not tmpfs's own 1777), and keeps
//! tmpfs's 1777 on a directory rt made for it; with
//! `tmpcopyup`, the covered directory's content is copied in.

use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::dir::Dir;
use nix::fcntl::{open, openat, readlinkat, AtFlags, OFlag};
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{
    fchmod, fchmodat, fstat, fstatat, mkdirat, mknodat, FchmodatFlags, Mode, SFlag,
};
use nix::unistd::{fchown, fchownat, symlinkat, Gid, Uid};

use super::mounts::{reopen_mounted, Made};
use crate::config::mount_options::MountOptions;
use crate::error::{Context, Result};
use crate::rootfs::resolve::{create_in_root, fd_path, try_open_in_root};

/// Mounts a tmpfs at `dest` inside `root` with `flags` and the options'
/// data.
pub(super) fn mount_tmpfs(
    root: BorrowedFd<'_>,
    dest: &Path,
    source: &str,
    flags: MsFlags,
    opts: &MountOptions,
) -> Result<Made> {
    let at = |what: &str| format!("{what} {}", dest.display());
    let existed = try_open_in_root(root, dest, libc::O_PATH)?.is_some();
    let target = create_in_root(root, dest, false)?;
    let made = Made::fresh_over(target.as_fd())?;
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
        return Ok(made);
    };
    let new = reopen_mounted(root, dest, made)?;
    let new = open(
        fd_path(&new).as_str(),
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_ctx(|| at("tmpcopyup: open the tmpfs on"))?;
    copy_tree(covered.as_fd(), new.as_fd())
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
    Ok(made)
}

/// Copies the entries of the directory `from` into the directory `to`:
/// directories, files, symlinks (copied as links, never followed) and
/// device nodes, with their modes and owners. Every step is relative to a
/// directory descriptor and opens with O_NOFOLLOW, and a file is checked
/// once open to be the regular file that was listed: an entry swapped for
/// a symlink while rt copies (a racing container) cannot make rt copy a
/// host file into the container.
fn copy_tree(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> nix::Result<()> {
    let list = Dir::openat(
        from,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let names: Vec<CString> = list
        .into_iter()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_owned())
        .filter(|n| n.as_bytes() != b"." && n.as_bytes() != b"..")
        .collect();
    for name in names {
        copy_entry(from, to, &name)?;
    }
    Ok(())
}

fn copy_entry(from: BorrowedFd<'_>, to: BorrowedFd<'_>, name: &CStr) -> nix::Result<()> {
    let nofollow = OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let st = fstatat(from, name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
    let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
    let mode = Mode::from_bits_truncate(st.st_mode & 0o7777);
    let (uid, gid) = (
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
    );
    let made = match kind {
        SFlag::S_IFDIR => {
            let src = openat(
                from,
                name,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | nofollow,
                Mode::empty(),
            )?;
            mkdirat(to, name, Mode::from_bits_truncate(0o700))?;
            let dst = openat(
                to,
                name,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | nofollow,
                Mode::empty(),
            )?;
            copy_tree(src.as_fd(), dst.as_fd())?;
            dst
        }
        SFlag::S_IFREG => {
            let src = openat(
                from,
                name,
                OFlag::O_RDONLY | OFlag::O_NONBLOCK | nofollow,
                Mode::empty(),
            )?;
            let now = fstat(&src)?;
            if SFlag::from_bits_truncate(now.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG
                || (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino)
            {
                return Err(nix::Error::ELOOP);
            }
            let dst = openat(
                to,
                name,
                OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | nofollow,
                Mode::from_bits_truncate(0o600),
            )?;
            let (mut r, mut w) = (std::fs::File::from(src), std::fs::File::from(dst));
            std::io::copy(&mut r, &mut w)
                .map_err(|e| nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
            OwnedFd::from(w)
        }
        SFlag::S_IFLNK => {
            let target = readlinkat(from, name)?;
            symlinkat(target.as_os_str(), to, name)?;
            return fchownat(to, name, uid, gid, AtFlags::AT_SYMLINK_NOFOLLOW);
        }
        _ => {
            mknodat(to, name, kind, mode, st.st_rdev)?;
            fchownat(to, name, uid, gid, AtFlags::AT_SYMLINK_NOFOLLOW)?;
            return fchmodat(to, name, mode, FchmodatFlags::NoFollowSymlink);
        }
    };
    fchown(&made, uid, gid)?;
    fchmod(&made, mode)
}
