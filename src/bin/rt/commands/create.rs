//! `rt create`: the container made, by hand through an rt-shim or runc's
//! way (the caller stays the init's parent).

use anyhow::Result;
use rt::container::{self, CreateOptions};
use rt::state::Root;

use crate::cli::{CreateArgs, ShimMode};

pub fn options(a: &CreateArgs, systemd: bool) -> CreateOptions {
    CreateOptions {
        id: a.id.clone(),
        bundle: a.bundle.clone(),
        pid_file: a.pid_file.clone(),
        console_socket: a.console_socket.clone(),
        pidfd_socket: a.pidfd_socket.clone(),
        own_console: false,
        no_pivot: a.no_pivot,
        no_new_keyring: a.no_new_keyring,
        preserve_fds: a.preserve_fds,
        systemd_cgroup: systemd,
        shim: false,
    }
}

/// `create`, by hand through an rt-shim or runc's way.
pub fn create(root: &Root, a: &CreateArgs, systemd: bool, mode: ShimMode) -> Result<()> {
    use std::io::IsTerminal;
    let opts = options(a, systemd);
    if rt::container::shim::Mode::from(mode).wanted(&opts) {
        let handoff = rt::container::shim::Handoff {
            shim: rt::container::shim::find_binary()?,
            capture: a.log_output
                || std::io::stdout().is_terminal()
                || std::io::stderr().is_terminal(),
        };
        rt::container::shim::create(root, &opts, &handoff)?;
    } else {
        container::create(root, &opts)?;
    }
    Ok(())
}
