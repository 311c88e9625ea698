//! rt's command line: runc's, flag for flag. Parsing, output and exit
//! codes live here; everything else is in the library.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::{anyhow, bail, Context as _, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use rt::container::{self, CreateOptions};
use rt::state::Root;

const SPEC_VERSION: &str = rt::config::spec::OCI_VERSION;

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
    /// Hand containers made by `create` and `run -d` to an rt-shim that
    /// stays their parent, records their exit and keeps their output.
    /// auto: a shim unless --pid-file or --console-socket is given (callers
    /// such as containerd's runc shim and conmon reap the init themselves)
    #[arg(long, global = true, value_enum, default_value_t = ShimMode::Auto, env = "RT_SHIM")]
    shim: ShimMode,
    /// Print the version
    #[arg(short = 'v', long = "version")]
    version: bool,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Copy, Clone, Debug, ValueEnum, PartialEq, Eq)]
enum ShimMode {
    Auto,
    Always,
    Never,
}

impl From<ShimMode> for rt::container::shim::Mode {
    fn from(m: ShimMode) -> Self {
        match m {
            ShimMode::Auto => rt::container::shim::Mode::Auto,
            ShimMode::Always => rt::container::shim::Mode::Always,
            ShimMode::Never => rt::container::shim::Mode::Never,
        }
    }
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
    /// With a shim: keep the container's stdout and stderr in its log
    /// (`rt logs`) even when rt's own output is not a terminal
    #[arg(long = "log-output")]
    log_output: bool,
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

#[derive(Args, Debug, Clone)]
struct UpdateArgs {
    /// linux.resources JSON from a file, or - for stdin (as containerd sends it)
    #[arg(short = 'r', long)]
    resources: Option<PathBuf>,
    /// Memory limit in bytes
    #[arg(long)]
    memory: Option<i64>,
    /// Memory reservation in bytes
    #[arg(long = "memory-reservation")]
    memory_reservation: Option<i64>,
    /// Memory plus swap limit in bytes (-1: unlimited)
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    memory_swap: Option<i64>,
    /// CPU shares (relative weight)
    #[arg(long = "cpu-shares")]
    cpu_shares: Option<u64>,
    /// CFS quota in microseconds
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    cpu_quota: Option<i64>,
    /// CFS period in microseconds
    #[arg(long = "cpu-period")]
    cpu_period: Option<u64>,
    /// CPUs to run on (0-3, 0,1)
    #[arg(long = "cpuset-cpus")]
    cpuset_cpus: Option<String>,
    /// Memory nodes to use
    #[arg(long = "cpuset-mems")]
    cpuset_mems: Option<String>,
    /// Maximum number of pids (-1: unlimited)
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pids_limit: Option<i64>,
    /// Block IO weight (10-1000)
    #[arg(long = "blkio-weight")]
    blkio_weight: Option<u16>,
    /// Container id
    id: String,
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
    /// Change a container's resource limits (runc's flags, or --resources)
    Update(Box<UpdateArgs>),
    /// Print a container's resource usage (and "oom" events) as JSON lines
    Events {
        /// Print the stats once and exit
        #[arg(long)]
        stats: bool,
        /// How often to print stats (e.g. 5s, 500ms, 1m)
        #[arg(long, default_value = "5s")]
        interval: String,
        id: String,
    },
    /// Freeze every process of a running container
    Pause { id: String },
    /// Thaw a paused container
    Resume { id: String },
    /// List the processes of a container
    Ps {
        /// table runs ps(1) and keeps the container's rows; json prints the pids
        #[arg(short = 'f', long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
        id: String,
        /// Options for ps(1) (default -ef)
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Print a container's output, kept by its shim
    Logs {
        /// Keep printing new output until the container exits
        #[arg(short = 'f', long)]
        follow: bool,
        /// Only output since this time (RFC 3339, unix seconds, or a duration such as 10m)
        #[arg(long)]
        since: Option<String>,
        /// Only this many last lines
        #[arg(short = 'n', long)]
        tail: Option<usize>,
        /// Prefix each line with its time
        #[arg(short = 't', long)]
        timestamps: bool,
        id: String,
    },
    /// Wait for a container to exit and print its exit status
    Wait { id: String },
    /// Connect to the terminal of a container its shim holds (detach: Ctrl-P Ctrl-Q)
    Attach { id: String },
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
            let msg = one_line(&e);
            log::error!("{msg}");
            eprintln!("rt: {msg}");
            std::process::exit(1);
        }
    }
}

/// The error and its causes on one line. rt's library errors already
/// show their source (`write F: No space left on device`), so a cause
/// the line ends with is not repeated.
fn one_line(e: &anyhow::Error) -> String {
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
        shim: false,
    }
}

