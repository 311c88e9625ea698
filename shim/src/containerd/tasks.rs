//! The bookkeeping: the containers this shim serves, their processes
//! (the init and the execs), and how each ended. Exits come from the
//! reaper's thread (`Inner::on_exit`) and are waited for by `Wait` and
//! `Delete`.

use std::collections::HashMap;
use std::fs::File;
use std::ops::{Deref, DerefMut};
use std::path::PathBuf;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex, MutexGuard};

use containerd_shim::protos::events::task::TaskExit;
use containerd_shim::protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim::protos::ttrpc::Code;
use containerd_shim::util::timestamp;
use containerd_shim::TtrpcResult;
use log::warn;
use rt::state::Root;

use super::error::status;
use super::oom::OomWatch;
use super::{stdio, Inner};

/// Where a process's stdio goes, as containerd gave it.
#[derive(Clone)]
pub(super) struct Io {
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
}

/// How a process ended: its status and when.
pub(super) type Exit = (u32, Timestamp);

/// One process of a container: its init or an exec.
pub(super) struct Proc {
    /// 0 until made.
    pub pid: i32,
    /// Set once reaped.
    pub exit: Option<Exit>,
    pub io: Io,
    /// An exec's process (JSON), until it is started.
    pub spec: Option<String>,
    pub stdin_writer: stdio::StdinWriter,
    pub console: Option<File>,
    /// Signalled when a terminal's output has been copied out.
    pub output_done: Option<Receiver<()>>,
}

/// A pid as containerd's messages take it.
#[allow(clippy::cast_sign_loss)] // a pid is never negative
pub(super) fn pid_u32(pid: i32) -> u32 {
    pid as u32
}

/// An exit status (0 to 255, or 128 and a signal) as containerd's
/// messages take it.
#[allow(clippy::cast_sign_loss)] // an exit status is never negative
pub(super) fn status_u32(code: i32) -> u32 {
    code as u32
}

/// An exit status kept as containerd's u32, back as the int it was.
#[allow(clippy::cast_possible_wrap)] // it was an int, 0 to 255 or 128 and a signal
pub(super) fn status_i32(code: u32) -> i32 {
    code as i32
}

impl Proc {
    pub fn new(io: Io) -> Proc {
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

    /// Made and not yet reaped.
    pub fn running(&self) -> bool {
        self.pid != 0 && self.exit.is_none()
    }
}

/// A container.
pub(super) struct Task {
    pub bundle: String,
    /// The root filesystem mount point, when the shim mounted it.
    pub rootfs: Option<PathBuf>,
    pub init: Proc,
    pub execs: HashMap<String, Proc>,
    /// Its cgroup's OOM kills, once created (none without a memory
    /// controller).
    pub oom: Option<Arc<OomWatch>>,
    /// Created from a checkpoint: what its `Start` restores (as runc's
    /// shim does, the restore waits for `Start`).
    pub restore: Option<super::worker::Request>,
}

impl Task {
    /// The init (`exec_id` empty) or an exec.
    pub fn proc(&self, exec_id: &str) -> TtrpcResult<&Proc> {
        if exec_id.is_empty() {
            return Ok(&self.init);
        }
        self.execs
            .get(exec_id)
            .ok_or_else(|| exec_not_found(exec_id))
    }

    pub fn proc_mut(&mut self, exec_id: &str) -> TtrpcResult<&mut Proc> {
        if exec_id.is_empty() {
            return Ok(&mut self.init);
        }
        self.execs
            .get_mut(exec_id)
            .ok_or_else(|| exec_not_found(exec_id))
    }
}

fn exec_not_found(exec_id: &str) -> containerd_shim::protos::ttrpc::Error {
    status(Code::NOT_FOUND, format!("exec {exec_id} not found"))
}

/// The containers, by id, and the exits of processes reaped before their
/// pid was registered (a process may exit before the zygote's answer
/// comes back). Both under one lock: the reaper's lookup and the maker's
/// registration each see the other whole, so no exit falls between them.
/// Exits are kept only while a process is being made, and dropped when
/// the last make in flight ends: the shim also reaps processes nobody
/// registers (orphans of a container without a pid namespace, an exec
/// killed after a failed make), and a kept exit must not go to a later
/// process that gets the same pid.
#[derive(Default)]
pub(super) struct Tasks {
    by_id: HashMap<String, Task>,
    early_exits: HashMap<i32, Exit>,
    making: usize,
}

impl Deref for Tasks {
    type Target = HashMap<String, Task>;
    fn deref(&self) -> &Self::Target {
        &self.by_id
    }
}

impl DerefMut for Tasks {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.by_id
    }
}

