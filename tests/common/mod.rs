//! Fixtures for the root integration tests: a busybox bundle made from
//! Debian's busybox-static, a runner for the built `rt` with a private
//! state root, and a check that a container left nothing behind.
//!
//! Every test that makes a container holds an [`Rt`]; dropping it
//! force-deletes whatever it created, so a failing assertion does not
//! leave processes, mounts or cgroups on the machine.

#![allow(dead_code)] // each test binary uses its own part of this module

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::{json, Value};

pub use rt_testkit::unique_id;

pub const CGROUP2: &str = "/sys/fs/cgroup/unified";

/// The cgroup rt gives container `id` of the state root `root` when its
/// config names none, relative to the hierarchy (`rt/<hash>/<id>`).
pub fn default_cgroup(root: &Path, id: &str) -> String {
    rt::cgroup::default_path(root, id)
        .trim_start_matches('/')
        .to_string()
}

/// Panics unless the tests run as root: they make namespaces, mounts and
/// cgroups, and a silent skip would pass without testing anything.
pub fn require_root() {
    rt_testkit::require_root("these tests make containers");
    rt_testkit::require_busybox();
}

/// A bundle directory: `rootfs/` with busybox and its applets, and a
/// config.json the test shapes through [`Bundle::edit`].
pub struct Bundle {
    kit: rt_testkit::Bundle,
}

impl Bundle {
    /// A busybox bundle whose config is `rt spec`'s default with no
    /// terminal and `args` as given.
    pub fn busybox(args: &[&str]) -> Bundle {
        require_root();
        let mut kit = rt_testkit::Bundle::new("rt-test-bundle.").expect("bundle");
        let out = Command::new(rt_bin())
            .args(["spec", "-b"])
            .arg(kit.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "rt spec: {}", stderr(&out));
        let text = fs::read_to_string(kit.path().join("config.json")).unwrap();
        kit.config = serde_json::from_str(&text).unwrap();
        kit.config["process"]["terminal"] = json!(false);
        kit.config["process"]["args"] = json!(args);
        let b = Bundle { kit };
        b.save();
        b
    }

    pub fn path(&self) -> &Path {
        self.kit.path()
    }

    pub fn rootfs(&self) -> PathBuf {
        self.kit.rootfs()
    }

    /// Writes the config back to config.json.
    pub fn save(&self) {
        self.kit.save().unwrap();
    }

    /// Edits the config and writes it back.
    pub fn edit(&mut self, f: impl FnOnce(&mut Value)) {
        f(&mut self.kit.config);
        self.save();
    }

    /// Appends a mount to the config.
    pub fn add_mount(&mut self, mount: Value) {
        self.edit(|c| c["mounts"].as_array_mut().unwrap().push(mount));
    }

    /// A new user namespace whose ids 0-65535 are the host's from
    /// `host`, without the sysfs and cgroup mounts such a namespace cannot
    /// make when the network namespace is not its own.
    pub fn add_user_namespace(&mut self, host: u32) {
        self.edit(|c| {
            c["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "user"}));
            let map = json!([{"containerID": 0, "hostID": host, "size": 65536}]);
            c["linux"]["uidMappings"] = map.clone();
            c["linux"]["gidMappings"] = map;
            c["mounts"]
                .as_array_mut()
                .unwrap()
                .retain(|m| m["destination"] != "/sys" && m["destination"] != "/sys/fs/cgroup");
        });
    }
}

/// The built rt; or, for a side-by-side run of a test file against a peer,
/// the runtime named by `RT_TEST_RUNTIME` (`../shared/runc-suite/runc`).
pub fn rt_bin() -> &'static str {
    static BIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        std::env::var("RT_TEST_RUNTIME").unwrap_or_else(|_| env!("CARGO_BIN_EXE_rt").to_string())
    })
}

/// Whether the tests drive rt (not a peer named by `RT_TEST_RUNTIME`):
/// rt's own wording is checked only then.
pub fn is_rt() -> bool {
    std::env::var_os("RT_TEST_RUNTIME").is_none()
}

/// rt hands what `create` makes to `rt-shim`, a binary of the shim crate
/// that `cargo test --workspace` builds next to rt; `cargo test -p rt`
/// alone does not, so build it then.
pub fn ensure_shim() {
    if !is_rt() {
        return;
    }
    let beside_rt = Path::new(rt_bin()).parent().expect("rt's directory");
    if let Err(e) = rt_testkit::ensure_built_in(beside_rt, "rt-shim", "rt-shim") {
        panic!("{e}");
    }
}

