//! `rt delete`: the init killed (with --force, or already gone), its shim
//! let finish, the cgroup emptied and removed, the mounts rt made in the
//! host's mount namespace (a container without its own) unmounted, the
//! state directory gone, then the poststop hooks.

use std::os::fd::AsFd;
use std::time::Duration;

use super::{hook_state_json, wait_exit, Container, Op, Status};
use crate::cgroup;
use crate::error::{Error, Result};
use crate::hooks::{self, Kind};
use crate::state::{validate_id, Root};
use crate::sys::pidfd::pidfd_send_signal;

/// Removes a container. A running one needs `force` (it is killed first).
pub fn delete(root: &Root, id: &str, force: bool) -> Result<()> {
    validate_id(id)?;
    let locked = match root.lock(id) {
        Ok(l) => l,
        Err(Error::NotFound(_)) if force => return Ok(()),
        Err(e) => return Err(e),
    };
    let c = match Container::from_locked(&locked) {
        Ok(c) => c,
        // Half-made or corrupt state: with --force, clean up what we can.
        Err(e @ (Error::CorruptState { .. } | Error::NotFound(_))) => {
            if !force {
                return Err(e);
            }
            log::warn!("{e}; removing the container's state anyway");
            cgroup::remove_default(&root.path, id);
            return locked.remove();
        }
        Err(e) => return Err(e),
    };
    c.status().require(Op::Delete { force }, id)?;
    if let Some(pidfd) = c.init_pidfd() {
        let _ = pidfd_send_signal(&pidfd, libc::SIGKILL);
        wait_exit(pidfd.as_fd(), Duration::from_secs(10));
    }
    // The shim records the exit and leaves once the init is gone; let it
    // finish before its directory goes.
    if let Some(shim) = c.shim_pidfd() {
        wait_exit(shim.as_fd(), Duration::from_secs(2));
    }
    // Only a cgroup rt made for this container is emptied and removed; in
    // one it joined, the init's death is all (with a pid namespace, the
    // kernel kills the rest of the container with it).
    if let Some(cg) = c.state.cgroup.as_ref().filter(|cg| cg.is_own()) {
        // Frozen processes do not die of SIGKILL until thawed.
        if cg.is_frozen() {
            let _ = cg.set_frozen(false, Duration::ZERO);
        }
        cg.kill_all(Duration::from_secs(10))?;
        cg.remove()?;
        if let Some(unit) = &cg.unit {
            match cgroup::systemd::Systemd::connect() {
                Ok(sd) => sd.stop(unit)?,
                // No systemd, no unit: nothing to stop (the scope went
                // with the systemd that ran it).
                Err(e @ Error::SystemdNotRunning(_)) => log::warn!("{e}; not stopping {unit}"),
                Err(e) => return Err(e),
            }
        }
    }
    if let Some(groups) = &c.state.resctrl {
        crate::resctrl::remove(groups)?;
    }
    // A container in the host's mount namespace: exactly the mounts rt
    // made under its root, deepest first (its processes are gone).
    crate::rootfs::host_mounts::unmount(&c.state.host_mounts)?;
    let poststop = Kind::Poststop.of(c.state.config.hooks().as_ref());
    let json = hook_state_json(&c.state, Status::Stopped);
    locked.remove()?;
    hooks::run_warn(Kind::Poststop, poststop, json.as_bytes());
    Ok(())
}
