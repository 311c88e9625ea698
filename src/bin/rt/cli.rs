//! The command line's types: runc's global flags and subcommands, flag
//! for flag, as clap parses them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "rt",
    about = "rt: an OCI container runtime, runc's command line flag for flag",
    disable_version_flag = true
)]
pub struct Cli {
    /// Root directory for the containers' state [default: /run/rt, or
    /// $XDG_RUNTIME_DIR/rt without root]
    #[arg(long, global = true, env = "RT_ROOT")]
    pub root: Option<PathBuf>,
    /// Also write log lines to this file
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// Format of the log lines: text (logrus's key=value) or json [default: text]
    #[arg(long = "log-format", global = true, value_enum)]
    pub log_format: Option<LogFormat>,
    /// Log debug lines too
    #[arg(long, global = true)]
    pub debug: bool,
    /// Ask systemd for the cgroup: a transient scope from slice:prefix:name
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,
    /// Path to the CRIU binary for checkpoint and restore [default: criu, from PATH]
    #[arg(long, global = true)]
    pub criu: Option<PathBuf>,
    /// Accepted for runc compatibility (auto, true, false)
    #[arg(long = "rootless", hide = true)]
    pub rootless_mode: Option<String>,
    /// Hand containers made by `create` and `run -d` to an rt-shim that
    /// stays their parent, records their exit and keeps their output.
    /// auto: a shim unless --pid-file or --console-socket is given (callers
    /// such as containerd's runc shim and conmon reap the init themselves)
    #[arg(long, global = true, value_enum, default_value_t = ShimMode::Auto, env = "RT_SHIM")]
    pub shim: ShimMode,
    /// Print the version
    #[arg(short = 'v', long = "version")]
    pub version: bool,
    #[command(subcommand)]
    pub cmd: Option<Cmd>,
}

#[derive(Copy, Clone, Debug, ValueEnum, PartialEq, Eq)]
pub enum ShimMode {
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
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Args, Debug, Clone)]
pub struct CreateArgs {
    /// Path to the bundle directory
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    /// Write the init's pid to this file
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Unix socket that receives the pty master
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Unix socket that receives a pidfd of the container's init
    #[arg(long = "pidfd-socket")]
    pub pidfd_socket: Option<PathBuf>,
    /// Move the root over / and chroot instead of pivot_root
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Do not give the container a new session keyring
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Pass this many descriptors from 3 up on to the container
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: i32,
    /// With a shim: keep the container's stdout and stderr in its log
    /// (`rt logs`) even when rt's own output is not a terminal
    #[arg(long = "log-output")]
    pub log_output: bool,
    /// Container id
    pub id: String,
}

