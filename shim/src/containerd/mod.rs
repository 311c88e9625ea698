//! `containerd-shim-rt-v2`: containerd's shim v2 Task API over the rt
//! library. containerd starts one per container; it serves ttrpc, makes
//! the container through the zygote (see `worker`), is the parent and
//! child subreaper of every process it makes, reaps them (the
//! `containerd-shim` crate's reaper) and publishes their exits.

mod metrics;
mod stdio;
mod worker;

use std::collections::HashMap;
use std::fs::File;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use containerd_shim::api::{
    self, ConnectRequest, ConnectResponse, CreateTaskRequest, CreateTaskResponse, DeleteRequest,
    ExecProcessRequest, KillRequest, PidsRequest, PidsResponse, StartRequest, StartResponse,
    StateRequest, StateResponse, Status, WaitRequest, WaitResponse,
};
use containerd_shim::event::Event;
use containerd_shim::monitor::{monitor_subscribe, Subject, Topic};
use containerd_shim::protos::events::task::{
    TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskIO, TaskOOM, TaskPaused,
    TaskResumed, TaskStart,
};
use containerd_shim::protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim::protos::protobuf::Message;
use containerd_shim::protos::ttrpc::{self, Code};
use containerd_shim::publisher::RemotePublisher;
use containerd_shim::util::{convert_to_any, timestamp, write_address};
use containerd_shim::{
    Config, Context, DeleteResponse, ExitSignal, Flags, StartOpts, TtrpcContext, TtrpcResult,
};
use log::{info, warn};
use rt::state::Root;

use worker::{Reply, Request, RootfsMount, StdioFds, Zygote};

/// Where rt keeps the state of containerd's containers, per namespace
/// (runc's shim uses /run/containerd/runc/<namespace>).
const STATE_ROOT: &str = "/run/containerd/rt";

fn status(code: Code, msg: impl Into<String>) -> ttrpc::Error {
    ttrpc::Error::RpcStatus(ttrpc::get_status(code, msg.into()))
}

/// Where a process's stdio goes, as containerd gave it.
#[derive(Clone)]
struct Io {
    stdin: String,
    stdout: String,
    stderr: String,
    terminal: bool,
}

/// One process of a container: its init or an exec.
struct Proc {
    pid: i32,
    /// Set once reaped.
    exit: Option<(u32, Timestamp)>,
    io: Io,
    /// An exec's process (JSON), until it is started.
    spec: Option<String>,
    stdin_writer: stdio::StdinWriter,
    console: Option<File>,
    /// Signalled when a terminal's output has been copied out.
    output_done: Option<std::sync::mpsc::Receiver<()>>,
}

impl Proc {
    fn new(io: Io) -> Proc {
        Proc {
            pid: 0,
            exit: None,
            io,
            spec: None,
            stdin_writer: Arc::new(Mutex::new(None)),
            console: None,
            output_done: None,
        }
    }
}

struct Task {
    bundle: String,
    /// The root filesystem mount point, when the shim mounted it.
    rootfs: Option<PathBuf>,
    init: Proc,
    execs: HashMap<String, Proc>,
}

impl Task {
    fn proc(&self, exec_id: &str) -> TtrpcResult<&Proc> {
        if exec_id.is_empty() {
            return Ok(&self.init);
        }
        self.execs
            .get(exec_id)
            .ok_or_else(|| status(Code::NOT_FOUND, format!("exec {exec_id} not found")))
    }

    fn proc_mut(&mut self, exec_id: &str) -> TtrpcResult<&mut Proc> {
        if exec_id.is_empty() {
            return Ok(&mut self.init);
        }
        self.execs
            .get_mut(exec_id)
            .ok_or_else(|| status(Code::NOT_FOUND, format!("exec {exec_id} not found")))
    }
}

struct Inner {
    namespace: String,
    id: String,
    /// Behind a lock: one request at a time.
    zygote: Mutex<Option<Zygote>>,
    publisher: Option<RemotePublisher>,
    exit: Arc<ExitSignal>,
    tasks: Mutex<HashMap<String, Task>>,
    /// Exits of processes reaped before their maker's answer came back.
    early_exits: Mutex<HashMap<i32, (u32, Timestamp)>>,
    exited: Condvar,
}

