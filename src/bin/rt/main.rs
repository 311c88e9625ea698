//! rt's command line: runc's, flag for flag. Parsing, output and exit
//! codes live here and in the files beside it; everything else is in the
//! library.
//!
//! `cli` holds the clap types, `logger` the --log/--debug logger, and
//! `commands/` one file per command that is more than a call into the
//! library; this file parses, sets up and dispatches.

/// `println!` that returns the write's error (as `StdoutError`) instead
/// of panicking: rt ignores SIGPIPE, so a reader that has gone (`rt list
/// | head -1`) shows as EPIPE, which `main` ends quietly, as runc ends.
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($t)*).map_err($crate::StdoutError)
    }};
}

/// A write to stdout failed.
#[derive(Debug, thiserror::Error)]
#[error("write to stdout: {0}")]
pub(crate) struct StdoutError(pub std::io::Error);

mod cli;
mod commands;
mod logger;

use anyhow::Result;
use clap::Parser;
use rt::container;
use rt::state::Root;

use cli::{Cli, Cmd};
use commands::{
    attach, checkpoint, create, events, exec, list, logs, ps, restore, run, spec, update, version,
};

fn main() {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) if e.kind() == clap::error::ErrorKind::InvalidSubcommand => {
            // One line, in runc's words ("No help topic for 'foo'"), which
            // runc's suite and scripts written for runc match.
            let name = e
                .get(clap::error::ContextKind::InvalidSubcommand)
                .map(|v| v.to_string())
                .unwrap_or_default();
            eprintln!("rt: No help topic for '{name}' (`rt --help` lists the commands)");
            std::process::exit(1);
        }
        Err(e) => {
            // Usage errors: clap's message, exit 1 like runc (help is 0).
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    // `exec` exits with its process's code, so rt's own failure there is
    // 255, as runc's, for callers to tell the two apart.
    let fail_code = if matches!(cli.cmd, Some(Cmd::Exec(_))) {
        255
    } else {
        1
    };
    // Before rt opens any file of its own (the log): the descriptors to
    // pass must be the caller's.
    let preserve = match &cli.cmd {
        Some(Cmd::Create(a) | Cmd::Run { create: a, .. }) => Some(a.preserve_fds),
        Some(Cmd::Exec(a)) => Some(a.preserve_fds),
        _ => None,
    };
    if let Some(n) = preserve {
        if let Err(e) = container::check_passed_fds(n) {
            eprintln!("rt: {e}");
            std::process::exit(fail_code);
        }
    }
    logger::init(&cli);

    match run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) if reader_gone(&e) => die_of_sigpipe(),
        Err(e) => {
            let mut msg = one_line(&e);
            // runc's words for every failed exec.
            if fail_code == 255 && !msg.starts_with("exec failed") {
                msg = format!("exec failed: {msg}");
            }
            log::error!("{msg}");
            if !logger::stderr_is_log() {
                eprintln!("rt: {msg}");
            }
            std::process::exit(fail_code);
        }
    }
}

/// The state root without --root: /run/rt for root; for a rootless
/// caller $XDG_RUNTIME_DIR/rt, as runc uses $XDG_RUNTIME_DIR/runc. Root
/// inside a user namespace (rootless Podman) uses it when it is set.
fn default_root(mode: rt::rootless::Mode) -> Result<std::path::PathBuf> {
    let xdg = std::env::var_os("XDG_RUNTIME_DIR");
    match mode {
        rt::rootless::Mode::Root => Ok("/run/rt".into()),
        rt::rootless::Mode::NamespacedRoot if xdg.as_deref().is_none_or(|d| d.is_empty()) => {
            Ok("/run/rt".into())
        }
        _ => Ok(rt::rootless::default_root(xdg.as_deref())?),
    }
}

/// The error and its causes on one line. rt's library errors already
/// show their source (`write F: No space left on device`), so a cause
/// the line ends with is not repeated.
pub(crate) fn one_line(e: &anyhow::Error) -> String {
    let mut msg = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if msg.ends_with(&text) {
            continue;
        }
        if !msg.is_empty() {
            msg.push_str(": ");
        }
        msg.push_str(&text);
    }
    msg
}

