//! `rt attach`: the terminal of a container its shim holds, relayed until
//! detach (Ctrl-P Ctrl-Q) or the container's exit.

use anyhow::Result;
use rt::container;
use rt::state::Root;
use std::os::fd::AsFd;

/// Returns 0 on detach, the container's exit status when it ended.
pub fn attach(root: &Root, id: &str) -> Result<i32> {
    let c = container::Container::load(root, id)?;
    let sock = rt::tty::attach::connect_to(&c.dir)?;
    let ended = rt::tty::attach::relay(sock.as_fd())?;
    rt::tty::attach::restore_signals();
    Ok(match ended {
        rt::tty::attach::Ended::Detached => 0,
        rt::tty::attach::Ended::Closed => {
            // The shim closes the terminal when the container exits and
            // records the exit right after.
            if let Some(shim) = c.shim_pidfd() {
                container::wait_exit(shim.as_fd(), std::time::Duration::from_secs(2));
            }
            rt::state::ExitRecord::read(&c.dir).map_or(0, |e| e.status)
        }
    })
}