#[derive(Clone)]
pub struct Service {
    inner: Arc<Inner>,
}

impl Inner {
    fn new(
        namespace: &str,
        id: &str,
        zygote: Option<Zygote>,
        publisher: Option<RemotePublisher>,
        exit: Arc<ExitSignal>,
    ) -> Inner {
        Inner {
            namespace: namespace.into(),
            id: id.into(),
            zygote: Mutex::new(zygote),
            publisher,
            exit,
            tasks: Mutex::new(HashMap::new()),
            early_exits: Mutex::new(HashMap::new()),
            exited: Condvar::new(),
        }
    }

    fn root(&self) -> PathBuf {
        PathBuf::from(STATE_ROOT).join(&self.namespace)
    }

    fn tasks(&self) -> MutexGuard<'_, HashMap<String, Task>> {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn call(&self, req: &Request, stdio: Option<StdioFds>) -> TtrpcResult<(Reply, Option<File>)> {
        let z = self.zygote.lock().unwrap_or_else(|p| p.into_inner());
        let z = z
            .as_ref()
            .ok_or_else(|| status(Code::INTERNAL, "the shim has no zygote"))?;
        match z.call(req, stdio) {
            Ok((Reply::Failed { error }, _)) => Err(status(Code::UNKNOWN, error)),
            Ok((r, fd)) => Ok((r, fd.map(File::from))),
            Err(e) => Err(status(Code::INTERNAL, e)),
        }
    }

    fn publish(&self, event: impl Event + 'static) {
        if let Some(p) = &self.publisher {
            let topic = event.topic();
            if let Err(e) = p.publish(Context::default(), &topic, &self.namespace, Box::new(event))
            {
                warn!("publish {topic}: {e}");
            }
        }
    }

    /// Records a process's exit: its output drained, waiters woken, the
    /// event published.
    fn on_exit(&self, pid: i32, code: i32) {
        let at = timestamp().unwrap_or_default();
        let found = {
            let tasks = self.tasks();
            tasks.iter().find_map(|(id, t)| {
                if t.init.pid == pid && t.init.exit.is_none() {
                    Some((id.clone(), String::new()))
                } else {
                    t.execs
                        .iter()
                        .find(|(_, p)| p.pid == pid && p.exit.is_none())
                        .map(|(e, _)| (id.clone(), e.clone()))
                }
            })
        };
        let Some((id, exec_id)) = found else {
            // Reaped before create or exec answered; they pick it up.
            self.early_exits
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(pid, (code as u32, at));
            return;
        };
        let done = {
            let mut tasks = self.tasks();
            let Some(p) = tasks.get_mut(&id).and_then(|t| t.proc_mut(&exec_id).ok()) else {
                return;
            };
            p.output_done.take()
        };
        if let Some(d) = done {
            stdio::drain(&d);
        }
        {
            let mut tasks = self.tasks();
            if let Some(p) = tasks.get_mut(&id).and_then(|t| t.proc_mut(&exec_id).ok()) {
                p.exit = Some((code as u32, at.clone()));
                p.console = None;
            }
        }
        self.exited.notify_all();
        self.publish(TaskExit {
            container_id: id.clone(),
            id: if exec_id.is_empty() { id } else { exec_id },
            pid: pid as u32,
            exit_status: code as u32,
            exited_at: Some(at).into(),
            ..Default::default()
        });
    }

    /// Undoes a process `make` made but could not hand over: an init's
    /// container is deleted (state, cgroup, mount), an exec is killed.
    fn unmake(&self, id: &str, exec_id: &str, pid: i32) {
        if exec_id.is_empty() {
            let rootfs = self.tasks().get(id).and_then(|t| t.rootfs.clone());
            let req = Request::Delete {
                root: self.root(),
                id: id.to_string(),
                force: true,
                rootfs,
            };
            if let Err(e) = self.call(&req, None) {
                warn!("delete {id} after a failed create: {e:?}");
            }
        } else if let Ok(fd) = rt::sys::pidfd::pidfd_open(pid) {
            let _ = rt::sys::pidfd::pidfd_send_signal(&fd, libc::SIGKILL);
        }
    }

    /// An exit that came before its process was registered.
    fn take_early_exit(&self, pid: i32) -> Option<(u32, Timestamp)> {
        self.early_exits
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&pid)
    }

    /// Makes a process (the init or an exec) and registers it.
    fn make(&self, id: &str, exec_id: &str, req: Request, io: &Io) -> TtrpcResult<i32> {
        let (stdin, stdout, stderr) = (&io.stdin, &io.stdout, &io.stderr);
        let bad = |e: String| status(Code::INVALID_ARGUMENT, e);
        // Every path is checked before anything exists.
        for p in [stdin, stdout, stderr] {
            stdio::check_scheme(p).map_err(bad)?;
        }
        let (fds, writer) = if io.terminal {
            let null = || stdio::open_output("").map_err(bad);
            let (i, w) = stdio::open_input("").map_err(bad)?;
            (
                StdioFds {
                    stdin: i,
                    stdout: null()?,
                    stderr: null()?,
                },
                w,
            )
        } else {
            let (i, w) = stdio::open_input(stdin).map_err(bad)?;
            (
                StdioFds {
                    stdin: i,
                    stdout: stdio::open_output(stdout).map_err(bad)?,
                    stderr: stdio::open_output(stderr).map_err(bad)?,
                },
                w,
            )
        };
        let (reply, console) = self.call(&req, Some(fds))?;
        let Reply::Made { pid } = reply else {
            return Err(status(
                Code::INTERNAL,
                format!("unexpected answer {reply:?}"),
            ));
        };
        let output_done = match (&console, io.terminal) {
            (Some(m), true) => match stdio::copy_console(m, stdin, stdout) {
                Ok(d) => Some(d),
                Err(e) => {
                    self.unmake(id, exec_id, pid);
                    return Err(status(Code::INTERNAL, e));
                }
            },
            _ => {
                stdio::copy_input(stdin, &writer);
                None
            }
        };
        {
            let mut tasks = self.tasks();
            let t = tasks
                .get_mut(id)
                .ok_or_else(|| status(Code::NOT_FOUND, format!("container {id} is gone")))?;
            let p = t.proc_mut(exec_id)?;
            p.pid = pid;
            p.stdin_writer = writer;
            p.console = console;
            p.output_done = output_done;
        }
        if let Some((code, _)) = self.take_early_exit(pid) {
            self.on_exit(pid, code as i32);
        }
        Ok(pid)
    }
}

