//! containerd (Debian's 1.6) with rt's own shim: `ctr --runtime
//! io.containerd.rt.v2`, which starts `containerd-shim-rt-v2` from PATH.
//! Each test runs its own containerd on scratch paths, in a containerd
//! namespace of its own, and checks that the shim left nothing behind.
//!
//! `--cpu-shares 0`: this hybrid host's cpu controller is bound to cgroup
//! v1, and rt manages cgroup v2 only.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rt_integration::*;

const IMAGE: &str = "localhost/busybox:latest";
const RUNTIME: [&str; 4] = ["--cpu-shares", "0", "--runtime", "io.containerd.rt.v2"];

/// containerd on scratch paths with the built shim first on its PATH.
struct Containerd {
    daemon: Option<Daemon>,
    dir: PathBuf,
    sock: PathBuf,
    ns: String,
}

impl Containerd {
    fn start(dir: &Path) -> Containerd {
        require(&["containerd", "ctr", "umoci", "skopeo", "script"]);
        let shim = rt_binary().with_file_name("containerd-shim-rt-v2");
        assert!(shim.exists(), "{} is not built", shim.display());
        let sock = dir.join("containerd.sock");
        std::fs::write(
            dir.join("config.toml"),
            format!(
                "version = 2\nroot = \"{0}/root\"\nstate = \"{0}/state\"\n\
                 disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
                 [grpc]\n  address = \"{1}\"\n\
                 [plugins.\"io.containerd.monitor.v1.cgroups\"]\n  no_prometheus = true\n",
                dir.display(),
                sock.display()
            ),
        )
        .unwrap();
        let mut c = Containerd {
            daemon: None,
            dir: dir.to_path_buf(),
            sock,
            // Tests of one binary share a pid: the scratch dir's name
            // tells them apart.
            ns: format!(
                "rt-v2-{}",
                dir.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .replace(|ch: char| !ch.is_ascii_alphanumeric(), "")
            ),
        };
        c.launch();
        c
    }

    fn launch(&mut self) {
        let _ = std::fs::remove_file(&self.sock);
        let shim_dir = rt_binary().parent().unwrap().to_path_buf();
        let path = format!(
            "{}:{}",
            shim_dir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("containerd.log"))
            .unwrap();
        self.daemon = Some(Daemon {
            child: Command::new("containerd")
                .arg("--config")
                .arg(self.dir.join("config.toml"))
                .env("PATH", path)
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("start containerd"),
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.sock.exists() {
            assert!(Instant::now() < deadline, "containerd did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops containerd (by pid) but not the shims it started.
    fn stop(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(i32::try_from(d.child.id()).unwrap()),
                nix::sys::signal::Signal::SIGTERM,
            );
            let _ = d.child.wait();
            // Already reaped: its Drop has nothing left to stop.
            std::mem::forget(d);
        }
    }

    fn ctr(&self) -> Command {
        let mut c = Command::new("ctr");
        c.env("CONTAINERD_ADDRESS", &self.sock)
            .args(["-n", &self.ns]);
        c
    }

    fn task_status(&self, id: &str) -> Option<String> {
        ctr_task_status(&|| self.ctr(), id)
    }

    fn wait_status(&self, id: &str, want: &str) {
        ctr_wait_status(&|| self.ctr(), id, want)
    }

    /// The shims this test's containerd started, by their command line
    /// (each with its zygote, a fork of itself).
    fn shims(&self) -> Vec<i32> {
        let all = self.shim_processes();
        all.iter()
            .copied()
            .filter(|pid| {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                let ppid = stat
                    .rsplit_once(") ")
                    .and_then(|(_, rest)| rest.split(' ').nth(1))
                    .and_then(|p| p.parse::<i32>().ok());
                !ppid.is_some_and(|pp| all.contains(&pp))
            })
            .collect()
    }

    fn shim_processes(&self) -> Vec<i32> {
        let mut pids = vec![];
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains("containerd-shim-rt-v2")
                && cmd.contains(&format!("-namespace {} ", self.ns))
                && cmd.contains(&format!("-address {} ", self.sock.display()))
            {
                pids.push(pid);
            }
        }
        pids
    }

    /// rt's state directory for this namespace.
    fn state_dir(&self) -> PathBuf {
        Path::new("/run/containerd/rt").join(&self.ns)
    }

    fn assert_nothing_left(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.shim_processes().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(
            self.shim_processes(),
            Vec::<i32>::new(),
            "no shim (or zygote) is left running"
        );
        let left: Vec<_> = std::fs::read_dir(self.state_dir())
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "rt state left: {left:?}");
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let state = self.dir.join("state");
        assert!(
            !mounts.contains(state.to_str().unwrap()),
            "a root filesystem is still mounted"
        );
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // Whatever the outcome: the containers (rt deletes each, with its
        // processes and cgroup), the shims (by pid), then containerd, and
        // the namespace's parent cgroup, which rt shares and leaves.
        let ids: Vec<_> = std::fs::read_dir(self.state_dir())
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        for id in ids {
            bounded(
                Command::new(rt_binary())
                    .arg("--root")
                    .arg(self.state_dir())
                    .args(["delete", "--force"])
                    .arg(id),
            );
        }
        for pid in self.shim_processes() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        self.daemon.take();
        unmount_under(&self.dir);
        let _ = std::fs::remove_dir_all(self.state_dir());
        drop(CgroupDir::v2(&self.ns));
    }
}

fn import_busybox(c: &Containerd, dir: &Path) {
    let (oci, _) = busybox_image(dir);
    ok(c.ctr()
        .args(["image", "import", "--base-name", "localhost/busybox"])
        .arg(&oci));
}

#[test]
fn ctr_drives_containerd_shim_rt_v2() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Containerd::start(dir.path());
    import_busybox(&c, dir.path());

