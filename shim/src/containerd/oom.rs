//! The kernel's OOM kills in a container's cgroup, published as TaskOOM,
//! and remembered for `Stats` once the cgroup is gone.
//!
//! A thread woken by inotify whenever the kernel changes `memory.events`
//! reads the counts while the init runs; the init's exit reads them again
//! the moment it is reaped, before its output is drained and its TaskExit
//! published. Both keep the highest counts read, and each kill is
//! published once. The counts have to be caught early: under systemd a
//! scope's cgroup, and with it the count, is removed as soon as its last
//! process is gone, and containerd 2.x's CRI, when no TaskOOM came before
//! the exit, asks the task's metrics for `oom_kill` (an answer from a
//! cgroup that is gone would report the reason `Error`, not `OOMKilled`).
//! The kernel counts `oom` before it picks a victim and `oom_kill` just
//! after it sends SIGKILL, and rate-limits its notices to one per 10 ms,
//! so the thread may have seen the `oom` alone: an init that died of
//! SIGKILL after an OOM began, in a cgroup gone before the kill count
//! could be read, was that OOM's victim (see `verdict`). Under load the
//! cgroup may even be gone before any read saw the OOM: then the parent's
//! `memory.events`, whose counts take in its children's and outlive them,
//! tells whether a kill happened below it, and is asked only when a read
//! had seen this cgroup reach its limit (`max`) since the last kill
//! published. The parent's changes wake the thread too, and until this
//! cgroup reaches its limit each read moves the parent's base up to its
//! count: under Kubernetes the parent is the pod's slice, and a sibling
//! container's kill after this one reached its limit is all it could be
//! confused with.

use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use containerd_shim::protos::events::task::TaskOOM;
use log::debug;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

use rt::cgroup::stats::{read_oom_counts, OomCounts};

use super::Inner;

/// How often the thread looks whether the init still runs (and, where
/// inotify could not be had, at the counts).
const POLL: Duration = Duration::from_millis(500);

/// One container's cgroup and what its counts were.
pub(super) struct OomWatch {
    dir: PathBuf,
    counts: Mutex<Counts>,
}

/// The parent cgroup's kill count now (its children's included), where
/// the parent has a memory controller.
fn parent_kills(dir: &std::path::Path) -> Option<u64> {
    read_oom_counts(dir.parent()?).map(|c| c.kills)
}

/// `oom_kill` as last published, `oom` when the watch began or a kill was
/// last published, and the highest of each read.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    published: u64,
    base_ooms: u64,
    base_limit_hits: u64,
    max: OomCounts,
    parent_base_kills: Option<u64>,
}

/// What the counts say.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// A kill not yet published.
    Publish,
    /// An OOM began (`oom` moved) but no kill is counted yet, and the
    /// cgroup is still there: the count may follow in a moment.
    LookAgain,
    Nothing,
}

/// `killed`: the init died of SIGKILL; `readable`: its cgroup's
/// memory.events could be read just now; `parent_kills`: the parent's
/// kill count now, read only when the cgroup could not be.
fn verdict(c: &Counts, killed: bool, readable: bool, parent_kills: Option<u64>) -> Verdict {
    if c.max.kills > c.published {
        Verdict::Publish
    } else if killed && c.max.ooms > c.base_ooms {
        if readable {
            Verdict::LookAgain
        } else {
            Verdict::Publish
        }
    } else if killed
        && !readable
        && c.max.limit_hits > c.base_limit_hits
        && matches!((c.parent_base_kills, parent_kills), (Some(b), Some(n)) if n > b)
    {
        Verdict::Publish
    } else {
        Verdict::Nothing
    }
}

impl OomWatch {
    /// None without a memory controller in `dir`: nothing to watch.
    pub fn new(dir: PathBuf) -> Option<Arc<OomWatch>> {
        let now = read_oom_counts(&dir)?;
        let parent_base_kills = parent_kills(&dir);
        Some(Arc::new(OomWatch {
            dir,
            counts: Mutex::new(Counts {
                published: now.kills,
                base_ooms: now.ooms,
                base_limit_hits: now.limit_hits,
                max: now,
                parent_base_kills,
            }),
        }))
    }

