//! Which config mounts may land inside the container's /proc (runc's
//! checkProcMount): procfs itself on /proc, and over single files only
//! the few that lxcfs emulates. Anything else there (a bind over
//! /proc/sys/kernel/core_pattern, /proc/sysrq-trigger, /proc/self/attr,
//! possibly reached through an image's symlink) would redirect the
//! kernel's or the runtime's own writes (CVE-2025-52881).

use std::collections::VecDeque;
use std::ffi::OsString;
use std::os::fd::BorrowedFd;
use std::path::{Component, Path, PathBuf};

use nix::fcntl::readlinkat;
use nix::sys::stat::SFlag;

use crate::error::{Context, Error, Result};
use crate::rootfs::resolve::try_open_in_root;

/// Files under /proc a mount may cover: what lxcfs and its peers emulate.
const ALLOWED: &[&str] = &[
    "cpuinfo",
    "diskstats",
    "meminfo",
    "stat",
    "swaps",
    "uptime",
    "loadavg",
    "slabinfo",
    "net/dev",
    "sys/kernel/ns_last_pid",
];

/// The decision, on the destination as resolved inside the root
/// (`resolved` is absolute within the container: "/proc/sys/x").
pub fn check(resolved: &Path, typ: &str, source_is_procfs: bool) -> Result<()> {
    let Ok(rel) = resolved.strip_prefix("/proc") else {
        return Ok(());
    };
    if rel.as_os_str().is_empty() {
        return if typ == "proc" || source_is_procfs {
            Ok(())
        } else {
            Err(Error::UnsafePath {
                path: resolved.to_path_buf(),
                reason: "cannot be mounted because it is not of type proc".into(),
            })
        };
    }
    if ALLOWED.iter().any(|a| rel == Path::new(a)) {
        return Ok(());
    }
    Err(Error::UnsafePath {
        path: resolved.to_path_buf(),
        reason: "cannot be mounted because it is inside /proc".into(),
    })
}

/// Where `dest` lands inside the root, as an absolute path there: each
/// component looked at without following it, a symlink's target put in
/// its place (inside the root; dangling ones too, which a mount would
/// create), what does not exist taken as written.
pub fn resolve(root: BorrowedFd<'_>, dest: &Path) -> Result<PathBuf> {
    const MAX_SYMLINKS: usize = 40;
    let mut out = PathBuf::from("/");
    let mut pending: VecDeque<OsString> = parts(dest);
    let mut links = 0;
    while let Some(c) = pending.pop_front() {
        if c == ".." {
            out.pop();
            continue;
        }
        let next = out.join(&c);
        let Some(fd) = try_open_in_root(root, &next, libc::O_PATH | libc::O_NOFOLLOW)? else {
            out = next;
            continue;
        };
        let st = nix::sys::stat::fstat(&fd).with_ctx(|| format!("stat {}", next.display()))?;
        if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFLNK {
            out = next;
            continue;
        }
        links += 1;
        if links > MAX_SYMLINKS {
            return Err(Error::Sys {
                context: format!("resolve {}", dest.display()),
                source: nix::Error::ELOOP,
            });
        }
        let target = readlinkat(&fd, "").with_ctx(|| format!("readlink {}", next.display()))?;
        let target = Path::new(&target);
        if target.is_absolute() {
            out = PathBuf::from("/");
        }
        for p in parts(target).into_iter().rev() {
            pending.push_front(p);
        }
    }
    Ok(out)
}

/// The named components of a path, `..` kept, `.` and `/` dropped.
fn parts(p: &Path) -> VecDeque<OsString> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn outside_proc_anything_goes() {
        assert!(check(Path::new("/etc/hosts"), "bind", false).is_ok());
        assert!(check(Path::new("/procfoo"), "bind", false).is_ok());
    }

    #[test]
    fn proc_itself_only_as_procfs() {
        assert!(check(Path::new("/proc"), "proc", false).is_ok());
        assert!(check(Path::new("/proc"), "bind", true).is_ok());
        let e = check(Path::new("/proc"), "tmpfs", false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not of type proc"), "{e}");
    }

    #[test]
    fn inside_proc_only_the_emulated_files() {
        for ok in [
            "/proc/cpuinfo",
            "/proc/meminfo",
            "/proc/net/dev",
            "/proc/sys/kernel/ns_last_pid",
        ] {
            assert!(check(Path::new(ok), "bind", false).is_ok(), "{ok}");
        }
        for bad in [
            "/proc/sys/kernel/core_pattern",
            "/proc/sysrq-trigger",
            "/proc/self/attr/current",
            "/proc/1/attr",
            "/proc/sys",
        ] {
            let e = check(Path::new(bad), "bind", false)
                .unwrap_err()
                .to_string();
            assert!(e.contains("inside /proc"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_symlink_to_proc_is_followed_inside_the_root() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("proc/sys/kernel")).unwrap();
        std::os::unix::fs::symlink("/proc/sys/kernel", root.path().join("k")).unwrap();
        let fd = nix::fcntl::open(
            root.path(),
            nix::fcntl::OFlag::O_PATH
                | nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .unwrap();
        let r = resolve(fd.as_fd(), Path::new("/k/core_pattern")).unwrap();
        assert_eq!(r, Path::new("/proc/sys/kernel/core_pattern"));
        let r = resolve(fd.as_fd(), Path::new("/new/dir")).unwrap();
        assert_eq!(r, Path::new("/new/dir"));
        // Dangling, relative, and `..` past the root: all stay inside.
        std::os::unix::fs::symlink("../../proc/sysrq-trigger", root.path().join("t")).unwrap();
        let r = resolve(fd.as_fd(), Path::new("/t")).unwrap();
        assert_eq!(r, Path::new("/proc/sysrq-trigger"));
        std::os::unix::fs::symlink("/k/../../../etc", root.path().join("e")).unwrap();
        let r = resolve(fd.as_fd(), Path::new("/e/x")).unwrap();
        assert_eq!(r, Path::new("/etc/x"));
    }
}