impl containerd_shim::Shim for Service {
    type T = Service;

    fn new(_runtime_id: &str, args: &Flags, _config: &mut Config) -> Self {
        // Forked now, while this process has a single thread.
        let zygote = match args.action.as_str() {
            "start" => None,
            _ => match Zygote::spawn() {
                Ok(z) => Some(z),
                Err(e) => {
                    eprintln!("containerd-shim-rt-v2: {e}");
                    None
                }
            },
        };
        Service {
            inner: Arc::new(Inner::new(
                &args.namespace,
                &args.id,
                zygote,
                None,
                Arc::new(ExitSignal::default()),
            )),
        }
    }

    fn start_shim(&mut self, opts: StartOpts) -> containerd_shim::Result<String> {
        let grouping = opts.id.clone();
        let (_pid, address) = containerd_shim::spawn(opts, &grouping, Vec::new())?;
        // containerd finds a running shim again after a restart by this.
        write_address(&address)?;
        Ok(address)
    }

    fn delete_shim(&mut self) -> containerd_shim::Result<DeleteResponse> {
        // containerd cleans up after a shim that died: the container goes
        // (with anything left in it) and so does the snapshot's mount.
        let bundle =
            std::env::current_dir().map_err(|e| containerd_shim::Error::Other(e.to_string()))?;
        let rootfs = bundle.join("rootfs");
        let req = Request::Delete {
            root: self.inner.root(),
            id: self.inner.id.clone(),
            force: true,
            rootfs: Some(rootfs),
        };
        if let Err(e) = self.inner.call(&req, None) {
            warn!("delete {}: {e:?}", self.inner.id);
        }
        Ok(DeleteResponse {
            exit_status: 128 + libc::SIGKILL as u32,
            exited_at: Some(timestamp()?).into(),
            ..Default::default()
        })
    }

