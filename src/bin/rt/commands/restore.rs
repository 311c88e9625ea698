//! `rt restore`: runc's flags into the library's options; with
//! `--detach` rt returns once the container is restored, otherwise it
//! waits for the restored init, returns its exit code and deletes the
//! container, as `rt run` does.

use std::path::Path;

use anyhow::Result;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use rt::checkpoint::{RestoreFlags, RestoreOptions};
use rt::state::Root;

use super::checkpoint::{common, image_and_work_paths};
use crate::cli::{RestoreArgs, ShimMode};

pub fn restore(
    root: &Root,
    a: &RestoreArgs,
    criu: Option<&Path>,
    systemd: bool,
    mode: ShimMode,
) -> Result<i32> {
    use std::io::IsTerminal;
    let (image_path, work_path) = image_and_work_paths(&a.criu)?;
    let opts = RestoreOptions {
        id: a.id.clone(),
        criu: criu.map(Path::to_path_buf),
        bundle: a.bundle.clone(),
        image_path,
        work_path,
        console_socket: a.console_socket.clone(),
        pid_file: a.pid_file.clone(),
        systemd_cgroup: systemd,
        flags: RestoreFlags {
            common: common(&a.criu)?,
            console_socket: a.console_socket.is_some(),
            lsm_profile: a.lsm_profile.clone(),
            lsm_mount_context: a.lsm_mount_context.clone(),
        },
        stdio: None,
    };
    if a.detach {
        // By hand, an rt-shim holds the restored init, as after `rt create`.
        let reaps_itself = a.pid_file.is_some() || a.console_socket.is_some();
        if rt::container::shim::Mode::from(mode).wanted_by(reaps_itself) {
            let handoff = rt::container::shim::Handoff {
                shim: rt::container::shim::find_binary()?,
                capture: std::io::stdout().is_terminal() || std::io::stderr().is_terminal(),
            };
            rt::checkpoint::restore_with_shim(root, &opts, &handoff)?;
        } else {
            rt::checkpoint::restore(root, &opts)?;
        }
        return Ok(0);
    }
    let restored = rt::checkpoint::restore(root, &opts)?;
    // The restored init is rt's child: wait for it like `rt run`.
    let code = loop {
        match waitpid(Pid::from_raw(restored.pid), None) {
            Ok(WaitStatus::Exited(_, c)) => break c,
            Ok(WaitStatus::Signaled(_, sig, _)) => break 128 + sig as i32,
            Ok(_) | Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(anyhow::anyhow!("wait for the restored init: {e}")),
        }
    };
    if let Err(e) = rt::container::delete(root, &a.id, true) {
        log::warn!("delete {} after it exited: {e}", a.id);
    }
    Ok(code)
}