/// `create`, by hand through an rt-shim or runc's way.
fn create(root: &Root, a: &CreateArgs, systemd: bool, mode: ShimMode) -> Result<()> {
    use std::io::IsTerminal;
    let opts = create_options(a, systemd);
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
        Cmd::Create(a) => create(&root, &a, cli.systemd_cgroup, cli.shim)?,
        Cmd::Start { id } => container::start(&root, &id)?,
        Cmd::Run {
            create,
            detach,
            keep,
        } => {
            if detach {
                self::create(&root, &create, cli.systemd_cgroup, cli.shim)?;
                if let Err(e) = container::start(&root, &create.id) {
                    let _ = container::delete(&root, &create.id, true);
                    return Err(e.into());
                }
                return Ok(0);
            }
            return run_foreground(&root, &create, keep, cli.systemd_cgroup);
        }
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
            let sig = rt::container::signal::parse(signal.as_deref().unwrap_or("TERM"))?;
            container::kill(&root, &id, sig, all)?;
        }
        Cmd::Delete { force, id } => container::delete(&root, &id, force)?,
        Cmd::List { format, quiet } => list(&root, format, quiet)?,
        Cmd::Spec { bundle, rootless } => write_spec(&bundle, rootless)?,
        Cmd::Logs {
            follow,
            since,
            tail,
            timestamps,
            id,
        } => {
            let filter = rt::tty::logs::Filter {
                since: since
                    .as_deref()
                    .map(rt::tty::logs::parse_since)
                    .transpose()?,
                tail,
            };
            logs(&root, &id, &filter, follow, timestamps)?;
        }
        Cmd::Update(a) => container::update(&root, &a.id, &update_resources(&a)?)?,
        Cmd::Events {
            stats,
            interval,
            id,
        } => {
            let interval = parse_interval(&interval).map_err(|e| anyhow!("--interval {e}"))?;
            events(&root, &id, stats, interval)?
        }
        Cmd::Pause { id } => container::pause(&root, &id)?,
        Cmd::Resume { id } => container::resume(&root, &id)?,
        Cmd::Ps {
            format,
            id,
            ps_args,
        } => ps(&root, &id, format, &ps_args)?,
        Cmd::Wait { id } => {
            let exit = container::wait(&root, &id)?;
            println!("{}", exit.status);
        }
        Cmd::Attach { id } => return attach(&root, &id),
    }
    Ok(0)
}