    fn wait(&mut self) {
        self.inner.exit.wait();
    }

    fn create_task_service(&self, publisher: RemotePublisher) -> Self::T {
        // The service is made once; the zygote moves into it.
        let zygote = self
            .inner
            .zygote
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let inner = Arc::new(Inner::new(
            &self.inner.namespace,
            &self.inner.id,
            zygote,
            Some(publisher),
            self.inner.exit.clone(),
        ));
        // Subscribed before anything can exit; the reaper sends every
        // exit here.
        let sub = monitor_subscribe(Topic::All).expect("subscribe to the reaper");
        let me = inner.clone();
        std::thread::spawn(move || {
            while let Ok(e) = sub.rx.recv() {
                if let Subject::Pid(pid) = e.subject {
                    me.on_exit(pid, e.exit_code);
                }
            }
        });
        Service { inner }
    }
}

impl Service {
    /// Publishes a TaskOOM whenever the kernel's OOM killer strikes in the
    /// container's cgroup (`oom_kill` in memory.events grows), until the
    /// init has exited. Nothing to watch without a memory controller.
    fn watch_oom(&self, id: &str) {
        let Ok(dir) = rt::container::cgroup_of(&Root::new(self.inner.root()), id) else {
            return;
        };
        if !dir.join("memory.events").exists() {
            return;
        }
        let inner = self.inner.clone();
        let id = id.to_string();
        std::thread::spawn(move || {
            let mut seen = rt::cgroup::stats::oom_kills(&dir);
            loop {
                std::thread::sleep(std::time::Duration::from_millis(500));
                let running = inner
                    .tasks()
                    .get(&id)
                    .is_some_and(|t| t.init.exit.is_none());
                if !running {
                    return;
                }
                let now = rt::cgroup::stats::oom_kills(&dir);
                if now > seen {
                    seen = now;
                    inner.publish(TaskOOM {
                        container_id: id.clone(),
                        ..Default::default()
                    });
                }
            }
        });
    }
}

fn runc_options(req: &CreateTaskRequest) -> TtrpcResult<api::Options> {
    match req.options.as_ref() {
        Some(any) if !any.value.is_empty() => api::Options::parse_from_bytes(&any.value)
            .map_err(|e| status(Code::INVALID_ARGUMENT, format!("runtime options: {e}"))),
        _ => Ok(api::Options::default()),
    }
}

impl containerd_shim::Task for Service {
    fn state(&self, _ctx: &TtrpcContext, req: StateRequest) -> TtrpcResult<StateResponse> {
        let tasks = self.inner.tasks();
        let t = tasks
            .get(&req.id)
            .ok_or_else(|| status(Code::NOT_FOUND, format!("container {} not found", req.id)))?;
        let p = t.proc(&req.exec_id)?;
        let st = if p.exit.is_some() {
            Status::STOPPED
        } else if p.pid == 0 {
            Status::CREATED
        } else if !req.exec_id.is_empty() {
            Status::RUNNING
        } else {
            match rt::container::state(&Root::new(self.inner.root()), &req.id) {
                Ok(s) => match s.status {
                    rt::container::Status::Created | rt::container::Status::Creating => {
                        Status::CREATED
                    }
                    rt::container::Status::Running => Status::RUNNING,
                    rt::container::Status::Paused => Status::PAUSED,
                    rt::container::Status::Stopped => Status::STOPPED,
                },
                Err(_) => Status::STOPPED,
            }
        };
        let (exit_status, exited_at) = p.exit.clone().unwrap_or_default();
        Ok(StateResponse {
            id: req.id.clone(),
            bundle: t.bundle.clone(),
            pid: p.pid as u32,
            status: st.into(),
            stdin: p.io.stdin.clone(),
            stdout: p.io.stdout.clone(),
            stderr: p.io.stderr.clone(),
            terminal: p.io.terminal,
            exit_status,
            exited_at: p.exit.as_ref().map(|_| exited_at).into(),
            exec_id: req.exec_id,
            ..Default::default()
        })
    }