impl Tasks {
    /// The container `id`, or NOT_FOUND.
    pub fn task(&self, id: &str) -> TtrpcResult<&Task> {
        self.by_id.get(id).ok_or_else(|| container_not_found(id))
    }

    pub fn task_mut(&mut self, id: &str) -> TtrpcResult<&mut Task> {
        self.by_id
            .get_mut(id)
            .ok_or_else(|| container_not_found(id))
    }

    /// A process of container `id`, or NOT_FOUND.
    pub fn process(&self, id: &str, exec_id: &str) -> TtrpcResult<&Proc> {
        self.task(id)?.proc(exec_id)
    }

    pub fn process_mut(&mut self, id: &str, exec_id: &str) -> TtrpcResult<&mut Proc> {
        self.task_mut(id)?.proc_mut(exec_id)
    }

    /// The (container, exec) ids of the unreaped process `pid`; if it is
    /// not registered yet, its exit is kept for the registration.
    fn exited(&mut self, pid: i32, exit: Exit) -> Option<(String, String)> {
        let found = self.find_unreaped(pid);
        if found.is_none() && self.making > 0 {
            self.early_exits.insert(pid, exit);
        }
        found
    }

    /// A process is about to be made: exits of unknown pids are kept
    /// until `end_make`.
    pub fn begin_make(&mut self) {
        self.making += 1;
    }

    /// A make has ended, registered or not; the last one in flight drops
    /// the exits no registration took.
    pub fn end_make(&mut self) {
        self.making = self.making.saturating_sub(1);
        if self.making == 0 {
            self.early_exits.clear();
        }
    }

    /// Registers `pid` as process `exec_id` of container `id`; the exit
    /// the reaper kept for it, if it came first.
    pub fn register(&mut self, id: &str, exec_id: &str, pid: i32) -> TtrpcResult<Option<Exit>> {
        self.process_mut(id, exec_id)?.pid = pid;
        Ok(self.early_exits.remove(&pid))
    }

    /// The (container, exec) ids of the unreaped process `pid`.
    fn find_unreaped(&self, pid: i32) -> Option<(String, String)> {
        self.by_id.iter().find_map(|(id, t)| {
            if t.init.pid == pid && t.init.exit.is_none() {
                Some((id.clone(), String::new()))
            } else {
                t.execs
                    .iter()
                    .find(|(_, p)| p.pid == pid && p.exit.is_none())
                    .map(|(e, _)| (id.clone(), e.clone()))
            }
        })
    }
}

fn container_not_found(id: &str) -> containerd_shim::protos::ttrpc::Error {
    status(Code::NOT_FOUND, format!("container {id} not found"))
}

impl Inner {
    pub(super) fn tasks(&self) -> MutexGuard<'_, Tasks> {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a process's exit: its output drained, waiters woken, the
    /// event published.
    pub(super) fn on_exit(&self, pid: i32, code: i32) {
        let at = timestamp().unwrap_or_default();
        let exited = self.tasks().exited(pid, (status_u32(code), at.clone()));
        // Otherwise reaped before create or exec registered it: they
        // pick the exit up.
        let Some((id, exec_id)) = exited else {
            return;
        };
        // First, and before the exit is known to anyone: the cgroup, and
        // with it the count of kills, goes with its last process under
        // systemd, and whoever sees the exit may delete it.
        if exec_id.is_empty() {
            let oom = self.tasks().get(&id).and_then(|t| t.oom.clone());
            if let Some(oom) = oom {
                oom.at_exit(self, &id, code == 128 + libc::SIGKILL);
            }
        }
        let done = match self.tasks().process_mut(&id, &exec_id) {
            Ok(p) => p.output_done.take(),
            Err(_) => return,
        };
        // Not under the lock: the copy may take a while to finish.
        if let Some(d) = done {
            stdio::drain(&d);
        }
        if exec_id.is_empty() {
            self.kill_leftovers(&id);
        }
        if let Ok(p) = self.tasks().process_mut(&id, &exec_id) {
            p.exit = Some((status_u32(code), at.clone()));
            p.console = None;
        }
        self.exited.notify_all();
        self.publish(TaskExit {
            container_id: id.clone(),
            id: if exec_id.is_empty() { id } else { exec_id },
            pid: pid_u32(pid),
            exit_status: status_u32(code),
            exited_at: Some(at).into(),
            ..Default::default()
        });
    }

