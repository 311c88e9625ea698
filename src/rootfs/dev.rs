//! /dev: the default device nodes and symlinks, the config's devices,
//! and /dev/console bound to the container's pty.

use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{makedev, Mode, SFlag};
use nix::unistd::{fchownat, Gid, Uid};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};

use super::Setup;
use crate::error::{Context, Error, Result};
use crate::rootfs::resolve::{create_in_root, fd_path, open_in_root, try_open_in_root};

/// The default devices every container gets (runc's list, in runc's
/// order: a rootless container's binds show it in its mount table).
const DEFAULT_DEVICES: &[(&str, u64, u64)] = &[
    ("/dev/null", 1, 3),
    ("/dev/random", 1, 8),
    ("/dev/full", 1, 7),
    ("/dev/tty", 5, 0),
    ("/dev/zero", 1, 5),
    ("/dev/urandom", 1, 9),
];

const DEV_SYMLINKS: &[(&str, &str)] = &[
    ("/proc/self/fd", "/dev/fd"),
    ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"),
    ("/proc/self/fd/2", "/dev/stderr"),
];

/// Default devices, `linux.devices`, the /dev symlinks and /dev/ptmx. All
/// through a /dev descriptor resolved inside the root (CVE-2026-41579).
pub(super) fn setup_dev(s: &Setup, root: BorrowedFd<'_>) -> Result<()> {
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
                return Err(Error::InvalidField {
                    field: "linux.devices".into(),
                    reason: format!(
                        "{} has type \"a\", which is only for cgroup rules",
                        d.path().display()
                    ),
                })
            }
        };
        if !d.path().starts_with("/dev") {
            return Err(Error::InvalidField {
                field: "linux.devices".into(),
                reason: format!("{} is not under /dev", d.path().display()),
            });
        }
        let number = |n: i64| {
            u64::try_from(n).map_err(|_| Error::InvalidField {
                field: "linux.devices".into(),
                reason: format!("{} has a negative device number {n}", d.path().display()),
            })
        };
        make_device(
            s,
            root,
            d.path(),
            kind,
            number(d.major())?,
            number(d.minor())?,
            d.file_mode().unwrap_or(0o666),
            d.uid().unwrap_or(0),
            d.gid().unwrap_or(0),
        )?;
    }
    for (target, link) in DEV_SYMLINKS {
        symlink_in(dev.as_fd(), target, link.trim_start_matches("/dev/"))?;
    }
    if try_open_in_root(root, Path::new("/proc/kcore"), libc::O_PATH)?.is_some() {
        symlink_in(dev.as_fd(), "/proc/kcore", "core")?;
    }
    // With a private devpts, /dev/ptmx must be its ptmx.
    let pts_ptmx = try_open_in_root(root, Path::new("/dev/pts/ptmx"), libc::O_PATH)?;
    if pts_ptmx.is_some() {
        let _ = nix::unistd::unlinkat(&dev, "ptmx", nix::unistd::UnlinkatFlags::NoRemoveDir);
        symlink_in(dev.as_fd(), "pts/ptmx", "ptmx")?;
    }
    Ok(())
}

fn symlink_in(dir: BorrowedFd<'_>, target: &str, name: &str) -> Result<()> {
    match nix::unistd::symlinkat(target, dir, name) {
        Ok(()) | Err(nix::Error::EEXIST) => Ok(()),
        Err(e) => Err(e).with_ctx(|| format!("symlink /dev/{name} -> {target}")),
    }
}

