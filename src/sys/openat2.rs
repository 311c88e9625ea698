//! openat2(2), which nix does not wrap: opening a path with RESOLVE_*
//! flags, the kernel's guarantee that it stays beneath a directory.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

/// How often a lookup the kernel could not vouch for is tried again. A
/// mount or rename anywhere on the host while a walk crosses ".." makes
/// openat2 answer EAGAIN; runs of them under a mount storm are short.
const EAGAIN_TRIES: usize = 1024;

/// openat2(2) with the given resolve flags; always O_CLOEXEC. EAGAIN (the
/// kernel saw a mount or rename somewhere during a walk through "..",
/// and so could not prove the result stays beneath `dir`) is retried, as
/// openat2(2) tells callers to: it says nothing about this path.
pub fn openat2_beneath(
    dir: impl AsFd,
    rel: &str,
    flags: i32,
    resolve: u64,
) -> std::result::Result<OwnedFd, nix::Error> {
    let c = CString::new(rel).map_err(|_| nix::Error::EINVAL)?;
    let mut tries = 0;
    loop {
        match openat2_once(dir.as_fd(), &c, flags, resolve) {
            Err(nix::Error::EAGAIN) if tries < EAGAIN_TRIES => tries += 1,
            other => return other,
        }
    }
}

fn openat2_once(
    dir: std::os::fd::BorrowedFd<'_>,
    c: &CString,
    flags: i32,
    resolve: u64,
) -> std::result::Result<OwnedFd, nix::Error> {
    // struct open_how { u64 flags; u64 mode; u64 resolve; }
    #[allow(clippy::cast_sign_loss)] // open(2) flags are positive bits of an int
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
    Ok(unsafe { OwnedFd::from_raw_fd(super::fd::syscall_int(fd)) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    /// Renames elsewhere on the host (the CI machine's other tests) made
    /// a container's mount fail with "EAGAIN: Try again": a walk through
    /// ".." under RESOLVE_IN_ROOT gives EAGAIN when a rename happens
    /// meanwhile. A rename storm beside the walk must not reach the caller.
    #[test]
    fn a_rename_elsewhere_does_not_fail_a_lookup_through_dotdot() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a")).unwrap();
        std::fs::create_dir_all(dir.path().join("b")).unwrap();
        let churn = tempfile::tempdir().unwrap();
        std::fs::write(churn.path().join("x"), b"").unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let renamer = {
            let (stop, x, y) = (stop.clone(), churn.path().join("x"), churn.path().join("y"));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::fs::rename(&x, &y).unwrap();
                    std::fs::rename(&y, &x).unwrap();
                }
            })
        };
        let root = std::fs::File::open(dir.path()).unwrap();
        let resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
        let failures = (0..20_000)
            .filter(|_| openat2_beneath(&root, "a/../a/../b", libc::O_PATH, resolve).is_err())
            .count();
        stop.store(true, Ordering::Relaxed);
        renamer.join().unwrap();
        assert_eq!(failures, 0, "lookups through \"..\" failed beside renames");
    }
}
