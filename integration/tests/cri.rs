//! The Kubernetes path: containerd's CRI plugin (Debian's containerd 1.6)
//! on scratch paths, with RuntimeClass handlers for rt, driven through the
//! CRI gRPC API the way kubelet drives it (k8s-cri's protos over tonic):
//! RunPodSandbox, CreateContainer, StartContainer, ExecSync,
//! ContainerStatus, StopContainer, RemoveContainer, StopPodSandbox,
//! RemovePodSandbox. The pause image is busybox's `sleep inf`, built
//! offline and imported into containerd's `k8s.io` namespace.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use k8s_cri::v1 as cri;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use rt_integration::*;
use tonic::transport::Channel;

const PAUSE: &str = "localhost/pause:3.9";
const IMAGE: &str = "localhost/busybox:latest";

/// The RuntimeClass handlers this test runs a pod with: name and
/// containerd `runtime_type`. Each is a `[...runtimes.NAME]` in the
/// config; the Go runc shim's get `BinaryName` = rt and a `Root` in the
/// scratch dir; `rt-v2` is rt's own shim, `containerd-shim-rt-v2`, which
/// containerd finds on its PATH.
const HANDLERS: &[(&str, &str)] = &[
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
fn host_settings() -> String {
    let mut lines = String::new();
    if !cgroup2_controllers().iter().any(|c| c == "cpu") {
        lines += "  disable_cgroup = true\n";
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let bounding = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        .unwrap();
    const CAP_SYS_RESOURCE: u32 = 24;
    if bounding & (1 << CAP_SYS_RESOURCE) == 0 {
        lines += "  restrict_oom_score_adj = true\n";
    }
    lines
}

/// containerd's CRI plugin config for `HANDLERS` (and `runc`, the node's
/// default runtime, which CRI insists on), all on `s`'s paths, with
/// `settings` in its table.
fn cri_config(s: &Path, settings: &str) -> String {
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
                rt_binary().display(),
                s.display()
            );
        }
    }
    c
}

async fn connect(sock: &Path) -> RuntimeServiceClient<Channel> {
    let channel = tonic::transport::Endpoint::from_shared(format!("unix://{}", sock.display()))
        .unwrap()
        .connect()
        .await
        .unwrap_or_else(|e| panic!("CRI at {}: {e:?}", sock.display()));
    RuntimeServiceClient::new(channel)
}

/// What kubelet asks for a hostNetwork pod: the node's network, a pid
/// namespace per container (no shareProcessNamespace).
fn namespaces() -> cri::NamespaceOption {
    cri::NamespaceOption {
        network: cri::NamespaceMode::Node as i32,
        pid: cri::NamespaceMode::Container as i32,
        ..Default::default()
    }
}

/// The sandbox config kubelet sends for a hostNetwork pod on `handler`.
fn pod_config(handler: &str, logs: &Path, cgroup_parent: &str) -> cri::PodSandboxConfig {
    cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: format!("pod-{handler}"),
            uid: format!("uid-{handler}"),
            namespace: "default".into(),
            attempt: 0,
        }),
        // kubelet sets no hostname for a pod on the host's network (it
        // keeps the host's UTS namespace).
        log_directory: logs.join(handler).display().to_string(),
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