#[allow(clippy::too_many_arguments)]
fn make_device(
    s: &Setup,
    root: BorrowedFd<'_>,
    path: &Path,
    kind: SFlag,
    major: u64,
    minor: u64,
    mode: u32,
    uid: u32,
    gid: u32,
) -> Result<()> {
    let parent = path.parent().unwrap_or(Path::new("/dev"));
    let name = path.file_name().ok_or_else(|| Error::InvalidField {
        field: "linux.devices".into(),
        reason: format!("bad path {}", path.display()),
    })?;
    let dir = create_in_root(root.as_fd(), parent, false)?;
    let dir = open_in_root(root.as_fd(), parent, libc::O_PATH | libc::O_DIRECTORY)
        .or(Ok::<_, Error>(dir))?;
    if s.in_userns {
        // mknod is not allowed in a user namespace: bind the host's node
        // onto a file made here. Whatever the image has at the path is
        // removed first, never followed (CVE-2025-31133: a /dev/null that
        // is a symlink to a procfs file).
        match nix::unistd::unlinkat(&dir, name, nix::unistd::UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(nix::Error::ENOENT) => {}
            Err(e) => {
                return Err(e).with_ctx(|| format!("remove {} from the image", path.display()))
            }
        }
        nix::sys::stat::mknodat(
            &dir,
            name,
            SFlag::S_IFREG,
            Mode::from_bits_truncate(0o644),
            0,
        )
        .with_ctx(|| format!("create {}", path.display()))?;
        let target = nix::fcntl::openat(
            &dir,
            name,
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .with_ctx(|| format!("open {}", path.display()))?;
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
/// The target is made or opened in /dev's descriptor without following a
/// symlink (CVE-2025-52565: an image's /dev/console pointing at
/// /etc/passwd or a procfs file would get the pty mounted over it), and
/// must be a regular file or a character device.
pub fn bind_console(root: BorrowedFd<'_>, peer: BorrowedFd<'_>) -> Result<()> {
    let dev = open_in_root(root, Path::new("/dev"), libc::O_PATH | libc::O_DIRECTORY)?;
    let open = || {
        nix::fcntl::openat(
            &dev,
            "console",
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
    };
    let target = match open() {
        Ok(fd) => fd,
        Err(nix::Error::ENOENT) => {
            match nix::sys::stat::mknodat(
                &dev,
                "console",
                SFlag::S_IFREG,
                Mode::from_bits_truncate(0o600),
                0,
            ) {
                Ok(()) | Err(nix::Error::EEXIST) => {}
                Err(e) => return Err(e).ctx("create /dev/console"),
            }
            open().ctx("open /dev/console")?
        }
        Err(e) => return Err(e).ctx("open /dev/console"),
    };
    let kind = SFlag::from_bits_truncate(
        nix::sys::stat::fstat(&target)
            .ctx("stat /dev/console")?
            .st_mode,
    ) & SFlag::S_IFMT;
    if kind == SFlag::S_IFLNK {
        return Err(Error::Sys {
            context: "/dev/console in the container is a symlink: refusing to mount the console through it".into(),
            source: nix::Error::ELOOP,
        });
    }
    if kind != SFlag::S_IFREG && kind != SFlag::S_IFCHR {
        return Err(Error::UnsafePath {
            path: "/dev/console".into(),
            reason: "in the container is neither a file nor a character device: refusing to mount the console on it".into(),
        });
    }
    mount(
        Some(fd_path(peer).as_str()),
        fd_path(&target).as_str(),
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .ctx("bind the console onto /dev/console")
}

/// Moves stdio descriptors open on the host's /dev/null to the
/// container's, once the container's root is `/`: CRIU dumps only files
/// on the container's own mounts, and the host's /dev is not one (Podman's
/// conmon hands the init such a stdin). The container's /dev/null is
/// checked to be the 1:3 device first; where it is missing or is not, the
/// descriptors stay as they are (the container runs; only a dump of it
/// would fail, naming the file).
pub fn reopen_dev_null() -> Result<()> {
    let is_null = |st: &nix::sys::stat::FileStat| {
        SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFCHR
            && st.st_rdev == makedev(1, 3)
    };
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let stdio_fds = [stdin.as_fd(), stdout.as_fd(), stderr.as_fd()];
    for (fd, stdio) in (0..).zip(stdio_fds) {
        let Ok(st) = nix::sys::stat::fstat(stdio) else {
            continue;
        };
        if !is_null(&st) {
            continue;
        }
        let Ok(fl) = nix::fcntl::fcntl(stdio, nix::fcntl::FcntlArg::F_GETFL) else {
            continue;
        };
        let access = OFlag::from_bits_truncate(fl) & OFlag::O_ACCMODE;
        let Ok(ours) = nix::fcntl::open(
            "/dev/null",
            access | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) else {
            return Ok(());
        };
        let ours_st = nix::sys::stat::fstat(&ours).ctx("stat the container's /dev/null")?;
        if !is_null(&ours_st) {
            return Ok(());
        }
        if (ours_st.st_dev, ours_st.st_ino) == (st.st_dev, st.st_ino) {
            continue;
        }
        // dup2 clears O_CLOEXEC on the stdio number: the process keeps it.
        crate::sys::fd::dup2_onto(&ours, fd)
            .with_ctx(|| format!("put the container's /dev/null on descriptor {fd}"))?;
    }
    Ok(())
}
