//! config.md's POSIX-platform hooks and runtime.md's lifecycle steps that
//! run them: every kind runs, at its step, in the listed order, with the
//! container's state on stdin, its own args and env, in the right
//! namespace; failures stop or do not stop the lifecycle as specified.
//!
//! Each hook is busybox sh writing into a host directory that is also
//! bind-mounted at the same path inside the container, so hooks that run
//! in the container's mount namespace write to the same place.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use super::{bundle, eventually};
use crate::bundle::{Bundle, BUSYBOX};
use crate::case::known;
use crate::report::{Outcome, Report};
use crate::runtime::Runtime;

/// Where runc 1.1.5 is known to be wrong in this group.
const RUNC_DEVIATIONS: &[(&str, &str)] = &[
    (
        "runtime.md, Lifecycle: startContainer and poststart hooks MUST NOT be called by create",
        "runc 1.1.5 runs poststart hooks during create (fixed in runc 1.2)",
    ),
    (
        "runtime.md, Lifecycle: poststart hooks MUST be called after the program has started",
        "runc 1.1.5 runs poststart hooks during create (fixed in runc 1.2)",
    ),
    (
        "runtime.md, Lifecycle: a failing poststart hook",
        "runc 1.1.5 runs poststart hooks during create, so a failing one fails create",
    ),
    (
        "config.md, POSIX-platform Hooks: createContainer hooks MUST get the container's state",
        "runc 1.1.5 gives the hooks it runs inside the container the pid seen from the container's pid namespace (1), not the host's",
    ),
    (
        "config.md, POSIX-platform Hooks: startContainer hooks MUST get the container's state",
        "runc 1.1.5 gives the hooks it runs inside the container the pid seen from the container's pid namespace (1), not the host's",
    ),
    (
        "runtime.md, Lifecycle: the hooks after a failing poststop hook",
        "runc 1.1.5 stops running poststop hooks at the first one that fails",
    ),
    (
        "runtime.md, Lifecycle: a failing startContainer hook MUST make start fail",
        "runc 1.1.5 runs startContainer hooks in the init after start has returned, so start cannot report their failure",
    ),
];

const KINDS: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// A hook that records its stdin, its place in the order, its args, its
/// env and its mount namespace, then exits with `code`.
fn hook(dir: &Path, name: &str, code: i32) -> Value {
    let d = dir.display();
    let script = format!(
        "cat > {d}/{name}.state; echo {name} >> {d}/order; echo \"$0 $1\" > {d}/{name}.args; \
         echo \"$CONFORMANCE_HOOK\" > {d}/{name}.env; readlink /proc/self/ns/mnt > {d}/{name}.mntns; exit {code}"
    );
    json!({
        "path": BUSYBOX,
        "args": ["busybox", "sh", "-c", script, "arg0", "arg1"],
        "env": [format!("CONFORMANCE_HOOK={name}"), "PATH=/bin:/usr/bin:/sbin:/usr/sbin"],
        "timeout": 20
    })
}

/// A bundle whose hooks log into a directory visible at the same path on
/// the host and in the container; returns it with that directory.
fn hooked(report: &mut Report, script: &str) -> Option<(Bundle, PathBuf)> {
    let mut b = bundle(report, "hooks", &["sh", "-c", script])?;
    let dir = b.path().join("hooklog");
    if let Err(e) = fs::create_dir_all(&dir) {
        report.add("harness: hook log directory", Outcome::Fail(e.to_string()));
        return None;
    }
    b.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": dir, "type": "bind", "source": dir, "options": ["bind", "rw"]
    }));
    b.config["process"]["env"]
        .as_array_mut()
        .unwrap()
        .push(json!(format!("LOG={}", dir.display())));
    Some((b, dir))
}

/// `report.ensure`, with runc's known deviations applied.
fn check(
    rt: &Runtime,
    report: &mut Report,
    name: impl Into<String>,
    ok: bool,
    why: impl FnOnce() -> String,
) {
    let name = name.into();
    let outcome = if ok {
        Outcome::Pass
    } else {
        Outcome::Fail(why())
    };
    let outcome = known(rt, &name, outcome, RUNC_DEVIATIONS);
    report.add(name, outcome);
}