    let out = ok(c
        .ctr()
        .args(["run", "--rm"])
        .args(RUNTIME)
        .args([IMAGE, "c1", "echo", "hello"]));
    assert_eq!(out, "hello\n");

    // The exit code of the init comes back through Wait.
    let out = run(c.ctr().args(["run", "--rm"]).args(RUNTIME).args([
        IMAGE,
        "c0",
        "sh",
        "-c",
        "echo to-stderr >&2; exit 7",
    ]));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "to-stderr\n");
    assert_eq!(out.status.code(), Some(7));

    ctr_run_exec_pause_ps(&|| c.ctr(), &RUNTIME, IMAGE, "c2");

    // stdin reaches an exec, and its end (CloseIO) ends the process.
    let mut child = c
        .ctr()
        .args(["task", "exec", "--exec-id", "e2", "c2", "wc", "-c"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"12345").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "5");

    // Metrics from the container's cgroup (cpu.stat is on every v2 cgroup).
    let m = ok(c.ctr().args(["task", "metrics", "c2"]));
    assert!(m.contains("cpu.usage_usec"), "{m}");

    // containerd restarts; the container runs on and is still managed.
    c.stop();
    assert_eq!(c.shims().len(), 1, "the shim outlives containerd");
    c.launch();
    c.wait_status("c2", "RUNNING");
    let out = ok(c
        .ctr()
        .args(["task", "exec", "--exec-id", "e3", "c2", "echo", "after"]));
    assert_eq!(out, "after\n");
    ok(c.ctr().args(["task", "kill", "-s", "KILL", "c2"]));
    c.wait_status("c2", "STOPPED");
    ok(c.ctr().args(["task", "delete", "c2"]));
    ok(c.ctr().args(["container", "rm", "c2"]));
    c.assert_nothing_left();
}

#[test]
fn a_terminal_through_containerd_shim_rt_v2() {
    let dir = tempfile::tempdir().unwrap();
    let c = Containerd::start(dir.path());
    import_busybox(&c, dir.path());
    let ctr = format!("CONTAINERD_ADDRESS={} ctr -n {}", c.sock.display(), c.ns);
    let out = script(&format!(
        "{ctr} run --rm -t {} {IMAGE} t1 sh -c 'tty; exit 5'",
        RUNTIME.join(" ")
    ));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("/dev/pts/0"), "{text}");
    assert_eq!(out.status.code(), Some(5), "{text}");

    ok(c.ctr()
        .args(["run", "-d"])
        .args(RUNTIME)
        .args([IMAGE, "t2", "sleep", "1000"]));
    c.wait_status("t2", "RUNNING");
    let out = script(&format!(
        "{ctr} task exec -t --exec-id x1 t2 sh -c 'tty; exit 4'"
    ));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("/dev/pts/"), "{text}");
    assert_eq!(out.status.code(), Some(4), "{text}");
    // kill --all reaches every process of the container.
    ok(c.ctr().args(["task", "kill", "--all", "-s", "KILL", "t2"]));
    c.wait_status("t2", "STOPPED");
    ok(c.ctr().args(["task", "delete", "t2"]));
    ok(c.ctr().args(["container", "rm", "t2"]));
    c.assert_nothing_left();
}

