//! `rt run`: create and start; detached, or in the foreground with rt
//! proxying signals and the terminal until the container exits.

use anyhow::Result;
use rt::container;
use rt::state::Root;

use super::create::{create, options};
use crate::cli::{CreateArgs, ShimMode};

/// `run -d` returns once the container has started; without it rt waits
/// for the exit and returns its code.
pub fn run(
    root: &Root,
    a: &CreateArgs,
    detach: bool,
    keep: bool,
    systemd: bool,
    mode: ShimMode,
) -> Result<i32> {
    if detach {
        create(root, a, systemd, mode)?;
        if let Err(e) = container::start(root, &a.id) {
            let _ = container::delete(root, &a.id, true);
            return Err(e.into());
        }
        return Ok(0);
    }
    foreground(root, a, keep, systemd)
}

fn foreground(root: &Root, a: &CreateArgs, keep: bool, systemd: bool) -> Result<i32> {
    let mut opts = options(a, systemd);
    // In the foreground rt proxies the terminal itself unless the caller
    // gave a console socket.
    opts.own_console = a.console_socket.is_none();
    let signals = rt::tty::foreground::block_signals()?;
    let created = container::create(root, &opts)?;
    if let Err(e) = container::start(root, &a.id) {
        let _ = container::delete(root, &a.id, true);
        return Err(e.into());
    }
    let exit = rt::tty::foreground::supervise(&created.init, &signals, created.console);
    if !keep {
        if let Err(e) = container::delete(root, &a.id, true) {
            log::warn!("delete {} after it exited: {e}", a.id);
        }
    }
    Ok(exit?.code())
}
