//! rt driven by real managers on this machine: containerd through its Go
//! runc shim (`ctr run --runc-binary rt`) and Podman through conmon
//! (`podman --runtime rt`).
//!
//! This host is a hybrid cgroup host whose cpu and pids controllers are
//! bound to cgroup v1, and rt manages cgroup v2 only: `--cpu-shares 0`
//! (ctr) and `--pids-limit 0` (Podman) keep those resources out of the
//! config; the README says so.

use std::path::Path;
use std::process::Command;

use rt_integration::*;

/// Podman's run flags on this hybrid host: no pids limit (a cgroup v1
/// controller here) and rlimits within rt's own (it lacks
/// CAP_SYS_RESOURCE).
const PODMAN_ON_THIS_HOST: [&str; 6] = [
    "--pids-limit",
    "0",
    "--ulimit",
    "nofile=1024:1024",
    "--ulimit",
    "nproc=1024:1024",
];

#[test]
fn containerd_runc_shim_with_rt() {
    require(&["containerd", "ctr", "umoci", "skopeo", "script"]);
    let rt = rt_binary();
    let scratch = Scratch::new("ctr");
    let s = scratch.path();
    let (oci, _) = busybox_image(s);
    let (daemon, sock) = containerd(s, false, "");
    let ctr = || {
        let mut c = Command::new("ctr");
        c.env("CONTAINERD_ADDRESS", &sock);
        c
    };
    ok(ctr()
        .args(["image", "import", "--base-name", "localhost/busybox"])
        .arg(&oci));
    let rt_root = s.join("rt-root");
    scratch.rt_root(rt_root.join("default"));
    let runtime = [
        "--cpu-shares",
        "0",
        "--runc-binary",
        rt.to_str().unwrap(),
        "--runc-root",
        rt_root.to_str().unwrap(),
    ];

    let out = ok(ctr().args(["run", "--rm"]).args(runtime).args([
        "localhost/busybox:latest",
        "c1",
        "echo",
        "hello from ctr",
    ]));
    assert_eq!(out, "hello from ctr\n");

    ctr_run_exec_pause_ps(&ctr, &runtime, "localhost/busybox:latest", "c2");
    ok(ctr().args(["task", "kill", "-s", "KILL", "c2"]));
    ctr_wait_status(&ctr, "c2", "STOPPED");
    ok(ctr().args(["task", "delete", "c2"]));
    ok(ctr().args(["container", "rm", "c2"]));

    // A terminal container.
    let cmd = format!(
        "CONTAINERD_ADDRESS={} ctr run --rm -t {} localhost/busybox:latest c3 sh -c 'tty; exit 5'",
        sock.display(),
        runtime.join(" ")
    );
    let out = script(&cmd);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("/dev/pts/0"), "{text}");
    assert_eq!(out.status.code(), Some(5), "{text}");

    // Nothing of rt's is left.
    drop(daemon);
    scratch.assert_clean();
}

#[test]
fn podman_with_rt() {
    require(&["podman", "conmon", "umoci", "skopeo", "script"]);
    let rt = rt_binary();
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path().to_path_buf();
    let (_, docker) = busybox_image(&s);
    struct Cleanup(std::path::PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            unmount_under(&self.0);
        }
    }
    let _cleanup = Cleanup(s.clone());
    let global: Vec<String> = vec![
        "--root".into(),
        s.join("root").display().to_string(),
        "--runroot".into(),
        s.join("run").display().to_string(),
        "--tmpdir".into(),
        s.join("tmp").display().to_string(),
        "--cgroup-manager".into(),
        "cgroupfs".into(),
        "--events-backend".into(),
        "file".into(),
        "--storage-driver".into(),
        "overlay".into(),
        "--runtime".into(),
        rt.display().to_string(),
    ];
    let podman = || {
        let mut c = Command::new("podman");
        c.args(&global);
        c
    };
    let run_flags = [&["--network", "none"][..], &PODMAN_ON_THIS_HOST[..]].concat();
    ok(podman().args(["load", "-q", "-i"]).arg(&docker));
    let out = ok(podman().args(["run", "--rm"]).args(&run_flags).args([
        "localhost/busybox:latest",
        "echo",
        "hi from podman",
    ]));
    assert_eq!(out, "hi from podman\n");

    ok(podman()
        .args(["run", "-d", "--name", "p1"])
        .args(&run_flags)
        .args(["localhost/busybox:latest", "sleep", "1000"]));
    let out = run(podman().args(["exec", "p1", "sh", "-c", "echo in-p1; exit 4"]));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "in-p1\n");
    assert_eq!(out.status.code(), Some(4));
    let cmd = format!("podman {} exec -it p1 sh -c 'tty'", global.join(" "));
    let out = script(&cmd);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("/dev/pts/"),
        "{out:?}"
    );
    // sleep as pid 1 ignores TERM: stop falls back to KILL after 1s.
    ok(podman().args(["stop", "-t", "1", "p1"]));
    ok(podman().args(["rm", "p1"]));

    let cmd = format!(
        "podman {} run --rm -it {} localhost/busybox:latest sh -c 'tty; exit 6'",
        global.join(" "),
        run_flags.join(" ")
    );
    let out = script(&cmd);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("/dev/pts/0"),
        "{out:?}"
    );
    assert_eq!(out.status.code(), Some(6));
    // Podman's storage is torn down with the tempdir, after the unmounts.
    let _ = run(podman().args(["system", "reset", "-f"]));
}

