//! seccomp(SECCOMP_SET_MODE_FILTER) with flags, which seccompiler's own
//! `apply_filter` does not take (NEW_LISTENER, WAIT_KILLABLE_RECV, TSYNC...).

use std::os::fd::{FromRawFd, OwnedFd};

/// Installs `prog` with `flags`. With SECCOMP_FILTER_FLAG_NEW_LISTENER
/// the kernel returns the notify listener, given back here.
pub fn set_mode_filter(
    prog: seccompiler::BpfProgramRef,
    flags: libc::c_ulong,
    new_listener: bool,
) -> nix::Result<Option<OwnedFd>> {
    let fprog = libc::sock_fprog {
        len: u16::try_from(prog.len()).map_err(|_| nix::Error::EINVAL)?,
        // seccompiler's sock_filter is #[repr(C)] with the kernel's
        // layout, the same as libc's.
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: the kernel copies the program from `fprog`, which points
    // into `prog`; both outlive the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            &fprog as *const libc::sock_fprog,
        )
    };
    let r = nix::errno::Errno::result(r)?;
    // SAFETY: with NEW_LISTENER, seccomp returned a new descriptor
    // (close-on-exec) that nothing else owns.
    Ok(new_listener.then(|| unsafe { OwnedFd::from_raw_fd(super::fd::syscall_int(r)) }))
}
