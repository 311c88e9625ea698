//! A handle on a procfs mount that was checked to be procfs, and opening
//! files beneath it without crossing mounts or following magic links.
//! Writes to procfs (sysctl, oom_score_adj, ...) go through this so that a
//! container cannot redirect them by mounting over /proc.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use crate::error::{Context, Error, Result};

const PROC_SUPER_MAGIC: i64 = 0x9fa0;

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
            return Err(Error::Invalid(format!(
                "{} is not a procfs mount: refusing to write through it",
                path.display()
            )));
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

/// openat2(2) with the given resolve flags; always O_CLOEXEC.
pub fn openat2_beneath(
    dir: &OwnedFd,
    rel: &str,
    flags: i32,
    resolve: u64,
) -> std::result::Result<OwnedFd, nix::Error> {
    let c = CString::new(rel).map_err(|_| nix::Error::EINVAL)?;
    // struct open_how { u64 flags; u64 mode; u64 resolve; }
    let how: [u64; 3] = [(flags | libc::O_CLOEXEC) as u64, 0, resolve];
    // SAFETY: `c` is a valid NUL-terminated string and `how` has the layout
    // of struct open_how, whose size we pass; the kernel only reads them.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.as_raw_fd(),
            c.as_ptr(),
            how.as_ptr(),
            std::mem::size_of_val(&how),
        )
    };
    if fd < 0 {
        return Err(nix::Error::last());
    }
    // SAFETY: the kernel returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}
