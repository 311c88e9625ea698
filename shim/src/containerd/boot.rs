//! How containerd runs the binary, and which of its protocols answers.
//!
//! - `-info`, and the `delete` action: the `containerd-shim` crate's
//!   `run` (the runtime's features, or a dead shim's cleanup).
//! - `start`: containerd 2.3 sends `BootstrapParams` on stdin and reads a
//!   `BootstrapResult` (task API v3) from stdout. Older daemons pass
//!   flags and environment (and maybe their runtime options on stdin) and
//!   read the address: 1.6 takes stdout as the address itself, 1.7 and
//!   2.0 to 2.2 also take a bare address as a shim of task API v2, and
//!   1.7 refuses a reply claiming v3. So without `BootstrapParams` the
//!   answer is the bare address, which every one of them understands.
//! - serving: the Task service is registered under both names,
//!   `containerd.task.v3.Task` (2.x) and `containerd.task.v2.Task` (1.6
//!   and 1.7, or 2.x after a bare address); the messages are the same.
//!
//! `start` and serving are this module's rather than the crate's because
//! the crate answers a legacy `start` with JSON claiming v3 and serves v3
//! alone, which containerd 1.6 cannot use.

use std::io::{IsTerminal, Read};
use std::os::fd::IntoRawFd;
use std::sync::Arc;

use containerd_shim::bootstrap::{BootstrapParams, BootstrapResult};
use containerd_shim::monitor::monitor_notify_by_pid;
use containerd_shim::protos::protobuf::Message;
use containerd_shim::protos::shim::shim_ttrpc::create_task;
use containerd_shim::protos::ttrpc::{MethodHandler, Server};
use containerd_shim::publisher::RemotePublisher;
use containerd_shim::util::{read_address, write_address};
use containerd_shim::{Config, Error, Flags, Shim, StartOpts};
use log::{info, warn};
use nix::errno::Errno;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use signal_hook::consts::{SIGCHLD, SIGINT, SIGPIPE, SIGTERM};
use signal_hook::iterator::Signals;

use super::Service;

/// containerd's name for this runtime.
pub const RUNTIME_ID: &str = "io.containerd.rt.v2";

/// The task API containerd is told of with the bootstrap protocol.
const TASK_API_VERSION: i32 = 3;

/// What an invocation of the binary is.
#[derive(Debug, PartialEq, Eq)]
pub enum Invocation {
    /// `-info` or `delete`: the `containerd-shim` crate's `run`.
    Crate,
    /// `start`: `start` here, its reply written to stdout.
    Start,
    /// The shim itself (`-socket`): `serve` here.
    Serve,
}

impl Invocation {
    pub fn of(flags: &Flags) -> Invocation {
        if flags.info || flags.action == "delete" {
            Invocation::Crate
        } else if flags.action == "start" {
            Invocation::Start
        } else {
            Invocation::Serve
        }
    }
}

/// The protocol containerd started the shim with: `BootstrapParams` on
/// stdin, or flags and environment.
#[derive(Debug, PartialEq, Eq)]
pub enum Protocol {
    Bootstrap,
    Legacy,
}

/// The `start` action: spawns the serving shim (or finds the pod's) and
/// returns the protocol and the bytes containerd expects on stdout.
pub fn start(flags: &Flags) -> Result<(Protocol, Vec<u8>), Error> {
    if flags.namespace.is_empty() {
        return Err(Error::InvalidArgument("-namespace is empty".into()));
    }
    let mut input = Vec::new();
    // containerd caps what it sends at 10 MiB; so does this. (Nothing
    // comes from a terminal: someone trying the binary by hand.)
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        stdin
            .lock()
            .take(10 << 20)
            .read_to_end(&mut input)
            .map_err(|e| Error::Other(format!("read stdin: {e}")))?;
    }
    let (opts, protocol) = match bootstrap_params(&input, flags)? {
        Some(params) => (StartOpts::from(params), Protocol::Bootstrap),
        None => (legacy_opts(flags), Protocol::Legacy),
    };
    if opts.ttrpc_address.is_empty() {
        return Err(Error::InvalidArgument(
            "containerd's TTRPC address is missing (TTRPC_ADDRESS)".into(),
        ));
    }
    let mut shim = Service::new(RUNTIME_ID, flags, &mut Config::default());
    let address = shim.start_shim(opts)?;
    let reply = match protocol {
        Protocol::Bootstrap => BootstrapResult {
            version: TASK_API_VERSION,
            address,
            protocol: "ttrpc".into(),
            ..Default::default()
        }
        .write_to_bytes()?,
        Protocol::Legacy => address.into_bytes(),
    };
    Ok((protocol, reply))
}