/// One pod on `handler`, as kubelet runs it: a sandbox on the host's
/// network under `cgroup_parent`, one container that logs and sleeps, an
/// exec into it, its status, a stop after the grace period, removal.
async fn pod_lifecycle(
    c: &mut RuntimeServiceClient<Channel>,
    handler: &str,
    logs: &Path,
    cgroup_parent: &str,
    cgroups_in: &Path,
) {
    let pod = pod_config(handler, logs, cgroup_parent);
    let sandbox = c
        .run_pod_sandbox(cri::RunPodSandboxRequest {
            config: Some(pod.clone()),
            runtime_handler: handler.to_string(),
        })
        .await
        .unwrap_or_else(|e| panic!("RunPodSandbox on {handler}: {e:?}"))
        .into_inner()
        .pod_sandbox_id;
    let status = c
        .pod_sandbox_status(cri::PodSandboxStatusRequest {
            pod_sandbox_id: sandbox.clone(),
            verbose: false,
        })
        .await
        .unwrap()
        .into_inner()
        .status
        .unwrap();
    assert_eq!(status.state, cri::PodSandboxState::SandboxReady as i32);
    assert_eq!(status.runtime_handler, handler);

    let container = c
        .create_container(cri::CreateContainerRequest {
            pod_sandbox_id: sandbox.clone(),
            config: Some(cri::ContainerConfig {
                metadata: Some(cri::ContainerMetadata {
                    name: "main".into(),
                    attempt: 0,
                }),
                image: Some(cri::ImageSpec {
                    image: IMAGE.into(),
                    ..Default::default()
                }),
                command: vec!["sh".into()],
                args: vec!["-c".into(), "echo started; exec sleep 1000".into()],
                log_path: "main.log".into(),
                linux: Some(cri::LinuxContainerConfig {
                    security_context: Some(cri::LinuxContainerSecurityContext {
                        namespace_options: Some(namespaces()),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                envs: vec![cri::KeyValue {
                    key: "GREETING".into(),
                    value: format!("hello from {handler}"),
                }],
                ..Default::default()
            }),
            sandbox_config: Some(pod.clone()),
        })
        .await
        .unwrap_or_else(|e| panic!("CreateContainer on {handler}: {e:?}"))
        .into_inner()
        .container_id;
    c.start_container(cri::StartContainerRequest {
        container_id: container.clone(),
    })
    .await
    .unwrap_or_else(|e| panic!("StartContainer on {handler}: {e:?}"));

    let exec = c
        .exec_sync(cri::ExecSyncRequest {
            container_id: container.clone(),
            cmd: vec![
                "sh".into(),
                "-c".into(),
                "echo $GREETING; echo oops >&2; exit 3".into(),
            ],
            timeout: 10,
        })
        .await
        .unwrap_or_else(|e| panic!("ExecSync on {handler}: {e:?}"))
        .into_inner();
    assert_eq!(
        String::from_utf8_lossy(&exec.stdout),
        format!("hello from {handler}\n")
    );
    assert_eq!(String::from_utf8_lossy(&exec.stderr), "oops\n");
    assert_eq!(exec.exit_code, 3);

    let status = |c: &mut RuntimeServiceClient<Channel>| {
        let mut c = c.clone();
        let id = container.clone();
        async move {
            c.container_status(cri::ContainerStatusRequest {
                container_id: id,
                verbose: false,
            })
            .await
            .unwrap()
            .into_inner()
            .status
            .unwrap()
        }
    };
    let st = status(c).await;
    assert_eq!(st.state, cri::ContainerState::ContainerRunning as i32);
    // rt's default cgroup is <id>@<hash of its state root>.
    let cgroups = [&sandbox, &container].map(|id| {
        std::fs::read_dir(cgroups_in)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                p.file_name().is_some_and(|n| {
                    let n = n.to_string_lossy();
                    n == id.as_str() || n.starts_with(&format!("{id}@"))
                })
            })
            .unwrap_or_else(|| cgroups_in.join(id))
    });
    for cg in &cgroups {
        assert!(cg.is_dir(), "{} while the pod runs", cg.display());
    }
    assert_eq!(st.image.unwrap().image, IMAGE);
    // What `kubectl logs` reads: the CRI log file.
    let log = logs.join(handler).join("main.log");
    assert!(
        wait_until(Duration::from_secs(10), || {
            std::fs::read_to_string(&log).is_ok_and(|l| l.contains(" stdout F started\n"))
        }),
        "{}: {:?}",
        log.display(),
        std::fs::read_to_string(&log)
    );

    // sleep as pid 1 ignores SIGTERM: SIGKILL after the 1 s grace period.
    let t = std::time::Instant::now();
    c.stop_container(cri::StopContainerRequest {
        container_id: container.clone(),
        timeout: 1,
    })
    .await
    .unwrap_or_else(|e| panic!("StopContainer on {handler}: {e:?}"));
    let took = t.elapsed();
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(5),
        "StopContainer with a 1 s grace period took {took:?}"
    );
    let st = status(c).await;
    assert_eq!(st.state, cri::ContainerState::ContainerExited as i32);
    assert_eq!(st.exit_code, 137);
    c.remove_container(cri::RemoveContainerRequest {
        container_id: container.clone(),
    })
    .await
    .unwrap();

    c.stop_pod_sandbox(cri::StopPodSandboxRequest {
        pod_sandbox_id: sandbox.clone(),
    })
    .await
    .unwrap_or_else(|e| panic!("StopPodSandbox on {handler}: {e:?}"));
    c.remove_pod_sandbox(cri::RemovePodSandboxRequest {
        pod_sandbox_id: sandbox.clone(),
    })
    .await
    .unwrap_or_else(|e| panic!("RemovePodSandbox on {handler}: {e:?}"));
    let left = c
        .list_pod_sandbox(cri::ListPodSandboxRequest { filter: None })
        .await
        .unwrap()
        .into_inner()
        .items;
    assert!(left.iter().all(|p| p.id != sandbox), "{left:?}");
    for cg in &cgroups {
        assert!(!cg.exists(), "{} is removed with the pod", cg.display());
    }
}

/// The processes of containerd-shim-rt-v2 serving the containerd whose
/// socket is under `node` (the shim and its zygote share a command line).
fn rt_v2_shims(node: &Path) -> Vec<String> {
    let out = Command::new("pgrep")
        .arg("-f")
        .arg(format!(
            "containerd-shim-rt-v2 .*-address {}/",
            node.display()
        ))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(String::from)
        .collect()
}

/// A pod of three containers on rt-v2 runs in the sandbox's shim, as
/// containerd-shim-runc-v2 groups a pod: no shim per container; removing
/// one container leaves the others running; the pod's removal ends it.
async fn pod_shares_one_shim(
    c: &mut RuntimeServiceClient<Channel>,
    logs: &Path,
    cgroup_parent: &str,
    node: &Path,
) {
    let handler = "rt-v2";
    let mut pod = pod_config(handler, logs, cgroup_parent);
    pod.metadata.as_mut().unwrap().name = "shared".into();
    pod.metadata.as_mut().unwrap().uid = "uid-shared".into();
    let sandbox = c
        .run_pod_sandbox(cri::RunPodSandboxRequest {
            config: Some(pod.clone()),
            runtime_handler: handler.into(),
        })
        .await
        .unwrap_or_else(|e| panic!("RunPodSandbox: {e:?}"))
        .into_inner()
        .pod_sandbox_id;
    let shims = rt_v2_shims(node);
    assert!(
        !shims.is_empty(),
        "no containerd-shim-rt-v2 for the sandbox"
    );
    let mut ids = Vec::new();
    for name in ["a", "b", "c"] {
        let id = c
            .create_container(cri::CreateContainerRequest {
                pod_sandbox_id: sandbox.clone(),
                config: Some(cri::ContainerConfig {
                    metadata: Some(cri::ContainerMetadata {
                        name: name.into(),
                        attempt: 0,
                    }),
                    image: Some(cri::ImageSpec {
                        image: IMAGE.into(),
                        ..Default::default()
                    }),
                    command: vec!["sleep".into(), "1000".into()],
                    log_path: format!("{name}.log"),
                    linux: Some(cri::LinuxContainerConfig {
                        security_context: Some(cri::LinuxContainerSecurityContext {
                            namespace_options: Some(namespaces()),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                sandbox_config: Some(pod.clone()),
            })
            .await
            .unwrap_or_else(|e| panic!("CreateContainer {name}: {e:?}"))
            .into_inner()
            .container_id;
        c.start_container(cri::StartContainerRequest {
            container_id: id.clone(),
        })
        .await
        .unwrap_or_else(|e| panic!("StartContainer {name}: {e:?}"));
        ids.push(id);
    }
    assert_eq!(
        rt_v2_shims(node),
        shims,
        "the pod's containers in its one shim"
    );
    let state = |c: &mut RuntimeServiceClient<Channel>, id: String| {
        let mut c = c.clone();
        async move {
            c.container_status(cri::ContainerStatusRequest {
                container_id: id,
                verbose: false,
            })
            .await
            .unwrap()
            .into_inner()
            .status
            .unwrap()
            .state
        }
    };
    let remove = |c: &mut RuntimeServiceClient<Channel>, id: String| {
        let mut c = c.clone();
        async move {
            c.stop_container(cri::StopContainerRequest {
                container_id: id.clone(),
                timeout: 0,
            })
            .await
            .unwrap_or_else(|e| panic!("StopContainer {id}: {e:?}"));
            c.remove_container(cri::RemoveContainerRequest { container_id: id })
                .await
                .unwrap();
        }
    };
    remove(c, ids[1].clone()).await;
    for id in [&ids[0], &ids[2]] {
        assert_eq!(
            state(c, id.clone()).await,
            cri::ContainerState::ContainerRunning as i32,
            "{id} after another container of its pod is removed"
        );
    }
    assert_eq!(rt_v2_shims(node), shims, "the shim serves the rest");
    for id in [&ids[0], &ids[2]] {
        remove(c, id.clone()).await;
    }
    assert_eq!(rt_v2_shims(node), shims, "the shim serves the sandbox");
    c.stop_pod_sandbox(cri::StopPodSandboxRequest {
        pod_sandbox_id: sandbox.clone(),
    })
    .await
    .unwrap_or_else(|e| panic!("StopPodSandbox: {e:?}"));
    c.remove_pod_sandbox(cri::RemovePodSandboxRequest {
        pod_sandbox_id: sandbox,
    })
    .await
    .unwrap_or_else(|e| panic!("RemovePodSandbox: {e:?}"));
    assert!(
        wait_until(Duration::from_secs(10), || rt_v2_shims(node).is_empty()),
        "the shim outlived its pod: {:?}",
        rt_v2_shims(node)
    );
}

/// containerd with the CRI plugin on `dir`, the pause and busybox images
/// imported into its `k8s.io` namespace; a CRI client on its socket.
fn cri_containerd(
    scratch: &Scratch,
    dir: &Path,
    settings: &str,
    images: &[&Path],
    tokio: &tokio::runtime::Runtime,
) -> (Daemon, RuntimeServiceClient<Channel>) {
    std::fs::create_dir_all(dir).unwrap();
    for (name, _) in HANDLERS {
        scratch.rt_root(dir.join(format!("rt-root-{name}/k8s.io")));
    }
    // containerd-shim-rt-v2 keeps its state in a fixed place: what a
    // failed test leaves there goes with the scratch directory too (this
    // binary's only test is the one that uses the k8s.io namespace).
    scratch.rt_root(PathBuf::from("/run/containerd/rt/k8s.io"));
    let (ctd, sock) = containerd(dir, true, &cri_config(dir, settings));
    for archive in images {
        ok(Command::new("ctr")
            .env("CONTAINERD_ADDRESS", &sock)
            .args(["-n", "k8s.io", "image", "import"])
            .arg(archive));
    }
    let client = tokio.block_on(connect(&sock));
    (ctd, client)
}

#[test]
fn kubernetes_cri_with_rt_runtime_classes() {
    require(&["containerd", "ctr", "umoci", "skopeo"]);
    // kubelet's cgroup parent for the pods (as /kubepods/besteffort/pod<uid>).
    let parent = format!("rt-it-cri-{}", std::process::id());
    let cgroup = CgroupDir::v2(&parent);
    let scratch = Scratch::new("cri");
    let s = scratch.path();
    let (_, busybox) = busybox_image(s);
    // The pause image: busybox's `sleep inf`.
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
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let images = [pause.as_path(), busybox.as_path()];

    let settings = host_settings();
    // With disable_cgroup the specs name no cgroup: rt's default, /rt/<id>@<hash>.
    let cgroups_in = if settings.contains("disable_cgroup") {
        cgroup2_root().join("rt")
    } else {
        cgroup.0.clone()
    };
    if settings.contains("disable_cgroup") {
        // containerd's defaults on a hybrid host: the sandbox's cpu.shares
        // is refused in one line naming the controller, and rt leaves no
        // cgroup behind.
        let (ctd, mut c) = cri_containerd(&scratch, &s.join("defaults"), "", &images, &tokio);
        let err = tokio
            .block_on(c.run_pod_sandbox(cri::RunPodSandboxRequest {
                config: Some(pod_config("rt", &s.join("logs"), &format!("/{parent}"))),
                runtime_handler: "rt".into(),
            }))
            .expect_err("a sandbox with cpu.shares on a hybrid host");
        assert!(
            err.message()
                .contains("linux.resources.cpu: the cpu controller is not available in cgroup v2"),
            "{err:?}"
        );
        let left: Vec<_> = std::fs::read_dir(&cgroup.0)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().is_dir())
            .collect();
        assert!(left.is_empty(), "cgroups left: {left:?}");
        drop(ctd);
    }

    let (ctd, mut c) = cri_containerd(&scratch, &s.join("node"), &settings, &images, &tokio);
    for (handler, _) in HANDLERS {
        tokio.block_on(pod_lifecycle(
            &mut c,
            handler,
            &s.join("logs"),
            &format!("/{parent}"),
            &cgroups_in,
        ));
    }
    tokio.block_on(pod_shares_one_shim(
        &mut c,
        &s.join("logs"),
        &format!("/{parent}"),
        &s.join("node"),
    ));
    drop(c);
    drop(ctd);
    scratch.assert_clean();
}