/// Podman's bridge network (its CNI backend with Debian's plugins), with
/// rt as with runc side by side: a web server's page reached from the
/// host by the container's IP and from a second container. The network
/// is the test's own (its config dir, bridge device, subnet and address
/// store; no masquerading or port mapping, which would write the host's
/// iptables), so nothing of it outlives the test; a published port is
/// checked in the systemd VM (`make test-host`).
#[test]
fn podman_bridge_network_with_rt_as_with_runc() {
    require(&["podman", "conmon", "umoci", "skopeo", "runc", "ip"]);
    if !Path::new("/usr/lib/cni/bridge").exists() {
        eprintln!("skipped: /usr/lib/cni/bridge is missing (Debian's containernetworking-plugins)");
        return;
    }
    let rt = rt_binary();
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path().to_path_buf();
    let (_, docker) = busybox_image(&s);
    let bridge = format!("rtpn{}", std::process::id() % 100_000);
    struct Cleanup(std::path::PathBuf, String);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            unmount_under(&self.0);
            let _ = run(Command::new("ip").args(["link", "del", &self.1]));
        }
    }
    let _cleanup = Cleanup(s.clone(), bridge.clone());
    let net_dir = s.join("cni");
    std::fs::create_dir_all(&net_dir).unwrap();
    let conflist = serde_json::json!({
        "cniVersion": "0.4.0",
        "name": "rtit",
        "plugins": [{
            "type": "bridge",
            "bridge": bridge,
            "isGateway": true,
            "ipMasq": false,
            "hairpinMode": true,
            "ipam": {
                "type": "host-local",
                "dataDir": s.join("ipam"),
                "ranges": [[{"subnet": "10.213.8.0/24", "gateway": "10.213.8.1"}]],
                "routes": [{"dst": "0.0.0.0/0"}]
            }
        }]
    });
    std::fs::write(net_dir.join("rtit.conflist"), conflist.to_string()).unwrap();
    let global: Vec<String> = [
        "--root",
        &s.join("root").display().to_string(),
        "--runroot",
        &s.join("run").display().to_string(),
        "--tmpdir",
        &s.join("tmp").display().to_string(),
        "--network-config-dir",
        &net_dir.display().to_string(),
        "--cgroup-manager",
        "cgroupfs",
        "--events-backend",
        "file",
        "--storage-driver",
        "overlay",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    let podman = |runtime: &str| {
        let mut c = Command::new("podman");
        c.args(&global).args(["--runtime", runtime]);
        c
    };
    let flags = [&["--network", "rtit"][..], &PODMAN_ON_THIS_HOST[..]].concat();
    ok(podman("runc").args(["load", "-q", "-i"]).arg(&docker));
    for runtime in ["runc", rt.to_str().unwrap()] {
        let name = if runtime == "runc" {
            "web-runc"
        } else {
            "web-rt"
        };
        ok(podman(runtime)
            .args(["run", "-d", "--name", name])
            .args(&flags)
            .args(["localhost/busybox:latest", "sh", "-c", SERVE_PAGE, name]));
        let ip = ok(podman(runtime).args([
            "inspect",
            "-f",
            "{{(index .NetworkSettings.Networks \"rtit\").IPAddress}}",
            name,
        ]));
        let ip = ip.trim();
        assert!(
            ip.starts_with("10.213.8."),
            "{name}: IP {ip:?} on the test's network"
        );
        let page = format!("hello from {name}\n");
        assert_eq!(
            http_get(&format!("{ip}:80"), std::time::Duration::from_secs(20)).unwrap(),
            page,
            "{name}: from the host"
        );
        let out = ok(podman(runtime).args(["run", "--rm"]).args(&flags).args([
            "localhost/busybox:latest",
            "sh",
            "-c",
            NC_GET,
            ip,
        ]));
        assert_eq!(out, page, "{name}: from a second container");
        ok(podman(runtime).args(["rm", "-f", "-t", "0", name]));
    }
    let left = std::fs::read_dir(s.join("ipam/rtit"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("10."))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "addresses still reserved: {left:?}");
    let _ = run(podman("runc").args(["system", "reset", "-f"]));
}
