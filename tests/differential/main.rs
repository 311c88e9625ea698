//! The differential harness: one scenario on rt and on runc (Debian's
//! 1.1.5, /usr/sbin/runc), compared as a caller sees it: exit codes,
//! stdout bytes, the error's words, the state JSON's fields, what is left
//! behind. Every difference is fixed, or listed in [`KNOWN`] with the
//! reason rt differs.
//!
//! Errors: runc writes logrus lines (`time="..." level=error msg="X"`),
//! rt one `rt: X...` line; the harness checks that rt's line carries
//! runc's message (rt often adds what it is about, like the id).

mod accepted;
mod cli;
#[path = "../common/mod.rs"]
mod common;
mod configs;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;
use serde_json::{json, Value};

const RUNC: &str = "/usr/sbin/runc";

/// Differences rt keeps on purpose: (scenario, what differs, why).
const KNOWN: &[(&str, &str, &str)] = &[
    (
        "errors",
        "stderr format",
        "rt writes one `rt: message` line (with the id or path it is about); runc writes logrus lines",
    ),
    (
        "state of a stopped container",
        "exitStatus, exitSignal, exitedAt",
        "rt's shim records how the init ended; runc's parsers ignore unknown fields",
    ),
    (
        "list table",
        "a stopped container's STATUS",
        "rt adds the exit code, `stopped (3)`, when its shim recorded it",
    ),
    (
        "configs from other tools",
        "the mounts under /sys/fs/cgroup",
        "a `cgroup` mount is cgroup2 under rt (cgroup v2 only); runc 1.1.5 on this hybrid host mounts v1's hierarchies on a tmpfs",
    ),
    (
        "configs from other tools",
        "limits for a controller this hybrid host has on cgroup v1 only",
        "rt manages cgroup v2 only and refuses the limit with one line naming it; runc 1.1.5 writes v1's files (on a v2 host both apply it)",
    ),
    (
        "every subcommand in the wrong state",
        "pause of a created container",
        "runc freezes it (its start then fails until resumed); rt refuses with runc's `container not running`, since a created init waits on the exec fifo and has nothing to freeze",
    ),
    (
        "exec with a bad --pid-file",
        "the error's words",
        "rt names the pid file it could not write with the OS's words; runc names its temporary `.pid` beside it in Go's; the exit code (255) is the same",
    ),
    (
        "a tmpfs with mode=",
        "the tmpfs root's mode",
        "rt keeps an explicit mode= (runc 1.2 and later do too); runc 1.1.5 chmods every tmpfs to the covered directory's mode",
    ),
    (
        "a container in the host's mount namespace",
        "not run under runc here (tests/compat.rs runs it on rt)",
        "runc 1.1.5 binds the root onto itself in the host's mount namespace (over `/` for root `/`), after which the host can make no user namespace, and leaves every mount there; rt leaves the host's propagation alone, mounts under a root that is not the host's `/` only (refusing mounts for root `/`), and delete unmounts exactly the mounts it recorded",
    ),
    (
        "an idmapped bind inside a user namespace",
        "not compared (tests/compat.rs runs it on rt)",
        "runc 1.1.5 has no idmapped mounts and binds without the map",
    ),
];

/// One runtime under test: its binary and a private state root.
struct Runtime {
    bin: PathBuf,
    root: tempfile::TempDir,
}

/// What one command gave.
#[derive(Debug)]
pub(crate) struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Outcome {
    /// The error message: runc's `msg="..."` of its last error line, or
    /// rt's line without the `rt: ` prefix.
    fn message(&self) -> String {
        let last = self.stderr.lines().last().unwrap_or("");
        if last.starts_with('{') {
            let v: Value = serde_json::from_str(last).unwrap();
            return v["msg"].as_str().unwrap_or("").to_string();
        }
        if let Some(l) = self
            .stderr
            .lines()
            .rev()
            .find(|l| l.contains("level=error"))
        {
            let m = l.split_once("msg=").map_or(l, |(_, m)| m);
            let m = unquote(m);
            // runc names itself first on create and run: the runtime's
            // name, masked.
            return ["runc create failed: ", "runc run failed: "]
                .iter()
                .fold(m, |m, p| {
                    m.strip_prefix(p).map_or(m.clone(), str::to_string)
                });
        }
        self.stderr.trim().trim_start_matches("rt: ").to_string()
    }
}

/// A logrus value: a Go-quoted string up to its closing quote, or a bare
/// word.
fn unquote(v: &str) -> String {
    let Some(q) = v.strip_prefix('"') else {
        return v.split(' ').next().unwrap_or("").to_string();
    };
    let mut out = String::new();
    let mut chars = q.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => break,
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(c) => out.push(c),
                None => break,
            },
            c => out.push(c),
        }
    }
    out
}

impl Runtime {
    fn rt() -> Runtime {
        require_root();
        ensure_shim();
        Runtime {
            bin: PathBuf::from(rt_bin()),
            root: tempfile::tempdir().unwrap(),
        }
    }

