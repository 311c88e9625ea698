//! pidfd_open(2) and pidfd_send_signal(2): signals and waits that never
//! reach a recycled pid.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

/// pidfd_open(2).
pub fn pidfd_open(pid: i32) -> nix::Result<OwnedFd> {
    // SAFETY: plain integer arguments; a non-negative return is a new fd.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if r < 0 {
        Err(nix::Error::last())
    } else {
        // SAFETY: the kernel returned a new descriptor nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(super::fd::syscall_int(r)) })
    }
}

/// pidfd_send_signal(2).
pub fn pidfd_send_signal(pidfd: &impl AsFd, sig: i32) -> nix::Result<()> {
    // SAFETY: a valid pidfd, a signal number and no siginfo.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_fd().as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if r < 0 {
        Err(nix::Error::last())
    } else {
        Ok(())
    }
}

/// waitid(P_PIDFD, WEXITED): reaps the process and returns its si_code
/// (CLD_EXITED, CLD_KILLED, CLD_DUMPED) and si_status (the exit code or
/// the signal number). Retries on EINTR.
pub fn wait_exited(pidfd: impl AsFd) -> nix::Result<(i32, i32)> {
    loop {
        // SAFETY: siginfo_t is plain data; waitid fills it.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: P_PIDFD with a valid pidfd and a valid siginfo pointer.
        let r = unsafe {
            libc::waitid(
                libc::P_PIDFD,
                super::fd::as_u32(pidfd.as_fd().as_raw_fd()),
                &mut info,
                libc::WEXITED,
            )
        };
        match nix::errno::Errno::result(r) {
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(e),
            // SAFETY: after a successful WEXITED waitid these fields are set.
            Ok(_) => return Ok(unsafe { (info.si_code, info.si_status()) }),
        }
    }
}