/// `input` as the `BootstrapParams` of this shim, or `None` if containerd
/// sent something else (nothing, or its runtime options).
fn bootstrap_params(input: &[u8], flags: &Flags) -> Result<Option<BootstrapParams>, Error> {
    if input.is_empty() {
        return Ok(None);
    }
    let Ok(params) = BootstrapParams::parse_from_bytes(input) else {
        return Ok(None);
    };
    if params.instance_id == flags.id && params.namespace == flags.namespace {
        return Ok(Some(params));
    }
    // Runtime options (an `Any`) parse as `BootstrapParams` too, the type
    // URL as the instance id and the value as the namespace, nothing else.
    let only_those = BootstrapParams {
        instance_id: params.instance_id.clone(),
        namespace: params.namespace.clone(),
        ..Default::default()
    };
    if params == only_those {
        return Ok(None);
    }
    Err(Error::InvalidArgument(format!(
        "BootstrapParams are for {}/{}, the flags say {}/{}",
        params.namespace, params.instance_id, flags.namespace, flags.id
    )))
}

/// What the flags and the environment of containerd before 2.3 say.
fn legacy_opts(flags: &Flags) -> StartOpts {
    let env = |name: &str| std::env::var(name).unwrap_or_default();
    let address = if flags.address.is_empty() {
        env("GRPC_ADDRESS")
    } else {
        flags.address.clone()
    };
    StartOpts {
        id: flags.id.clone(),
        publish_binary: flags.publish_binary.clone(),
        address,
        ttrpc_address: env("TTRPC_ADDRESS"),
        namespace: flags.namespace.clone(),
        debug: flags.debug,
        ..Default::default()
    }
}

/// The serving shim: the Task service on `-socket` until the last
/// container is deleted. Returns early (Ok) if another shim already
/// serves the socket.
pub fn serve(flags: &Flags) -> Result<(), Error> {
    if flags.namespace.is_empty() || flags.socket.is_empty() {
        return Err(Error::InvalidArgument(
            "-namespace and -socket are required to serve".into(),
        ));
    }
    // The zygote is forked here, while this process has one thread.
    let mut config = Config::default();
    let shim = Service::new(RUNTIME_ID, flags, &mut config);
    nix::sys::prctl::set_child_subreaper(true)
        .map_err(|e| Error::Other(format!("become a child subreaper: {e}")))?;
    // After the fork, so that the zygote keeps the default dispositions.
    let signals = Signals::new([SIGCHLD, SIGTERM, SIGINT, SIGPIPE])
        .map_err(|e| Error::Other(format!("handle signals: {e}")))?;
    containerd_shim::logger::init(
        flags.debug,
        &config.default_log_level,
        &flags.namespace,
        &flags.id,
    )?;
    let ttrpc_address = std::env::var("TTRPC_ADDRESS")
        .map_err(|_| Error::InvalidArgument("TTRPC_ADDRESS is not set".into()))?;
    let publisher = RemotePublisher::new(&ttrpc_address)?;
    let task: Arc<dyn containerd_shim::Task + Send + Sync> =
        Arc::new(shim.create_task_service(publisher));
    let Some(listener) = listen(&flags.socket)? else {
        server_started()?;
        return Ok(());
    };
    let mut server = Server::new()
        .add_listener(listener.into_raw_fd())?
        .register_service(create_task(task.clone()))
        .register_service(as_task_v2(create_task(task)));
    server.start()?;
    server_started()?;
    info!("serving {RUNTIME_ID} on {}", flags.socket);
    std::thread::spawn(move || handle_signals(signals));
    let mut shim = shim;
    shim.wait();
    info!("shutting down");
    server.shutdown();
    if let Ok(address) = read_address() {
        let path = address.strip_prefix("unix://").unwrap_or(&address);
        if let Err(e) = std::fs::remove_file(path) {
            warn!("remove {path}: {e}");
        }
    }
    Ok(())
}

type Methods = std::collections::HashMap<String, Box<dyn MethodHandler + Send + Sync>>;

/// The same methods under containerd 1.6's service name.
fn as_task_v2(v3: Methods) -> Methods {
    v3.into_iter()
        .map(|(path, m)| {
            (
                path.replace("/containerd.task.v3.Task/", "/containerd.task.v2.Task/"),
                m,
            )
        })
        .collect()
}

