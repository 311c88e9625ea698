//! OCI hooks: every kind, in order, with the state on stdin, and their
//! failure and timeout semantics.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::*;
use serde_json::{json, Value};

/// A hook script that appends "<name> <state JSON>" to $LOG, prints a
/// line, and exits with $CODE (0 by default).
const HOOK: &str = "#!/bin/sh\nstate=$(cat)\necho \"$1 $state\" >> \"$LOG\"\necho \"hook $1 ran\"\n[ -n \"$CODE\" ] && { echo \"hook $1 failing\" >&2; exit \"$CODE\"; }\nexit 0\n";

struct Hooked {
    bundle: Bundle,
    /// Host directory the hooks log to; it is /hooklog in the container.
    logdir: tempfile::TempDir,
}

impl Hooked {
    fn new(args: &[&str]) -> Hooked {
        let mut bundle = Bundle::busybox(args);
        let logdir = tempfile::tempdir().unwrap();
        for p in [
            logdir.path().join("hook.sh"),
            bundle.rootfs().join("hook.sh"),
        ] {
            fs::write(&p, HOOK).unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        }
        bundle.add_mount(json!({
            "destination": "/hooklog", "type": "bind",
            "source": logdir.path(), "options": ["rbind", "rw"]
        }));
        Hooked { bundle, logdir }
    }

    fn host_hook(&self, name: &str, extra_env: &[&str]) -> Value {
        let mut env = vec![format!("LOG={}", self.logdir.path().join("log").display())];
        env.extend(extra_env.iter().map(|s| s.to_string()));
        json!({"path": self.logdir.path().join("hook.sh"), "args": ["hook.sh", name], "env": env})
    }

    /// startContainer runs after pivot_root: its path is in the container.
    fn container_hook(&self, name: &str, extra_env: &[&str]) -> Value {
        let mut env = vec!["LOG=/hooklog/log".to_string()];
        env.extend(extra_env.iter().map(|s| s.to_string()));
        json!({"path": "/hook.sh", "args": ["hook.sh", name], "env": env})
    }

    fn set(&mut self, hooks: Value) {
        self.bundle.edit(|c| c["hooks"] = hooks);
    }

    /// The hooks that ran, in order, with their parsed state.
    fn ran(&self) -> Vec<(String, Value)> {
        let Ok(text) = fs::read_to_string(self.logdir.path().join("log")) else {
            return vec![];
        };
        text.lines()
            .map(|l| {
                let (name, state) = l.split_once(' ').unwrap();
                (name.to_string(), serde_json::from_str(state).unwrap())
            })
            .collect()
    }
}

fn bundle_arg(b: &Bundle) -> &str {
    b.path().to_str().unwrap()
}

#[test]
fn every_hook_runs_in_order_with_the_state() {
    let rt = Rt::new();
    let mut h = Hooked::new(&["sleep", "1000"]);
    let hooks = json!({
        "prestart": [h.host_hook("prestart", &[])],
        "createRuntime": [h.host_hook("createRuntime", &[])],
        "createContainer": [h.host_hook("createContainer", &[])],
        "startContainer": [h.container_hook("startContainer", &[])],
        "poststart": [h.host_hook("poststart", &[])],
        "poststop": [h.host_hook("poststop", &[])],
    });
    h.set(hooks);
    let id = unique_id("hooks");
    let log = h.logdir.path().join("rt.log");
    rt.ok(&[
        "--log",
        log.to_str().unwrap(),
        "create",
        "--bundle",
        bundle_arg(&h.bundle),
        &id,
    ]);
    let names = |r: &[(String, Value)]| r.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(
        names(&h.ran()),
        ["prestart", "createRuntime", "createContainer"]
    );
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    for (name, state) in h.ran() {
        assert_eq!(state["id"], id.as_str(), "{name}");
        assert_eq!(state["pid"].as_i64(), Some(pid), "{name}");
        assert_eq!(state["status"], "creating", "{name}");
        assert_eq!(state["bundle"], bundle_arg(&h.bundle), "{name}");
    }
    // Hook output reaches the log.
    let text = fs::read_to_string(&log).unwrap();
    assert!(text.contains("hook createRuntime ran"), "{text}");

    rt.ok(&["start", &id]);
    assert_eq!(
        names(&h.ran()),
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart"
        ]
    );
    assert_eq!(h.ran()[3].1["status"], "created", "startContainer");
    assert_eq!(h.ran()[3].1["pid"].as_i64(), Some(pid));
    assert_eq!(h.ran()[4].1["status"], "running");
    rt.ok(&["delete", "-f", &id]);
    let ran = h.ran();
    assert_eq!(ran.last().unwrap().0, "poststop");
    assert_eq!(ran.last().unwrap().1["status"], "stopped");
    assert_no_leaks(&rt, &id, &h.bundle);
}

