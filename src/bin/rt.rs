//! rt's command line: runc's, flag for flag. Parsing, output and exit
//! codes live here; everything else is in the library.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::{anyhow, bail, Context as _, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use rt::container::{self, CreateOptions};
use rt::state::Root;

const SPEC_VERSION: &str = rt::spec::OCI_VERSION;

#[derive(Parser, Debug)]
#[command(
    name = "rt",
    about = "rt: an OCI container runtime, runc's command line flag for flag",
    disable_version_flag = true
)]
struct Cli {
    /// Root directory for the containers' state
    #[arg(long, global = true, default_value = "/run/rt", env = "RT_ROOT")]
    root: PathBuf,
    /// Also write log lines to this file
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    /// Format of the log file
    #[arg(long = "log-format", global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Log debug lines too
    #[arg(long, global = true)]
    debug: bool,
    /// Interpret cgroupsPath as systemd's slice:prefix:name
    #[arg(long = "systemd-cgroup", global = true)]
    systemd_cgroup: bool,
    /// Accepted for runc compatibility; rt has no checkpoint support
    #[arg(long, hide = true)]
    criu: Option<String>,
    /// Accepted for runc compatibility (auto, true, false)
    #[arg(long = "rootless", hide = true)]
    rootless_mode: Option<String>,
    /// Print the version
    #[arg(short = 'v', long = "version")]
    version: bool,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Copy, Clone, Debug, ValueEnum, PartialEq, Eq)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Args, Debug, Clone)]
struct CreateArgs {
    /// Path to the bundle directory
    #[arg(short = 'b', long, default_value = ".")]
    bundle: PathBuf,
    /// Write the init's pid to this file
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    /// Unix socket that receives the pty master
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    /// Move the root over / and chroot instead of pivot_root
    #[arg(long = "no-pivot")]
    no_pivot: bool,
    /// Do not give the container a new session keyring
    #[arg(long = "no-new-keyring")]
    no_new_keyring: bool,
    /// Pass this many descriptors from 3 up on to the container
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: i32,
    /// Container id
    id: String,
}

#[derive(Args, Debug, Clone)]
struct ExecArgs {
    /// An OCI process JSON; the flags that shape the process are then ignored
    #[arg(short = 'p', long)]
    process: Option<PathBuf>,
    /// Allocate a terminal
    #[arg(short = 't', long)]
    tty: bool,
    /// Unix socket that receives the pty master
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    /// Return once the process has started
    #[arg(short = 'd', long)]
    detach: bool,
    /// Write the process's pid to this file
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    /// Working directory in the container
    #[arg(long)]
    cwd: Option<PathBuf>,
    /// Set an environment variable (KEY=VALUE), repeatable
    #[arg(short = 'e', long)]
    env: Vec<String>,
    /// UID[:GID] to run as
    #[arg(short = 'u', long)]
    user: Option<String>,
    /// Additional group ids, repeatable
    #[arg(short = 'g', long = "additional-gids")]
    additional_gids: Vec<u32>,
    /// Add a capability (CAP_...), repeatable
    #[arg(short = 'c', long)]
    cap: Vec<String>,
    /// Set no_new_privs for the process
    #[arg(long = "no-new-privs")]
    no_new_privs: bool,
    /// Pass this many descriptors from 3 up on to the process
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: i32,
    /// SELinux label (not supported: an error if not empty)
    #[arg(long = "process-label")]
    process_label: Option<String>,
    /// AppArmor profile (not supported: an error if not empty)
    #[arg(long)]
    apparmor: Option<String>,
    /// Exec even if the container is paused
    #[arg(long = "ignore-paused")]
    ignore_paused: bool,
    /// Run in this cgroup below the container's
    #[arg(long)]
    cgroup: Option<String>,
    /// Container id
    id: String,
    /// Command and arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Create a container; it waits for `start`
    Create(CreateArgs),
    /// Start a created container
    Start { id: String },
    /// Create and start a container
    Run {
        #[command(flatten)]
        create: CreateArgs,
        /// Return once the container has started
        #[arg(short = 'd', long)]
        detach: bool,
        /// Keep the container's state after it exits
        #[arg(long)]
        keep: bool,
    },
    /// Run a new process in a running container
    Exec(Box<ExecArgs>),
    /// Print a container's state as JSON
    State { id: String },
    /// Print what this build of rt supports (runtime-spec features JSON)
    Features,
    /// Send a signal to a container (default TERM)
    Kill {
        /// Signal every process of the container
        #[arg(short = 'a', long)]
        all: bool,
        id: String,
        signal: Option<String>,
    },
    /// Remove a container
    Delete {
        /// Kill a running container first; a missing one is not an error
        #[arg(short = 'f', long)]
        force: bool,
        id: String,
    },
    /// List containers
    List {
        #[arg(short = 'f', long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
        /// Print only the ids
        #[arg(short = 'q', long)]
        quiet: bool,
    },
    /// Write a default config.json
    Spec {
        #[arg(short = 'b', long, default_value = ".")]
        bundle: PathBuf,
        /// A config for running without root
        #[arg(long)]
        rootless: bool,
    },
}

