//! The CRI rows of `make bench`: a pod started as kubelet starts one
//! (RunPodSandbox, CreateContainer, StartContainer) through containerd's
//! CRI plugin, timed to the container's first line in its CRI log, on
//! each RuntimeClass handler: `runc` (containerd-shim-runc-v2 with runc),
//! `rt` (the same shim with rt as BinaryName) and `rt-v2`
//! (containerd-shim-rt-v2). The handlers take turns; the pod is stopped
//! and removed after each start, untimed.
//!
//! Usage: cri-bench RT WARMUP REPS. Prints one JSON object: each
//! handler's seconds per measured start.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use rt_integration::cri::*;
use rt_integration::*;
use tonic::transport::Channel;

const ORDER: &[&str] = &["runc", "rt", "rt-v2"];

/// Seconds from RunPodSandbox to the container's first log line.
async fn pod_start(
    c: &mut RuntimeServiceClient<Channel>,
    handler: &str,
    logs: &Path,
    n: usize,
) -> f64 {
    let name = format!("{handler}-{n}");
    let pod = pod_config(&name, logs, "");
    let log = logs.join(&name).join("main.log");
    let t0 = Instant::now();
    let sandbox = run_pod(c, &pod, handler).await;
    start_in_pod(
        c,
        &sandbox,
        &pod,
        container_config("main", &["echo", "started"]),
    )
    .await;
    // containerd writes the line as `<time> stdout F started`.
    let seen = wait_until(Duration::from_secs(20), || {
        std::fs::read(&log).is_ok_and(|l| l.ends_with(b" stdout F started\n"))
    });
    let took = t0.elapsed().as_secs_f64();
    assert!(seen, "{handler}: no first line in {}", log.display());
    remove_pod(c, &sandbox).await;
    took
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, rt, warmup, reps] = args.as_slice() else {
        eprintln!("usage: cri-bench RT WARMUP REPS");
        std::process::exit(2);
    };
    let rt = PathBuf::from(rt).canonicalize().expect("RT");
    let (warmup, reps): (usize, usize) =
        (warmup.parse().expect("WARMUP"), reps.parse().expect("REPS"));
    require(&["containerd", "ctr", "umoci", "skopeo", "runc"]);
    let scratch = Scratch::new("cri-bench");
    let s = scratch.path();
    let [pause, busybox] = node_images(s);
    let tokio = client_runtime();
    let (ctd, mut c) = cri_containerd(
        &scratch,
        &s.join("node"),
        &host_settings(),
        &rt,
        &[pause.as_path(), busybox.as_path()],
        &tokio,
    );
    let mut times: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for i in 0..warmup + reps {
        let turn = i % ORDER.len();
        for handler in ORDER[turn..].iter().chain(&ORDER[..turn]) {
            let t = tokio.block_on(pod_start(&mut c, handler, &s.join("logs"), i));
            if i >= warmup {
                times.entry(handler).or_default().push(t);
            }
        }
    }
    drop(c);
    drop(ctd);
    println!("{}", serde_json::to_string(&times).unwrap());
}