    fn runc() -> Runtime {
        assert!(
            Path::new(RUNC).exists(),
            "{RUNC} missing: apt-get install runc (Debian's 1.1.5 is the reference)"
        );
        Runtime {
            bin: PathBuf::from(RUNC),
            root: tempfile::tempdir().unwrap(),
        }
    }

    fn run(&self, bundle: &Bundle, args: &[&str]) -> Outcome {
        let dir = tempfile::tempdir().unwrap();
        let (o, e) = (dir.path().join("out"), dir.path().join("err"));
        let status = Command::new(&self.bin)
            .arg("--root")
            .arg(self.root.path())
            .args(args)
            .current_dir(bundle.path())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&o).unwrap())
            .stderr(std::fs::File::create(&e).unwrap())
            .status()
            .unwrap();
        Outcome {
            code: status.code().unwrap_or(-1),
            stdout: std::fs::read_to_string(&o).unwrap(),
            stderr: std::fs::read_to_string(&e).unwrap(),
        }
    }

    /// Leaves nothing: every container of its root force-deleted.
    fn clean(&self, bundle: &Bundle, ids: &[&str]) {
        for id in ids {
            let _ = self.run(bundle, &["delete", "-f", id]);
        }
    }
}

/// Both runtimes, the same bundle, one step at a time.
struct Pair {
    rt: Runtime,
    runc: Runtime,
}

impl Pair {
    fn new() -> Pair {
        Pair {
            rt: Runtime::rt(),
            runc: Runtime::runc(),
        }
    }

    /// Runs `args` on both; the exit codes must be equal, and so must
    /// stdout unless `stdout` is false. On failure, rt's error carries
    /// runc's message. Returns (rt, runc).
    fn step(&self, what: &str, b: &Bundle, args: &[&str], stdout: bool) -> (Outcome, Outcome) {
        let rt = self.rt.run(b, args);
        let runc = self.runc.run(b, args);
        assert_eq!(
            rt.code, runc.code,
            "{what}: exit codes\nrt: {rt:?}\nrunc: {runc:?}"
        );
        if stdout {
            assert_eq!(rt.stdout, runc.stdout, "{what}: stdout");
        }
        let words_differ = KNOWN
            .iter()
            .any(|(s, w, _)| *s == what && *w == "the error's words");
        if runc.code != 0 && !words_differ {
            let (mine, theirs) = (rt.message(), runc.message());
            assert!(
                mine.contains(&theirs),
                "{what}: rt's error {mine:?} should say runc's {theirs:?}"
            );
        }
        (rt, runc)
    }

    fn state(&self, b: &Bundle, id: &str) -> (Value, Value) {
        let (rt, runc) = self.step(&format!("state {id}"), b, &["state", id], false);
        (
            serde_json::from_str(&rt.stdout).unwrap(),
            serde_json::from_str(&runc.stdout).unwrap(),
        )
    }

    /// Deletes what the scenario made, and checks that neither runtime
    /// left a state directory or a mount of the bundle behind.
    fn clean(&self, b: &Bundle, ids: &[&str]) {
        self.rt.clean(b, ids);
        self.runc.clean(b, ids);
        for r in [&self.rt, &self.runc] {
            let left: Vec<_> = std::fs::read_dir(r.root.path())
                .unwrap()
                .flatten()
                .collect();
            assert!(left.is_empty(), "{}: left {left:?}", r.bin.display());
        }
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let bundle = b.path().to_string_lossy().into_owned();
        assert!(!mounts.contains(&bundle), "a mount of the bundle is left");
    }
}

/// A failed scenario leaves nothing either: whatever is in either root
/// is force-deleted, and rt's default cgroups of those ids removed.
impl Drop for Pair {
    fn drop(&mut self) {
        let scratch = Bundle::busybox(&["true"]);
        for r in [&self.rt, &self.runc] {
            let ids: Vec<String> = std::fs::read_dir(r.root.path())
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            for id in &ids {
                let _ = r.run(&scratch, &["delete", "-f", id]);
                let cg = Path::new(CGROUP2).join(default_cgroup(r.root.path(), id));
                let _ = std::fs::remove_dir(cg);
            }
        }
    }
}

/// Field names, and the fields a caller compares by value (the rest
/// carry pids, times and versions).
fn same_state(what: &str, rt: &Value, runc: &Value) {
    let keys = |v: &Value| {
        let mut k: Vec<String> = v
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| !["exitStatus", "exitSignal", "exitedAt"].contains(&k.as_str()))
            .cloned()
            .collect();
        k.sort();
        k
    };
    assert_eq!(keys(rt), keys(runc), "{what}: state fields");
    for f in ["id", "status", "bundle", "rootfs", "owner"] {
        assert_eq!(rt[f], runc[f], "{what}: state {f}");
    }
}

/// A busybox bundle both runtimes read (no terminal: runc wants a tty
/// for one in the foreground).
fn bundle(args: &[&str]) -> Bundle {
    let mut b = Bundle::busybox(args);
    b.edit(|c| c["process"]["terminal"] = json!(false));
    b
}