    /// Reads the counts and says whether to publish now; a publish is
    /// recorded under the lock, so each kill is published once, by
    /// whoever sees it first.
    fn decide(&self, id: &str, killed: bool) -> Verdict {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        // While this cgroup has not been seen at its limit, the parent's
        // kills so far are a sibling's: each read moves the parent's base
        // up to them. The parent is read first, so a kill of this cgroup
        // between the two reads is still above the base.
        let not_yet_at_limit = c.max.limit_hits == c.base_limit_hits;
        let parent_before = if not_yet_at_limit && !killed {
            parent_kills(&self.dir)
        } else {
            None
        };
        let now = read_oom_counts(&self.dir);
        let parent = if now.is_none() && killed {
            parent_kills(&self.dir)
        } else {
            None
        };
        if let Some(now) = now {
            c.max.ooms = c.max.ooms.max(now.ooms);
            c.max.kills = c.max.kills.max(now.kills);
            c.max.limit_hits = c.max.limit_hits.max(now.limit_hits);
            if parent_before.is_some() && now.limit_hits == c.base_limit_hits {
                c.parent_base_kills = parent_before;
            }
        }
        let v = verdict(&c, killed, now.is_some(), parent);
        debug!(
            "oom watch {id}: read {now:?}, highest {:?}, parent's kills {parent:?}, {v:?}",
            c.max
        );
        if v == Verdict::Publish {
            // A victim inferred from `oom` alone, or from the parent's
            // count, counts as one kill.
            c.max.kills = c.max.kills.max(c.published + 1);
            c.max.ooms = c.max.ooms.max(c.base_ooms + 1);
            c.published = c.max.kills;
            c.base_ooms = c.max.ooms;
            c.base_limit_hits = c.max.limit_hits;
            // The parent's count now takes in this kill: a later exit
            // must not take it again.
            c.parent_base_kills = parent.or_else(|| parent_kills(&self.dir));
        }
        v
    }

    /// The highest counts read, for `Stats` once the cgroup may be gone.
    pub fn counts(&self) -> OomCounts {
        self.counts.lock().unwrap_or_else(|p| p.into_inner()).max
    }

    /// At the init's reaping, before its TaskExit (see `verdict`); a plain
    /// `kill -9` without an OOM costs one read.
    pub fn at_exit(&self, inner: &Inner, id: &str, killed: bool) {
        let mut v = self.decide(id, killed);
        for _ in 0..5 {
            if v != Verdict::LookAgain {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
            v = self.decide(id, killed);
        }
        if v == Verdict::Publish {
            publish(inner, id);
        }
    }

    /// Watches until the init has exited (the exit path takes over then):
    /// woken by each change of `memory.events`, and every `POLL` to see
    /// whether the init still runs.
    pub fn spawn_watcher(self: &Arc<Self>, inner: Arc<Inner>, id: String) {
        let watch = Arc::clone(self);
        let events = self.dir.join("memory.events");
        let notify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)
            .and_then(|n| n.add_watch(&events, AddWatchFlags::IN_MODIFY).map(|_| n))
            .ok();
        // The parent's changes too (a sibling's kill), so its base follows
        // them until this cgroup reaches its limit (see `decide`); a parent
        // without a memory controller is simply not watched.
        if let (Some(n), Some(parent)) = (&notify, self.dir.parent()) {
            let _ = n.add_watch(&parent.join("memory.events"), AddWatchFlags::IN_MODIFY);
        }
        std::thread::spawn(move || loop {
            // Whether memory.events (this cgroup's or its parent's)
            // changed: then (and only then, where inotify works) the counts
            // are read.
            let changed = match &notify {
                Some(n) => {
                    let mut fds = [PollFd::new(n.as_fd(), PollFlags::POLLIN)];
                    #[allow(clippy::cast_possible_truncation)] // 500 fits a u16
                    let _ = poll(&mut fds, PollTimeout::from(POLL.as_millis() as u16));
                    n.read_events().is_ok_and(|e| !e.is_empty())
                }
                None => {
                    std::thread::sleep(POLL);
                    true
                }
            };
            let running = inner
                .tasks()
                .get(&id)
                .is_some_and(|t| t.init.exit.is_none());
            if !running {
                return;
            }
            if changed && watch.decide(&id, false) == Verdict::Publish {
                publish(&inner, &id);
            }
        });
    }
}

