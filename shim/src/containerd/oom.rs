//! The kernel's OOM kills in a container's cgroup, published as TaskOOM.
//!
//! Two places look: a thread that polls `memory.events` while the init
//! runs, and the init's exit, before its TaskExit is published. The exit
//! is the one that matters: `ctr run --rm` and the CRI plugin delete the
//! task (and its cgroup) as soon as they see the exit, so a kill that ends
//! the init would otherwise be lost between two polls. Both share one
//! count, so each kill is published once.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use containerd_shim::protos::events::task::TaskOOM;

use super::Inner;

/// How often the thread looks while the init runs.
const POLL: Duration = Duration::from_millis(500);

/// One container's `oom_kill` count, as last published, and its `oom`
/// count when the watch began.
pub(super) struct OomWatch {
    dir: PathBuf,
    seen: AtomicU64,
    ooms: u64,
}

impl OomWatch {
    /// None without a memory controller in `dir`: nothing to watch.
    pub fn new(dir: PathBuf) -> Option<Arc<OomWatch>> {
        if !dir.join("memory.events").exists() {
            return None;
        }
        let now = rt::cgroup::stats::oom_counts(&dir);
        Some(Arc::new(OomWatch {
            dir,
            seen: AtomicU64::new(now.kills),
            ooms: now.ooms,
        }))
    }

    /// Whether kills happened since the last call that said so, and the
    /// counts read.
    fn struck(&self) -> (bool, rt::cgroup::stats::OomCounts) {
        let now = rt::cgroup::stats::oom_counts(&self.dir);
        let struck = self.seen.fetch_max(now.kills, Ordering::SeqCst) < now.kills;
        (struck, now)
    }

    /// At the init's exit, before TaskExit. The kernel counts a kill just
    /// after it sends SIGKILL, so an init killed outright (`killed`) may be
    /// reaped a moment before the count moves. It counts `oom` before it
    /// picks a victim, so only when that count has moved since the watch
    /// began is it worth looking again: a plain `kill -9` costs one read.
    pub fn at_exit(&self, inner: &Inner, id: &str, killed: bool) {
        let (struck, now) = self.struck();
        let ran_out = self.ooms < now.ooms;
        if !struck && killed && ran_out {
            for _ in 0..5 {
                std::thread::sleep(Duration::from_millis(10));
                if self.struck().0 {
                    publish(inner, id);
                    return;
                }
            }
        }
        if struck {
            publish(inner, id);
        }
    }

    /// Polls until the init has exited (the exit path takes over then).
    pub fn spawn_poller(self: &Arc<Self>, inner: Arc<Inner>, id: String) {
        let watch = Arc::clone(self);
        std::thread::spawn(move || loop {
            std::thread::sleep(POLL);
            let running = inner
                .tasks()
                .get(&id)
                .is_some_and(|t| t.init.exit.is_none());
            if !running {
                return;
            }
            if watch.struck().0 {
                publish(&inner, &id);
            }
        });
    }
}

fn publish(inner: &Inner, id: &str) {
    inner.publish(TaskOOM {
        container_id: id.to_string(),
        ..Default::default()
    });
}