#[derive(Copy, Clone, Debug, ValueEnum, PartialEq, Eq)]
enum ListFormat {
    Table,
    Json,
}

/// Writes log lines to stderr and, with --log, to a file in the chosen
/// format (containerd reads the `msg` of the last json error line).
struct Logger {
    file: Option<Mutex<std::fs::File>>,
    format: LogFormat,
    debug: bool,
}

impl log::Log for Logger {
    fn enabled(&self, m: &log::Metadata) -> bool {
        // Info lines (hook output) are for the log file.
        m.level() <= log::Level::Warn
            || self.debug
            || (m.level() == log::Level::Info && self.file.is_some())
    }
    fn log(&self, r: &log::Record) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let level = match r.level() {
            log::Level::Error => "error",
            log::Level::Warn => "warning",
            log::Level::Info => "info",
            _ => "debug",
        };
        let msg = r.args().to_string();
        if let Some(f) = &self.file {
            let time = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
            let line = match self.format {
                LogFormat::Json => {
                    serde_json::json!({"level": level, "msg": msg, "time": time}).to_string()
                }
                LogFormat::Text => format!("time={time:?} level={level} msg={msg:?}"),
            };
            if let Ok(mut f) = f.lock() {
                let _ = writeln!(f, "{line}");
            }
        }
        // Errors are printed by main; warnings (and with --debug, the
        // rest) go to stderr here.
        if r.level() == log::Level::Warn || (self.debug && r.level() > log::Level::Warn) {
            eprintln!("rt: {level}: {msg}");
        }
    }
    fn flush(&self) {}
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // Usage errors: clap's message, exit 1 like runc (help is 0).
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
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
            std::process::exit(1);
        }
    }
    let file = cli.log.as_ref().and_then(|p| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .map_err(|e| eprintln!("rt: cannot open --log {}: {e}", p.display()))
            .ok()
            .map(Mutex::new)
    });
    let logger = Logger {
        file,
        format: cli.log_format,
        debug: cli.debug,
    };
    let _ = log::set_boxed_logger(Box::new(logger));
    log::set_max_level(if cli.debug {
        log::LevelFilter::Debug
    } else if cli.log.is_some() {
        log::LevelFilter::Info
    } else {
        log::LevelFilter::Warn
    });

    match run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            let msg = format!("{e:#}");
            log::error!("{msg}");
            eprintln!("rt: {msg}");
            std::process::exit(1);
        }
    }
}

fn create_options(a: &CreateArgs, systemd: bool) -> CreateOptions {
    CreateOptions {
        id: a.id.clone(),
        bundle: a.bundle.clone(),
        pid_file: a.pid_file.clone(),
        console_socket: a.console_socket.clone(),
        own_console: false,
        no_pivot: a.no_pivot,
        no_new_keyring: a.no_new_keyring,
        preserve_fds: a.preserve_fds,
        systemd_cgroup: systemd,
    }
}

fn run(cli: Cli) -> Result<i32> {
    if cli.version {
        println!("rt version {}", env!("CARGO_PKG_VERSION"));
        println!("commit: {}", env!("RT_COMMIT"));
        println!("spec: {SPEC_VERSION}");
        return Ok(0);
    }
    let Some(cmd) = cli.cmd else {
        use clap::CommandFactory;
        Cli::command().print_help()?;
        return Ok(0);
    };
    let root = Root::new(&cli.root);
    match cmd {
        Cmd::Create(a) => {
            container::create(&root, &create_options(&a, cli.systemd_cgroup))?;
        }
        Cmd::Start { id } => container::start(&root, &id)?,
        Cmd::Run {
            create,
            detach,
            keep,
        } => return run_container(&root, &create, detach, keep, cli.systemd_cgroup),
        Cmd::Exec(a) => return exec(&root, &a),
        Cmd::Features => println!(
            "{}",
            serde_json::to_string_pretty(&rt::features::document())?
        ),
        Cmd::State { id } => {
            let s = container::state(&root, &id)?;
            println!("{}", serde_json::to_string_pretty(&s)?);
        }
        Cmd::Kill { all, id, signal } => {
            let sig = rt::signal::parse(signal.as_deref().unwrap_or("TERM"))?;
            container::kill(&root, &id, sig, all)?;
        }
        Cmd::Delete { force, id } => container::delete(&root, &id, force)?,
        Cmd::List { format, quiet } => list(&root, format, quiet)?,
        Cmd::Spec { bundle, rootless } => write_spec(&bundle, rootless)?,
    }
    Ok(0)
}

