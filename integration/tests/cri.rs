//! The Kubernetes path: containerd's CRI plugin (Debian's containerd 1.6)
//! on scratch paths, with RuntimeClass handlers for rt, driven through the
//! CRI gRPC API the way kubelet drives it (k8s-cri's protos over tonic):
//! RunPodSandbox, CreateContainer, StartContainer, ExecSync,
//! ContainerStatus, StopContainer, RemoveContainer, StopPodSandbox,
//! RemovePodSandbox. The pause image is busybox's `sleep inf`, built
//! offline and imported into containerd's `k8s.io` namespace.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use k8s_cri::v1 as cri;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use rt_integration::cri::*;
use rt_integration::*;
use tonic::transport::Channel;

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
    let sandbox = run_pod(c, &pod, handler).await;
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

    let config = cri::ContainerConfig {
        args: vec!["-c".into(), "echo started; exec sleep 1000".into()],
        envs: vec![cri::KeyValue {
            key: "GREETING".into(),
            value: format!("hello from {handler}"),
        }],
        ..container_config("main", &["sh"])
    };
    let container = start_in_pod(c, &sandbox, &pod, config).await;

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
    // The pod's cgroup is named for the id, or rt's default is
    // rt/<hash of its state root>/<id>.
    let cgroups = [&sandbox, &container].map(|id| {
        std::fs::read_dir(cgroups_in)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .find_map(|p| {
                if p.file_name().is_some_and(|n| n == id.as_str()) {
                    Some(p)
                } else {
                    Some(p.join(id)).filter(|d| d.is_dir())
                }
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

    remove_pod(c, &sandbox).await;
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
    let sandbox = run_pod(c, &pod, handler).await;
    let shims = rt_v2_shims(node);
    assert!(
        !shims.is_empty(),
        "no containerd-shim-rt-v2 for the sandbox"
    );
    let mut ids = Vec::new();
    for name in ["a", "b", "c"] {
        let config = container_config(name, &["sleep", "1000"]);
        let id = start_in_pod(c, &sandbox, &pod, config).await;
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
    remove_pod(c, &sandbox).await;
    assert!(
        wait_until(Duration::from_secs(10), || rt_v2_shims(node).is_empty()),
        "the shim outlived its pod: {:?}",
        rt_v2_shims(node)
    );
}

#[test]
fn kubernetes_cri_with_rt_runtime_classes() {
    require(&["containerd", "ctr", "umoci", "skopeo"]);
    // kubelet's cgroup parent for the pods (as /kubepods/besteffort/pod<uid>).
    let parent = format!("rt-it-cri-{}", std::process::id());
    let cgroup = CgroupDir::v2(&parent);
    let scratch = Scratch::new("cri");
    let s = scratch.path();
    let [pause, busybox] = node_images(s);
    let tokio = client_runtime();
    let images = [pause.as_path(), busybox.as_path()];

    let settings = host_settings();
    // With disable_cgroup the specs name no cgroup: rt's default, /rt/<hash>/<id>.
    let cgroups_in = if settings.contains("disable_cgroup") {
        cgroup2_root().join("rt")
    } else {
        cgroup.0.clone()
    };
    if settings.contains("disable_cgroup") {
        // containerd's defaults on a hybrid host: the sandbox's cpu.shares
        // is refused in one line naming the controller, and rt leaves no
        // cgroup behind.
        let (ctd, mut c) = cri_containerd(
            &scratch,
            &s.join("defaults"),
            "",
            &rt_binary(),
            &images,
            &tokio,
        );
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

    let (ctd, mut c) = cri_containerd(
        &scratch,
        &s.join("node"),
        &settings,
        &rt_binary(),
        &images,
        &tokio,
    );
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