fn order(dir: &Path) -> Vec<String> {
    fs::read_to_string(dir.join("order"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn before(order: &[String], a: &str, b: &str) -> bool {
    match (
        order.iter().position(|x| x == a),
        order.iter().position(|x| x == b),
    ) {
        (Some(i), Some(j)) => i < j,
        _ => false,
    }
}

pub fn run(rt: &Runtime, report: &mut Report) {
    all_kinds(rt, report);
    failing(rt, report);
}

fn all_kinds(rt: &Runtime, report: &mut Report) {
    report.case("hooks: every kind");
    let Some((mut b, dir)) = hooked(report, "echo user >> $LOG/order") else {
        return;
    };
    b.config["hooks"] = json!({
        "prestart": [hook(&dir, "prestart", 0)],
        "createRuntime": [hook(&dir, "createRuntime", 0), hook(&dir, "createRuntime-2", 0)],
        "createContainer": [hook(&dir, "createContainer", 0)],
        "startContainer": [hook(&dir, "startContainer", 0)],
        "poststart": [hook(&dir, "poststart", 0)],
        "poststop": [hook(&dir, "poststop", 0)]
    });
    let _ = b.write();
    let id = b.id.clone();
    let created = rt.create(&id, &b);
    if created.unsupported() {
        for k in KINDS {
            report.add(
                format!("config.md, POSIX-platform Hooks: {k} hooks MUST be called"),
                Outcome::Unsupported(created.why()),
            );
        }
        return;
    }
    if !created.ok {
        report.add(
            "config.md, POSIX-platform Hooks: create MUST succeed when every hook succeeds",
            Outcome::Fail(created.why()),
        );
        return;
    }
    let pid = b.pid().unwrap_or(0);
    let after_create = order(&dir);
    let has = |o: &[String], k: &str| o.iter().any(|x| x == k);
    for k in ["prestart", "createRuntime", "createContainer"] {
        check(
            rt,
            report,
            format!("config.md, POSIX-platform Hooks: {k} hooks MUST be called by create"),
            has(&after_create, k),
            || format!("order after create: {after_create:?}"),
        );
    }
    check(
        rt,
        report,
        "config.md, POSIX-platform Hooks: hooks of one kind MUST be called in the listed order",
        before(&after_create, "createRuntime", "createRuntime-2"),
        || format!("order: {after_create:?}"),
    );
    check(
        rt,
        report,
        "runtime.md, Lifecycle: createRuntime hooks MUST be called before createContainer hooks",
        before(&after_create, "createRuntime-2", "createContainer"),
        || format!("order: {after_create:?}"),
    );
    check(
        rt,
        report,
        "runtime.md, Lifecycle: startContainer and poststart hooks MUST NOT be called by create",
        !has(&after_create, "startContainer")
            && !has(&after_create, "poststart")
            && !has(&after_create, "user"),
        || format!("order after create: {after_create:?}"),
    );

    let started = rt.start(&id);
    let after_start = order(&dir);
    check(
        rt,
        report,
        "config.md, POSIX-platform Hooks: poststart hooks MUST be called before start returns",
        started.ok && has(&after_start, "poststart"),
        || {
            format!(
                "start ok {}, order after start: {after_start:?}",
                started.ok
            )
        },
    );
    let _ = rt.wait_status(&id, "stopped", Duration::from_secs(10));
    let ran = order(&dir);
    check(
        rt,
        report,
        "config.md, POSIX-platform Hooks: startContainer hooks MUST be called before the program runs",
        before(&ran, "startContainer", "user"),
        || format!("order: {ran:?}"),
    );
    check(
        rt,
        report,
        "runtime.md, Lifecycle: poststart hooks MUST be called after the program has started",
        before(&ran, "startContainer", "poststart"),
        || format!("order: {ran:?}"),
    );
    check(
        rt,
        report,
        "runtime.md, Lifecycle: poststop hooks MUST NOT be called before delete",
        !has(&ran, "poststop"),
        || format!("order before delete: {ran:?}"),
    );
    let deleted = rt.delete(&id);
    if deleted.ok {
        rt.forget(&id);
    }
    let end = order(&dir);
    check(
        rt,
        report,
        "config.md, POSIX-platform Hooks: poststop hooks MUST be called by delete",
        deleted.ok && end.last().map(String::as_str) == Some("poststop"),
        || format!("delete ok {}, order: {end:?}", deleted.ok),
    );

    for k in KINDS {
        let state: Value = fs::read(dir.join(format!("{k}.state")))
            .ok()
            .and_then(|s| serde_json::from_slice(&s).ok())
            .unwrap_or_default();
        // Every hook but poststop runs while the container process exists.
        let pid_ok = k == "poststop" || state["pid"].as_i64() == Some(pid as i64);
        check(
        rt,
        report,
            format!("config.md, POSIX-platform Hooks: {k} hooks MUST get the container's state on stdin"),
            state["id"] == id.as_str() && pid_ok && state["bundle"].is_string(),
            || format!("stdin was {state}"),
        );
    }
    let args = fs::read_to_string(dir.join("createRuntime.args")).unwrap_or_default();
    check(
        rt,
        report,
        "config.md, POSIX-platform Hooks: a hook MUST be run with its args",
        args.trim() == "arg0 arg1",
        || format!("args {args:?}"),
    );
    let env = fs::read_to_string(dir.join("createRuntime.env")).unwrap_or_default();
    check(
        rt,
        report,
        "config.md, POSIX-platform Hooks: a hook MUST be run with its env",
        env.trim() == "createRuntime",
        || format!("CONFORMANCE_HOOK={env:?}"),
    );
    let host_mnt = fs::read_link("/proc/self/ns/mnt").unwrap_or_default();
    let host_mnt = host_mnt.to_string_lossy();
    let mntns = |k: &str| {
        fs::read_to_string(dir.join(format!("{k}.mntns")))
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    for k in ["createRuntime", "poststart", "poststop"] {
        let got = mntns(k);
        check(
        rt,
        report,
            format!("config.md, POSIX-platform Hooks: {k} hooks MUST be executed in the runtime namespace"),
            got == host_mnt,
            || format!("mount namespace {got:?}, the runtime's is {host_mnt:?}"),
        );
    }
    for k in ["createContainer", "startContainer"] {
        let got = mntns(k);
        check(
        rt,
        report,
            format!("config.md, POSIX-platform Hooks: {k} hooks MUST be executed in the container namespace"),
            !got.is_empty() && got != host_mnt,
            || format!("mount namespace {got:?}, the runtime's is {host_mnt:?}"),
        );
    }
}

/// One hook of `kind` that fails; the rest of the lifecycle as specified.
fn failing(rt: &Runtime, report: &mut Report) {
    for kind in ["prestart", "createRuntime", "createContainer"] {
        report.case(&format!("hooks: failing {kind}"));
        let Some((mut b, dir)) = hooked(report, "echo user >> $LOG/order") else {
            return;
        };
        b.config["hooks"] = json!({ kind: [hook(&dir, kind, 1)] });
        let _ = b.write();
        let id = b.id.clone();
        let created = rt.create(&id, &b);
        let name = format!("runtime.md, Lifecycle: a failing {kind} hook MUST make create fail");
        if created.unsupported() {
            report.add(name, Outcome::Unsupported(created.why()));
            continue;
        }
        check(rt, report, name, !created.ok, || "create succeeded".into());
        check(
            rt,
            report,
            format!(
                "runtime.md, Lifecycle: after a failing {kind} hook the container MUST be deleted"
            ),
            rt.state(&id).is_err(),
            || "the container still exists".into(),
        );
    }

    report.case("hooks: failing startContainer");
    if let Some((mut b, dir)) = hooked(report, "echo user >> $LOG/order") {
        b.config["hooks"] = json!({ "startContainer": [hook(&dir, "startContainer", 1)] });
        let _ = b.write();
        let id = b.id.clone();
        if rt.create(&id, &b).ok {
            let started = rt.start(&id);
            check(
                rt,
                report,
                "runtime.md, Lifecycle: a failing startContainer hook MUST make start fail",
                !started.ok,
                || "start succeeded".into(),
            );
            std::thread::sleep(Duration::from_millis(300));
            check(
        rt,
        report,
                "runtime.md, Lifecycle: after a failing startContainer hook the program MUST NOT run",
                !order(&dir).iter().any(|x| x == "user"),
                || format!("order: {:?}", order(&dir)),
            );
        } else {
            report.add(
                "runtime.md, Lifecycle: a failing startContainer hook MUST make start fail",
                Outcome::Fail("create failed".into()),
            );
        }
    }

    for kind in ["poststart", "poststop"] {
        failing_post(rt, report, kind);
    }
}

/// A failing poststop hook is only a warning: delete succeeds and the
/// hooks after it still run. A failing poststart hook, since
/// runtime-spec 1.3, makes start fail and stops the container.
fn failing_post(rt: &Runtime, report: &mut Report, kind: &str) {
    report.case(&format!("hooks: failing {kind}"));
    let Some((mut b, dir)) = hooked(report, "exec sleep 600") else {
        return;
    };
    let next = format!("{kind}-2");
    b.config["hooks"] = json!({ kind: [hook(&dir, kind, 1), hook(&dir, &next, 0)] });
    let _ = b.write();
    let id = b.id.clone();
    if kind == "poststart" {
        let clause = "runtime.md, Lifecycle: a failing poststart hook MUST make start fail \
                      and stop the container (runtime-spec 1.3)"
            .to_string();
        let created = rt.create(&id, &b);
        if !created.ok {
            let why = format!("create failed: {}", created.why());
            check(rt, report, clause, false, || why);
            return;
        }
        let started = rt.start(&id);
        let stopped = rt
            .wait_status(&id, "stopped", Duration::from_secs(10))
            .is_ok();
        check(rt, report, clause, !started.ok && stopped, || {
            format!(
                "start succeeded: {}; status {:?}",
                started.ok,
                rt.status(&id)
            )
        });
        return;
    }
    let fails_op = format!(
        "runtime.md, Lifecycle: a failing {kind} hook MUST NOT make delete fail (only a warning)"
    );
    let rest = format!(
        "runtime.md, Lifecycle: the hooks after a failing {kind} hook MUST still be called"
    );
    let created = rt.create(&id, &b);
    if !created.ok {
        let why = format!("create failed: {}", created.why());
        check(rt, report, fails_op, false, || why.clone());
        check(rt, report, rest, false, || why);
        return;
    }
    let _ = rt.start(&id);
    let _ = rt.kill(&id, "KILL");
    let _ = rt.wait_status(&id, "stopped", Duration::from_secs(10));
    let deleted = rt.delete(&id);
    if deleted.ok {
        rt.forget(&id);
    }
    let op_ok = deleted.ok && rt.state(&id).is_err();
    check(rt, report, fails_op, op_ok, || {
        format!("status {:?}", rt.status(&id))
    });
    let ran = eventually(2, || order(&dir).contains(&next));
    check(rt, report, rest, ran, || {
        format!("order: {:?}", order(&dir))
    });
}
