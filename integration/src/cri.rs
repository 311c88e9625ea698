//! containerd's CRI plugin on scratch paths, set up as kubelet's node
//! would have it, with RuntimeClass handlers for runc and rt: shared by the
//! CRI test (tests/cri.rs) and the CRI rows of the bench
//! (examples/cri-bench.rs).

use std::path::{Path, PathBuf};
use std::process::Command;

use k8s_cri::v1 as cri;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tonic::transport::Channel;

use crate::{cgroup2_controllers, containerd_in, ok, Daemon, Scratch};

/// The pause image: busybox's `sleep inf`, made by [`pause_image`].
pub const PAUSE: &str = "localhost/pause:3.9";
/// The busybox image of [`crate::busybox_image`].
pub const IMAGE: &str = "localhost/busybox:latest";

/// The RuntimeClass handlers for rt: name and containerd `runtime_type`.
/// The Go runc shim's get `BinaryName` = rt and a `Root` in the scratch
/// dir; `rt-v2` is rt's own shim, `containerd-shim-rt-v2`, which
/// containerd finds on its PATH. `runc` (the node's default, which CRI
/// insists on) is always there too.
pub const HANDLERS: &[(&str, &str)] = &[
    ("rt", "io.containerd.runc.v2"),
    ("rt-v2", "io.containerd.rt.v2"),
];

/// What the CRI plugin needs on this host beyond its defaults, as lines
/// of its `[plugins."io.containerd.grpc.v1.cri"]` table:
///
/// - With no cpu controller on cgroup v2 (a hybrid host), containerd sees
///   a cgroup v1 host and gives every sandbox `cpu.shares` 2, which rt
///   (cgroup v2 only) cannot honour: `disable_cgroup` keeps cgroup paths
///   and resources out of the specs.
/// - With no CAP_SYS_RESOURCE in the bounding set (the development
///   machines), the sandbox's oomScoreAdj -998 cannot be written:
///   `restrict_oom_score_adj` caps it at containerd's own.
pub fn host_settings() -> String {
    let mut lines = String::new();
    if !cgroup2_controllers().iter().any(|c| c == "cpu") {
        lines += "  disable_cgroup = true\n";
    }
    if lacks_cap_sys_resource() {
        lines += "  restrict_oom_score_adj = true\n";
    }
    lines
}

/// Whether CAP_SYS_RESOURCE is missing from the bounding set (the
/// development machines): no runtime can then write a sandbox's
/// oomScoreAdj below containerd's own.
pub fn lacks_cap_sys_resource() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let bounding = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        .unwrap_or(u64::MAX);
    const CAP_SYS_RESOURCE: u32 = 24;
    bounding & (1 << CAP_SYS_RESOURCE) == 0
}

/// The CRI plugin's config for `HANDLERS` and `runc`, all on `s`'s paths,
/// with `settings` in its table and `rt` as the runc shims' BinaryName.
pub fn cri_config(s: &Path, settings: &str, rt: &Path) -> String {
    let cri = "[plugins.\"io.containerd.grpc.v1.cri\"]";
    let runtimes = "[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes";
    // The stream server (exec/attach/port-forward URLs) on a free port.
    let mut c = format!(
        "{cri}\n  sandbox_image = \"{PAUSE}\"\n  stream_server_port = \"0\"\n{settings}\
         [plugins.\"io.containerd.grpc.v1.cri\".cni]\n  bin_dir = \"{0}/cni/bin\"\n  conf_dir = \"{0}/cni/conf\"\n\
         {runtimes}.runc]\n  runtime_type = \"io.containerd.runc.v2\"\n",
        s.display()
    );
    for (name, runtime_type) in HANDLERS {
        c += &format!("{runtimes}.{name}]\n  runtime_type = \"{runtime_type}\"\n");
        if *runtime_type == "io.containerd.runc.v2" {
            c += &format!(
                "{runtimes}.{name}.options]\n  BinaryName = \"{}\"\n  Root = \"{}/rt-root-{name}\"\n",
                rt.display(),
                s.display()
            );
        }
    }
    c
}

/// The pause image as a docker-archive in `s`, from the OCI layout
/// [`crate::busybox_image`] made there.
pub fn pause_image(s: &Path) -> PathBuf {
    ok(Command::new("umoci")
        .args(["config", "--image"])
        .arg(format!("{}:latest", s.join("img").display()))
        .args([
            "--tag",
            "pause",
            "--config.cmd",
            "sleep",
            "--config.cmd",
            "inf",
        ]));
    let pause = s.join("pause.tar");
    ok(Command::new("skopeo")
        .args(["copy", "-q"])
        .arg(format!("oci:{}:pause", s.join("img").display()))
        .arg(format!("docker-archive:{}:{PAUSE}", pause.display())));
    pause
}

/// The node's images, made in `s`: the pause image and busybox, as
/// docker-archives for `ctr image import`.
pub fn node_images(s: &Path) -> [PathBuf; 2] {
    let (_, busybox) = crate::busybox_image(s);
    [pause_image(s), busybox]
}

/// The runtime a CRI client runs on (one thread, as the tests need).
pub fn client_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// A CRI client on `sock`.
pub async fn connect(sock: &Path) -> RuntimeServiceClient<Channel> {
    let channel = tonic::transport::Endpoint::from_shared(format!("unix://{}", sock.display()))
        .unwrap()
        .connect()
        .await
        .unwrap_or_else(|e| panic!("CRI at {}: {e:?}", sock.display()));
    RuntimeServiceClient::new(channel)
}