#[test]
fn a_container_that_cannot_start_says_why_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let c = Containerd::start(dir.path());
    import_busybox(&c, dir.path());
    let out =
        run(c
            .ctr()
            .args(["run", "--rm"])
            .args(RUNTIME)
            .args([IMAGE, "bad1", "/no/such/program"]));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/no/such/program"), "names the program: {err}");
    let _ = run(c.ctr().args(["container", "rm", "bad1"]));
    // A logging URI the shim has no logger for: refused before anything
    // is made.
    let out = run(c
        .ctr()
        .args(["run", "--rm", "--log-uri", "binary:///bin/true"])
        .args(RUNTIME)
        .args([IMAGE, "bad2", "true"]));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("binary:// logging scheme is not supported"),
        "{err}"
    );
    let _ = run(c.ctr().args(["container", "rm", "bad2"]));
    c.assert_nothing_left();
}

#[test]
fn a_killed_shim_is_cleaned_up_through_the_delete_action() {
    let dir = tempfile::tempdir().unwrap();
    let c = Containerd::start(dir.path());
    import_busybox(&c, dir.path());
    ok(c.ctr()
        .args(["run", "-d"])
        .args(RUNTIME)
        .args([IMAGE, "k1", "sleep", "1000"]));
    c.wait_status("k1", "RUNNING");
    let ls = ok(c.ctr().args(["task", "ls"]));
    let init: i32 = ls
        .lines()
        .find(|l| l.starts_with("k1 "))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{ls}"));
    let shims = c.shims();
    assert_eq!(shims.len(), 1);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(shims[0]),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    // containerd sees the shim go and runs `containerd-shim-rt-v2 delete`,
    // which kills the container and removes its state and mount.
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.task_status("k1").is_some() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(c.task_status("k1"), None, "the task is gone");
    // Gone, or dead and waiting for whoever inherited it to reap it. A
    // killed process may still be exiting (state D, tearing down its
    // namespaces on a loaded machine): it gets a few seconds.
    let stat = || std::fs::read_to_string(format!("/proc/{init}/stat")).unwrap_or_default();
    let dead = || {
        let s = stat();
        matches!(s.rsplit_once(") ").map(|(_, r)| &r[..1]), None | Some("Z"))
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while !dead() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(dead(), "the container's init was killed: {}", stat());
    ok(c.ctr().args(["container", "rm", "k1"]));
    c.assert_nothing_left();
}

#[test]
fn a_refusal_reaches_containerd_with_its_grpc_code() {
    let dir = tempfile::tempdir().unwrap();
    let c = Containerd::start(dir.path());
    import_busybox(&c, dir.path());
    ok(c.ctr()
        .args(["run", "-d"])
        .args(RUNTIME)
        .args([IMAGE, "p1", "sleep", "1000"]));
    c.wait_status("p1", "RUNNING");
    ok(c.ctr().args(["task", "pause", "p1"]));
    c.wait_status("p1", "PAUSED");
    // rt refuses an exec in a paused container: a wrong state, which
    // containerd learns as FAILED_PRECONDITION (not UNKNOWN).
    let out = run(c
        .ctr()
        .args(["task", "exec", "--exec-id", "x1", "p1", "true"]));
    // Thawed and killed first, so that a failed check leaves nothing.
    ok(c.ctr().args(["task", "resume", "p1"]));
    ok(c.ctr().args(["task", "kill", "-s", "KILL", "p1"]));
    c.wait_status("p1", "STOPPED");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("paused container"), "says why: {err}");
    assert!(err.contains(": failed precondition"), "the code: {err}");
    assert!(!err.contains(": unknown"), "{err}");
    ok(c.ctr().args(["task", "delete", "p1"]));
    ok(c.ctr().args(["container", "rm", "p1"]));
    c.assert_nothing_left();
}

