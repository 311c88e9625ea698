//! `rt exec`: a new process in a running container, from an OCI process
//! JSON or from runc's flags; detached, or supervised until it exits.

use anyhow::Result;
use rt::state::Root;

use crate::cli::ExecArgs;

pub fn exec(root: &Root, a: &ExecArgs) -> Result<i32> {
    use rt::container::exec::{ExecOptions, ProcessFlags, ProcessSource};
    let source = match &a.process {
        Some(path) => rt::container::exec::process_from_file(path)?,
        None => ProcessSource::Flags(ProcessFlags {
            args: a.command.clone(),
            tty: a.tty,
            cwd: a.cwd.clone(),
            env: a.env.clone(),
            user: a.user.clone(),
            additional_gids: a.additional_gids.clone(),
            caps: a.cap.clone(),
            no_new_privs: a.no_new_privs,
            process_label: a.process_label.clone(),
            apparmor: a.apparmor.clone(),
        }),
    };
    let opts = ExecOptions {
        id: a.id.clone(),
        console_socket: a.console_socket.clone(),
        pidfd_socket: a.pidfd_socket.clone(),
        // Used only if the process has a terminal.
        own_console: !a.detach && a.console_socket.is_none(),
        pid_file: a.pid_file.clone(),
        preserve_fds: a.preserve_fds,
        ignore_paused: a.ignore_paused,
        sub_cgroup: a.cgroup.clone(),
    };
    if a.detach {
        rt::container::exec::exec(root, &opts, source)?;
        return Ok(0);
    }
    let signals = rt::tty::foreground::block_signals()?;
    let started = rt::container::exec::exec(root, &opts, source)?;
    let exit = rt::tty::foreground::supervise(&started.process, &signals, started.console)?;
    Ok(exit.code())
}
