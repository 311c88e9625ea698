//! A pod through containerd's CRI plugin as kubelet with its systemd
//! cgroup driver runs one, for `make test-host` (integration/host): the
//! sandbox and a container with CPU and memory limits in a
//! `kubepods-...slice`, ExecSync, stop, remove. Prints `ok STEP` lines and
//! exits non-zero with the failing step on stderr.
//!
//! With `--pod-network` the pod gets its own network namespace from the
//! node's CNI bridge, as kubelet asks for any pod without hostNetwork,
//! its container serves a page, and the node fetches it from the pod's
//! IP as PodSandboxStatus reports it.
//!
//! Usage: cri-check SOCKET HANDLER IMAGE [--pod-network]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use k8s_cri::v1 as cri;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;

const SLICE: &str = "kubepods-besteffort-podrthost.slice";
const SLICE_DIR: &str =
    "/sys/fs/cgroup/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-podrthost.slice";

fn unit_state(unit: &str) -> String {
    let out = Command::new("systemctl")
        .args(["show", "-P", "ActiveState", unit])
        .output()
        .expect("systemctl");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn check(ok: bool, what: String) -> Result<(), String> {
    if ok {
        println!("ok {what}");
        Ok(())
    } else {
        Err(what)
    }
}

type Client = RuntimeServiceClient<tonic::transport::Channel>;

async fn connect(sock: &str) -> Result<Client, String> {
    let channel = tonic::transport::Endpoint::from_shared(format!("unix://{sock}"))
        .map_err(|e| e.to_string())?
        .connect()
        .await
        .map_err(|e| format!("connect to {sock}: {e:?}"))?;
    Ok(RuntimeServiceClient::new(channel))
}

/// After a failure: the pod's sandboxes (and with them their containers)
/// are stopped and removed, so that the next check can make its own.
async fn remove_pods(c: &mut Client) {
    let Ok(list) = c
        .list_pod_sandbox(cri::ListPodSandboxRequest::default())
        .await
    else {
        return;
    };
    for p in list.into_inner().items {
        if p.metadata.as_ref().is_some_and(|m| m.name == "rthost") {
            let _ = c
                .stop_pod_sandbox(cri::StopPodSandboxRequest {
                    pod_sandbox_id: p.id.clone(),
                })
                .await;
            let _ = c
                .remove_pod_sandbox(cri::RemovePodSandboxRequest {
                    pod_sandbox_id: p.id,
                })
                .await;
        }
    }
}

/// The page the pod-network container serves.
const PAGE: &str = "hello from the pod";

/// GET / from `ip`:80 until it answers (the server may still be starting;
/// bounded at 60 s): the response's body.
fn fetch(ip: &str) -> Result<String, String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let attempt = (|| -> std::io::Result<String> {
            let mut s = TcpStream::connect_timeout(
                &format!("{ip}:80").parse().map_err(std::io::Error::other)?,
                Duration::from_secs(5),
            )?;
            s.set_read_timeout(Some(Duration::from_secs(10)))?;
            write!(s, "GET / HTTP/1.0\r\nHost: {ip}\r\n\r\n")?;
            let mut r = String::new();
            s.read_to_string(&mut r)?;
            Ok(r.split_once("\r\n\r\n")
                .map(|(_, b)| b.to_string())
                .unwrap_or(r))
        })();
        match attempt {
            Ok(body) => return Ok(body),
            Err(e) if Instant::now() > deadline => return Err(format!("GET http://{ip}/: {e}")),
            Err(_) => std::thread::sleep(Duration::from_millis(250)),
        }
    }
}

