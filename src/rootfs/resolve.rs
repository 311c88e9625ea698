//! Path resolution inside the container root that never leaves it.
//! Every destination under the root is opened with openat2(RESOLVE_IN_ROOT)
//! and used through its descriptor (as `/proc/self/fd/N` for mount(2)), so a
//! symlink in the image cannot point a mount or a write at the host.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path};

use nix::sys::stat::{Mode, SFlag};

use crate::error::{Context, Result};
use crate::sys::openat2::openat2_beneath;

const IN_ROOT: u64 = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;

/// The `/proc/self/fd/N` path of a descriptor, for syscalls that take paths.
pub fn fd_path(fd: impl AsFd) -> String {
    format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd())
}

/// The path relative to the root ("/a/b" -> "a/b"), refusing `..`.
pub fn relative(path: &Path) -> Result<String> {
    let mut parts = Vec::new();
    for c in path.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
            Component::ParentDir => parts.push("..".into()),
            Component::Prefix(_) => {}
        }
    }
    Ok(if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    })
}

/// Opens `path` inside `root` (O_PATH unless `flags` says otherwise).
pub fn open_in_root(root: BorrowedFd<'_>, path: &Path, flags: i32) -> Result<OwnedFd> {
    let rel = relative(path)?;
    openat2_beneath(root, &rel, flags, IN_ROOT)
        .with_ctx(|| format!("open {} in the container root", path.display()))
}

/// Like `open_in_root` but `None` when the path does not exist.
pub fn try_open_in_root(root: BorrowedFd<'_>, path: &Path, flags: i32) -> Result<Option<OwnedFd>> {
    let rel = relative(path)?;
    match openat2_beneath(root, &rel, flags, IN_ROOT) {
        Ok(fd) => Ok(Some(fd)),
        Err(nix::Error::ENOENT) => Ok(None),
        Err(e) => Err(e).with_ctx(|| format!("open {} in the container root", path.display())),
    }
}

/// Creates `path` inside `root` (its parents as directories, the last as a
/// directory or an empty file) and returns an O_PATH descriptor on it.
/// Every step resolves within the root.
pub fn create_in_root(root: BorrowedFd<'_>, path: &Path, file: bool) -> Result<OwnedFd> {
    create_following(root, path, file, 0)
}

/// Symlinks followed by one `create_in_root`, as the kernel's MAXSYMLINKS.
const MAX_SYMLINKS: usize = 40;

fn create_following(
    root: BorrowedFd<'_>,
    path: &Path,
    file: bool,
    links: usize,
) -> Result<OwnedFd> {
    if links > MAX_SYMLINKS {
        return Err(crate::error::Error::Sys {
            context: format!("create {} in the container root", path.display()),
            source: nix::Error::ELOOP,
        });
    }
    if let Some(fd) = try_open_in_root(root, path, libc::O_PATH)? {
        return Ok(fd);
    }
    let rel = relative(path)?;
    let comps: Vec<&str> = rel
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    let mut cur: Option<OwnedFd> = None;
    let mut prefix = String::new();
    for (i, comp) in comps.iter().enumerate() {
        let last = i + 1 == comps.len();
        if !prefix.is_empty() {
            prefix.push('/');
        }
        prefix.push_str(comp);
        let parent = cur.as_ref().map_or(root, |c| c.as_fd());
        match openat2_beneath(root, &prefix, libc::O_PATH, IN_ROOT) {
            Ok(fd) => {
                cur = Some(fd);
                continue;
            }
            Err(nix::Error::ENOENT) => {}
            Err(e) => return Err(e).with_ctx(|| format!("open {prefix} in the container root")),
        }
        let name = CString::new(*comp).map_err(|_| crate::error::Error::UnsafePath {
            path: path.to_path_buf(),
            reason: "contains a NUL byte".into(),
        })?;
        // The parent was opened beneath the root, and `name` is one plain
        // component: what is made cannot land outside the root.
        let made = if last && file {
            nix::sys::stat::mknodat(
                parent,
                name.as_c_str(),
                SFlag::S_IFREG,
                Mode::from_bits_truncate(0o644),
                0,
            )
        } else {
            nix::sys::stat::mkdirat(parent, name.as_c_str(), Mode::from_bits_truncate(0o755))
        };
        if let Err(e) = made {
            if e != nix::Error::EEXIST {
                return Err(e).with_ctx(|| format!("create {prefix} in the container root"));
            }
            // It exists but did not resolve: a symlink to nowhere (yet).
            // Create its target instead, resolved inside the root again,
            // as runc does for images with links like /var/run -> /run.
            if let Ok(target) = nix::fcntl::readlinkat(parent.as_fd(), name.as_c_str()) {
                let target = Path::new(&target);
                let rest: std::path::PathBuf = comps[i + 1..].iter().collect();
                let base = if target.is_absolute() {
                    target.to_path_buf()
                } else {
                    Path::new("/")
                        .join(&prefix)
                        .parent()
                        .unwrap_or(Path::new("/"))
                        .join(target)
                };
                return create_following(root, &base.join(rest), file, links + 1);
            }
        }
        cur = Some(
            openat2_beneath(root, &prefix, libc::O_PATH, IN_ROOT)
                .with_ctx(|| format!("open {prefix} in the container root"))?,
        );
    }
    match cur {
        Some(fd) => Ok(fd),
        None => Ok(nix::fcntl::openat(
            root.as_fd(),
            ".",
            nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .ctx("reopen root")?),
    }
}

/// Whether an O_PATH descriptor refers to a directory.
pub fn is_dir(fd: BorrowedFd<'_>) -> Result<bool> {
    let st = nix::sys::stat::fstat(fd.as_fd()).ctx("fstat")?;
    Ok(SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::fcntl::{open, OFlag};

    fn root_of(d: &Path) -> OwnedFd {
        open(
            d,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .unwrap()
    }

    #[test]
    fn symlinks_cannot_leave_the_root() {
        let host = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(host.path(), root.path().join("escape")).unwrap();
        std::os::unix::fs::symlink("../../../..", root.path().join("up")).unwrap();
        let r = root_of(root.path());
        // Creating through the absolute symlink lands inside the root.
        create_in_root(r.as_fd(), Path::new("/escape/x"), false).unwrap();
        assert!(!host.path().join("x").exists());
        assert!(root
            .path()
            .join(host.path().strip_prefix("/").unwrap())
            .join("x")
            .is_dir());
        create_in_root(r.as_fd(), Path::new("/up/y"), true).unwrap();
        assert!(root.path().join("y").is_file());
        // `..` is clamped to the root too.
        let fd = open_in_root(r.as_fd(), Path::new("/../../y"), libc::O_PATH).unwrap();
        assert!(!is_dir(fd.as_fd()).unwrap());
    }

    #[test]
    fn relative_paths() {
        assert_eq!(relative(Path::new("/")).unwrap(), ".");
        assert_eq!(relative(Path::new("/dev/pts")).unwrap(), "dev/pts");
    }
}