/// Ends rt as a gone reader ends runc (and `cat`): killed by SIGPIPE, which
/// rt ignores while it works so that the write fails with EPIPE instead.
/// A caller's wait status then reads as it does for runc.
fn die_of_sigpipe() -> ! {
    use nix::sys::signal::{raise, SigSet, SigmaskHow, Signal};
    rt::sys::process::default_disposition(libc::SIGPIPE);
    let mut set = SigSet::empty();
    set.add(Signal::SIGPIPE);
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&set), None);
    let _ = raise(Signal::SIGPIPE);
    // Not reached unless the signal could not end rt: a shell's 141 still.
    std::process::exit(128 + libc::SIGPIPE)
}

/// A write to stdout failed because its reader has gone.
fn reader_gone(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<StdoutError>()
            .is_some_and(|o| o.0.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn run(cli: Cli) -> Result<i32> {
    if cli.version {
        version::version()?;
        return Ok(0);
    }
    let Some(cmd) = cli.cmd else {
        use clap::CommandFactory;
        Cli::command().print_help()?;
        return Ok(0);
    };
    let mode = rt::rootless::detect();
    log::debug!("{}", mode.describe());
    let root = match (&cmd, &cli.root) {
        // These never touch the state root.
        (Cmd::Spec { .. } | Cmd::Features, _) => Root::new("/run/rt"),
        (_, Some(r)) => Root::new(r),
        (_, None) => Root::new(default_root(mode)?),
    };
    log::debug!("state root {}", root.path.display());
    match cmd {
        Cmd::Create(a) => create::create(&root, &a, cli.systemd_cgroup, cli.shim)?,
        Cmd::Start { id } => container::start(&root, &id)?,
        Cmd::Run {
            create,
            detach,
            keep,
        } => {
            return run::run(&root, &create, detach, keep, cli.systemd_cgroup, cli.shim);
        }
        Cmd::Exec(a) => return exec::exec(&root, &a),
        Cmd::Features => outln!(
            "{}",
            serde_json::to_string_pretty(&rt::features::document())?
        )?,
        Cmd::State { id } => {
            let s = container::state(&root, &id)?;
            outln!("{}", serde_json::to_string_pretty(&s)?)?;
        }
        Cmd::Kill { all, id, signal } => {
            let sig = rt::container::signal::parse(signal.as_deref().unwrap_or("TERM"))?;
            container::kill(&root, &id, sig, all)?;
        }
        Cmd::Delete { force, id } => container::delete(&root, &id, force)?,
        Cmd::List { format, quiet } => list::list(&root, format, quiet)?,
        Cmd::Spec { bundle, rootless } => spec::spec(&bundle, rootless)?,
        Cmd::Logs {
            follow,
            since,
            tail,
            timestamps,
            id,
        } => logs::logs(&root, &id, since.as_deref(), tail, follow, timestamps)?,
        Cmd::Update(a) => update::update(&root, &a)?,
        Cmd::Events {
            stats,
            interval,
            id,
        } => events::events(&root, &id, stats, &interval)?,
        Cmd::Pause { id } => container::pause(&root, &id)?,
        Cmd::Resume { id } => container::resume(&root, &id)?,
        Cmd::Ps {
            format,
            id,
            ps_args,
        } => ps::ps(&root, &id, format, &ps_args)?,
        Cmd::Wait { id } => {
            let exit = container::wait(&root, &id)?;
            outln!("{}", exit.status)?;
        }
        Cmd::Attach { id } => return attach::attach(&root, &id),
        Cmd::Checkpoint(a) => checkpoint::checkpoint(&root, &a, cli.criu.as_deref())?,
        Cmd::Restore(a) => {
            return restore::restore(&root, &a, cli.criu.as_deref(), cli.systemd_cgroup, cli.shim)
        }
    }
    Ok(0)
}