/// The listening socket, or `None` if another shim answers on it already
/// (two starts of one pod racing), whose address is then recorded.
fn listen(address: &str) -> Result<Option<std::os::unix::net::UnixListener>, Error> {
    use std::os::unix::net::{UnixListener, UnixStream};
    let path = address.strip_prefix("unix://").unwrap_or(address);
    if let Some(dir) = std::path::Path::new(path).parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::Other(format!("create {}: {e}", dir.display())))?;
    }
    match UnixListener::bind(path) {
        Ok(l) => Ok(Some(l)),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            if UnixStream::connect(path).is_ok() {
                write_address(address)?;
                return Ok(None);
            }
            // A socket left by a shim that died.
            std::fs::remove_file(path)
                .map_err(|e| Error::Other(format!("remove stale {path}: {e}")))?;
            UnixListener::bind(path)
                .map(Some)
                .map_err(|e| Error::Other(format!("listen on {path}: {e}")))
        }
        Err(e) => Err(Error::Other(format!("listen on {path}: {e}"))),
    }
}

/// Tells `start`, which reads this process's stdout to its end, that the
/// server is up: stdout becomes a copy of stderr.
fn server_started() -> Result<(), Error> {
    nix::unistd::dup2_stdout(std::io::stderr())
        .map_err(|e| Error::Other(format!("release start's stdout: {e}")))
}

/// Reaps every child on SIGCHLD (the shim is the subreaper of the
/// containers' processes) and hands their exits to the crate's monitor,
/// which the service subscribed to. containerd stops a shim through the
/// Task API; SIGTERM and SIGINT are only logged, SIGPIPE (a reader gone)
/// must not kill it.
fn handle_signals(mut signals: Signals) {
    reap();
    loop {
        for sig in signals.wait() {
            match sig {
                SIGCHLD => reap(),
                _ => info!("signal {sig} ignored"),
            }
        }
    }
}

fn reap() {
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) => notify(pid.as_raw(), code),
            Ok(WaitStatus::Signaled(pid, sig, _)) => notify(pid.as_raw(), 128 + sig as i32),
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return,
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => {
                warn!("waitpid: {e}");
                return;
            }
        }
    }
}

fn notify(pid: i32, code: i32) {
    if let Err(e) = monitor_notify_by_pid(pid, code) {
        warn!("exit of {pid}: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use containerd_shim::protos::protobuf::well_known_types::any::Any;

    fn flags() -> Flags {
        Flags {
            id: "c1".into(),
            namespace: "k8s.io".into(),
            ..Default::default()
        }
    }

    #[test]
    fn bootstrap_params_are_told_from_the_legacy_stdin() {
        assert!(bootstrap_params(b"", &flags()).unwrap().is_none());
        let params = BootstrapParams {
            instance_id: "c1".into(),
            namespace: "k8s.io".into(),
            containerd_ttrpc_address: "/run/containerd/containerd.sock.ttrpc".into(),
            socket_dir: Some("/run/x/s".into()),
            ..Default::default()
        };
        let got = bootstrap_params(&params.write_to_bytes().unwrap(), &flags())
            .unwrap()
            .expect("containerd 2.3's params");
        let address = StartOpts::from(got).socket_address("c1");
        assert!(address.starts_with("unix:///run/x/s/"), "{address}");
        // containerd 1.6/1.7 may send its runtime options (an Any).
        let options = Any {
            type_url: "containerd.runc.v1.Options".into(),
            value: vec![0x32, 0x02, b'r', b't'],
            ..Default::default()
        };
        assert!(
            bootstrap_params(&options.write_to_bytes().unwrap(), &flags())
                .unwrap()
                .is_none()
        );
        let other = BootstrapParams {
            instance_id: "c2".into(),
            namespace: "k8s.io".into(),
            containerd_version: "v2.3.4".into(),
            ..Default::default()
        };
        let err = bootstrap_params(&other.write_to_bytes().unwrap(), &flags()).unwrap_err();
        assert!(err.to_string().contains("k8s.io/c2"), "{err}");
    }

    #[test]
    fn the_v2_service_has_every_v3_method() {
        let v3: Methods = ["Create", "Start"]
            .iter()
            .map(|m| {
                let handler: Box<dyn MethodHandler + Send + Sync> = Box::new(Noop);
                (format!("/containerd.task.v3.Task/{m}"), handler)
            })
            .collect();
        let mut v2: Vec<String> = as_task_v2(v3).into_keys().collect();
        v2.sort();
        assert_eq!(
            v2,
            [
                "/containerd.task.v2.Task/Create",
                "/containerd.task.v2.Task/Start"
            ]
        );
    }

    struct Noop;
    impl MethodHandler for Noop {
        fn handler(
            &self,
            _: containerd_shim::protos::ttrpc::TtrpcContext,
            _: containerd_shim::protos::ttrpc::Request,
        ) -> containerd_shim::protos::ttrpc::Result<()> {
            Ok(())
        }
    }
}
