//! containerd's Task service (ttrpc), one method per request. Each looks
//! its container up in the bookkeeping (`tasks`), asks the zygote for
//! what needs a process of its own (create, start, exec, delete) and
//! calls the rt library directly for the rest.

use std::collections::HashMap;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use containerd_shim::api::{
    self, ConnectRequest, ConnectResponse, CreateTaskRequest, CreateTaskResponse, DeleteRequest,
    ExecProcessRequest, KillRequest, PidsRequest, PidsResponse, StartRequest, StartResponse,
    StateRequest, StateResponse, Status, WaitRequest, WaitResponse,
};
use containerd_shim::protos::events::task::{
    TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskIO, TaskPaused, TaskResumed,
    TaskStart,
};
use containerd_shim::protos::protobuf::Message;
use containerd_shim::protos::ttrpc::Code;
use containerd_shim::util::{convert_to_any, timestamp};
use containerd_shim::{DeleteResponse, TtrpcContext, TtrpcResult};
use log::info;
use rt::state::Root;

use super::checkpoint::Dump;
use super::error::{from_rt, status};
use super::oom::OomWatch;
use super::tasks::{pid_u32, Exit, Io, Proc, Task};
use super::worker::{Request, RootfsMount};
use super::{metrics, stdio, Service};

impl containerd_shim::Task for Service {
    fn state(&self, _ctx: &TtrpcContext, req: StateRequest) -> TtrpcResult<StateResponse> {
        let tasks = self.inner.tasks();
        let t = tasks.task(&req.id)?;
        let p = t.proc(&req.exec_id)?;
        let (exit_status, exited_at) = p.exit.clone().unwrap_or_default();
        Ok(StateResponse {
            id: req.id.clone(),
            bundle: t.bundle.clone(),
            pid: pid_u32(p.pid),
            status: self.status_of(&req.id, &req.exec_id, p).into(),
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
        let mut opts = self.runc_options(&req)?;
        if !opts.systemd_cgroup && rt::cgroup::systemd::running() {
            opts.systemd_cgroup = asks_for_a_scope(Path::new(&req.bundle));
        }
        if !req.checkpoint.is_empty() {
            return self.create_from_checkpoint(&req, opts.systemd_cgroup);
        }
        let io = self.register_task(&req)?;
        let create = create_request(self.inner.root(), &req, &opts);
        let pid = match self.inner.make(&req.id, "", create, &io) {
            Ok(pid) => pid,
            Err(e) => {
                self.inner.tasks().remove(&req.id);
                return Err(e);
            }
        };
        info!("created {} (pid {pid})", req.id);
        self.watch_oom(&req.id);
        self.inner.publish(task_create_event(&req, pid));
        Ok(CreateTaskResponse {
            pid: pid_u32(pid),
            ..Default::default()
        })
    }

    fn checkpoint(
        &self,
        _ctx: &TtrpcContext,
        req: api::CheckpointTaskRequest,
    ) -> TtrpcResult<api::Empty> {
        needs_root()?;
        if !self.inner.tasks().task(&req.id)?.init.running() {
            return Err(status(
                Code::FAILED_PRECONDITION,
                format!("container {} is not running", req.id),
            ));
        }
        let options = req.options.as_ref().map(|a| a.value.as_slice());
        let mut dump = Dump::from_request(&req.path, options)
            .map_err(|e| status(Code::INVALID_ARGUMENT, e))?;
        dump.flags().map_err(|e| from_rt(&e))?;
        // As containerd's runc shim: CRIU's log goes to `criu-work` in the
        // bundle, not into the image containerd stores; it is removed
        // after a dump and kept after a failure, which names it.
        let own_work = match &dump.work_path {
            Some(_) => None,
            None => {
                let bundle = self.inner.tasks().task(&req.id)?.bundle.clone();
                let w = Path::new(&bundle).join("criu-work");
                std::fs::create_dir_all(&w)
                    .map_err(|e| status(Code::INTERNAL, format!("mkdir {}: {e}", w.display())))?;
                dump.work_path = Some(w.clone());
                Some(w)
            }
        };
        let r = Request::Checkpoint {
            root: self.inner.root(),
            id: req.id.clone(),
            dump,
        };
        self.inner.call(&r, None)?;
        if let Some(w) = own_work {
            let _ = std::fs::remove_dir_all(w);
        }
        info!("checkpointed {} into {}", req.id, req.path);
        Ok(api::Empty::new())
    }

    fn start(&self, _ctx: &TtrpcContext, req: StartRequest) -> TtrpcResult<StartResponse> {
        let pid = if req.exec_id.is_empty() {
            self.start_init(&req.id)?
        } else {
            self.start_exec(&req.id, &req.exec_id)?
        };
        Ok(StartResponse {
            pid: pid_u32(pid),
            ..Default::default()
        })
    }

    fn delete(&self, _ctx: &TtrpcContext, req: DeleteRequest) -> TtrpcResult<DeleteResponse> {
        let (pid, (exit_status, at)) = if req.exec_id.is_empty() {
            self.delete_init(&req.id)?
        } else {
            self.delete_exec(&req.id, &req.exec_id)?
        };
        Ok(DeleteResponse {
            pid: pid_u32(pid),
            exit_status,
            exited_at: Some(at).into(),
            ..Default::default()
        })
    }

    fn pids(&self, _ctx: &TtrpcContext, req: PidsRequest) -> TtrpcResult<PidsResponse> {
        // NOT_FOUND whatever went wrong: containerd reads it as "gone".
        let pids = rt::container::pids(&self.root(), &req.id)
            .map_err(|e| status(Code::NOT_FOUND, e.to_string()))?;
        Ok(PidsResponse {
            processes: pids
                .into_iter()
                .map(|pid| containerd_shim::protos::types::task::ProcessInfo {
                    pid: pid_u32(pid),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
    }

    fn pause(&self, _ctx: &TtrpcContext, req: api::PauseRequest) -> TtrpcResult<api::Empty> {
        rt::container::pause(&self.root(), &req.id).map_err(|e| from_rt(&e))?;
        self.inner.publish(TaskPaused {
            container_id: req.id,
            ..Default::default()
        });
        Ok(api::Empty::new())
    }

    fn resume(&self, _ctx: &TtrpcContext, req: api::ResumeRequest) -> TtrpcResult<api::Empty> {
        rt::container::resume(&self.root(), &req.id).map_err(|e| from_rt(&e))?;
        self.inner.publish(TaskResumed {
            container_id: req.id,
            ..Default::default()
        });
        Ok(api::Empty::new())
    }

    fn kill(&self, _ctx: &TtrpcContext, req: KillRequest) -> TtrpcResult<api::Empty> {
        // NOT_FOUND for a process that is gone however it shows: containerd
        // (and its CRI plugin) take that as "already stopped".
        let gone = |e: String| status(Code::NOT_FOUND, e);
        let pid = {
            let tasks = self.inner.tasks();
            let p = tasks.process(&req.id, &req.exec_id)?;
            // `kill --all` reaches what an exited init left in its cgroup.
            let leftovers = req.all && req.exec_id.is_empty();
            if !p.running() && !leftovers {
                return Err(gone("process already finished".into()));
            }
            p.pid
        };
        let signal = i32::try_from(req.signal)
            .map_err(|_| status(Code::INVALID_ARGUMENT, format!("signal {}", req.signal)))?;
        if req.exec_id.is_empty() {
            rt::container::kill(&self.root(), &req.id, signal, req.all)
                .map_err(|e| gone(e.to_string()))?;
        } else {
            // Still unreaped (checked above), so the pid is its own.
            let exec = |e: nix::Error| gone(format!("exec {}: {e}", req.exec_id));
            let fd = rt::sys::pidfd::pidfd_open(pid).map_err(exec)?;
            rt::sys::pidfd::pidfd_send_signal(&fd, signal).map_err(exec)?;
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
            let t = tasks.task_mut(&req.id)?;
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
        let p = tasks.process(&req.id, &req.exec_id)?;
        if p.exit.is_some() {
            // A resize that lost the race with the exit.
            return Ok(api::Empty::new());
        }
        let m = p
            .console
            .as_ref()
            .ok_or_else(|| status(Code::FAILED_PRECONDITION, "the process has no terminal"))?;
        stdio::resize(m.as_fd(), req.width, req.height).map_err(|e| status(Code::INTERNAL, e))?;
        Ok(api::Empty::new())
    }

    fn close_io(&self, _ctx: &TtrpcContext, req: api::CloseIORequest) -> TtrpcResult<api::Empty> {
        // The writer is shared with the copier: the tasks' lock is not held
        // while the copier drains.
        let writer = {
            let tasks = self.inner.tasks();
            tasks.process(&req.id, &req.exec_id)?.stdin_writer.clone()
        };
        if req.stdin {
            super::stdio::close_stdin(&writer, std::time::Duration::from_millis(200));
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
        rt::container::update(&self.root(), &req.id, &r).map_err(|e| from_rt(&e))?;
        Ok(api::Empty::new())
    }

    fn wait(&self, _ctx: &TtrpcContext, req: WaitRequest) -> TtrpcResult<WaitResponse> {
        let (exit_status, at) = self.inner.wait_exit(&req.id, &req.exec_id)?;
        Ok(WaitResponse {
            exit_status,
            exited_at: Some(at).into(),
            ..Default::default()
        })
    }

    fn stats(
        &self,
        _ctx: &TtrpcContext,
        req: api::StatsRequest,
    ) -> TtrpcResult<api::StatsResponse> {
        let oom = self.inner.tasks().get(&req.id).and_then(|t| t.oom.clone());
        let m = match rt::container::cgroup_of(&self.root(), &req.id) {
            Ok(dir) => metrics::from_cgroup(&dir, oom.as_deref()),
            // The init has exited (under systemd its cgroup is gone with
            // it): what the OOM watch read is what is left, and what
            // containerd's CRI asks for at the exit (`oom_kill`).
            Err(e) => match oom {
                Some(w) => metrics::from_oom_counts(w.counts()),
                None => return Err(status(Code::NOT_FOUND, e.to_string())),
            },
        };
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
            .map(|t| pid_u32(t.init.pid))
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

/// The steps of the requests above.
impl Service {
    fn root(&self) -> Root {
        Root::new(self.inner.root())
    }

    /// The status containerd is told for process `p`.
    fn status_of(&self, id: &str, exec_id: &str, p: &Proc) -> Status {
        if p.exit.is_some() {
            return Status::STOPPED;
        }
        if p.pid == 0 {
            return Status::CREATED;
        }
        if !exec_id.is_empty() {
            return Status::RUNNING;
        }
        use rt::container::Status as S;
        match rt::container::state(&self.root(), id).map(|s| s.status) {
            Ok(S::Created | S::Creating) => Status::CREATED,
            Ok(S::Running) => Status::RUNNING,
            Ok(S::Paused) => Status::PAUSED,
            Ok(S::Stopped) | Err(_) => Status::STOPPED,
        }
    }

    /// The runc shim's options containerd passes along, of which rt
    /// takes `systemd_cgroup` and checks `root`.
    fn runc_options(&self, req: &CreateTaskRequest) -> TtrpcResult<api::Options> {
        let opts = match req.options.as_ref() {
            Some(any) if !any.value.is_empty() => api::Options::parse_from_bytes(&any.value)
                .map_err(|e| status(Code::INVALID_ARGUMENT, format!("runtime options: {e}")))?,
            _ => api::Options::default(),
        };
        if !opts.root.is_empty() && Path::new(&opts.root) != self.inner.root() {
            return Err(status(
                Code::INVALID_ARGUMENT,
                format!(
                    "runtime option Root {}: containerd-shim-rt-v2 keeps its state in {}",
                    opts.root,
                    self.inner.root().display()
                ),
            ));
        }
        Ok(opts)
    }

    /// Enters the new container in the bookkeeping, with no process yet.
    fn register_task(&self, req: &CreateTaskRequest) -> TtrpcResult<Io> {
        let mut tasks = self.inner.tasks();
        if tasks.contains_key(&req.id) {
            return Err(status(
                Code::ALREADY_EXISTS,
                format!("container {} already exists", req.id),
            ));
        }
        let io = Io {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
        };
        let task = Task {
            bundle: req.bundle.clone(),
            rootfs: (!req.rootfs.is_empty()).then(|| Path::new(&req.bundle).join("rootfs")),
            init: Proc::new(io.clone()),
            execs: HashMap::new(),
            oom: None,
            restore: None,
        };
        tasks.insert(req.id.clone(), task);
        Ok(io)
    }

    /// A task made from a checkpoint: registered now, restored by its
    /// `Start` (containerd's runc shim does the same).
    fn create_from_checkpoint(
        &self,
        req: &CreateTaskRequest,
        systemd_cgroup: bool,
    ) -> TtrpcResult<CreateTaskResponse> {
        needs_root()?;
        if req.terminal {
            return Err(status(
                Code::FAILED_PRECONDITION,
                "containerd-shim-rt-v2 cannot restore a task with a terminal yet",
            ));
        }
        let images = Path::new(&req.checkpoint);
        if !images.is_dir() {
            return Err(status(
                Code::INVALID_ARGUMENT,
                format!("checkpoint {}: not a directory", req.checkpoint),
            ));
        }
        self.register_task(req)?;
        let restore = Request::Restore {
            root: self.inner.root(),
            id: req.id.clone(),
            bundle: PathBuf::from(&req.bundle),
            rootfs: rootfs_mounts(req),
            image_path: images.to_path_buf(),
            systemd_cgroup,
        };
        if let Ok(t) = self.inner.tasks().task_mut(&req.id) {
            t.restore = Some(restore);
        }
        info!("created {} from the checkpoint {}", req.id, req.checkpoint);
        // Its pid is known once its Start has restored it.
        self.inner.publish(task_create_event(req, 0));
        Ok(CreateTaskResponse::default())
    }

    /// Restores a task created from a checkpoint; its pid.
    fn restore_init(&self, id: &str, restore: Request) -> TtrpcResult<i32> {
        let io = self.inner.tasks().task(id)?.init.io.clone();
        let pid = self.inner.make(id, "", restore, &io)?;
        info!("restored {id} (pid {pid})");
        self.watch_oom(id);
        self.inner.publish(TaskStart {
            container_id: id.to_string(),
            pid: pid_u32(pid),
            ..Default::default()
        });
        Ok(pid)
    }

    fn start_init(&self, id: &str) -> TtrpcResult<i32> {
        let restore = self.inner.tasks().task_mut(id)?.restore.take();
        if let Some(r) = restore {
            return self.restore_init(id, r);
        }
        let pid = self.inner.tasks().task(id)?.init.pid;
        let start = Request::Start {
            root: self.inner.root(),
            id: id.to_string(),
        };
        self.inner.call(&start, None)?;
        self.inner.publish(TaskStart {
            container_id: id.to_string(),
            pid: pid_u32(pid),
            ..Default::default()
        });
        Ok(pid)
    }

    /// Makes the exec's process (registered by `exec`), once.
    fn start_exec(&self, id: &str, exec_id: &str) -> TtrpcResult<i32> {
        let (spec, io) = {
            let tasks = self.inner.tasks();
            let p = tasks.process(id, exec_id)?;
            let spec = p.spec.clone().ok_or_else(|| {
                status(
                    Code::FAILED_PRECONDITION,
                    format!("exec {exec_id} was started already"),
                )
            })?;
            (spec, p.io.clone())
        };
        let exec = Request::Exec {
            root: self.inner.root(),
            id: id.to_string(),
            process: spec,
            terminal: io.terminal,
        };
        let pid = self.inner.make(id, exec_id, exec, &io)?;
        if let Ok(p) = self.inner.tasks().process_mut(id, exec_id) {
            p.spec = None;
        }
        self.inner.publish(TaskExecStarted {
            container_id: id.to_string(),
            exec_id: exec_id.to_string(),
            pid: pid_u32(pid),
            ..Default::default()
        });
        Ok(pid)
    }

    /// Forgets an exec that is not running; its pid and exit.
    fn delete_exec(&self, id: &str, exec_id: &str) -> TtrpcResult<(i32, Exit)> {
        let mut tasks = self.inner.tasks();
        let t = tasks.task_mut(id)?;
        if t.proc(exec_id)?.running() {
            return Err(status(
                Code::FAILED_PRECONDITION,
                format!("exec {exec_id} is still running"),
            ));
        }
        let p = t.execs.remove(exec_id).expect("found above");
        Ok((p.pid, p.exit.unwrap_or_default()))
    }

    /// Deletes the container (killing what is left in it) and forgets it
    /// once its init's exit is in; its pid and exit.
    fn delete_init(&self, id: &str) -> TtrpcResult<(i32, Exit)> {
        let (pid, rootfs) = {
            let tasks = self.inner.tasks();
            let t = tasks.task(id)?;
            (t.init.pid, t.rootfs.clone())
        };
        let delete = Request::Delete {
            root: self.inner.root(),
            id: id.to_string(),
            force: true,
            rootfs,
        };
        match self.inner.call(&delete, None) {
            Ok(_) => {}
            // rt has no such container: never restored, or checkpointed
            // with `exit` (rt deleted it then, as runc does).
            Err(containerd_shim::protos::ttrpc::Error::RpcStatus(s))
                if s.code() == Code::NOT_FOUND => {}
            Err(e) => return Err(e),
        }
        if pid == 0 {
            self.inner.tasks().remove(id);
            let at = timestamp().unwrap_or_default();
            self.inner.publish(TaskDelete {
                container_id: id.to_string(),
                exited_at: Some(at.clone()).into(),
                id: id.to_string(),
                ..Default::default()
            });
            return Ok((0, (0, at)));
        }
        // The init is reaped by now (delete waited for it to die).
        let exit = self.inner.remove_after_exit(id);
        let (exit_status, at) = exit.unwrap_or_else(|| (128 + 9, timestamp().unwrap_or_default()));
        self.inner.publish(TaskDelete {
            container_id: id.to_string(),
            pid: pid_u32(pid),
            exit_status,
            exited_at: Some(at.clone()).into(),
            id: id.to_string(),
            ..Default::default()
        });
        Ok((pid, (exit_status, at)))
    }

    /// Publishes a TaskOOM whenever the kernel's OOM killer strikes in the
    /// container's cgroup (see `oom`).
    fn watch_oom(&self, id: &str) {
        let Ok(dir) = rt::container::cgroup_of(&self.root(), id) else {
            return;
        };
        let Some(watch) = OomWatch::new(dir) else {
            return;
        };
        if let Ok(t) = self.inner.tasks().task_mut(id) {
            t.oom = Some(watch.clone());
        }
        watch.spawn_watcher(self.inner.clone(), id.to_string());
    }
}

/// Whether the bundle's `linux.cgroupsPath` has systemd's form
/// (`<name>.slice:<prefix>:<name>`). containerd's CRI plugin writes that
/// form whenever kubelet's pod cgroup parent is a slice (its systemd
/// driver), but passes `SystemdCgroup` only to runtimes of runc's shim
/// type; the path alone is unambiguous, since it is no cgroupfs path.
fn asks_for_a_scope(bundle: &Path) -> bool {
    #[derive(serde::Deserialize)]
    struct Config {
        linux: Option<Linux>,
    }
    #[derive(serde::Deserialize)]
    struct Linux {
        #[serde(rename = "cgroupsPath")]
        cgroups_path: Option<String>,
    }
    let Ok(text) = std::fs::read(bundle.join("config.json")) else {
        return false;
    };
    let path = serde_json::from_slice::<Config>(&text)
        .ok()
        .and_then(|c| c.linux)
        .and_then(|l| l.cgroups_path);
    path.is_some_and(|p| {
        let parts: Vec<&str> = p.split(':').collect();
        parts.len() == 3 && parts[0].ends_with(".slice") && !parts[0].contains('/')
    })
}

/// containerd's TaskCreate event for `req`, with the init's `pid`.
fn task_create_event(req: &CreateTaskRequest, pid: i32) -> TaskCreate {
    TaskCreate {
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
        checkpoint: req.checkpoint.clone(),
        pid: pid_u32(pid),
        ..Default::default()
    }
}

/// The snapshot's mounts of containerd's request.
fn rootfs_mounts(req: &CreateTaskRequest) -> Vec<RootfsMount> {
    req.rootfs
        .iter()
        .map(|m| RootfsMount {
            kind: m.type_.clone(),
            source: m.source.clone(),
            options: m.options.clone(),
        })
        .collect()
}

/// CRIU needs root; a shim without it says so before anything is made.
fn needs_root() -> TtrpcResult<()> {
    if rt::rootless::detect() == rt::rootless::Mode::Root {
        return Ok(());
    }
    Err(status(
        Code::FAILED_PRECONDITION,
        "checkpoint and restore need root (CRIU does): containerd-shim-rt-v2 runs without it",
    ))
}

/// The zygote's `Create` for containerd's request.
fn create_request(root: PathBuf, req: &CreateTaskRequest, opts: &api::Options) -> Request {
    Request::Create {
        root,
        id: req.id.clone(),
        bundle: PathBuf::from(&req.bundle),
        rootfs: rootfs_mounts(req),
        terminal: req.terminal,
        systemd_cgroup: opts.systemd_cgroup,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slice_path_asks_for_a_scope() {
        let d = tempfile::tempdir().unwrap();
        let with = |p: &str| {
            let c = serde_json::json!({"ociVersion": "1.0.2", "linux": {"cgroupsPath": p}});
            std::fs::write(d.path().join("config.json"), c.to_string()).unwrap();
            asks_for_a_scope(d.path())
        };
        assert!(with("kubepods-besteffort-pod1.slice:cri-containerd:abc"));
        assert!(!with("/kubepods/besteffort/pod1/abc"));
        assert!(!with("kubepods.slice/abc"));
        assert!(!with("a:b"));
        std::fs::write(d.path().join("config.json"), "{}").unwrap();
        assert!(!asks_for_a_scope(d.path()));
    }
}
