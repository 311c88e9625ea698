//! rt driven by real managers on this machine: containerd through its Go
//! runc shim (`ctr run --runc-binary rt`) and Podman through conmon
//! (`podman --runtime rt`).
//!
//! This host is a hybrid cgroup host whose cpu and pids controllers are
//! bound to cgroup v1, and rt manages cgroup v2 only: `--cpu-shares 0`
//! (ctr) and `--pids-limit 0` (Podman) keep those resources out of the
//! config; the README says so.

use std::process::{Command, Stdio};
use std::time::Duration;

use rt_integration::*;

/// Runs `cmd` under `script`, which gives the manager a terminal as a
/// user's shell would. Its stdin stays open until the command ends (an
/// early EOF would end an interactive session before its output).
fn script(cmd: &str) -> std::process::Output {
    use std::io::{Read, Seek};
    let mut out = tempfile::tempfile().unwrap();
    let mut child = Command::new("script")
        .args(["-q", "-e", "-c", cmd, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(out.try_clone().unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take();
    let status = child.wait().unwrap();
    drop(stdin);
    let mut stdout = Vec::new();
    out.rewind().unwrap();
    out.read_to_end(&mut stdout).unwrap();
    std::process::Output {
        status,
        stdout,
        stderr: Vec::new(),
    }
}

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

    ok(ctr().args(["run", "-d"]).args(runtime).args([
        "localhost/busybox:latest",
        "c2",
        "sleep",
        "1000",
    ]));
    let out = run(ctr().args([
        "task",
        "exec",
        "--exec-id",
        "e1",
        "c2",
        "sh",
        "-c",
        "echo in-c2; exit 3",
    ]));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "in-c2\n");
    assert_eq!(out.status.code(), Some(3), "exec's exit code comes back");
    let ps = ok(ctr().args(["task", "ls"]));
    assert!(
        ps.lines()
            .any(|l| l.starts_with("c2 ") && l.contains("RUNNING")),
        "{ps}"
    );
    // pause/resume reach rt's pause/resume; ps its `ps --format json`.
    ok(ctr().args(["task", "pause", "c2"]));
    let ps = ok(ctr().args(["task", "ls"]));
    assert!(
        ps.lines()
            .any(|l| l.starts_with("c2 ") && l.contains("PAUSED")),
        "{ps}"
    );
    ok(ctr().args(["task", "resume", "c2"]));
    let ps = ok(ctr().args(["task", "ls"]));
    assert!(
        ps.lines()
            .any(|l| l.starts_with("c2 ") && l.contains("RUNNING")),
        "{ps}"
    );
    let procs = ok(ctr().args(["task", "ps", "c2"]));
    assert_eq!(procs.lines().count(), 2, "a header and the init: {procs}");
    ok(ctr().args(["task", "kill", "-s", "KILL", "c2"]));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let ps = ok(ctr().args(["task", "ls"]));
        if ps
            .lines()
            .any(|l| l.starts_with("c2 ") && l.contains("STOPPED"))
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{ps}");
        std::thread::sleep(Duration::from_millis(50));
    }
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
