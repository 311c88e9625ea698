//! clone3(2), which nix does not wrap: a fork with a pidfd, optionally
//! straight into a cgroup, whose child runs a closure and never returns.

use std::convert::Infallible;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::unistd::Pid;

#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x200000000;

/// clone3 with CLONE_PIDFD and `flags` (never CLONE_VM: the child is a
/// copy of the caller), into `cgroup` when given. The child is made not
/// dumpable (unless `stay_dumpable`: see below) and runs `child`, which
/// never returns; the parent gets the child's pid and pidfd, and drops its
/// copy of `child`.
///
/// `stay_dumpable`: a rootless parent writes the id maps of the child's
/// new user namespace, and /proc/<pid>/uid_map of a task that is not
/// dumpable belongs to a root the parent is not. The child then makes
/// itself not dumpable once the maps are written, before anything of the
/// container can exist.
///
/// Call it from a single-threaded process (rt, the shim's zygote and its
/// workers are): the child runs Rust code before it execs, which is only
/// sound when no other thread held a lock at the moment of the clone.
pub fn clone3<F: FnOnce() -> Infallible>(
    flags: u64,
    cgroup: Option<BorrowedFd>,
    stay_dumpable: bool,
    child: F,
) -> nix::Result<(Pid, OwnedFd)> {
    let mut pidfd: libc::c_int = -1;
    let mut ca = CloneArgs {
        flags: flags | libc::CLONE_PIDFD as u64,
        pidfd: &mut pidfd as *mut libc::c_int as u64,
        // With CLONE_PARENT the kernel wants 0 here and gives the child
        // the caller's own exit signal (SIGCHLD, to the shared parent).
        exit_signal: if flags & libc::CLONE_PARENT as u64 != 0 {
            0
        } else {
            libc::SIGCHLD as u64
        },
        ..Default::default()
    };
    if let Some(cg) = cgroup {
        ca.flags |= CLONE_INTO_CGROUP;
        ca.cgroup = super::fd::as_u64(cg.as_raw_fd());
    }
    // SAFETY: clone3 without CLONE_VM forks the (single-threaded) process;
    // the child runs `child`, which never returns into the caller's code
    // and leaves with _exit or exec. `ca` and `pidfd` outlive the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut ca as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    let ret = nix::errno::Errno::result(ret)?;
    if ret == 0 {
        // Until it execs, the child is rt: not dumpable, so no process of
        // the container can ptrace it or open its /proc/<pid>/exe, fds
        // or memory (CVE-2016-9962, CVE-2019-5736). execve of the user's
        // program makes it dumpable again.
        if !stay_dumpable {
            let _ = nix::sys::prctl::set_dumpable(false);
        }
        child();
    }
    drop(child);
    // SAFETY: clone3 stored a new pidfd that nothing else owns.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    Ok((Pid::from_raw(super::fd::syscall_int(ret)), pidfd))
}