fn run_foreground(root: &Root, a: &CreateArgs, keep: bool, systemd: bool) -> Result<i32> {
    let mut opts = create_options(a, systemd);
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

fn exec(root: &Root, a: &ExecArgs) -> Result<i32> {
    use rt::container::exec::{ExecOptions, ProcessFlags, ProcessSource};
    let source = match &a.process {
        Some(path) => ProcessSource::Given(Box::new(rt::container::exec::process_from_file(path)?)),
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
        rt::container::exec::exec(root, &opts, source)?;
        return Ok(0);
    }
    let signals = rt::tty::foreground::block_signals()?;
    let started = rt::container::exec::exec(root, &opts, source)?;
    let exit = rt::tty::foreground::supervise(&started.process, &signals, started.console)?;
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
                match &c.state.exit {
                    Some(e) => match e.status {
                        Some(code) => format!("{} ({code})", c.state.status),
                        None => format!("{} (?)", c.state.status),
                    },
                    None => c.state.status.to_string(),
                },
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

fn logs(
    root: &Root,
    id: &str,
    filter: &rt::tty::logs::Filter,
    follow: bool,
    timestamps: bool,
) -> Result<()> {
    use rt::tty::logs::{Entry, Stream};
    let c = container::Container::load(root, id)?;
    let path = c.dir.join(rt::state::LOG_FILE);
    if !path.exists() {
        bail!(
            "container {id} has no log: its output went to the terminal or files of whoever created it (rt keeps a log with a shim when create's output is a terminal, or with --log-output)"
        );
    }
    let print = |entries: &[Entry]| -> Result<()> {
        let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
        for e in entries {
            let w: &mut dyn Write = match e.stream {
                Stream::Stdout => &mut out,
                Stream::Stderr => &mut err,
            };
            if timestamps {
                write!(w, "{} ", humantime::format_rfc3339_nanos(e.time))?;
            }
            w.write_all(&e.output())?;
        }
        out.flush()?;
        Ok(())
    };
    let (entries, mut offset) = rt::tty::logs::read(&path, filter)?;
    print(&entries)?;
    if !follow {
        return Ok(());
    }
    // Until the shim, which writes the log, is gone.
    loop {
        let shim_gone = c
            .shim_pidfd()
            .is_none_or(|fd| container::wait_exit(&fd, std::time::Duration::from_millis(200)));
        let mut more = Vec::new();
        offset = match rt::tty::logs::read_from(&path, offset, &mut more) {
            Ok(o) => o,
            // Deleted while we followed it.
            Err(_) => return Ok(()),
        };
        let more: Vec<Entry> = more
            .into_iter()
            .filter(|e| filter.since.is_none_or(|s| e.time >= s))
            .collect();
        print(&more)?;
        if shim_gone {
            return Ok(());
        }
    }
}

/// The resources `update` asks for: the --resources JSON, with runc's
/// flags on top.
fn update_resources(a: &UpdateArgs) -> Result<oci_spec::runtime::LinuxResources> {
    use std::io::Read;
    let mut v: serde_json::Value = match &a.resources {
        Some(p) => {
            let mut text = String::new();
            if p.as_os_str() == "-" {
                std::io::stdin().read_to_string(&mut text)?;
            } else {
                text = std::fs::read_to_string(p)
                    .with_context(|| format!("--resources {}", p.display()))?;
            }
            serde_json::from_str(&text)
                .map_err(|e| anyhow!("--resources: not linux.resources JSON: {e}"))?
        }
        None => serde_json::json!({}),
    };
    let mut set = |section: &str, key: &str, val: serde_json::Value| {
        v[section][key] = val;
    };
    if let Some(x) = a.memory {
        set("memory", "limit", x.into());
    }
    if let Some(x) = a.memory_reservation {
        set("memory", "reservation", x.into());
    }
    if let Some(x) = a.memory_swap {
        set("memory", "swap", x.into());
    }
    if let Some(x) = a.cpu_shares {
        set("cpu", "shares", x.into());
    }
    if let Some(x) = a.cpu_quota {
        set("cpu", "quota", x.into());
    }
    if let Some(x) = a.cpu_period {
        set("cpu", "period", x.into());
    }
    if let Some(x) = &a.cpuset_cpus {
        set("cpu", "cpus", x.clone().into());
    }
    if let Some(x) = &a.cpuset_mems {
        set("cpu", "mems", x.clone().into());
    }
    if let Some(x) = a.pids_limit {
        set("pids", "limit", x.into());
    }
    if let Some(x) = a.blkio_weight {
        set("blockIO", "weight", x.into());
    }
    serde_json::from_value(v).map_err(|e| anyhow!("--resources: {e}"))
}

/// runc's `ps`: json is the array of pids (what containerd parses);
/// table is ps(1)'s output, header and the container's rows.
fn ps(root: &Root, id: &str, format: ListFormat, ps_args: &[String]) -> Result<()> {
    let pids = container::pids(root, id)?;
    if format == ListFormat::Json {
        println!("{}", serde_json::to_string(&pids)?);
        return Ok(());
    }
    let args: Vec<String> = if ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        ps_args.to_vec()
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .context("run ps")?;
    if !out.status.success() {
        bail!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .ok_or_else(|| anyhow!("ps {}: its output has no PID column", args.join(" ")))?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{header}")?;
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(col)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            writeln!(stdout, "{line}")?;
        }
    }
    Ok(())
}

fn attach(root: &Root, id: &str) -> Result<i32> {
    let c = container::Container::load(root, id)?;
    let sock = rt::tty::attach::connect_to(&c.dir)?;
    let ended = rt::tty::attach::relay(&sock)?;
    rt::tty::attach::restore_signals();
    Ok(match ended {
        rt::tty::attach::Ended::Detached => 0,
        rt::tty::attach::Ended::Closed => {
            // The shim closes the terminal when the container exits and
            // records the exit right after.
            if let Some(shim) = c.shim_pidfd() {
                container::wait_exit(&shim, std::time::Duration::from_secs(2));
            }
            rt::state::ExitRecord::read(&c.dir).map_or(0, |e| e.status)
        }
    })
}

fn write_spec(bundle: &std::path::Path, rootless: bool) -> Result<()> {
    let path = bundle.join("config.json");
    if path.exists() {
        bail!("{} exists: remove it first", path.display());
    }
    let spec = if rootless {
        rt::config::template::rootless_spec(
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        )
    } else {
        rt::config::template::default_spec()
    };
    let mut text = serde_json::to_string_pretty(&spec)?;
    text.push('\n');
    std::fs::write(&path, text)
        .with_context(|| format!("write {}", path.display()))
        .map_err(|e| anyhow!("{}", one_line(&e)))
}

/// `5s`, `500ms`, `1m`, or plain seconds.
fn parse_interval(s: &str) -> std::result::Result<std::time::Duration, String> {
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 5s or 500ms"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("{s:?}: the unit is ms, s or m")),
    };
    if !(secs > 0.0 && secs.is_finite()) {
        return Err(format!("{s:?}: the interval must be positive"));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

/// runc's `events`: a "stats" event every interval (once with --stats),
/// an "oom" event as soon as the OOM killer kills in the container, until
/// the container stops.
fn events(root: &Root, id: &str, once: bool, interval: std::time::Duration) -> Result<()> {
    use std::io::Write;
    use std::time::{Duration, Instant};
    let dir = container::cgroup_of(root, id)?;
    let print = |v: serde_json::Value| -> Result<()> {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{v}")?;
        out.flush()?;
        Ok(())
    };
    let stats = || serde_json::json!({"type": "stats", "id": id, "data": rt::cgroup::stats::read_stats(&dir)});
    if once {
        return print(stats());
    }
    let mut ooms = rt::cgroup::stats::oom_kills(&dir);
    let mut next = Instant::now();
    while container::is_live(root, id) {
        if Instant::now() >= next {
            print(stats())?;
            next += interval;
        }
        let now = rt::cgroup::stats::oom_kills(&dir);
        if now > ooms {
            print(serde_json::json!({"type": "oom", "id": id}))?;
            ooms = now;
        }
        std::thread::sleep(Duration::from_millis(100).min(interval));
    }
    Ok(())
}
