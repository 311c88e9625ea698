//! `linux.sysctl`: which keys may be set, and writing them through a
//! verified procfs handle.

use std::os::fd::{AsFd, OwnedFd};

use crate::error::{Context, Error, Result};
use crate::rootfs::procfs::ProcFs;

/// Writes one sysctl through `/proc/sys`, resolved beneath a procfs handle
/// that was checked to be a real procfs.
pub fn write(proc: &ProcFs, key: &str, value: &str) -> Result<()> {
    let rel = format!("sys/{}", key.replace('.', "/"));
    let fd: OwnedFd = proc.open_beneath(&rel, libc::O_WRONLY)?;
    let file = std::fs::File::from(fd);
    nix::unistd::write(file.as_fd(), value.as_bytes())
        .with_ctx(|| format!("write sysctl {key}={value}"))
        .map(|_| ())
        .map_err(|e| match e {
            Error::Sys { context, source } => Error::Sys { context, source },
            other => other,
        })
}