    fn create(
        &self,
        _ctx: &TtrpcContext,
        req: CreateTaskRequest,
    ) -> TtrpcResult<CreateTaskResponse> {
        if !req.checkpoint.is_empty() {
            return Err(status(
                Code::UNIMPLEMENTED,
                "checkpoint/restore is not supported by rt",
            ));
        }
        let opts = runc_options(&req)?;
        if !opts.root.is_empty() && std::path::Path::new(&opts.root) != self.inner.root() {
            return Err(status(
                Code::INVALID_ARGUMENT,
                format!(
                    "runtime option Root {}: containerd-shim-rt-v2 keeps its state in {}",
                    opts.root,
                    self.inner.root().display()
                ),
            ));
        }
        {
            let mut tasks = self.inner.tasks();
            if tasks.contains_key(&req.id) {
                return Err(status(
                    Code::ALREADY_EXISTS,
                    format!("container {} already exists", req.id),
                ));
            }
            let bundle = PathBuf::from(&req.bundle);
            tasks.insert(
                req.id.clone(),
                Task {
                    bundle: req.bundle.clone(),
                    rootfs: (!req.rootfs.is_empty()).then(|| bundle.join("rootfs")),
                    init: Proc::new(Io {
                        stdin: req.stdin.clone(),
                        stdout: req.stdout.clone(),
                        stderr: req.stderr.clone(),
                        terminal: req.terminal,
                    }),
                    execs: HashMap::new(),
                },
            );
        }
        let create = Request::Create {
            root: self.inner.root(),
            id: req.id.clone(),
            bundle: PathBuf::from(&req.bundle),
            rootfs: req
                .rootfs
                .iter()
                .map(|m| RootfsMount {
                    kind: m.type_.clone(),
                    source: m.source.clone(),
                    options: m.options.clone(),
                })
                .collect(),
            terminal: req.terminal,
            systemd_cgroup: opts.systemd_cgroup,
        };
        let io = self.inner.tasks().get(&req.id).map(|t| t.init.io.clone());
        let io =
            io.ok_or_else(|| status(Code::NOT_FOUND, format!("container {} is gone", req.id)))?;
        let pid = match self.inner.make(&req.id, "", create, &io) {
            Ok(pid) => pid,
            Err(e) => {
                self.inner.tasks().remove(&req.id);
                return Err(e);
            }
        };
        info!("created {} (pid {pid})", req.id);
        self.watch_oom(&req.id);
        self.inner.publish(TaskCreate {
            container_id: req.id.clone(),
            bundle: req.bundle.clone(),
            rootfs: req.rootfs.clone(),
            io: Some(TaskIO {
                stdin: req.stdin.clone(),
                stdout: req.stdout.clone(),
                stderr: req.stderr.clone(),
                terminal: req.terminal,
                ..Default::default()
            })
            .into(),
            pid: pid as u32,
            ..Default::default()
        });
        Ok(CreateTaskResponse {
            pid: pid as u32,
            ..Default::default()
        })
    }