#[test]
fn run_in_the_foreground() {
    let p = Pair::new();
    let b = bundle(&["sh", "-c", "echo out; echo err >&2; exit 3"]);
    let id = unique_id("diffrun");
    let (rt, runc) = p.step("run", &b, &["run", &id], true);
    assert_eq!(rt.code, 3);
    assert_eq!(rt.stderr, runc.stderr, "the container's own stderr");
    p.clean(&b, &[&id]);
}

#[test]
fn the_lifecycle_and_its_errors() {
    let p = Pair::new();
    let b = bundle(&["sleep", "1000"]);
    let id = unique_id("difflife");
    let id = id.as_str();
    p.step("create", &b, &["create", id], true);
    let (rt, runc) = p.state(&b, id);
    same_state("created", &rt, &runc);
    assert_eq!(rt["status"], "created");
    p.step("start", &b, &["start", id], true);
    let (rt, runc) = p.state(&b, id);
    same_state("running", &rt, &runc);
    p.step("kill", &b, &["kill", id, "KILL"], true);
    for _ in 0..100 {
        let (rt, runc) = p.state(&b, id);
        if rt["status"] == "stopped" && runc["status"] == "stopped" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let (rt, runc) = p.state(&b, id);
    same_state("stopped", &rt, &runc);
    p.step("kill a stopped container", &b, &["kill", id, "KILL"], true);
    p.step("start a stopped container", &b, &["start", id], true);
    p.step(
        "exec in a stopped container",
        &b,
        &["exec", id, "true"],
        true,
    );
    p.step("delete", &b, &["delete", id], true);
    p.step("delete again", &b, &["delete", id], true);
    p.clean(&b, &[id]);
}

#[test]
fn commands_on_a_container_that_does_not_exist() {
    let p = Pair::new();
    let b = bundle(&["true"]);
    for args in [
        vec!["state", "nosuch"],
        vec!["kill", "nosuch"],
        vec!["delete", "nosuch"],
        vec!["start", "nosuch"],
        vec!["pause", "nosuch"],
        vec!["exec", "nosuch", "true"],
    ] {
        let (rt, _) = p.step(&args.join(" "), &b, &args, true);
        assert_ne!(rt.code, 0, "{args:?}");
    }
    p.step("delete -f", &b, &["delete", "-f", "nosuch"], true);
}

#[test]
fn list_in_every_format() {
    let p = Pair::new();
    let b = bundle(&["sleep", "1000"]);
    p.step("list -f json, none", &b, &["list", "-f", "json"], true);
    p.step("list -q, none", &b, &["list", "-q"], true);
    let id = unique_id("difflist");
    p.step("create", &b, &["create", &id], true);
    p.step("list -q", &b, &["list", "-q"], true);
    let (rt, runc) = p.step("list -f json", &b, &["list", "-f", "json"], false);
    // The same fields in the same order; pids and times differ.
    let order = |s: &str| -> Vec<String> {
        let v: Value = serde_json::from_str(s).unwrap();
        let first = &v.as_array().unwrap()[0];
        let mut keys: Vec<(usize, String)> = first
            .as_object()
            .unwrap()
            .keys()
            .map(|k| (s.find(&format!("\"{k}\"")).unwrap(), k.clone()))
            .collect();
        keys.sort();
        keys.into_iter().map(|(_, k)| k).collect()
    };
    assert_eq!(
        order(&rt.stdout),
        order(&runc.stdout),
        "list -f json field order"
    );
    // The table: same header and columns once pids and times are masked.
    let (rt, runc) = p.step("list", &b, &["list"], false);
    let mask = |s: &str| -> Vec<Vec<String>> {
        s.lines()
            .map(|l| l.split_whitespace().map(str::to_string).collect())
            .map(|mut f: Vec<String>| {
                if f.len() == 6 && f[0] != "ID" {
                    f[1] = "PID".into();
                    f[4] = "CREATED".into();
                }
                f
            })
            .collect()
    };
    assert_eq!(mask(&rt.stdout), mask(&runc.stdout), "list table");
    p.clean(&b, &[&id]);
}

/// The old allow-list profile without noNewPrivileges (tests/seccomp.rs):
/// the same output from both.
#[test]
fn an_old_docker_style_seccomp_profile() {
    let p = Pair::new();
    let mut b = bundle(&["sh", "-c", "grep ^Seccomp: /proc/self/status; echo ran"]);
    let profile: Value =
        serde_json::from_str(include_str!("../data/seccomp-classic-2017.json")).unwrap();
    b.edit(|c| {
        c["linux"]["seccomp"] = profile;
        c["process"]["noNewPrivileges"] = json!(false);
    });
    let id = unique_id("diffsec");
    let (rt, _) = p.step("run", &b, &["run", &id], true);
    assert_eq!(rt.stdout, "Seccomp:\t2\nran\n");
    p.clean(&b, &[&id]);
}

#[test]
fn known_differences_say_why() {
    for (scenario, what, why) in KNOWN {
        assert!(!scenario.is_empty() && !what.is_empty() && why.len() > 20);
    }
}
