//! rt-image's own user namespace for a plain user with subuid/subgid
//! ranges: the command runs again inside a user namespace (and a private
//! mount namespace) whose maps newuidmap/newgidmap write, root mapped to
//! the user and ids from 1 up onto the ranges, as `podman unshare` does.
//! There it can give a layer's files their owners (uid 33 in a layer is
//! subuid start + 32 on the host), remove them again, and try the overlay
//! a bundle's container will mount. A rootless bundle's config maps ids
//! the same way ([`maps`]), so the container sees the image's owners.
//!
//! The handshake needs no descriptor: the child unshares and stops itself
//! (SIGSTOP); the parent, still outside, sees it stopped, writes the maps
//! and continues it (SIGCONT), then waits for its exit.

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};

use nix::sched::{unshare, CloneFlags};
use nix::sys::signal::{kill, raise, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::error::{Error, Result};

/// Set in the child's environment: unshare first thing.
const ENV: &str = "RT_IMAGE_IN_USERNS";

/// One line of a uid or gid map: inside id, outside id, count.
pub type Map = (u32, u32, u32);

/// The uid and gid maps rt-image uses for this user (and writes into a
/// rootless bundle's config): its own id as 0, its first subordinate
/// range from 1. None without a range in both files or without the
/// helpers that map them.
pub fn maps() -> Option<(Vec<Map>, Vec<Map>)> {
    if std::env::var_os(ENV).is_some() {
        // In rt-image's namespace: the maps the parent wrote.
        return Some((
            read_map("/proc/self/uid_map")?,
            read_map("/proc/self/gid_map")?,
        ));
    }
    if !matches!(rt::rootless::detect(), rt::rootless::Mode::User { .. }) {
        return None;
    }
    let helpers =
        Path::new("/usr/bin/newuidmap").exists() && Path::new("/usr/bin/newgidmap").exists();
    if !helpers {
        return None;
    }
    let uid = nix::unistd::geteuid();
    let gid = nix::unistd::getegid();
    let name = nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_default();
    let range = |file: &str, own: u32| -> Option<Vec<Map>> {
        let text = std::fs::read_to_string(file).ok()?;
        let (start, count) = sub_range(&text, &name, own)?;
        Some(vec![(0, own, 1), (1, start, count)])
    };
    Some((
        range("/etc/subuid", uid.as_raw())?,
        range("/etc/subgid", gid.as_raw())?,
    ))
}

fn read_map(path: &str) -> Option<Vec<Map>> {
    let text = std::fs::read_to_string(path).ok()?;
    let maps: Vec<Map> = text
        .lines()
        .filter_map(|l| {
            let f: Vec<u32> = l
                .split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect();
            (f.len() == 3).then(|| (f[0], f[1], f[2]))
        })
        .collect();
    (!maps.is_empty()).then_some(maps)
}

/// The first range of `name` (or of its numeric id) in an /etc/subuid-style
/// file.
pub(crate) fn sub_range(text: &str, name: &str, id: u32) -> Option<(u32, u32)> {
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.trim().split(':').collect();
        if f.len() != 3 || (f[0] != name && f[0] != id.to_string()) {
            return None;
        }
        Some((f[1].parse().ok()?, f[2].parse().ok()?))
    })
}

/// Whether this process is the one run inside rt-image's namespace.
pub fn inside() -> bool {
    std::env::var_os(ENV).is_some()
}

/// In the child (first thing in main, while single-threaded): unshare the
/// user and mount namespaces and wait, stopped, for the parent's maps.
pub fn enter_if_asked() -> Result<()> {
    if std::env::var_os(ENV).is_none() {
        return Ok(());
    }
    let failed = |what: &str, e: nix::Error| Error::UserNamespace(format!("{what}: {e}"));
    unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS)
        .map_err(|e| failed("unshare a user namespace", e))?;
    raise(Signal::SIGSTOP).map_err(|e| failed("stop for the id maps", e))?;
    if read_map("/proc/self/uid_map").is_none() || read_map("/proc/self/gid_map").is_none() {
        return Err(Error::UserNamespace(
            "continued without id maps (was the parent killed?)".into(),
        ));
    }
    Ok(())
}

/// In the parent: runs this command again inside rt-image's user namespace
/// when this user has subordinate ranges (see the module), and returns how
/// it ended; None when it is to run here (root, already in a namespace,
/// no ranges).
pub fn run_inside() -> Result<Option<ExitStatus>> {
    if std::env::var_os(ENV).is_some()
        || !matches!(rt::rootless::detect(), rt::rootless::Mode::User { .. })
    {
        return Ok(None);
    }
    let Some((uid_map, gid_map)) = maps() else {
        return Ok(None);
    };
    let mut args = std::env::args_os();
    let argv0 = args.next().unwrap_or_else(|| "rt-image".into());
    let mut child = Command::new("/proc/self/exe")
        .arg0(argv0)
        .args(args)
        .env(ENV, "1")
        .spawn()
        .map_err(|e| Error::UserNamespace(format!("run rt-image again: {e}")))?;
    #[allow(clippy::cast_possible_wrap)] // pid_max is at most 2^22: a pid fits an int
    let pid = Pid::from_raw(child.id() as i32);
    let abandon = |child: &mut std::process::Child, why: String| {
        let _ = child.kill();
        let _ = child.wait();
        Error::UserNamespace(why)
    };
    match waitpid(pid, Some(WaitPidFlag::WUNTRACED)) {
        Ok(WaitStatus::Stopped(_, Signal::SIGSTOP)) => {}
        // It ended before stopping (unshare refused): its error is said.
        Ok(WaitStatus::Exited(_, code)) => return Ok(Some(ExitStatus::from_raw(code << 8))),
        Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(Some(ExitStatus::from_raw(sig as i32))),
        other => {
            return Err(abandon(
                &mut child,
                format!("waiting for it to stop: {other:?}"),
            ))
        }
    }
    for (helper, maps, file) in [
        ("newuidmap", &uid_map, "/etc/subuid"),
        ("newgidmap", &gid_map, "/etc/subgid"),
    ] {
        if let Err(why) = write_map(helper, pid, maps, file) {
            return Err(abandon(&mut child, why));
        }
    }
    kill(pid, Signal::SIGCONT).map_err(|e| abandon(&mut child, format!("continue it: {e}")))?;
    child
        .wait()
        .map(Some)
        .map_err(|e| Error::UserNamespace(format!("wait for it: {e}")))
}

fn write_map(helper: &str, pid: Pid, maps: &[Map], file: &str) -> std::result::Result<(), String> {
    let mut cmd = Command::new(Path::new("/usr/bin").join(helper));
    cmd.arg(pid.to_string());
    for (inside, outside, count) in maps {
        cmd.args([inside.to_string(), outside.to_string(), count.to_string()]);
    }
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("run {helper}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    Err(format!(
        "{helper} refused {maps:?} (this user's ranges are in {file}): {}",
        err.lines().last().unwrap_or("").trim()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subordinate_ranges_by_name_or_id() {
        let t = "alice:100000:65536\n1001:200000:1000\n";
        assert_eq!(sub_range(t, "alice", 1000), Some((100000, 65536)));
        assert_eq!(sub_range(t, "bob", 1001), Some((200000, 1000)));
        assert_eq!(sub_range(t, "carol", 1002), None);
    }
}
