//! Descriptor operations on plain numbers: in a forked child, closing the
//! copy of a descriptor that an `OwnedFd` of the parent's code still
//! holds; checking and passing the numbers a caller hands rt; taking
//! ownership of a descriptor this process inherited.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Mutex;

/// Closes descriptor number `fd` in a child that will never drop the
/// owner of its copy (it leaves with _exit or exec), so that this is the
/// only close of it in the child.
pub fn close_in_child(fd: RawFd) {
    // SAFETY: by the contract above, no owner in this process closes or
    // uses `fd` after this call.
    unsafe { libc::close(fd) };
}

/// Whether descriptor number `fd` is open in this process.
pub fn is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD only reads the descriptor's flags; a closed number
    // fails with EBADF.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

/// Takes ownership of descriptor number `fd`, which this process
/// inherited across exec (the numbers `rt create` hands rt-shim), and
/// marks it close-on-exec so it reaches no process started later.
/// EBADF if it is not open or is stdio (0-2, which std owns); EBUSY if it
/// was taken before: each number is taken once, so no two owners close it.
pub fn take_inherited(fd: RawFd) -> nix::Result<OwnedFd> {
    static TAKEN: Mutex<Vec<RawFd>> = Mutex::new(Vec::new());
    if fd < 3 || !is_open(fd) {
        return Err(nix::Error::EBADF);
    }
    let mut taken = TAKEN.lock().unwrap_or_else(|p| p.into_inner());
    if taken.contains(&fd) {
        return Err(nix::Error::EBUSY);
    }
    // SAFETY: F_SETFD only changes the descriptor's flags.
    nix::errno::Errno::result(unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) })?;
    taken.push(fd);
    // SAFETY: `fd` is open (checked above) and was inherited, so nothing
    // in this process opened it: it is not stdio (std's) and not taken
    // before (the record above), so this is its one owner.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Clears FD_CLOEXEC on descriptor number `fd` (one the caller passed,
/// as `--preserve-fds` or LISTEN_FDS); a closed number is left alone.
pub fn clear_cloexec(fd: RawFd) -> nix::Result<()> {
    // SAFETY: F_SETFD only changes the descriptor's flags.
    nix::errno::Errno::result(unsafe { libc::fcntl(fd, libc::F_SETFD, 0) }).map(drop)
}

/// Marks every descriptor from `first` up close-on-exec (close_range
/// with CLOSE_RANGE_CLOEXEC).
pub fn cloexec_from(first: u32) -> nix::Result<()> {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets flags.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    nix::errno::Errno::result(r).map(drop)
}

/// Closes every descriptor from `first` up but those in `keep`
/// (close_range over the gaps).
pub fn close_from_except(first: u32, keep: &[RawFd]) -> nix::Result<()> {
    let mut keep: Vec<u32> = keep
        .iter()
        .filter_map(|&k| u32::try_from(k).ok())
        .filter(|&k| k >= first)
        .collect();
    keep.sort_unstable();
    keep.dedup();
    let mut lo = first;
    for k in keep.into_iter().chain(std::iter::once(u32::MAX)) {
        if k > lo {
            let hi = if k == u32::MAX { u32::MAX } else { k - 1 };
            // SAFETY: closes descriptors nothing in this process uses any
            // more: the caller keeps what it still needs.
            let r = unsafe { libc::syscall(libc::SYS_close_range, lo, hi, 0) };
            nix::errno::Errno::result(r)?;
        }
        lo = k.saturating_add(1);
    }
    Ok(())
}

/// dup2(2) of `from` onto the number `to` (stdio of a process about to
/// exec, or of the shim).
pub fn dup2_onto(from: impl AsFd, to: RawFd) -> nix::Result<()> {
    // SAFETY: dup2 onto a number replaces whatever was there; the callers
    // only target 0, 1 and 2, which no OwnedFd of theirs holds.
    let r = unsafe { libc::dup2(from.as_fd().as_raw_fd(), to) };
    nix::errno::Errno::result(r).map(drop)
}

/// A system call's non-negative result (a new descriptor or pid, returned
/// in a long by syscall(2)) as the int the kernel made it.
#[allow(clippy::cast_possible_truncation)] // the kernel returns an int widened to a long
pub fn syscall_int(r: libc::c_long) -> libc::c_int {
    r as libc::c_int
}

/// An open descriptor as the unsigned field of a kernel struct takes it.
#[allow(clippy::cast_sign_loss)] // an open descriptor is never negative
pub fn as_u32(fd: RawFd) -> u32 {
    fd as u32
}

/// An open descriptor as a u64 field of a kernel struct takes it.
pub fn as_u64(fd: RawFd) -> u64 {
    u64::from(as_u32(fd))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inherited_descriptors_are_taken_once_and_stdio_never() {
        assert_eq!(take_inherited(0).unwrap_err(), nix::Error::EBADF);
        assert_eq!(take_inherited(2).unwrap_err(), nix::Error::EBADF);
        assert_eq!(take_inherited(-1).unwrap_err(), nix::Error::EBADF);
        // A number this process opened stands in for an inherited one:
        // give up its owner first, as rt-shim never had one.
        let (r, w) = nix::unistd::pipe().unwrap();
        drop(w);
        let n = std::os::fd::IntoRawFd::into_raw_fd(r);
        let fd = take_inherited(n).unwrap();
        let flags = nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_GETFD).unwrap();
        assert_ne!(flags & libc::FD_CLOEXEC, 0, "close-on-exec");
        assert_eq!(take_inherited(n).unwrap_err(), nix::Error::EBUSY);
    }
}