/// What kubelet asks for a hostNetwork pod: the node's network, a pid
/// namespace per container (no shareProcessNamespace).
pub fn namespaces() -> cri::NamespaceOption {
    cri::NamespaceOption {
        network: cri::NamespaceMode::Node as i32,
        pid: cri::NamespaceMode::Container as i32,
        ..Default::default()
    }
}

/// The sandbox config kubelet sends for a hostNetwork pod named `name`,
/// its logs in `logs/name`.
pub fn pod_config(name: &str, logs: &Path, cgroup_parent: &str) -> cri::PodSandboxConfig {
    cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: format!("pod-{name}"),
            uid: format!("uid-{name}"),
            namespace: "default".into(),
            attempt: 0,
        }),
        // kubelet sets no hostname for a pod on the host's network (it
        // keeps the host's UTS namespace).
        log_directory: logs.join(name).display().to_string(),
        linux: Some(cri::LinuxPodSandboxConfig {
            cgroup_parent: cgroup_parent.to_string(),
            security_context: Some(cri::LinuxSandboxSecurityContext {
                namespace_options: Some(namespaces()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A busybox container named `name` running `command`, logging to
/// `name.log` in its pod's log directory.
pub fn container_config(name: &str, command: &[&str]) -> cri::ContainerConfig {
    cri::ContainerConfig {
        metadata: Some(cri::ContainerMetadata {
            name: name.into(),
            attempt: 0,
        }),
        image: Some(cri::ImageSpec {
            image: IMAGE.into(),
            ..Default::default()
        }),
        command: command.iter().map(|s| s.to_string()).collect(),
        log_path: format!("{name}.log"),
        linux: Some(cri::LinuxContainerConfig {
            security_context: Some(cri::LinuxContainerSecurityContext {
                namespace_options: Some(namespaces()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// RunPodSandbox of `pod` on `handler`: the sandbox's id.
pub async fn run_pod(
    c: &mut RuntimeServiceClient<Channel>,
    pod: &cri::PodSandboxConfig,
    handler: &str,
) -> String {
    c.run_pod_sandbox(cri::RunPodSandboxRequest {
        config: Some(pod.clone()),
        runtime_handler: handler.into(),
    })
    .await
    .unwrap_or_else(|e| panic!("RunPodSandbox on {handler}: {e:?}"))
    .into_inner()
    .pod_sandbox_id
}

/// CreateContainer of `config` in the sandbox `pod` runs as, then
/// StartContainer: the container's id.
pub async fn start_in_pod(
    c: &mut RuntimeServiceClient<Channel>,
    sandbox: &str,
    pod: &cri::PodSandboxConfig,
    config: cri::ContainerConfig,
) -> String {
    let name = config
        .metadata
        .as_ref()
        .map(|m| m.name.clone())
        .unwrap_or_default();
    let id = c
        .create_container(cri::CreateContainerRequest {
            pod_sandbox_id: sandbox.into(),
            config: Some(config),
            sandbox_config: Some(pod.clone()),
        })
        .await
        .unwrap_or_else(|e| panic!("CreateContainer {name} in {sandbox}: {e:?}"))
        .into_inner()
        .container_id;
    c.start_container(cri::StartContainerRequest {
        container_id: id.clone(),
    })
    .await
    .unwrap_or_else(|e| panic!("StartContainer {name} in {sandbox}: {e:?}"));
    id
}

/// StopPodSandbox, then RemovePodSandbox (its containers go with it).
pub async fn remove_pod(c: &mut RuntimeServiceClient<Channel>, sandbox: &str) {
    c.stop_pod_sandbox(cri::StopPodSandboxRequest {
        pod_sandbox_id: sandbox.into(),
    })
    .await
    .unwrap_or_else(|e| panic!("StopPodSandbox {sandbox}: {e:?}"));
    c.remove_pod_sandbox(cri::RemovePodSandboxRequest {
        pod_sandbox_id: sandbox.into(),
    })
    .await
    .unwrap_or_else(|e| panic!("RemovePodSandbox {sandbox}: {e:?}"));
}

/// containerd with the CRI plugin on `dir` (`settings` in its table),
/// containerd-shim-rt-v2 and `rt` from `rt`'s directory, the `images`
/// (docker-archives) imported into its `k8s.io` namespace; a CRI client
/// on its socket. The rt roots it will use are named in `scratch`.
pub fn cri_containerd(
    scratch: &Scratch,
    dir: &Path,
    settings: &str,
    rt: &Path,
    images: &[&Path],
    tokio: &tokio::runtime::Runtime,
) -> (Daemon, RuntimeServiceClient<Channel>) {
    std::fs::create_dir_all(dir).unwrap();
    for (name, _) in HANDLERS {
        scratch.rt_root(dir.join(format!("rt-root-{name}/k8s.io")));
    }
    // containerd-shim-rt-v2 keeps its state in a fixed place: what a
    // failed run leaves there goes with the scratch directory too.
    scratch.rt_root(PathBuf::from("/run/containerd/rt/k8s.io"));
    let bins = rt.parent().expect("rt is in a directory");
    let (ctd, sock) = containerd_in(dir, true, &cri_config(dir, settings, rt), bins);
    for archive in images {
        ok(Command::new("ctr")
            .env("CONTAINERD_ADDRESS", &sock)
            .args(["-n", "k8s.io", "image", "import"])
            .arg(archive));
    }
    let client = tokio.block_on(connect(&sock));
    (ctd, client)
}