    fn start(&self, _ctx: &TtrpcContext, req: StartRequest) -> TtrpcResult<StartResponse> {
        let root = self.inner.root();
        if req.exec_id.is_empty() {
            let pid = self.inner.tasks().get(&req.id).map(|t| t.init.pid);
            let pid = pid.ok_or_else(|| {
                status(Code::NOT_FOUND, format!("container {} not found", req.id))
            })?;
            self.inner.call(
                &Request::Start {
                    root,
                    id: req.id.clone(),
                },
                None,
            )?;
            self.inner.publish(TaskStart {
                container_id: req.id.clone(),
                pid: pid as u32,
                ..Default::default()
            });
            return Ok(StartResponse {
                pid: pid as u32,
                ..Default::default()
            });
        }
        let (spec, io) = {
            let tasks = self.inner.tasks();
            let t = tasks.get(&req.id).ok_or_else(|| {
                status(Code::NOT_FOUND, format!("container {} not found", req.id))
            })?;
            let p = t.proc(&req.exec_id)?;
            let spec = p.spec.clone().ok_or_else(|| {
                status(
                    Code::FAILED_PRECONDITION,
                    format!("exec {} was started already", req.exec_id),
                )
            })?;
            (spec, p.io.clone())
        };
        let exec = Request::Exec {
            root,
            id: req.id.clone(),
            process: spec,
            terminal: io.terminal,
        };
        let pid = self.inner.make(&req.id, &req.exec_id, exec, &io)?;
        if let Some(p) = self
            .inner
            .tasks()
            .get_mut(&req.id)
            .and_then(|t| t.execs.get_mut(&req.exec_id))
        {
            p.spec = None;
        }
        self.inner.publish(TaskExecStarted {
            container_id: req.id.clone(),
            exec_id: req.exec_id.clone(),
            pid: pid as u32,
            ..Default::default()
        });
        Ok(StartResponse {
            pid: pid as u32,
            ..Default::default()
        })
    }

    fn delete(&self, _ctx: &TtrpcContext, req: DeleteRequest) -> TtrpcResult<DeleteResponse> {
        if !req.exec_id.is_empty() {
            let mut tasks = self.inner.tasks();
            let t = tasks.get_mut(&req.id).ok_or_else(|| {
                status(Code::NOT_FOUND, format!("container {} not found", req.id))
            })?;
            let p = t.proc(&req.exec_id)?;
            if p.pid != 0 && p.exit.is_none() {
                return Err(status(
                    Code::FAILED_PRECONDITION,
                    format!("exec {} is still running", req.exec_id),
                ));
            }
            let p = t.execs.remove(&req.exec_id).expect("found above");
            let (exit_status, at) = p.exit.unwrap_or_default();
            return Ok(DeleteResponse {
                pid: p.pid as u32,
                exit_status,
                exited_at: Some(at).into(),
                ..Default::default()
            });
        }
        let (pid, rootfs) = {
            let tasks = self.inner.tasks();
            let t = tasks.get(&req.id).ok_or_else(|| {
                status(Code::NOT_FOUND, format!("container {} not found", req.id))
            })?;
            (t.init.pid, t.rootfs.clone())
        };
        self.inner.call(
            &Request::Delete {
                root: self.inner.root(),
                id: req.id.clone(),
                force: true,
                rootfs,
            },
            None,
        )?;
        // The init is reaped by now (delete waited for it to die).
        let exit = {
            let mut tasks = self.inner.tasks();
            let mut exit = tasks.get(&req.id).and_then(|t| t.init.exit.clone());
            while exit.is_none() && tasks.contains_key(&req.id) {
                let (g, timeout) = self
                    .inner
                    .exited
                    .wait_timeout(tasks, std::time::Duration::from_secs(2))
                    .unwrap_or_else(|p| p.into_inner());
                tasks = g;
                exit = tasks.get(&req.id).and_then(|t| t.init.exit.clone());
                if timeout.timed_out() {
                    break;
                }
            }
            tasks.remove(&req.id);
            exit
        };
        let (exit_status, at) = exit.unwrap_or_else(|| (128 + 9, timestamp().unwrap_or_default()));
        self.inner.publish(TaskDelete {
            container_id: req.id.clone(),
            pid: pid as u32,
            exit_status,
            exited_at: Some(at.clone()).into(),
            id: req.id.clone(),
            ..Default::default()
        });
        Ok(DeleteResponse {
            pid: pid as u32,
            exit_status,
            exited_at: Some(at).into(),
            ..Default::default()
        })
    }

