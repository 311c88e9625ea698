//! Persistent network namespaces, as `ip netns add` makes them: a thread
//! unshares its network namespace and binds `/proc/thread-self/ns/net`
//! onto a file, which keeps the namespace alive after the thread is gone.
//! A thread, not a child process: `unshare(CLONE_NEWNET)` changes the
//! calling thread only, so no fork (and no unsafe code) is needed.

use std::fs;
use std::io;
use std::path::Path;

use nix::fcntl::{Flock, FlockArg};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};

use crate::error::{Error, IoContext, Result};

/// Makes `dir` a shared mount (a bind mount of itself first when it is
/// not a mount point), so that unmounting a namespace file reaches every
/// mount namespace that copied it, as iproute2 does for /run/netns.
fn share(dir: &Path) -> Result<()> {
    let shared = |d: &Path| {
        mount(
            None::<&str>,
            d,
            None::<&str>,
            MsFlags::MS_SHARED | MsFlags::MS_REC,
            None::<&str>,
        )
    };
    match shared(dir) {
        Ok(()) => Ok(()),
        Err(nix::Error::EINVAL) => {
            mount(
                Some(dir),
                dir,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .at(dir)?;
            shared(dir).at(dir)
        }
        Err(e) => Err(e).at(dir),
    }
}

/// Whether /proc/self/mountinfo lists `path` as a mount point.
fn is_mount_point(path: &Path) -> bool {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = path.to_string_lossy();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|m| m.replace("\\040", " ") == want)
}

/// The directory of the namespace file `path`.
fn dir_of(path: &Path) -> Result<&Path> {
    path.parent()
        .ok_or_else(|| Error::Network(format!("{}: no parent directory", path.display())))
}

/// An exclusive lock on the namespace directory `dir` (a file beside it):
/// one rt-image makes the directory's mount, or takes it down with its
/// last namespace, while no other adds a namespace to it.
fn lock(dir: &Path) -> Result<Flock<fs::File>> {
    let file = dir.with_extension("lock");
    let f = fs::File::create(&file).at(&file)?;
    Flock::lock(f, FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .at(&file)
}

/// A new network namespace held by the file `path` (which must not
/// exist; its directory is made and made a shared mount).
pub fn create(path: &Path) -> Result<()> {
    let dir = dir_of(path)?;
    if let Some(parent) = dir.parent() {
        fs::create_dir_all(parent).at(parent)?;
    }
    let _lock = lock(dir)?;
    fs::create_dir_all(dir).at(dir)?;
    let dir = dir.canonicalize().at(dir)?;
    if !is_mount_point(&dir) {
        share(&dir)?;
    }
    match fs::File::create_new(path) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            return Err(Error::Network(format!(
                "{}: the network namespace file exists: is a container of that id running?",
                path.display()
            )))
        }
        Err(e) => return Err(e).at(path),
    }
    let target = path.to_path_buf();
    let made = std::thread::spawn(move || -> nix::Result<()> {
        unshare(CloneFlags::CLONE_NEWNET)?;
        mount(
            Some("/proc/thread-self/ns/net"),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
    })
    .join()
    .unwrap_or(Err(nix::Error::EIO));
    if let Err(e) = made {
        let _ = fs::remove_file(path);
        return Err(Error::Network(format!(
            "{}: a new network namespace: {e}",
            path.display()
        )));
    }
    Ok(())
}

/// Unmounts and removes a namespace file `create` made; nothing there is
/// no error. With the last one gone, the directory's own mount and the
/// directory go too, so that no rt-image mount outlives its containers.
pub fn remove(path: &Path) -> Result<()> {
    let dir = dir_of(path)?;
    let _lock = dir
        .parent()
        .filter(|p| p.is_dir())
        .map(|_| lock(dir))
        .transpose()?;
    match umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => {}
        Err(e) => return Err(e).at(path),
    }
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e).at(path),
        _ => {}
    }
    let empty = fs::read_dir(dir).is_ok_and(|mut d| d.next().is_none());
    if empty {
        match umount2(dir, MntFlags::MNT_DETACH) {
            Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => {}
            Err(e) => return Err(e).at(dir),
        }
        match fs::remove_dir(dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e).at(dir),
            _ => {}
        }
    }
    Ok(())
}

/// Whether `path` holds a network namespace (a bind of an nsfs file).
pub fn exists(path: &Path) -> bool {
    is_mount_point(path)
}
