//! Fixtures for the root integration tests: a busybox bundle made from
//! Debian's busybox-static, a runner for the built `rt` with a private
//! state root, and a check that a container left nothing behind.
//!
//! Every test that makes a container holds an [`Rt`]; dropping it
//! force-deletes whatever it created, so a failing assertion does not
//! leave processes, mounts or cgroups on the machine.

#![allow(dead_code)] // each test binary uses its own part of this module

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub const BUSYBOX: &str = "/bin/busybox";
pub const CGROUP2: &str = "/sys/fs/cgroup/unified";

/// Panics unless the tests run as root: they make namespaces, mounts and
/// cgroups, and a silent skip would pass without testing anything.
pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "these tests make containers: run them as root (bash scripts/test.sh)"
    );
    assert!(
        Path::new(BUSYBOX).exists(),
        "{BUSYBOX} missing: apt-get install busybox-static"
    );
}

/// An id unique across the test binaries running at once: the default
/// cgroup (`/rt/<id>`) is shared by every state root.
pub fn unique_id(name: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A bundle directory: `rootfs/` with busybox and its applets, and a
/// config.json the test shapes through [`Bundle::config`].
pub struct Bundle {
    dir: tempfile::TempDir,
    pub config: Value,
}

impl Bundle {
    /// A busybox bundle whose config is `rt spec`'s default with no
    /// terminal and `args` as given.
    pub fn busybox(args: &[&str]) -> Bundle {
        require_root();
        let dir = tempfile::Builder::new()
            .prefix("rt-test-bundle.")
            .tempdir()
            .expect("bundle tempdir");
        let rootfs = dir.path().join("rootfs");
        for d in ["bin", "etc", "tmp", "proc", "sys", "dev", "root"] {
            fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        fs::copy(BUSYBOX, rootfs.join("bin/busybox")).unwrap();
        let list = Command::new(BUSYBOX).arg("--list").output().unwrap();
        for applet in String::from_utf8_lossy(&list.stdout).lines() {
            if applet != "busybox" {
                let _ = symlink("busybox", rootfs.join("bin").join(applet));
            }
        }
        fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
        fs::write(rootfs.join("etc/group"), "root:x:0:\n").unwrap();

        let out = Command::new(rt_bin())
            .args(["spec", "-b"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "rt spec: {}", stderr(&out));
        let text = fs::read_to_string(dir.path().join("config.json")).unwrap();
        let mut config: Value = serde_json::from_str(&text).unwrap();
        config["process"]["terminal"] = json!(false);
        config["process"]["args"] = json!(args);
        let b = Bundle { dir, config };
        b.save();
        b
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    /// Writes `config` back to config.json.
    pub fn save(&self) {
        fs::write(
            self.path().join("config.json"),
            serde_json::to_vec_pretty(&self.config).unwrap(),
        )
        .unwrap();
    }

    /// Edits the config and writes it back.
    pub fn edit(&mut self, f: impl FnOnce(&mut Value)) {
        f(&mut self.config);
        self.save();
    }

    /// Appends a mount to the config.
    pub fn add_mount(&mut self, mount: Value) {
        self.edit(|c| c["mounts"].as_array_mut().unwrap().push(mount));
    }
}

pub fn rt_bin() -> &'static str {
    env!("CARGO_BIN_EXE_rt")
}

/// rt hands what `create` makes to `rt-shim`, a binary of the shim crate
/// that `cargo test --workspace` builds next to rt; `cargo test -p rt`
/// alone does not, so build it then.
pub fn ensure_shim() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let rt = Path::new(rt_bin());
        if rt.with_file_name("rt-shim").exists() {
            return;
        }
        let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        c.args(["build", "-q", "-p", "rt-shim", "--bin", "rt-shim"])
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        if rt.parent().and_then(|d| d.file_name()) == Some("release".as_ref()) {
            c.arg("--release");
        }
        assert!(
            c.status().expect("run cargo").success(),
            "building rt-shim failed"
        );
    });
}

/// The built `rt` with a private `--root`, deleting every id it created
/// when dropped.
pub struct Rt {
    root: tempfile::TempDir,
    ids: std::sync::Mutex<Vec<String>>,
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
            root: tempfile::Builder::new()
                .prefix("rt-test-root.")
                .tempdir()
                .unwrap(),
            ids: Default::default(),
        }
    }

    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// A command for `rt --root <private> ARGS...`; the caller sets stdio.
    pub fn cmd<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Command {
        let mut c = Command::new(rt_bin());
        c.arg("--root").arg(self.root.path()).args(args);
        c
    }

    /// Runs `rt ARGS...` to completion with stdin closed. Output goes
    /// through files, not pipes: a created container inherits rt's stdout
    /// and stderr and would keep a pipe open long after rt exits.
    pub fn run<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Output {
        self.track(args);
        let mut out = tempfile::tempfile().unwrap();
        let mut err = tempfile::tempfile().unwrap();
        let status = self
            .cmd(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(err.try_clone().unwrap())
            .status()
            .expect("spawn rt");
        Output {
            status,
            stdout: read_all(&mut out),
            stderr: read_all(&mut err),
        }
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
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            // A container being made by another command may not exist yet.
            let out = self.run(&["state", id]);
            let s = match serde_json::from_slice::<Value>(&out.stdout) {
                Ok(v) => v["status"].as_str().unwrap_or_default().to_string(),
                Err(_) => format!("absent ({})", stderr(&out).trim()),
            };
            if s == want {
                return;
            }
            assert!(Instant::now() < deadline, "{id}: status {s}, wanted {want}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Remembers ids that a command may create, for cleanup.
    fn track<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) {
        let args: Vec<String> = args
            .iter()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .collect();
        let cmd = args.iter().find(|a| !a.starts_with('-'));
        if matches!(cmd.map(String::as_str), Some("create" | "run")) {
            if let Some(id) = args.last() {
                self.ids.lock().unwrap().push(id.clone());
            }
        }
    }

    /// Records an id created by a command spawned through [`Rt::cmd`].
    pub fn created(&self, id: &str) {
        self.ids.lock().unwrap().push(id.to_string());
    }
}

impl Drop for Rt {
    fn drop(&mut self) {
        for id in self.ids.lock().unwrap().iter() {
            let _ = self
                .cmd(&["delete", "--force", id])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            // A test that failed half-way through a create may have left
            // the cgroup behind; remove it (empty cgroups only).
            let _ = fs::remove_dir(Path::new(CGROUP2).join("rt").join(id));
        }
    }
}

/// Whether `pid` is a live process (a zombie waiting for its reaper is
/// dead: it runs nothing and holds nothing but its pid).
pub fn alive(pid: i64) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat.rsplit_once(") ").map(|(_, rest)| rest.chars().next());
            !matches!(state, Some(Some('Z' | 'X')) | None)
        }
        Err(_) => false,
    }
}

fn read_all(f: &mut fs::File) -> Vec<u8> {
    use std::io::{Read, Seek};
    let mut v = Vec::new();
    f.seek(std::io::SeekFrom::Start(0)).unwrap();
    f.read_to_end(&mut v).unwrap();
    v
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
    let cg = Path::new(CGROUP2).join("rt").join(id);
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
    let cg_line = format!("0::/rt/{id}");
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
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let l = leaks(rt, id, bundle);
        if l.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "{id} left behind: {l:#?}");
        std::thread::sleep(Duration::from_millis(20));
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
