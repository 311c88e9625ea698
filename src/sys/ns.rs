//! nsfs: what kind of namespace a descriptor refers to.

use std::os::fd::{AsRawFd, BorrowedFd};

/// NS_GET_NSTYPE: _IO(0xb7, 0x3).
const NS_GET_NSTYPE: libc::c_ulong = 0xb703;

/// The CLONE_NEW* flag of the namespace `fd` refers to; ENOTTY when it is
/// not a namespace file.
pub fn ns_type(fd: BorrowedFd) -> nix::Result<libc::c_int> {
    // SAFETY: NS_GET_NSTYPE takes no argument and only returns a value.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), NS_GET_NSTYPE) };
    nix::errno::Errno::result(r)
}
