//! Helpers for driving rt through real managers: the built rt binary, a
//! busybox OCI image made offline, and daemons that are stopped (by pid)
//! and unmounted when a test ends, even when it fails.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub mod cri;

/// A busybox container's command (`sh -c SERVE_PAGE NAME`): a web server
/// on port 80 whose page is "hello from NAME".
pub const SERVE_PAGE: &str =
    "mkdir -p /www && echo \"hello from $0\" >/www/index.html && exec httpd -f -p 80 -h /www";

/// A busybox container's command (`sh -c NC_GET ADDRESS`): the last line
/// of the page at ADDRESS:80 (busybox-static's wget crashes resolving
/// without the host's NSS modules, nc does not resolve).
pub const NC_GET: &str = "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 10 \"$0\" 80 | tail -1";

pub use rt_testkit::{
    built_binary, free_port, http_get, mount_points_under as mounts_under, wait_until,
};

/// The rt binary this workspace built (`cargo test --workspace` builds it
/// before running any test; `make integration` builds it first).
pub fn rt_binary() -> PathBuf {
    built_binary("rt")
}

/// Panics with a clear message unless every program is on PATH.
pub fn require(programs: &[&str]) {
    rt_testkit::require_root("integration tests make containers through real managers");
    for p in programs {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {p}")])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        assert!(
            found,
            "{p} is missing: bash scripts/deps.sh --test installs it"
        );
    }
}

/// Runs a command and returns its output, panicking if it cannot start.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

/// Runs a command and panics with its output unless it succeeds.
pub fn ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A busybox image as an OCI archive and a docker-archive, built offline
/// with umoci and skopeo.
pub fn busybox_image(dir: &Path) -> (PathBuf, PathBuf) {
    let img = dir.join("img");
    let work = dir.join("work");
    ok(Command::new("umoci").args(["init", "--layout"]).arg(&img));
    ok(Command::new("umoci")
        .args(["new", "--image"])
        .arg(format!("{}:latest", img.display())));
    ok(Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:latest", img.display()))
        .arg(&work));
    rt_testkit::busybox_rootfs(&work.join("rootfs")).unwrap();
    let image = format!("{}:latest", img.display());
    ok(Command::new("umoci")
        .args(["repack", "--image", &image])
        .arg(&work));
    ok(Command::new("umoci").args([
        "config",
        "--image",
        &image,
        "--config.cmd",
        "/bin/sh",
        "--config.env",
        "PATH=/bin",
    ]));
    let oci = dir.join("busybox-oci.tar");
    ok(Command::new("tar")
        .arg("-C")
        .arg(&img)
        .arg("-cf")
        .arg(&oci)
        .arg("."));
    let docker = dir.join("busybox-docker.tar");
    ok(Command::new("skopeo")
        .args(["copy", "-q"])
        .arg(format!("oci:{image}"))
        .arg(format!(
            "docker-archive:{}:localhost/busybox:latest",
            docker.display()
        )));
    (oci, docker)
}

/// A daemon started by a test: stopped by pid (TERM, then KILL after a
/// bounded wait) when dropped. What it leaves mounted is for [`Scratch`]
/// to see and undo.
pub struct Daemon {
    pub child: Child,
}