/// The built `rt` with a private `--root`, deleting every id it created
/// when dropped.
pub struct Rt {
    kit: rt_testkit::Runtime,
}

impl Default for Rt {
    fn default() -> Self {
        Self::new()
    }
}

impl Rt {
    pub fn new() -> Rt {
        require_root();
        ensure_shim();
        Rt {
            kit: rt_testkit::Runtime::new(rt_bin(), "rt-test-root.").unwrap(),
        }
    }

    pub fn root(&self) -> &Path {
        self.kit.root()
    }

    /// A command for `rt --root <private> ARGS...`; the caller sets stdio.
    pub fn cmd<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Command {
        self.kit.cmd(args)
    }

    /// Runs `rt ARGS...` to completion with stdin closed. Output goes
    /// through files, not pipes: a created container inherits rt's stdout
    /// and stderr and would keep a pipe open long after rt exits.
    pub fn run<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Output {
        self.kit.run(args).expect("spawn rt").into_output()
    }

    /// Runs `rt ARGS...` and panics with its stderr unless it succeeded.
    pub fn ok<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "rt {:?} failed ({}): {}",
            args.iter().map(|a| a.as_ref()).collect::<Vec<_>>(),
            out.status,
            stderr(&out)
        );
        stdout(&out)
    }

    /// Runs `rt ARGS...`, expects it to fail, and returns its stderr.
    pub fn fails<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "rt {:?} should have failed; stdout: {}",
            args.iter().map(|a| a.as_ref()).collect::<Vec<_>>(),
            stdout(&out)
        );
        stderr(&out)
    }

    /// `rt run -d` of `bundle` as `id`; returns the init's pid.
    pub fn detached(&self, bundle: &Bundle, id: &str) -> i64 {
        self.ok(&["run", "-d", "--bundle", bundle.path().to_str().unwrap(), id]);
        self.state(id)["pid"]
            .as_i64()
            .expect("a running container has a pid")
    }

    /// `rt state ID` parsed.
    pub fn state(&self, id: &str) -> Value {
        serde_json::from_str(&self.ok(&["state", id])).expect("state JSON")
    }

    /// Whether `rt state ID` says the container does not exist.
    pub fn state_missing(&self, id: &str) -> bool {
        let out = self.run(&["state", id]);
        !out.status.success() && stderr(&out).contains("does not exist")
    }

    pub fn status(&self, id: &str) -> String {
        self.state(id)["status"].as_str().unwrap().to_string()
    }

    /// Waits until the container reports `want` (init exits are seen a
    /// moment after they happen).
    pub fn wait_status(&self, id: &str, want: &str) {
        if let Err(e) = self.kit.wait_status(id, want, Duration::from_secs(10)) {
            panic!("{id}: {e}");
        }
    }

    /// Records an id created by a command spawned through [`Rt::cmd`].
    pub fn created(&self, id: &str) {
        self.kit.created(id);
    }
}

impl Drop for Rt {
    fn drop(&mut self) {
        for id in self.kit.delete_all() {
            // A test that failed half-way through a create may have left
            // the cgroup behind; remove it (empty cgroups only).
            let cg = Path::new(CGROUP2).join(default_cgroup(self.root(), &id));
            let _ = fs::remove_dir(&cg);
            // and the state root's directory of default cgroups, if empty
            if let Some(parent) = cg.parent() {
                let _ = fs::remove_dir(parent);
            }
        }
    }
}

/// Whether `pid` is a live process (a zombie is not).
pub fn alive(pid: i64) -> bool {
    rt_testkit::alive(pid)
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts that stderr is exactly one line, starts with `rt: ` and
/// contains every one of `needles`.
pub fn assert_one_line_error(err: &str, needles: &[&str]) {
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "want one error line, got: {err:?}");
    assert!(lines[0].starts_with("rt: "), "error line: {err:?}");
    for n in needles {
        assert!(err.contains(n), "error {err:?} should mention {n:?}");
    }
}