#[test]
fn a_failing_create_hook_fails_create_and_leaves_nothing() {
    for kind in ["prestart", "createRuntime", "createContainer"] {
        let rt = Rt::new();
        let mut h = Hooked::new(&["true"]);
        let hooks = json!({ kind: [h.host_hook(kind, &["CODE=3"])] });
        h.set(hooks);
        let id = unique_id("hookfail");
        let err = rt.fails(&["create", "--bundle", bundle_arg(&h.bundle), &id]);
        assert_one_line_error(
            &err,
            &[
                kind,
                "hook.sh",
                "exit status 3",
                &format!("hook {kind} failing"),
            ],
        );
        assert_no_leaks(&rt, &id, &h.bundle);
    }
}

#[test]
fn a_failing_start_container_hook_fails_start() {
    let rt = Rt::new();
    let mut h = Hooked::new(&["sleep", "1000"]);
    let hooks = json!({ "startContainer": [h.container_hook("startContainer", &["CODE=2"])] });
    h.set(hooks);
    let id = unique_id("startfail");
    rt.ok(&["create", "--bundle", bundle_arg(&h.bundle), &id]);
    let err = rt.fails(&["start", &id]);
    assert_one_line_error(&err, &["startContainer", "exit status 2"]);
    rt.wait_status(&id, "stopped");
    rt.ok(&["delete", &id]);
    assert_no_leaks(&rt, &id, &h.bundle);
}

/// Where each hook starts: createContainer in the container's root (not
/// yet entered: runc's hooks_so.bats binds a library there by a relative
/// path), startContainer in the process's cwd, rt's own hooks in the
/// bundle (runc create and run chdir there; host-mntns.bats has a
/// createRuntime hook touch a relative path in it).
#[test]
fn hooks_start_where_runc_starts_them() {
    let rt = Rt::new();
    let mut b = Bundle::busybox(&["true"]);
    let out = tempfile::tempdir().unwrap();
    let at = |name: &str| out.path().join(name);
    let pwd_to = |file: std::path::PathBuf| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("pwd > {}", file.display())]});
    b.add_mount(json!({"destination": "/out", "type": "bind",
        "source": out.path(), "options": ["rbind", "rw"]}));
    b.edit(|c| {
        c["process"]["cwd"] = json!("/tmp");
        c["hooks"] = json!({
            "createRuntime": [pwd_to(at("createRuntime"))],
            "createContainer": [pwd_to(at("createContainer"))],
            "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "pwd > /out/startContainer"]}],
        });
    });
    let id = unique_id("hookcwd");
    let (code, _, err) = run_in(&rt, &b, &id);
    assert_eq!(code, 0, "{err}");
    let read = |n: &str| fs::read_to_string(at(n)).unwrap();
    assert_eq!(
        read("createRuntime").trim_end(),
        fs::canonicalize(b.path()).unwrap().to_str().unwrap()
    );
    assert_eq!(
        read("createContainer").trim_end(),
        fs::canonicalize(b.rootfs()).unwrap().to_str().unwrap()
    );
    assert_eq!(read("startContainer"), "/tmp\n");
    assert_no_leaks(&rt, &id, &b);
}

/// A startContainer hook runs in the container as its program will:
/// under its seccomp filters (runc's seccomp.bats "startContainer hook").
/// A hook whose mkdir the profile kills fails start, saying so.
#[test]
fn a_start_container_hook_is_under_the_containers_seccomp_filters() {
    let rt = Rt::new();
    let mut b = Bundle::busybox(&["true"]);
    b.edit(|c| {
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL"}]
        });
        c["hooks"] = json!({"startContainer": [
            {"path": "/bin/sh", "args": ["sh", "-c", "mkdir /tmp/from-hook"]}
        ]});
    });
    let id = unique_id("hookseccomp");
    let err = rt.fails(&["run", "--bundle", bundle_arg(&b), &id]);
    assert_one_line_error(
        &err,
        &["error running startContainer hook", "bad system call"],
    );
    assert!(!b.rootfs().join("tmp/from-hook").exists());
    assert!(rt.state_missing(&id), "{id} still exists");
    assert_no_leaks(&rt, &id, &b);
}

