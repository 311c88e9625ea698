//! `containerd-shim-rt-v2`: containerd's shim v2 Task API over the rt
//! library. containerd starts one per container; it serves ttrpc, makes
//! the container through the zygote (see `worker`), is the parent and
//! child subreaper of every process it makes, reaps them (the
//! `containerd-shim` crate's reaper) and publishes their exits.
//!
//! - `boot`: which protocol containerd speaks (`-info`, the bootstrap
//!   protocol or flags for `start`, task API v3 or v2) and the serving loop;
//! - `shim`: the binary's own lifecycle (start, delete, `-info`, wait);
//! - `task_service`: the ttrpc Task service, one method per request;
//! - `tasks`: the bookkeeping of containers, processes and exits;
//! - `make`: asking the zygote, and wiring a new process's stdio;
//! - `worker`: the zygote and its workers, which call the rt library;
//! - `error`: the codes containerd is answered with;
//! - `idmapped`: containerd's `uidmap=`/`gidmap=` overlay options, as
//!   idmapped lower layers;
//! - `stdio`, `metrics`: containerd's FIFOs, and cgroup stats as its metrics;
//! - `oom`: the kernel's OOM kills, published as TaskOOM.
//! - `checkpoint`: containerd's checkpoint options as rt's dump flags.

pub mod boot;
mod checkpoint;
mod error;
mod idmapped;
mod make;
mod metrics;
mod oom;
mod shim;
mod stdio;
mod task_service;
mod tasks;
mod worker;

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};

use containerd_shim::event::Event;
use containerd_shim::publisher::RemotePublisher;
use containerd_shim::{Context, ExitSignal};
use log::warn;

use tasks::Tasks;
use worker::Zygote;

/// Where rt keeps the state of containerd's containers, per namespace
/// (runc's shim uses /run/containerd/runc/<namespace>).
const STATE_ROOT: &str = "/run/containerd/rt";

/// The shim, as the `containerd-shim` crate runs it: first as the binary
/// (`Shim`), then as the Task service it serves.
#[derive(Clone)]
pub struct Service {
    inner: Arc<Inner>,
}

/// What the service's methods and threads share.
struct Inner {
    namespace: String,
    id: String,
    /// Behind a lock: one request at a time. Why there is none, if none.
    zygote: Mutex<Result<Zygote, String>>,
    publisher: Option<RemotePublisher>,
    exit: Arc<ExitSignal>,
    tasks: Mutex<Tasks>,
    /// Notified whenever an exit is recorded.
    exited: Condvar,
}

impl Inner {
    fn new(
        namespace: &str,
        id: &str,
        zygote: Result<Zygote, String>,
        publisher: Option<RemotePublisher>,
        exit: Arc<ExitSignal>,
    ) -> Inner {
        Inner {
            namespace: namespace.into(),
            id: id.into(),
            zygote: Mutex::new(zygote),
            publisher,
            exit,
            tasks: Mutex::new(Tasks::default()),
            exited: Condvar::new(),
        }
    }

    /// The rt state root of this shim's namespace.
    fn root(&self) -> PathBuf {
        PathBuf::from(STATE_ROOT).join(&self.namespace)
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
}
