//! rt driven by real managers on this machine: containerd through its Go
//! runc shim (`ctr run --runc-binary rt`) and Podman through conmon
//! (`podman --runtime rt`).
//!
//! This host is a hybrid cgroup host whose cpu and pids controllers are
//! bound to cgroup v1, and rt manages cgroup v2 only: `--cpu-shares 0`
//! (ctr) and `--pids-limit 0` (Podman) keep those resources out of the
//! config; the README says so.

use std::process::Command;

use rt_integration::*;

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
    let run_flags = [
        "--network",
        "none",
        "--pids-limit",
        "0",
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=1024:1024",
    ];
    ok(podman().args(["load", "-q", "-i"]).arg(&docker));
    let out = ok(podman().args(["run", "--rm"]).args(run_flags).args([
        "localhost/busybox:latest",
        "echo",
        "hi from podman",
    ]));
    assert_eq!(out, "hi from podman\n");

    ok(podman()
        .args(["run", "-d", "--name", "p1"])
        .args(run_flags)
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
