//! A handle on a procfs mount that was checked to be procfs, and opening
//! files beneath it without crossing mounts or following magic links.
//! Writes to procfs (sysctl, oom_score_adj, ...) go through this so that a
//! container cannot redirect them by mounting over /proc.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use crate::error::{Context, Error, Result};
use crate::sys::openat2::openat2_beneath;

const PROC_SUPER_MAGIC: i64 = 0x9fa0;
const PROC_ROOT_INO: u64 = 1;

pub struct ProcFs {
    root: OwnedFd,
}

impl ProcFs {
    /// Opens `path` (normally `/proc`) and checks it is the root of a procfs.
    pub fn open(path: &Path) -> Result<ProcFs> {
        let root: OwnedFd = nix::fcntl::open(
            path,
            nix::fcntl::OFlag::O_PATH
                | nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_CLOEXEC
                | nix::fcntl::OFlag::O_NOFOLLOW,
            nix::sys::stat::Mode::empty(),
        )
        .with_ctx(|| format!("open {}", path.display()))?;
        let st = nix::sys::statfs::fstatfs(root.as_fd())
            .with_ctx(|| format!("statfs {}", path.display()))?;
        if st.filesystem_type().0 as i64 != PROC_SUPER_MAGIC {
            return Err(Error::UnsafePath {
                path: path.to_path_buf(),
                reason: "is not a procfs mount: refusing to write through it".into(),
            });
        }
        // The root of a procfs, not a directory inside one bind-mounted
        // over /proc (its inode is PROC_ROOT_INO).
        let ino = nix::sys::stat::fstat(root.as_fd())
            .with_ctx(|| format!("stat {}", path.display()))?
            .st_ino;
        if ino != PROC_ROOT_INO {
            return Err(Error::UnsafePath {
                path: path.to_path_buf(),
                reason: "is not the root of a procfs: refusing to write through it".into(),
            });
        }
        Ok(ProcFs { root })
    }

    /// Opens `rel` beneath the procfs root with openat2, refusing symlinks
    /// that leave it, magic links, and other mounts on the way.
    pub fn open_beneath(&self, rel: &str, flags: i32) -> Result<OwnedFd> {
        openat2_beneath(
            &self.root,
            rel,
            flags,
            libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS | libc::RESOLVE_NO_XDEV,
        )
        .with_ctx(|| format!("open /proc/{rel}"))
    }
}