fn publish(inner: &Inner, id: &str) {
    debug!("oom watch {id}: TaskOOM");
    inner.publish(TaskOOM {
        container_id: id.to_string(),
        ..Default::default()
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(published: u64, base_ooms: u64, ooms: u64, kills: u64) -> Counts {
        Counts {
            published,
            base_ooms,
            base_limit_hits: 0,
            max: OomCounts {
                ooms,
                kills,
                limit_hits: 1,
            },
            parent_base_kills: Some(2),
        }
    }

    #[test]
    fn a_counted_kill_is_published_whatever_ended_the_init() {
        for killed in [false, true] {
            for readable in [false, true] {
                assert_eq!(
                    verdict(&counts(0, 0, 1, 1), killed, readable, None),
                    Verdict::Publish
                );
            }
        }
        assert_eq!(
            verdict(&counts(1, 1, 1, 1), true, true, None),
            Verdict::Nothing,
            "published once"
        );
    }

    #[test]
    fn an_oom_without_its_kill_count_waits_while_the_cgroup_is_there() {
        assert_eq!(
            verdict(&counts(0, 0, 1, 0), true, true, None),
            Verdict::LookAgain
        );
        // Gone with its count (systemd removed the scope): the SIGKILLed
        // init was the victim.
        assert_eq!(
            verdict(&counts(0, 0, 1, 0), true, false, None),
            Verdict::Publish
        );
        // Not killed, or no OOM since the last one published: nothing.
        assert_eq!(
            verdict(&counts(0, 0, 1, 0), false, false, None),
            Verdict::Nothing
        );
        assert_eq!(
            verdict(&counts(1, 1, 1, 1), true, false, None),
            Verdict::Nothing
        );
        assert_eq!(
            verdict(&counts(0, 0, 0, 0), true, false, None),
            Verdict::Nothing,
            "a plain kill -9"
        );
    }

    #[test]
    fn a_cgroup_gone_before_any_read_saw_its_oom_asks_the_parent() {
        let killed_gone = |parent| verdict(&counts(0, 0, 0, 0), true, false, parent);
        assert_eq!(killed_gone(Some(3)), Verdict::Publish, "a kill below it");
        assert_eq!(killed_gone(Some(2)), Verdict::Nothing, "a plain kill -9");
        assert_eq!(killed_gone(None), Verdict::Nothing, "no parent's count");
        // Not without this cgroup having reached its limit (a pod's
        // sandbox killed at its stop, after a sibling's OOM kill).
        let mut idle = counts(0, 0, 0, 0);
        idle.max.limit_hits = 0;
        assert_eq!(verdict(&idle, true, false, Some(3)), Verdict::Nothing);
        // Only for a SIGKILLed init whose cgroup is gone.
        assert_eq!(
            verdict(&counts(0, 0, 0, 0), false, false, Some(3)),
            Verdict::Nothing
        );
        assert_eq!(
            verdict(&counts(0, 0, 0, 0), true, true, Some(3)),
            Verdict::Nothing
        );
    }

    /// A parent cgroup (a pod's slice) with one child, `c.scope`.
    fn pod() -> (tempfile::TempDir, PathBuf) {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("c.scope");
        std::fs::create_dir(&dir).unwrap();
        (parent, dir)
    }

    fn events(dir: &std::path::Path, limit_hits: u64, ooms: u64, kills: u64) {
        let text = format!("max {limit_hits}\noom {ooms}\noom_kill {kills}\n");
        std::fs::write(dir.join("memory.events"), text).unwrap();
    }

    #[test]
    fn the_parents_count_outlives_the_cgroup() {
        let (parent, dir) = pod();
        events(parent.path(), 4, 4, 4);
        events(&dir, 0, 0, 0);
        let watch = OomWatch::new(dir.clone()).unwrap();
        assert_eq!(watch.decide("c", false), Verdict::Nothing);
        // The watcher sees the limit reached, not yet the OOM.
        events(&dir, 2, 0, 0);
        assert_eq!(watch.decide("c", false), Verdict::Nothing);
        // The kill and the cgroup's removal, before any read in between.
        events(parent.path(), 6, 5, 5);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(watch.decide("c", true), Verdict::Publish);
        assert_eq!(watch.decide("c", true), Verdict::Nothing, "once");
        let c = watch.counts();
        assert_eq!((c.ooms, c.kills), (1, 1));
    }

    #[test]
    fn a_siblings_kill_before_this_cgroup_reached_its_limit_is_not_its_own() {
        let (parent, dir) = pod();
        events(parent.path(), 0, 0, 0);
        events(&dir, 0, 0, 0);
        let watch = OomWatch::new(dir.clone()).unwrap();
        // A sibling is killed; the watcher, woken by the parent's change,
        // finds this cgroup below its limit.
        events(parent.path(), 1, 1, 1);
        assert_eq!(watch.decide("c", false), Verdict::Nothing);
        // Then this one reaches its limit and its init is SIGKILLed for
        // another reason, its cgroup gone before the exit's read.
        events(&dir, 1, 0, 0);
        assert_eq!(watch.decide("c", false), Verdict::Nothing);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(watch.decide("c", true), Verdict::Nothing);
    }

    #[test]
    fn a_kill_published_from_the_cgroup_is_not_taken_again_from_the_parent() {
        let (parent, dir) = pod();
        events(parent.path(), 0, 0, 0);
        events(&dir, 0, 0, 0);
        let watch = OomWatch::new(dir.clone()).unwrap();
        events(&dir, 3, 1, 1);
        events(parent.path(), 3, 1, 1);
        assert_eq!(watch.decide("c", false), Verdict::Publish);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(watch.decide("c", true), Verdict::Nothing, "published once");
    }

    #[test]
    fn the_highest_counts_survive_the_cgroup() {
        let dir = tempfile::tempdir().unwrap();
        let events = dir.path().join("memory.events");
        std::fs::write(&events, "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n").unwrap();
        let w = OomWatch::new(dir.path().to_path_buf()).unwrap();
        assert_eq!(w.decide("c", false), Verdict::Nothing);
        // The watcher reads an OOM under way, then the cgroup goes.
        std::fs::write(&events, "low 0\nhigh 0\nmax 3\noom 1\noom_kill 0\n").unwrap();
        assert_eq!(w.decide("c", false), Verdict::Nothing);
        std::fs::remove_file(&events).unwrap();
        assert_eq!(w.decide("c", true), Verdict::Publish);
        assert_eq!(w.decide("c", true), Verdict::Nothing, "once");
        // What Stats answers for the gone cgroup: the kill it inferred.
        let c = w.counts();
        assert_eq!((c.ooms, c.kills), (1, 1));
    }

    #[test]
    fn a_kill_read_while_the_cgroup_is_there_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let events = dir.path().join("memory.events");
        std::fs::write(&events, "oom 0\noom_kill 0\n").unwrap();
        let w = OomWatch::new(dir.path().to_path_buf()).unwrap();
        std::fs::write(&events, "oom 1\noom_kill 1\n").unwrap();
        assert_eq!(w.decide("c", false), Verdict::Publish);
        std::fs::remove_file(&events).unwrap();
        assert_eq!(w.decide("c", true), Verdict::Nothing, "published once");
        let c = w.counts();
        assert_eq!((c.ooms, c.kills), (1, 1));
    }

    #[test]
    fn no_memory_controller_no_watch() {
        let dir = tempfile::tempdir().unwrap();
        assert!(OomWatch::new(dir.path().to_path_buf()).is_none());
    }
}