async fn pod(c: &mut Client, handler: &str, image: &str, pod_network: bool) -> Result<(), String> {
    let network = if pod_network {
        cri::NamespaceMode::Pod
    } else {
        cri::NamespaceMode::Node
    };
    let ns = cri::NamespaceOption {
        network: network as i32,
        pid: cri::NamespaceMode::Container as i32,
        ..Default::default()
    };
    let pod = cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: "rthost".into(),
            uid: "rthost".into(),
            namespace: "default".into(),
            attempt: 0,
        }),
        log_directory: "/tmp/rt-host/pod-logs".into(),
        linux: Some(cri::LinuxPodSandboxConfig {
            cgroup_parent: SLICE.into(),
            security_context: Some(cri::LinuxSandboxSecurityContext {
                namespace_options: Some(ns.clone()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let sandbox = c
        .run_pod_sandbox(cri::RunPodSandboxRequest {
            config: Some(pod.clone()),
            runtime_handler: handler.into(),
        })
        .await
        .map_err(|e| format!("RunPodSandbox: {}", e.message()))?
        .into_inner()
        .pod_sandbox_id;
    let unit = |id: &str| format!("cri-containerd-{id}.scope");
    check(
        unit_state(&unit(&sandbox)) == "active",
        format!("sandbox in an active {}", unit(&sandbox)),
    )?;
    let container = c
        .create_container(cri::CreateContainerRequest {
            pod_sandbox_id: sandbox.clone(),
            config: Some(cri::ContainerConfig {
                metadata: Some(cri::ContainerMetadata {
                    name: "main".into(),
                    attempt: 0,
                }),
                image: Some(cri::ImageSpec {
                    image: image.into(),
                    ..Default::default()
                }),
                command: if pod_network {
                    vec![
                        "sh".into(),
                        "-c".into(),
                        format!("mkdir -p /www && echo '{PAGE}' >/www/index.html && exec httpd -f -p 80 -h /www"),
                    ]
                } else {
                    vec!["sleep".into(), "1000".into()]
                },
                log_path: "main.log".into(),
                linux: Some(cri::LinuxContainerConfig {
                    resources: Some(cri::LinuxContainerResources {
                        cpu_period: 100000,
                        cpu_quota: 50000,
                        cpu_shares: 512,
                        memory_limit_in_bytes: 67108864,
                        ..Default::default()
                    }),
                    security_context: Some(cri::LinuxContainerSecurityContext {
                        namespace_options: Some(ns),
                        ..Default::default()
                    }),
                }),
                ..Default::default()
            }),
            sandbox_config: Some(pod.clone()),
        })
        .await
        .map_err(|e| format!("CreateContainer: {}", e.message()))?
        .into_inner()
        .container_id;
    c.start_container(cri::StartContainerRequest {
        container_id: container.clone(),
    })
    .await
    .map_err(|e| format!("StartContainer: {}", e.message()))?;
    check(
        unit_state(&unit(&container)) == "active",
        format!("container in an active {}", unit(&container)),
    )?;
    let dir = format!("{SLICE_DIR}/{}", unit(&container));
    let read = |f: &str| {
        std::fs::read_to_string(format!("{dir}/{f}"))
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|e| format!("{f}: {e}"))
    };
    let (mem, cpu) = (read("memory.max"), read("cpu.max"));
    check(
        mem == "67108864" && cpu == "50000 100000",
        format!("limits in {dir}: memory.max {mem}, cpu.max {cpu}"),
    )?;
    if pod_network {
        let status = c
            .pod_sandbox_status(cri::PodSandboxStatusRequest {
                pod_sandbox_id: sandbox.clone(),
                verbose: false,
            })
            .await
            .map_err(|e| format!("PodSandboxStatus: {}", e.message()))?
            .into_inner();
        let ip = status
            .status
            .and_then(|s| s.network)
            .map(|n| n.ip)
            .unwrap_or_default();
        check(!ip.is_empty(), format!("the pod has the IP {ip:?}"))?;
        let body = fetch(&ip)?;
        check(
            body.trim() == PAGE,
            format!("the node reads {body:?} from http://{ip}/"),
        )?;
    }
    let exec = c
        .exec_sync(cri::ExecSyncRequest {
            container_id: container.clone(),
            cmd: vec![
                "sh".into(),
                "-c".into(),
                "cat /sys/fs/cgroup/memory.max; exit 3".into(),
            ],
            timeout: 30,
        })
        .await
        .map_err(|e| format!("ExecSync: {}", e.message()))?
        .into_inner();
    let out = String::from_utf8_lossy(&exec.stdout).to_string();
    check(
        out == "67108864\n" && exec.exit_code == 3,
        format!("ExecSync: {out:?}, exit {}", exec.exit_code),
    )?;
    c.stop_container(cri::StopContainerRequest {
        container_id: container.clone(),
        timeout: 2,
    })
    .await
    .map_err(|e| format!("StopContainer: {}", e.message()))?;
    c.remove_container(cri::RemoveContainerRequest {
        container_id: container.clone(),
    })
    .await
    .map_err(|e| format!("RemoveContainer: {}", e.message()))?;
    c.stop_pod_sandbox(cri::StopPodSandboxRequest {
        pod_sandbox_id: sandbox.clone(),
    })
    .await
    .map_err(|e| format!("StopPodSandbox: {}", e.message()))?;
    c.remove_pod_sandbox(cri::RemovePodSandboxRequest {
        pod_sandbox_id: sandbox.clone(),
    })
    .await
    .map_err(|e| format!("RemovePodSandbox: {}", e.message()))?;
    for id in [&container, &sandbox] {
        let st = unit_state(&unit(id));
        check(st == "inactive", format!("{} {st} after removal", unit(id)))?;
    }
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (sock, handler, image, pod_network) = match &args[..] {
        [_, s, h, i] => (s, h, i, false),
        [_, s, h, i, flag] if flag == "--pod-network" => (s, h, i, true),
        _ => {
            eprintln!("usage: cri-check SOCKET HANDLER IMAGE [--pod-network]");
            std::process::exit(2);
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let r = rt.block_on(async {
        let mut c = connect(sock).await?;
        let r = pod(&mut c, handler, image, pod_network).await;
        if r.is_err() {
            remove_pods(&mut c).await;
        }
        r
    });
    if let Err(e) = r {
        eprintln!("cri-check: {e}");
        std::process::exit(1);
    }
}