/// What a container may leave on the host after it is gone.
pub fn leaks(rt: &Rt, id: &str, bundle: &Bundle) -> Vec<String> {
    let mut found = Vec::new();
    let state_dir = rt.root().join(id);
    if state_dir.exists() {
        found.push(format!("state dir {}", state_dir.display()));
    }
    let rel = default_cgroup(rt.root(), id);
    let cg = Path::new(CGROUP2).join(&rel);
    if cg.exists() {
        found.push(format!("cgroup {}", cg.display()));
    }
    let bundle_path = bundle.path().to_string_lossy().into_owned();
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
    for line in mountinfo.lines() {
        if line.contains(&bundle_path) {
            found.push(format!("mount {line}"));
        }
    }
    // A process still in the container's cgroup (the init is cloned
    // straight into it, so every container process is there).
    let cg_line = format!("0::/{rel}");
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(cgroup) = fs::read_to_string(entry.path().join("cgroup")) else {
            continue;
        };
        if cgroup.lines().any(|l| l == cg_line) {
            let cmdline = fs::read(entry.path().join("cmdline")).unwrap_or_default();
            found.push(format!(
                "process {name} ({})",
                String::from_utf8_lossy(&cmdline).replace('\0', " ")
            ));
        }
    }
    found
}

/// Panics with the list if the container left anything behind.
pub fn assert_no_leaks(rt: &Rt, id: &str, bundle: &Bundle) {
    // The init is reaped asynchronously after a kill; give it a moment.
    let left = rt_testkit::retry(Duration::from_secs(5), || {
        let l = leaks(rt, id, bundle);
        if l.is_empty() {
            Ok(())
        } else {
            Err(l)
        }
    });
    if let Err(l) = left {
        panic!("{id} left behind: {l:#?}");
    }
}

/// Runs a container in the foreground and returns (exit code, stdout,
/// stderr).
pub fn run_in(rt: &Rt, bundle: &Bundle, id: &str) -> (i32, String, String) {
    let out = rt.run(&["run", "--bundle", bundle.path().to_str().unwrap(), id]);
    (out.status.code().unwrap_or(-1), stdout(&out), stderr(&out))
}

/// Runs `sh -c SCRIPT` in a fresh busybox container with the config
/// shaped by `edit`; returns its stdout, panicking unless it exits 0.
pub fn sh(edit: impl FnOnce(&mut Value), script: &str) -> String {
    let rt = Rt::new();
    let mut b = Bundle::busybox(&["sh", "-c", script]);
    b.edit(edit);
    let id = unique_id("sh");
    let (code, out, err) = run_in(&rt, &b, &id);
    assert_eq!(
        code, 0,
        "script {script:?} exited {code}; stderr: {err}; stdout: {out}"
    );
    assert_no_leaks(&rt, &id, &b);
    out
}

/// A new pty whose terminal (the slave) already holds `input`, taken in
/// by the line discipline (a kernel worker does that after the write: a
/// canonical terminal reads as ready once a whole line or a ^D is in).
/// Returns (master, slave); the master must outlive the slave's use.
pub fn terminal_holding(input: &[u8]) -> (std::os::fd::OwnedFd, std::os::fd::OwnedFd) {
    use std::os::fd::AsFd;
    let pty = nix::pty::openpty(None, None).expect("openpty");
    assert_eq!(nix::unistd::write(&pty.master, input), Ok(input.len()));
    let mut fds = [nix::poll::PollFd::new(
        pty.slave.as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    let ready = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(10_000u16)).unwrap();
    assert_eq!(ready, 1, "{input:?} never reached the terminal");
    (pty.master, pty.slave)
}

/// A tmpfs on the host whose mount carries `flags` (set with a bind
/// remount, per mount, as mounts_sshfs.bats sets them), unmounted when
/// dropped.
pub struct FlaggedTmpfs(tempfile::TempDir);

impl FlaggedTmpfs {
    pub fn new(flags: nix::mount::MsFlags) -> FlaggedTmpfs {
        use nix::mount::{mount, MsFlags};
        let dir = tempfile::tempdir().unwrap();
        mount(
            Some("tmpfs"),
            dir.path(),
            Some("tmpfs"),
            MsFlags::empty(),
            None::<&str>,
        )
        .unwrap();
        let t = FlaggedTmpfs(dir);
        mount(
            None::<&str>,
            t.0.path(),
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags,
            None::<&str>,
        )
        .unwrap();
        t
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for FlaggedTmpfs {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(self.0.path(), nix::mount::MntFlags::MNT_DETACH);
    }
}