/// A pod's containers (the annotation containerd's CRI plugin gives them)
/// start in the sandbox's shim, round after round: each later container's
/// `start` hands back the pod shim's address at once. Once a shim was
/// spawned for each and exited, and its `start` process could spin for
/// good, so a `ctr run -d` here would hang (each is bounded at 20 s).
#[test]
fn a_pods_containers_start_in_its_shim_every_time() {
    let dir = tempfile::tempdir().unwrap();
    let c = Containerd::start(dir.path());
    import_busybox(&c, dir.path());
    for round in 0..4 {
        let pod = format!("pod{round}");
        let ids: Vec<String> = (0..4).map(|i| format!("{pod}c{i}")).collect();
        for id in &ids {
            let out = bounded(
                c.ctr()
                    .args(["run", "-d"])
                    .args(RUNTIME)
                    .args([
                        "--annotation",
                        &format!("io.kubernetes.cri.sandbox-id={pod}"),
                    ])
                    .args([IMAGE, id, "sleep", "1000"]),
            )
            .expect("ctr runs");
            assert!(
                out.status.success(),
                "round {round}: ctr run -d {id}: {}{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        for id in &ids {
            c.wait_status(id, "RUNNING");
        }
        assert_eq!(c.shims().len(), 1, "round {round}: one shim for the pod");
        for id in &ids {
            ok(c.ctr().args(["task", "kill", "-s", "KILL", id]));
        }
        for id in &ids {
            c.wait_status(id, "STOPPED");
            ok(c.ctr().args(["task", "delete", id]));
            ok(c.ctr().args(["container", "rm", id]));
        }
    }
    c.assert_nothing_left();
}

/// The init's pid of task `id`, from `ctr task ls`.
fn init_pid(c: &Containerd, id: &str) -> i32 {
    let ls = ok(c.ctr().args(["task", "ls"]));
    ls.lines()
        .find(|l| l.split_whitespace().next() == Some(id))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no pid for {id}: {ls}"))
}

/// A container that joined another's pid namespace (a pod's, with
/// `shareProcessNamespace`): when its main process exits, what it started
/// is killed with it, as containerd's runc shim does with `kill --all`
/// (left running, it would hold the container's output open and hang the
/// pod's stop).
#[test]
fn an_init_sharing_a_pid_namespace_takes_its_children_when_it_exits() {
    let dir = tempfile::tempdir().unwrap();
    let c = Containerd::start(dir.path());
    import_busybox(&c, dir.path());
    ok(c.ctr()
        .args(["run", "-d"])
        .args(RUNTIME)
        .args([IMAGE, "owner", "sleep", "1000"]));
    c.wait_status("owner", "RUNNING");
    let owner = init_pid(&c, "owner");
    ok(c.ctr()
        .args(["run", "-d"])
        .args(RUNTIME)
        .args(["--with-ns", &format!("pid:/proc/{owner}/ns/pid")])
        .args([IMAGE, "joined", "sh", "-c", "sleep 1000 & exec sleep 999"]));
    c.wait_status("joined", "RUNNING");
    let init = init_pid(&c, "joined");
    let mut child = 0;
    assert!(
        wait_until(Duration::from_secs(10), || {
            let ps = ok(c.ctr().args(["task", "ps", "joined"]));
            let pids: Vec<i32> = ps
                .lines()
                .filter_map(|l| l.split_whitespace().next()?.parse().ok())
                .collect();
            child = pids.iter().copied().find(|&p| p != init).unwrap_or(0);
            pids.len() == 2
        }),
        "joined runs its init and a child"
    );

    // The main process exits (killed from outside, not through containerd).
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(init),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    c.wait_status("joined", "STOPPED");
    assert!(
        wait_until(Duration::from_secs(10), || !rt_testkit::alive(child)),
        "the child {child} outlived its container's init"
    );

    ok(c.ctr().args(["task", "kill", "-s", "KILL", "owner"]));
    c.wait_status("owner", "STOPPED");
    for id in ["joined", "owner"] {
        ok(c.ctr().args(["task", "delete", id]));
        ok(c.ctr().args(["container", "rm", id]));
    }
    c.assert_nothing_left();
}
