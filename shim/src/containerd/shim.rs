//! The shim binary's own lifecycle, as the `containerd-shim` crate drives
//! it: `start` (spawn the serving shim and say where it listens),
//! `delete` (clean up after a shim that died), and the serving shim's
//! set-up and wait.

use std::sync::Arc;

use containerd_shim::monitor::{monitor_subscribe, Subject, Topic};
use containerd_shim::protos::protobuf::well_known_types::any::Any;
use containerd_shim::protos::protobuf::MessageField;
use containerd_shim::protos::types::introspection::{RuntimeInfo, RuntimeVersion};
use containerd_shim::publisher::RemotePublisher;
use containerd_shim::util::{timestamp, write_address};
use containerd_shim::{Config, DeleteResponse, ExitSignal, Flags, StartOpts};
use log::{error, warn};

use super::worker::{Request, Zygote};
use super::{Inner, Service};

impl containerd_shim::Shim for Service {
    type T = Service;

    fn new(_runtime_id: &str, args: &Flags, _config: &mut Config) -> Self {
        // Forked now, while this process has a single thread.
        let zygote = match args.action.as_str() {
            "start" => Err("none is made for the start action".to_string()),
            _ => Zygote::spawn().map_err(|e| e.to_string()),
        };
        if let Err(e) = &zygote {
            // Seen by the delete action's caller; the serving shim's
            // logger is not set up yet (create_task_service says it again).
            if args.action != "start" {
                error!("{e}");
            }
        }
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
        // A pod's containers share one shim (and zygote), as with
        // containerd-shim-runc-v2: the socket is named after the sandbox,
        // and while the pod's shim answers on it, its address is the
        // answer and no shim is spawned. (A shim spawned for a served
        // address exits at once, and this `start` process, a subreaper,
        // then takes the exits of that shim and its zygote while the
        // containerd-shim crate tears its signal handling down: seen to
        // spin there for good, hanging containerd's StartContainer. Two
        // starts racing for a pod whose shim is not up yet still take
        // that path.)
        let grouping = sandbox_id().unwrap_or_else(|| opts.id.clone());
        // In the directory containerd 2.3 names, else /run/containerd/s.
        let served = opts.socket_address(&grouping);
        if grouping != opts.id && serving(&served) {
            write_address(&served)?;
            return Ok(served);
        }
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

    /// `-info`: what `rt features` prints, as containerd 2.x reads it
    /// (the runtime-spec features document, JSON in an `Any`), and the
    /// runtime options it was given, if any, given back.
    fn runtime_info(
        runtime_id: &str,
        options: Option<&Any>,
    ) -> containerd_shim::Result<RuntimeInfo> {
        let features = serde_json::to_vec_pretty(&rt::features::document())
            .map_err(|e| containerd_shim::Error::Other(format!("features: {e}")))?;
        Ok(RuntimeInfo {
            name: runtime_id.to_string(),
            version: MessageField::some(RuntimeVersion {
                version: rt::features::VERSION.to_string(),
                revision: rt::features::COMMIT.to_string(),
                ..Default::default()
            }),
            options: options.cloned().into(),
            features: MessageField::some(Any {
                type_url: FEATURES_TYPE.to_string(),
                value: features,
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    fn wait(&mut self) {
        self.inner.exit.wait();
    }

    fn create_task_service(&self, publisher: RemotePublisher) -> Self::T {
        // The service is made once; the zygote moves into it.
        let zygote = std::mem::replace(
            &mut *self.inner.zygote.lock().unwrap_or_else(|p| p.into_inner()),
            Err("it moved to the task service".into()),
        );
        if let Err(e) = &zygote {
            error!("the shim has no zygote: {e}");
        }
        let inner = Arc::new(Inner::new(
            &self.inner.namespace,
            &self.inner.id,
            zygote,
            Some(publisher),
            self.inner.exit.clone(),
        ));
        watch_exits(&inner);
        Service { inner }
    }
}

/// The type containerd's typeurl gives the runtime-spec features document.
const FEATURES_TYPE: &str = "types.containerd.io/opencontainers/runtime-spec/1/features/Features";

/// The annotation containerd's CRI plugin gives every container of a pod,
/// the sandbox's own included.
const SANDBOX_ID: &str = "io.kubernetes.cri.sandbox-id";

/// The pod of the container whose bundle is the current directory (where
/// containerd runs `start`), if it has one. An unreadable config.json
/// means a shim of its own: `Create` then reports what is wrong with it.
fn sandbox_id() -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Annotated {
        #[serde(default)]
        annotations: std::collections::HashMap<String, String>,
    }
    let data = std::fs::read("config.json").ok()?;
    let mut doc: Annotated = serde_json::from_slice(&data).ok()?;
    doc.annotations.remove(SANDBOX_ID).filter(|s| !s.is_empty())
}

/// Whether a shim answers at `address` (`unix://PATH`).
fn serving(address: &str) -> bool {
    address
        .strip_prefix("unix://")
        .is_some_and(|path| std::os::unix::net::UnixStream::connect(path).is_ok())
}

/// Hands every exit the reaper sees to `on_exit`. Subscribed before
/// anything can exit.
fn watch_exits(inner: &Arc<Inner>) {
    let sub = monitor_subscribe(Topic::All).expect("subscribe to the reaper");
    let me = inner.clone();
    std::thread::spawn(move || {
        while let Ok(e) = sub.rx.recv() {
            if let Subject::Pid(pid) = e.subject {
                me.on_exit(pid, e.exit_code);
            }
        }
    });
}