    /// The init of a container without a pid namespace of its own (it
    /// joined another container's, or the host's) leaves its children
    /// running when it exits, holding the output open. As containerd's
    /// runc shim does (`kill --all` at the init's exit), they are killed.
    fn kill_leftovers(&self, id: &str) {
        let root = Root::new(self.root());
        let shared =
            rt::container::Container::load(&root, id).is_ok_and(|c| !c.has_own_pid_namespace());
        if shared {
            if let Err(e) = rt::container::kill(&root, id, libc::SIGKILL, true) {
                warn!("kill what is left of {id}: {e}");
            }
        }
    }

    /// Waits for the exit of process `exec_id` of container `id`.
    pub(super) fn wait_exit(&self, id: &str, exec_id: &str) -> TtrpcResult<Exit> {
        let mut tasks = self.tasks();
        loop {
            if let Some(exit) = tasks.process(id, exec_id)?.exit.clone() {
                return Ok(exit);
            }
            tasks = self.exited.wait(tasks).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Removes container `id` once its init's exit is recorded (waiting up
    /// to 2s for it); the exit, if it came.
    pub(super) fn remove_after_exit(&self, id: &str) -> Option<Exit> {
        let init_exit = |tasks: &Tasks| tasks.get(id).and_then(|t| t.init.exit.clone());
        let mut tasks = self.tasks();
        let mut exit = init_exit(&tasks);
        while exit.is_none() && tasks.contains_key(id) {
            let (g, timeout) = self
                .exited
                .wait_timeout(tasks, std::time::Duration::from_secs(2))
                .unwrap_or_else(|p| p.into_inner());
            tasks = g;
            exit = init_exit(&tasks);
            if timeout.timed_out() {
                break;
            }
        }
        tasks.remove(id);
        exit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_exec(exec_id: &str) -> Tasks {
        let io = Io {
            stdin: String::new(),
            stdout: String::new(),
            stderr: String::new(),
            terminal: false,
        };
        let mut task = Task {
            bundle: String::new(),
            rootfs: None,
            init: Proc::new(io.clone()),
            execs: HashMap::new(),
            oom: None,
            restore: None,
        };
        task.init.pid = 10;
        task.execs.insert(exec_id.into(), Proc::new(io));
        let mut tasks = Tasks::default();
        tasks.insert("c1".into(), task);
        tasks
    }

    fn exit(code: u32) -> Exit {
        (code, Timestamp::default())
    }

    #[test]
    fn an_exit_reaped_before_its_registration_is_handed_to_it() {
        let mut tasks = with_exec("e1");
        tasks.begin_make();
        // The exec's process (pid 42) exits before the zygote's answer.
        assert_eq!(tasks.exited(42, exit(3)), None);
        let kept = tasks.register("c1", "e1", 42).unwrap();
        tasks.end_make();
        assert_eq!(kept.map(|e| e.0), Some(3));
        // Now registered: the exit (handed back by `make`) finds it.
        assert_eq!(tasks.exited(42, exit(3)), Some(("c1".into(), "e1".into())));
        assert!(tasks.early_exits.is_empty());
    }

    #[test]
    fn exits_no_registration_took_are_not_kept_for_a_later_process() {
        let mut tasks = with_exec("e1");
        // An orphan reaped while nothing is being made is not kept.
        assert_eq!(tasks.exited(42, exit(9)), None);
        assert!(tasks.early_exits.is_empty());
        // Nor one reaped during two makes once both have ended, one of
        // them failed before its registration (its exec killed).
        tasks.begin_make();
        tasks.begin_make();
        assert_eq!(tasks.exited(43, exit(137)), None);
        tasks.end_make();
        assert_eq!(tasks.early_exits.len(), 1, "another make is in flight");
        tasks.end_make();
        assert!(tasks.early_exits.is_empty());
        // A later exec that gets pid 43 is not handed that exit.
        tasks.begin_make();
        assert_eq!(tasks.register("c1", "e1", 43).unwrap(), None);
        tasks.end_make();
    }

    #[test]
    fn an_exit_after_the_registration_finds_its_process() {
        let mut tasks = with_exec("e1");
        assert_eq!(tasks.register("c1", "e1", 42).unwrap(), None);
        assert_eq!(tasks.exited(42, exit(0)), Some(("c1".into(), "e1".into())));
        assert_eq!(
            tasks.exited(10, exit(0)),
            Some(("c1".into(), String::new()))
        );
        assert!(tasks.early_exits.is_empty(), "nothing kept");
        assert!(tasks.register("c1", "gone", 43).is_err());
    }
}
