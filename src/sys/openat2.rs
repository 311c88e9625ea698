//! openat2(2), which nix does not wrap: opening a path with RESOLVE_*
//! flags, the kernel's guarantee that it stays beneath a directory.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

/// openat2(2) with the given resolve flags; always O_CLOEXEC.
pub fn openat2_beneath(
    dir: impl AsFd,
    rel: &str,
    flags: i32,
    resolve: u64,
) -> std::result::Result<OwnedFd, nix::Error> {
    let c = CString::new(rel).map_err(|_| nix::Error::EINVAL)?;
    // struct open_how { u64 flags; u64 mode; u64 resolve; }
    #[allow(clippy::cast_sign_loss)] // open(2) flags are positive bits of an int
    let how: [u64; 3] = [(flags | libc::O_CLOEXEC) as u64, 0, resolve];
    // SAFETY: `c` is a valid NUL-terminated string and `how` has the layout
    // of struct open_how, whose size we pass; the kernel only reads them.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.as_fd().as_raw_fd(),
            c.as_ptr(),
            how.as_ptr(),
            std::mem::size_of_val(&how),
        )
    };
    if fd < 0 {
        return Err(nix::Error::last());
    }
    // SAFETY: the kernel returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(super::fd::syscall_int(fd)) })
}
