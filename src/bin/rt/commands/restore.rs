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
use crate::cli::RestoreArgs;

pub fn restore(root: &Root, a: &RestoreArgs, criu: Option<&Path>, systemd: bool) -> Result<i32> {
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
    let restored = rt::checkpoint::restore(root, &opts)?;
    if a.detach {
        return Ok(0);
    }
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