/// runtime-spec 1.3 (runtime.md, lifecycle step 9): a failing poststart
/// hook is an error and the container is stopped. `rt start` says so in
/// one line and exits 1; the container is left stopped for delete.
#[test]
fn a_failing_poststart_hook_fails_start_and_stops_the_container() {
    let rt = Rt::new();
    let mut h = Hooked::new(&["sleep", "1000"]);
    let hooks = json!({ "poststart": [h.host_hook("poststart", &["CODE=1"])] });
    h.set(hooks);
    let id = unique_id("poststartfail");
    rt.ok(&["create", "--bundle", bundle_arg(&h.bundle), &id]);
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    let out = rt.run(&["start", &id]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_one_line_error(
        &stderr(&out),
        &[
            "error running poststart hook #0:",
            "exit status 1",
            "hook poststart failing",
            "the container was stopped",
        ],
    );
    // Stopped by the time rt returns: no wait needed.
    assert!(!alive(pid), "the init {pid} outlived the failed poststart");
    assert_eq!(rt.status(&id), "stopped");
    rt.ok(&["delete", &id]);
    assert_no_leaks(&rt, &id, &h.bundle);
}

/// `rt run` (detached and in the foreground) with a failing poststart
/// hook: exit 1, the one line, and no container left at all.
#[test]
fn a_failing_poststart_hook_fails_run_and_leaves_nothing() {
    let rt = Rt::new();
    for detach in [true, false] {
        let mut h = Hooked::new(&["sleep", "1000"]);
        let hooks = json!({ "poststart": [h.host_hook("poststart", &["CODE=4"])] });
        h.set(hooks);
        let id = unique_id("poststartrun");
        let mut args = vec!["run"];
        if detach {
            args.push("-d");
        }
        args.extend(["--bundle", bundle_arg(&h.bundle), &id]);
        let out = rt.run(&args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "detach {detach}: {}",
            stderr(&out)
        );
        assert_one_line_error(
            &stderr(&out),
            &[
                "error running poststart hook #0:",
                "exit status 4",
                "the container was stopped",
            ],
        );
        assert!(rt.state_missing(&id), "detach {detach}: {id} still exists");
        assert_no_leaks(&rt, &id, &h.bundle);
    }
}

#[test]
fn poststop_failures_are_warnings() {
    let rt = Rt::new();
    let mut h = Hooked::new(&["sleep", "1000"]);
    let hooks = json!({ "poststop": [h.host_hook("poststop", &["CODE=1"])] });
    h.set(hooks);
    let id = unique_id("postfail");
    let out = rt.run(&["run", "-d", "--bundle", bundle_arg(&h.bundle), &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(rt.status(&id), "running");
    let out = rt.run(&["delete", "-f", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("warning: error running poststop hook #0:"),
        "{}",
        stderr(&out)
    );
    assert_no_leaks(&rt, &id, &h.bundle);
}

#[test]
fn a_hook_past_its_timeout_is_killed() {
    let rt = Rt::new();
    let mut b = Bundle::busybox(&["true"]);
    b.edit(|c| {
        c["hooks"] = json!({"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}]})
    });
    let id = unique_id("hooktimeout");
    let start = std::time::Instant::now();
    let err = rt.fails(&["create", "--bundle", bundle_arg(&b), &id]);
    assert!(start.elapsed() < std::time::Duration::from_secs(15));
    assert_one_line_error(&err, &["createRuntime", "timed out after 1s"]);
    assert_no_leaks(&rt, &id, &b);
}

#[test]
fn bad_hooks_are_refused_before_anything_runs() {
    let rt = Rt::new();
    let mut b = Bundle::busybox(&["true"]);
    b.edit(|c| c["hooks"] = json!({"poststart": [{"path": "relative/hook"}]}));
    let id = unique_id("badhook");
    let err = rt.fails(&["create", "--bundle", bundle_arg(&b), &id]);
    assert_one_line_error(&err, &["hooks.poststart[0].path", "absolute"]);
    assert_no_leaks(&rt, &id, &b);
    assert!(!Path::new("relative/hook").exists());
}

/// runc's wording, which callers match: the second hook of a kind failing
/// is "error running <kind> hook #1: ...", from create and from run.
#[test]
fn a_failing_hook_is_named_as_runc_names_it() {
    let rt = Rt::new();
    for kind in [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
    ] {
        let mut b = Bundle::busybox(&["true"]);
        b.edit(|c| c["hooks"] = json!({ kind: [{"path": "/bin/true"}, {"path": "/bin/false"}] }));
        let id = unique_id("hookname");
        let args = ["run", "--bundle", bundle_arg(&b), &id];
        let out = rt.run(&args);
        assert!(!out.status.success(), "{kind}: run succeeded");
        let err = stderr(&out);
        assert!(
            err.contains(&format!("error running {kind} hook #1: /bin/false: ")),
            "{kind}: {err}"
        );
        assert!(rt.state_missing(&id), "{kind}: {id} still exists");
        assert_no_leaks(&rt, &id, &b);
    }
}