#[derive(Args, Debug, Clone)]
pub struct ExecArgs {
    /// An OCI process JSON; the flags that shape the process are then ignored
    #[arg(short = 'p', long)]
    pub process: Option<PathBuf>,
    /// Allocate a terminal
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Unix socket that receives the pty master
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Unix socket that receives a pidfd of the process
    #[arg(long = "pidfd-socket")]
    pub pidfd_socket: Option<PathBuf>,
    /// Return once the process has started
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Write the process's pid to this file
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Working directory in the container
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// Set an environment variable (KEY=VALUE), repeatable
    #[arg(short = 'e', long)]
    pub env: Vec<String>,
    /// UID[:GID] to run as
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Additional group ids, repeatable
    #[arg(short = 'g', long = "additional-gids")]
    pub additional_gids: Vec<u32>,
    /// Add a capability (CAP_...), repeatable
    #[arg(short = 'c', long)]
    pub cap: Vec<String>,
    /// Set no_new_privs for the process
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    /// Pass this many descriptors from 3 up on to the process
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: i32,
    /// SELinux label (not supported: an error if not empty)
    #[arg(long = "process-label")]
    pub process_label: Option<String>,
    /// AppArmor profile for the process (instead of the config's)
    #[arg(long)]
    pub apparmor: Option<String>,
    /// Exec even if the container is paused
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
    /// Run in this cgroup below the container's
    #[arg(long)]
    pub cgroup: Option<String>,
    /// Container id
    pub id: String,
    /// Command and arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Args, Debug, Clone)]
pub struct UpdateArgs {
    /// linux.resources JSON from a file, or - for stdin (as containerd sends it)
    #[arg(short = 'r', long)]
    pub resources: Option<PathBuf>,
    /// Memory limit in bytes (10M, 1g; -1: unlimited)
    #[arg(long, allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Memory reservation in bytes (10M, 1g)
    #[arg(long = "memory-reservation", allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    /// Memory plus swap limit in bytes (10M, 1g; -1: unlimited)
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// CPU shares (relative weight)
    #[arg(long = "cpu-share", alias = "cpu-shares")]
    pub cpu_shares: Option<u64>,
    /// CFS quota in microseconds
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CFS period in microseconds
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    /// CFS burst in microseconds
    #[arg(long = "cpu-burst")]
    pub cpu_burst: Option<u64>,
    /// SCHED_IDLE for the cgroup (1), or not (0)
    #[arg(long = "cpu-idle", allow_hyphen_values = true)]
    pub cpu_idle: Option<i64>,
    /// Realtime period in microseconds (cgroup v1 only: refused on cgroup v2)
    #[arg(long = "cpu-rt-period")]
    pub cpu_rt_period: Option<u64>,
    /// Realtime runtime in microseconds (cgroup v1 only: refused on cgroup v2)
    #[arg(long = "cpu-rt-runtime", allow_hyphen_values = true)]
    pub cpu_rt_runtime: Option<i64>,
    /// CPUs to run on (0-3, 0,1)
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes to use
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Maximum number of pids (-1: unlimited)
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Block IO weight (10-1000)
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    /// Intel RDT L3 cache schema of the container's resctrl group (L3:0=ff)
    #[arg(long = "l3-cache-schema")]
    pub l3_cache_schema: Option<String>,
    /// Intel RDT memory bandwidth schema of the container's resctrl group (MB:0=50)
    #[arg(long = "mem-bw-schema")]
    pub mem_bw_schema: Option<String>,
    /// Container id
    pub id: String,
}

/// The flags `checkpoint` and `restore` share (runc's).
#[derive(Args, Debug, Clone)]
pub struct CriuArgs {
    /// Path for the CRIU image files [default: ./checkpoint]
    #[arg(long = "image-path")]
    pub image_path: Option<PathBuf>,
    /// Path for CRIU's work files and log [default: the image path]
    #[arg(long = "work-path")]
    pub work_path: Option<PathBuf>,
    /// Allow open TCP connections
    #[arg(long = "tcp-established")]
    pub tcp_established: bool,
    /// Allow external unix sockets
    #[arg(long = "ext-unix-sk")]
    pub ext_unix_sk: bool,
    /// Allow shell jobs
    #[arg(long = "shell-job")]
    pub shell_job: bool,
    /// Handle file locks, for safety
    #[arg(long = "file-locks")]
    pub file_locks: bool,
    /// Use userfaultfd to restore memory pages lazily
    #[arg(long = "lazy-pages")]
    pub lazy_pages: bool,
    /// cgroups mode: soft|full|strict|ignore
    #[arg(long = "manage-cgroups-mode", default_value = "soft")]
    pub manage_cgroups_mode: String,
    /// Create a namespace, but do not restore its properties (network)
    #[arg(long = "empty-ns")]
    pub empty_ns: Option<String>,
    /// Enable auto deduplication of memory images
    #[arg(long = "auto-dedup")]
    pub auto_dedup: bool,
}

#[derive(Args, Debug, Clone)]
pub struct CheckpointArgs {
    #[command(flatten)]
    pub criu: CriuArgs,
    /// Path for the previous CRIU image files of a pre-dump
    #[arg(long = "parent-path")]
    pub parent_path: Option<PathBuf>,
    /// Leave the process running after checkpointing
    #[arg(long = "leave-running")]
    pub leave_running: bool,
    /// Skip in-flight TCP connections
    #[arg(long = "tcp-skip-in-flight")]
    pub tcp_skip_in_flight: bool,
    /// Allow linking unlinked files back when possible
    #[arg(long = "link-remap")]
    pub link_remap: bool,
    /// CRIU writes \0 to this descriptor once lazy-pages is ready
    #[arg(long = "status-fd", default_value_t = -1, allow_hyphen_values = true)]
    pub status_fd: i32,
    /// ADDRESS:PORT of the page server
    #[arg(long = "page-server")]
    pub page_server: Option<String>,
    /// Dump the container's memory only, and leave it running
    #[arg(long = "pre-dump")]
    pub pre_dump: bool,
    /// Container id
    pub id: String,
}

#[derive(Args, Debug, Clone)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub criu: CriuArgs,
    /// Unix socket that receives the pty master
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// Path to the bundle directory
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    /// Return once the container is restored
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Write the restored init's pid to this file
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Do not become a subreaper (rt restore never does)
    #[arg(long = "no-subreaper")]
    pub no_subreaper: bool,
    /// Do not use pivot_root (CRIU restores the container's root itself)
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// An LSM profile for the restored processes, TYPE:NAME
    #[arg(long = "lsm-profile")]
    pub lsm_profile: Option<String>,
    /// An LSM mount context for the restore
    #[arg(long = "lsm-mount-context")]
    pub lsm_mount_context: Option<String>,
    /// Container id
    pub id: String,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Checkpoint a running container with CRIU
    Checkpoint(Box<CheckpointArgs>),
    /// Restore a container from a checkpoint with CRIU
    Restore(Box<RestoreArgs>),
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
pub enum ListFormat {
    Table,
    Json,
}
