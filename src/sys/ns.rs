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

/// The uid_map and gid_map of the user namespace `fd` refers to, as its
/// parent namespace sees them. A child joins it and reads its own maps:
/// a namespace held only by a file (containerd pins a pod's) has no
/// /proc/<pid> to read them from. Only from a single-threaded process
/// (EDEADLK otherwise); the child's errno comes back as the error.
pub fn user_namespace_maps(fd: BorrowedFd) -> nix::Result<(String, String)> {
    use nix::sys::wait::{waitpid, WaitStatus};
    use nix::unistd::ForkResult;
    use std::io::{Read, Write};

    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    match super::process::fork_single_threaded()? {
        ForkResult::Child => {
            drop(r);
            let read = || -> nix::Result<()> {
                nix::sched::setns(fd, nix::sched::CloneFlags::CLONE_NEWUSER)?;
                let io =
                    |e: std::io::Error| nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO));
                let uid = std::fs::read("/proc/self/uid_map").map_err(io)?;
                let gid = std::fs::read("/proc/self/gid_map").map_err(io)?;
                let mut out = std::fs::File::from(w);
                out.write_all(&[uid.as_slice(), b"\0", gid.as_slice()].concat())
                    .map_err(io)
            };
            super::process::exit_now(match read() {
                Ok(()) => 0,
                Err(e) => e as i32,
            })
        }
        ForkResult::Parent { child } => {
            drop(w);
            let mut text = String::new();
            let got = std::fs::File::from(r).read_to_string(&mut text);
            match waitpid(child, None)? {
                WaitStatus::Exited(_, 0) => {}
                WaitStatus::Exited(_, errno) => return Err(nix::Error::from_raw(errno)),
                _ => return Err(nix::Error::ECHILD),
            }
            got.map_err(|e| nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
            let (uid, gid) = text.split_once('\0').ok_or(nix::Error::EIO)?;
            Ok((uid.to_string(), gid.to_string()))
        }
    }
}