fn run_container(
    root: &Root,
    a: &CreateArgs,
    detach: bool,
    keep: bool,
    systemd: bool,
) -> Result<i32> {
    let mut opts = create_options(a, systemd);
    if detach {
        container::create(root, &opts)?;
        container::start(root, &a.id)?;
        return Ok(0);
    }
    // In the foreground rt proxies the terminal itself unless the caller
    // gave a console socket.
    opts.own_console = a.console_socket.is_none();
    let signals = rt::foreground::block_signals()?;
    let created = container::create(root, &opts)?;
    if let Err(e) = container::start(root, &a.id) {
        let _ = container::delete(root, &a.id, true);
        return Err(e.into());
    }
    let exit = rt::foreground::supervise(&created.init, &signals, created.console);
    if !keep {
        if let Err(e) = container::delete(root, &a.id, true) {
            log::warn!("delete {} after it exited: {e}", a.id);
        }
    }
    Ok(exit?.code())
}

fn exec(root: &Root, a: &ExecArgs) -> Result<i32> {
    use rt::exec::{ExecOptions, ProcessFlags, ProcessSource};
    let source = match &a.process {
        Some(path) => ProcessSource::Given(Box::new(rt::exec::process_from_file(path)?)),
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
        // Used only if the process has a terminal.
        own_console: !a.detach && a.console_socket.is_none(),
        pid_file: a.pid_file.clone(),
        preserve_fds: a.preserve_fds,
        ignore_paused: a.ignore_paused,
        sub_cgroup: a.cgroup.clone(),
    };
    if a.detach {
        rt::exec::exec(root, &opts, source)?;
        return Ok(0);
    }
    let signals = rt::foreground::block_signals()?;
    let started = rt::exec::exec(root, &opts, source)?;
    let exit = rt::foreground::supervise(&started.process, &signals, started.console)?;
    Ok(exit.code())
}

fn list(root: &Root, format: ListFormat, quiet: bool) -> Result<()> {
    let all = container::list(root)?;
    if quiet {
        for c in &all {
            println!("{}", c.state.id);
        }
        return Ok(());
    }
    if format == ListFormat::Json {
        let v: Vec<serde_json::Value> = all
            .iter()
            .map(|c| {
                let mut v = serde_json::to_value(&c.state).expect("state serializes");
                v["owner"] = c.owner.clone().into();
                v
            })
            .collect();
        println!("{}", serde_json::to_string(&v)?);
        return Ok(());
    }
    let rows: Vec<[String; 6]> = all
        .iter()
        .map(|c| {
            [
                c.state.id.clone(),
                c.state.pid.to_string(),
                c.state.status.to_string(),
                c.state.bundle.display().to_string(),
                c.state.created.clone(),
                c.owner.clone(),
            ]
        })
        .collect();
    let header = ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from);
    let mut widths = header.clone().map(|h| h.len());
    for r in &rows {
        for (w, f) in widths.iter_mut().zip(r) {
            *w = (*w).max(f.len());
        }
    }
    let mut out = std::io::stdout().lock();
    for r in std::iter::once(&header).chain(rows.iter()) {
        let line: Vec<String> = r
            .iter()
            .zip(widths)
            .map(|(f, w)| format!("{f:<w$}"))
            .collect();
        writeln!(out, "{}", line.join("   ").trim_end())?;
    }
    Ok(())
}

fn write_spec(bundle: &std::path::Path, rootless: bool) -> Result<()> {
    let path = bundle.join("config.json");
    if path.exists() {
        bail!("{} exists: remove it first", path.display());
    }
    let spec = if rootless {
        rt::spec_template::rootless_spec(
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        )
    } else {
        rt::spec_template::default_spec()
    };
    let mut text = serde_json::to_string_pretty(&spec)?;
    text.push('\n');
    std::fs::write(&path, text)
        .with_context(|| format!("write {}", path.display()))
        .map_err(|e| anyhow!("{e:#}"))
}