impl Daemon {
    /// Starts `cmd` with its output in `log`, then waits up to `timeout`
    /// for `ready`; panics with the log's tail if the daemon exits or is
    /// not ready in time.
    pub fn start(
        cmd: &mut Command,
        log: &Path,
        timeout: Duration,
        ready: impl Fn() -> bool,
    ) -> Daemon {
        let out = std::fs::File::create(log).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("{cmd:?} cannot start: {e}"));
        let mut d = Daemon { child };
        let deadline = Instant::now() + timeout;
        while !ready() {
            if let Ok(Some(status)) = d.child.try_wait() {
                panic!("{cmd:?} exited ({status}):\n{}", tail(log));
            }
            assert!(
                Instant::now() < deadline,
                "{cmd:?} not ready after {timeout:?}:\n{}",
                tail(log)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        d
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        #[allow(clippy::cast_possible_wrap)] // pid_max is at most 2^22: a pid fits an int
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(15);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The last lines of a log file, for failure messages.
pub fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// A test's scratch directory. Everything a test's daemons make lives
/// under it. Dropping it (after the daemons) deletes with `rt delete
/// --force` every container left in the rt roots the test named, kills
/// (by pid) whatever still runs from the directory, unmounts what is
/// mounted under it, then removes it.
pub struct Scratch {
    dir: tempfile::TempDir,
    rt_roots: std::sync::Mutex<Vec<PathBuf>>,
}

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        Scratch {
            dir: tempfile::Builder::new()
                .prefix(&format!("rt-it-{name}."))
                .tempdir()
                .unwrap(),
            rt_roots: Default::default(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Names `root` (under the scratch dir) as an rt `--root` a manager
    /// will use; returns it.
    pub fn rt_root(&self, root: PathBuf) -> PathBuf {
        self.rt_roots.lock().unwrap().push(root.clone());
        root
    }

    /// The ids of the containers rt knows in the named roots.
    pub fn rt_containers(&self) -> Vec<(PathBuf, String)> {
        let mut found = Vec::new();
        for root in self.rt_roots.lock().unwrap().iter().filter(|r| r.exists()) {
            let Some(out) = bounded(
                Command::new(rt_binary())
                    .arg("--root")
                    .arg(root)
                    .args(["list", "-q"]),
            ) else {
                continue;
            };
            for id in String::from_utf8_lossy(&out.stdout).lines() {
                found.push((root.clone(), id.to_string()));
            }
        }
        found
    }

    /// Panics unless no container is left in the named rt roots, nothing
    /// runs from the scratch directory and nothing is mounted under it:
    /// call after the daemons are dropped.
    pub fn assert_clean(&self) {
        let left = self.rt_containers();
        assert!(left.is_empty(), "containers left in rt: {left:?}");
        let procs = processes_under(self.path());
        assert!(procs.is_empty(), "still running: {procs:?}");
        let mounts = mounts_under(self.path());
        assert!(mounts.is_empty(), "still mounted: {mounts:?}");
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // rt removes what it made for each (processes, cgroup, state).
        for (root, id) in self.rt_containers() {
            bounded(
                Command::new(rt_binary())
                    .arg("--root")
                    .arg(root)
                    .args(["delete", "--force", &id]),
            );
        }
        for (pid, _) in processes_under(self.path()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        // Killed processes release their mounts' busy references.
        std::thread::sleep(Duration::from_millis(100));
        unmount_under(self.path());
    }
}

/// Runs `cmd` for at most 20 s (then kills it), stdin closed; None if it
/// cannot start. Never panics: guards call it while a test unwinds.
pub fn bounded(cmd: &mut Command) -> Option<Output> {
    let ran = rt_testkit::run_captured(cmd, Some(Duration::from_secs(20))).ok()?;
    Some(ran.into_output())
}

/// Processes a test started under `dir`: those whose command line names
/// it (daemons, shims), and those in another mount namespace whose root
/// is a mount made from it (containers: an overlay of its layers).
pub fn processes_under(dir: &Path) -> Vec<(i32, String)> {
    #[allow(clippy::cast_possible_wrap)] // pid_max is at most 2^22: a pid fits an int
    let me = std::process::id() as i32;
    let needle = dir.to_string_lossy().into_owned();
    let my_mnt = std::fs::read_link("/proc/self/ns/mnt").ok();
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let cmdline = std::fs::read(e.path().join("cmdline"))
            .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
            .unwrap_or_default();
        // Every mount in this namespace shows up in its mountinfo: only
        // a process in a namespace of its own has its root checked.
        let container_root = std::fs::read_link(e.path().join("ns/mnt")).ok() != my_mnt
            && std::fs::read_to_string(e.path().join("mountinfo")).is_ok_and(|m| {
                m.lines()
                    .any(|l| l.split(' ').nth(4) == Some("/") && l.contains(&needle))
            });
        if cmdline.contains(&needle) || container_root {
            found.push((pid, cmdline.trim_end().to_string()));
        }
    }
    found
}

/// containerd on `scratch` paths (root, state, socket), with `extra`
/// appended to its config (the CRI plugin is disabled unless `cri`).
/// Returns the daemon and its socket.
pub fn containerd(scratch: &Path, cri: bool, extra: &str) -> (Daemon, PathBuf) {
    containerd_in(scratch, cri, extra, rt_binary().parent().unwrap())
}

/// [`containerd`] finding containerd-shim-rt-v2 in `bins`.
pub fn containerd_in(scratch: &Path, cri: bool, extra: &str, bins: &Path) -> (Daemon, PathBuf) {
    let sock = scratch.join("containerd.sock");
    let disabled = if cri {
        ""
    } else {
        "disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n"
    };
    let config = scratch.join("containerd.toml");
    std::fs::write(
        &config,
        format!(
            "version = 2\nroot = \"{0}/root\"\nstate = \"{0}/state\"\n{disabled}\
             [grpc]\n  address = \"{1}\"\n\
             [plugins.\"io.containerd.monitor.v1.cgroups\"]\n  no_prometheus = true\n{extra}",
            scratch.display(),
            sock.display()
        ),
    )
    .unwrap();
    // containerd finds containerd-shim-rt-v2 (io.containerd.rt.v2) on PATH.
    let path = format!(
        "{}:{}",
        bins.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let d = Daemon::start(
        Command::new("containerd")
            .arg("--config")
            .arg(&config)
            .env("PATH", path),
        &scratch.join("containerd.log"),
        Duration::from_secs(30),
        || {
            sock.exists()
                && Command::new("ctr")
                    .env("CONTAINERD_ADDRESS", &sock)
                    .arg("version")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
        },
    );
    (d, sock)
}

/// Lazily unmounts every mount point under `dir`, deepest first.
pub fn unmount_under(dir: &Path) {
    let mut points = mounts_under(dir);
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let _ = nix::mount::umount2(p.as_str(), nix::mount::MntFlags::MNT_DETACH);
    }
}

/// A cgroup directory a test names for its containers (a Docker
/// `--cgroup-parent`, a CRI `cgroup_parent`): removed with whatever is
/// left below it, deepest first, when dropped.
pub struct CgroupDir(pub PathBuf);

impl CgroupDir {
    /// `name` under the cgroup v2 mount.
    pub fn v2(name: &str) -> CgroupDir {
        CgroupDir(cgroup2_root().join(name))
    }
}

/// Where cgroup v2 is mounted: `/sys/fs/cgroup/unified` on a hybrid host
/// (the development machines), `/sys/fs/cgroup` on a pure v2 one.
pub fn cgroup2_root() -> PathBuf {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    info.lines()
        .find_map(|l| {
            let (mount, fs) = l.split_once(" - ")?;
            fs.starts_with("cgroup2 ")
                .then(|| PathBuf::from(mount.split(' ').nth(4).unwrap()))
        })
        .expect("cgroup2 is not mounted")
}

/// The controllers cgroup v2 offers here (only hugetlb on a hybrid host).
pub fn cgroup2_controllers() -> Vec<String> {
    std::fs::read_to_string(cgroup2_root().join("cgroup.controllers"))
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

impl Drop for CgroupDir {
    fn drop(&mut self) {
        fn remove(dir: &Path) {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    remove(&e.path());
                }
            }
            let _ = std::fs::remove_dir(dir);
        }
        remove(&self.0);
    }
}

/// Debian's `docker-registry` on a free port of 127.0.0.1, storing under
/// `scratch/registry`; returns the daemon and its `host:port`.
pub fn registry(scratch: &Path) -> (Daemon, String) {
    // A free port: bind :0, read it, release it for the registry.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    // Debian's default config asks for htpasswd auth: write our own.
    let config = scratch.join("registry.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog: {{level: error}}\nstorage:\n  filesystem: {{rootdirectory: {}}}\n\
             http:\n  addr: {addr}\n",
            scratch.join("registry").display()
        ),
    )
    .unwrap();
    let d = Daemon::start(
        Command::new("docker-registry").arg("serve").arg(&config),
        &scratch.join("registry.log"),
        Duration::from_secs(20),
        || std::net::TcpStream::connect(&addr).is_ok(),
    );
    (d, addr)
}

/// Runs `cmd` under `script`, which gives the manager a terminal as a
/// user's shell would. Its stdin stays open until the command ends (an
/// early EOF would end an interactive session before its output).
pub fn script(cmd: &str) -> Output {
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
    Output {
        status,
        stdout,
        stderr: Vec::new(),
    }
}

/// The STATUS column of `ctr task ls` for `id`.
pub fn ctr_task_status(ctr: &dyn Fn() -> Command, id: &str) -> Option<String> {
    let ls = ok(ctr().args(["task", "ls"]));
    ls.lines()
        .find(|l| l.split_whitespace().next() == Some(id))
        .and_then(|l| l.split_whitespace().nth(2).map(str::to_string))
}

/// Waits (up to 10 s) until `ctr task ls` shows `id` as `want`.
pub fn ctr_wait_status(ctr: &dyn Fn() -> Command, id: &str, want: &str) {
    let seen = rt_testkit::retry(Duration::from_secs(10), || {
        let st = ctr_task_status(ctr, id);
        if st.as_deref() == Some(want) {
            Ok(())
        } else {
            Err(st)
        }
    });
    if let Err(st) = seen {
        panic!("{id}: {st:?}, not {want}");
    }
}

/// What every containerd runtime must do, through ctr: `run -d`, `task
/// exec` with its output and exit code, pause and resume, `task ps`.
/// Leaves `id` running.
pub fn ctr_run_exec_pause_ps(ctr: &dyn Fn() -> Command, runtime: &[&str], image: &str, id: &str) {
    ok(ctr()
        .args(["run", "-d"])
        .args(runtime)
        .args([image, id, "sleep", "1000"]));
    ctr_wait_status(ctr, id, "RUNNING");
    let out = run(ctr().args([
        "task",
        "exec",
        "--exec-id",
        "e1",
        id,
        "sh",
        "-c",
        "echo in-container; exit 3",
    ]));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "in-container\n");
    assert_eq!(out.status.code(), Some(3), "exec's exit code comes back");
    ok(ctr().args(["task", "pause", id]));
    assert_eq!(ctr_task_status(ctr, id).as_deref(), Some("PAUSED"));
    ok(ctr().args(["task", "resume", id]));
    assert_eq!(ctr_task_status(ctr, id).as_deref(), Some("RUNNING"));
    let procs = ok(ctr().args(["task", "ps", id]));
    assert_eq!(procs.lines().count(), 2, "a header and the init: {procs}");
}