    fn pids(&self, _ctx: &TtrpcContext, req: PidsRequest) -> TtrpcResult<PidsResponse> {
        let pids = rt::container::pids(&Root::new(self.inner.root()), &req.id)
            .map_err(|e| status(Code::NOT_FOUND, e.to_string()))?;
        Ok(PidsResponse {
            processes: pids
                .into_iter()
                .map(|pid| containerd_shim::protos::types::task::ProcessInfo {
                    pid: pid as u32,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
    }

    fn pause(&self, _ctx: &TtrpcContext, req: api::PauseRequest) -> TtrpcResult<api::Empty> {
        rt::container::pause(&Root::new(self.inner.root()), &req.id)
            .map_err(|e| status(Code::FAILED_PRECONDITION, e.to_string()))?;
        self.inner.publish(TaskPaused {
            container_id: req.id,
            ..Default::default()
        });
        Ok(api::Empty::new())
    }

    fn resume(&self, _ctx: &TtrpcContext, req: api::ResumeRequest) -> TtrpcResult<api::Empty> {
        rt::container::resume(&Root::new(self.inner.root()), &req.id)
            .map_err(|e| status(Code::FAILED_PRECONDITION, e.to_string()))?;
        self.inner.publish(TaskResumed {
            container_id: req.id,
            ..Default::default()
        });
        Ok(api::Empty::new())
    }

    fn kill(&self, _ctx: &TtrpcContext, req: KillRequest) -> TtrpcResult<api::Empty> {
        let pid = {
            let tasks = self.inner.tasks();
            let t = tasks.get(&req.id).ok_or_else(|| {
                status(Code::NOT_FOUND, format!("container {} not found", req.id))
            })?;
            let p = t.proc(&req.exec_id)?;
            if p.exit.is_some() || p.pid == 0 {
                return Err(status(Code::NOT_FOUND, "process already finished"));
            }
            p.pid
        };
        if req.exec_id.is_empty() {
            rt::container::kill(
                &Root::new(self.inner.root()),
                &req.id,
                req.signal as i32,
                req.all,
            )
            .map_err(|e| status(Code::NOT_FOUND, e.to_string()))?;
        } else {
            // Still unreaped (exit is None above), so the pid is its own.
            let fd = rt::sys::pidfd::pidfd_open(pid)
                .map_err(|e| status(Code::NOT_FOUND, format!("exec {}: {e}", req.exec_id)))?;
            rt::sys::pidfd::pidfd_send_signal(&fd, req.signal as i32)
                .map_err(|e| status(Code::NOT_FOUND, format!("exec {}: {e}", req.exec_id)))?;
        }
        Ok(api::Empty::new())
    }

    fn exec(&self, _ctx: &TtrpcContext, req: ExecProcessRequest) -> TtrpcResult<api::Empty> {
        let spec = req
            .spec
            .as_ref()
            .map(|a| String::from_utf8_lossy(&a.value).into_owned())
            .ok_or_else(|| status(Code::INVALID_ARGUMENT, "exec without a process spec"))?;
        serde_json::from_str::<oci_spec::runtime::Process>(&spec)
            .map_err(|e| status(Code::INVALID_ARGUMENT, format!("exec's process spec: {e}")))?;
        {
            let mut tasks = self.inner.tasks();
            let t = tasks.get_mut(&req.id).ok_or_else(|| {
                status(Code::NOT_FOUND, format!("container {} not found", req.id))
            })?;
            if t.execs.contains_key(&req.exec_id) {
                return Err(status(
                    Code::ALREADY_EXISTS,
                    format!("exec {} already exists", req.exec_id),
                ));
            }
            let mut p = Proc::new(Io {
                stdin: req.stdin.clone(),
                stdout: req.stdout.clone(),
                stderr: req.stderr.clone(),
                terminal: req.terminal,
            });
            p.spec = Some(spec);
            t.execs.insert(req.exec_id.clone(), p);
        }
        self.inner.publish(TaskExecAdded {
            container_id: req.id,
            exec_id: req.exec_id,
            ..Default::default()
        });
        Ok(api::Empty::new())
    }

    fn resize_pty(
        &self,
        _ctx: &TtrpcContext,
        req: api::ResizePtyRequest,
    ) -> TtrpcResult<api::Empty> {
        let tasks = self.inner.tasks();
        let t = tasks
            .get(&req.id)
            .ok_or_else(|| status(Code::NOT_FOUND, format!("container {} not found", req.id)))?;
        let p = t.proc(&req.exec_id)?;
        if p.exit.is_some() {
            // A resize that lost the race with the exit.
            return Ok(api::Empty::new());
        }
        let m = p
            .console
            .as_ref()
            .ok_or_else(|| status(Code::FAILED_PRECONDITION, "the process has no terminal"))?;
        stdio::resize(m, req.width, req.height).map_err(|e| status(Code::INTERNAL, e))?;
        Ok(api::Empty::new())
    }

    fn close_io(&self, _ctx: &TtrpcContext, req: api::CloseIORequest) -> TtrpcResult<api::Empty> {
        let tasks = self.inner.tasks();
        let t = tasks
            .get(&req.id)
            .ok_or_else(|| status(Code::NOT_FOUND, format!("container {} not found", req.id)))?;
        let p = t.proc(&req.exec_id)?;
        if req.stdin {
            p.stdin_writer
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take();
        }
        Ok(api::Empty::new())
    }

    fn update(&self, _ctx: &TtrpcContext, req: api::UpdateTaskRequest) -> TtrpcResult<api::Empty> {
        let any = req
            .resources
            .as_ref()
            .ok_or_else(|| status(Code::INVALID_ARGUMENT, "update without resources"))?;
        let r: oci_spec::runtime::LinuxResources = serde_json::from_slice(&any.value)
            .map_err(|e| status(Code::INVALID_ARGUMENT, format!("resources: {e}")))?;
        rt::container::update(&Root::new(self.inner.root()), &req.id, &r)
            .map_err(|e| status(Code::FAILED_PRECONDITION, e.to_string()))?;
        Ok(api::Empty::new())
    }

    fn wait(&self, _ctx: &TtrpcContext, req: WaitRequest) -> TtrpcResult<WaitResponse> {
        let mut tasks = self.inner.tasks();
        loop {
            let t = tasks.get(&req.id).ok_or_else(|| {
                status(Code::NOT_FOUND, format!("container {} not found", req.id))
            })?;
            if let Some((exit_status, at)) = t.proc(&req.exec_id)?.exit.clone() {
                return Ok(WaitResponse {
                    exit_status,
                    exited_at: Some(at).into(),
                    ..Default::default()
                });
            }
            tasks = self
                .inner
                .exited
                .wait(tasks)
                .unwrap_or_else(|p| p.into_inner());
        }
    }

    fn stats(
        &self,
        _ctx: &TtrpcContext,
        req: api::StatsRequest,
    ) -> TtrpcResult<api::StatsResponse> {
        let dir = rt::container::cgroup_of(&Root::new(self.inner.root()), &req.id)
            .map_err(|e| status(Code::NOT_FOUND, e.to_string()))?;
        let m = metrics::from_stats(&rt::cgroup::stats::read_stats(&dir));
        let any = convert_to_any(Box::new(m)).map_err(|e| status(Code::INTERNAL, e.to_string()))?;
        Ok(api::StatsResponse {
            stats: Some(any).into(),
            ..Default::default()
        })
    }

    fn connect(&self, _ctx: &TtrpcContext, req: ConnectRequest) -> TtrpcResult<ConnectResponse> {
        let task_pid = self
            .inner
            .tasks()
            .get(&req.id)
            .map(|t| t.init.pid as u32)
            .unwrap_or(0);
        Ok(ConnectResponse {
            shim_pid: std::process::id(),
            task_pid,
            version: env!("CARGO_PKG_VERSION").into(),
            ..Default::default()
        })
    }

    fn shutdown(&self, _ctx: &TtrpcContext, _req: api::ShutdownRequest) -> TtrpcResult<api::Empty> {
        if self.inner.tasks().is_empty() {
            self.inner.exit.signal();
        }
        Ok(api::Empty::new())
    }
}
