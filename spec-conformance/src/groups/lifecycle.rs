//! runtime.md's state, lifecycle and operations, checked from the
//! harness: what `state` reports at each step, which operations must fail
//! (and leave the container as it was), and that delete removes what
//! create made.

use std::fs;
use std::path::Path;
use std::time::Duration;

use serde_json::json;

use super::{alive, bundle, cgroup_dirs, eventually};
use crate::bundle::Bundle;
use crate::report::{Outcome, Report};
use crate::runtime::Runtime;

/// runc's command line, which every runc-style runtime and the managers
/// built on it share, departs from runtime.md here: `delete` of a created
/// container kills the waiting init and removes it, without --force.
/// containerd's runc shim depends on that (it deletes a task that never
/// started without --force), so runc, crun and rt all do it. Such a delete
/// is reported as a skip that says so, and must still remove everything.
const CLI_DELETES_CREATED: &str = "runc's command line (runc, crun, rt) deletes a created container without --force, and containerd's runc shim relies on it";

pub fn run(rt: &Runtime, report: &mut Report) {
    full_cycle(rt, report);
    exits_on_its_own(rt, report);
    kill_created(rt, report);
    delete_created(rt, report);
    missing(rt, report);
    config_read_at_create(rt, report);
    signal_delivered(rt, report);
}

/// A bundle whose program runs `script` with a host directory at /mark.
fn marked(report: &mut Report, script: &str) -> Option<(Bundle, std::path::PathBuf)> {
    let mut b = bundle(report, "life", &["sh", "-c", script])?;
    let mark = match b.host_dir("mark", "/mark") {
        Ok(m) => m,
        Err(e) => {
            report.add("harness: mark directory", Outcome::Fail(e));
            return None;
        }
    };
    b.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/mark", "type": "bind", "source": mark, "options": ["bind", "rw"]
    }));
    b.config["annotations"]["org.example.conformance"] = json!("annotation value");
    if let Err(e) = b.write() {
        report.add("harness: writing the bundle", Outcome::Fail(e));
        return None;
    }
    Some((b, mark))
}

fn full_cycle(rt: &Runtime, report: &mut Report) {
    report.case("lifecycle: create, start, kill, delete");
    let Some((b, mark)) = marked(report, "echo started > /mark/started; exec sleep 600") else {
        return;
    };
    let id = b.id.clone();
    let created = rt.create(&id, &b);
    report.ensure(
        "runtime.md, Create: create MUST succeed for a valid bundle",
        created.ok,
        || created.why(),
    );
    if !created.ok {
        return;
    }
    let state = rt.state(&id).unwrap_or_default();
    report.ensure(
        "runtime.md, State: status MUST be created once create has returned (creating is only transient)",
        state["status"] == "created",
        || format!("status {}", state["status"]),
    );
    report.ensure(
        "runtime.md, State: id MUST be the container's id",
        state["id"] == id.as_str(),
        || format!("id {}", state["id"]),
    );
    report.ensure(
        "runtime.md, State: ociVersion MUST be present",
        state["ociVersion"].as_str().is_some_and(|v| !v.is_empty()),
        || format!("ociVersion {}", state["ociVersion"]),
    );
    let bundle_path = fs::canonicalize(b.path()).unwrap_or_default();
    report.ensure(
        "runtime.md, State: bundle MUST be the absolute path of the bundle",
        state["bundle"]
            .as_str()
            .is_some_and(|p| Path::new(p).is_absolute() && Path::new(p) == bundle_path),
        || format!("bundle {} for {}", state["bundle"], bundle_path.display()),
    );
    let pid = i32::try_from(state["pid"].as_i64().unwrap_or(0)).unwrap_or(0);
    report.ensure(
        "runtime.md, State: pid MUST be the container process's pid when created",
        pid > 0 && alive(pid),
        || format!("pid {}", state["pid"]),
    );
    report.ensure(
        "runtime.md, State: annotations MUST be the config's annotations",
        state["annotations"] == b.config["annotations"],
        || format!("annotations {}", state["annotations"]),
    );
    report.ensure(
        "runtime.md, Create: the pid file (--pid-file) MUST name the container process",
        b.pid() == Some(pid),
        || format!("pid file says {:?}, state {pid}", b.pid()),
    );
    let own_cgroup = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    let cg_path = b.config["linux"]["cgroupsPath"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    report.ensure(
        "config-linux.md, Control groups: the runtime MUST put the container process in cgroupsPath",
        own_cgroup.lines().any(|l| l.splitn(3, ':').nth(2) == Some(cg_path.as_str())),
        || format!("/proc/{pid}/cgroup: {own_cgroup}"),
    );
    std::thread::sleep(Duration::from_millis(300));
    report.ensure(
        "runtime.md, Create: the user-specified program MUST NOT run before start",
        !mark.join("started").exists(),
        || "the program ran before start".into(),
    );

    // A second create with the same id, from another bundle.
    if let Some(b2) = bundle(report, "life", &["sleep", "600"]) {
        let _ = b2.write();
        let dup = rt.create(&id, &b2);
        report.ensure(
            "runtime.md, Create: a duplicate id MUST generate an error",
            !dup.ok,
            || "second create succeeded".into(),
        );
        let after = rt.state(&id).unwrap_or_default();
        report.ensure(
            "runtime.md, Create: a duplicate id MUST NOT create a new container or change the first",
            after["status"] == "created" && after["pid"].as_i64() == Some(pid as i64) && after["bundle"] == state["bundle"],
            || format!("state is now {after}"),
        );
    }

    let started = rt.start(&id);
    report.ensure(
        "runtime.md, Start: start MUST succeed on a created container",
        started.ok,
        || started.why(),
    );
    report.ensure(
        "runtime.md, Start: start MUST run the user-specified program",
        eventually(5, || mark.join("started").exists()),
        || "the program did not run".into(),
    );
    let status = rt.status(&id);
    report.ensure(
        "runtime.md, State: status MUST be running after start",
        status.as_deref() == Some("running"),
        || format!("status {status:?}"),
    );
    let again = rt.start(&id);
    report.ensure(
        "runtime.md, Start: start of a container that is not created MUST generate an error",
        !again.ok,
        || "second start succeeded".into(),
    );
    let st = rt.state(&id).unwrap_or_default();
    report.ensure(
        "runtime.md, Start: start of a container that is not created MUST have no effect",
        st["status"] == "running" && st["pid"].as_i64() == Some(pid as i64),
        || format!("state is now {st}"),
    );
    let del = rt.delete(&id);
    report.ensure(
        "runtime.md, Delete: delete of a running container MUST generate an error",
        !del.ok,
        || "delete succeeded".into(),
    );
    report.ensure(
        "runtime.md, Delete: delete of a running container MUST have no effect",
        rt.status(&id).as_deref() == Some("running") && alive(pid),
        || format!("status {:?}, process alive {}", rt.status(&id), alive(pid)),
    );

    let killed = rt.kill(&id, "KILL");
    report.ensure(
        "runtime.md, Kill: kill MUST send the signal to a running container",
        killed.ok,
        || killed.why(),
    );
    let stopped = rt.wait_status(&id, "stopped", Duration::from_secs(10));
    report.ensure(
        "runtime.md, State: status MUST be stopped once the container process has exited",
        stopped.is_ok(),
        || stopped.clone().unwrap_err(),
    );
    let k2 = rt.kill(&id, "TERM");
    report.ensure(
        "runtime.md, Kill: kill of a stopped container MUST generate an error",
        !k2.ok,
        || "kill succeeded".into(),
    );
    let s2 = rt.start(&id);
    report.ensure(
        "runtime.md, Start: start of a stopped container MUST generate an error",
        !s2.ok,
        || "start succeeded".into(),
    );
    report.ensure(
        "runtime.md, Kill: kill of a stopped container MUST have no effect",
        rt.status(&id).as_deref() == Some("stopped"),
        || format!("status {:?}", rt.status(&id)),
    );

    let deleted = rt.delete(&id);
    report.ensure(
        "runtime.md, Delete: delete MUST succeed on a stopped container",
        deleted.ok,
        || deleted.why(),
    );
    if deleted.ok {
        rt.forget(&id);
    }
    report.ensure(
        "runtime.md, Query State: state of a deleted container MUST generate an error",
        rt.state(&id).is_err(),
        || "state still answers".into(),
    );
    let leftovers: Vec<_> = fs::read_dir(rt.root())
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    report.ensure(
        "runtime.md, Delete: delete MUST remove the state create made",
        !leftovers.iter().any(|n| n.contains(&id)),
        || format!("state root still has {leftovers:?}"),
    );
    let cgs = cgroup_dirs(&cg_path);
    report.ensure(
        "runtime.md, Delete: delete MUST remove the cgroup create made",
        cgs.is_empty(),
        || format!("still there: {cgs:?}"),
    );
    let mounts = b.mounts_left();
    report.ensure(
        "runtime.md, Delete: delete MUST remove the mounts create made",
        mounts.is_empty(),
        || format!("still mounted: {mounts:?}"),
    );
    report.ensure(
        "runtime.md, Delete: no process of the container MUST be left after delete",
        !alive(pid),
        || format!("pid {pid} still runs"),
    );
    let d2 = rt.delete(&id);
    report.ensure(
        "runtime.md, Delete: delete of a deleted container MUST generate an error",
        !d2.ok,
        || "second delete succeeded".into(),
    );
}

fn exits_on_its_own(rt: &Runtime, report: &mut Report) {
    report.case("lifecycle: the program exits");
    let Some((b, _)) = marked(report, "exit 3") else {
        return;
    };
    let id = b.id.clone();
    let ok = rt.create(&id, &b).ok && rt.start(&id).ok;
    let stopped = if ok {
        rt.wait_status(&id, "stopped", Duration::from_secs(10))
    } else {
        Err("create or start failed".into())
    };
    report.ensure(
        "runtime.md, Lifecycle: when the container process exits the status MUST become stopped",
        stopped.is_ok(),
        || stopped.clone().unwrap_err(),
    );
    if rt.delete(&id).ok {
        rt.forget(&id);
    }
}

fn kill_created(rt: &Runtime, report: &mut Report) {
    report.case("lifecycle: kill a created container");
    let Some((b, mark)) = marked(report, "echo started > /mark/started; exec sleep 600") else {
        return;
    };
    let id = b.id.clone();
    if !rt.create(&id, &b).ok {
        report.add(
            "runtime.md, Kill: kill MUST send the signal to a created container",
            Outcome::Fail("create failed".into()),
        );
        return;
    }
    let k = rt.kill(&id, "KILL");
    let stopped = rt.wait_status(&id, "stopped", Duration::from_secs(10));
    report.ensure(
        "runtime.md, Kill: kill MUST send the signal to a created container",
        k.ok && stopped.is_ok(),
        || {
            format!(
                "kill: {}; {:?}",
                if k.ok { "ok" } else { &k.stderr },
                stopped
            )
        },
    );
    report.ensure(
        "runtime.md, Kill: a created container that was killed MUST NOT run the program",
        !mark.join("started").exists(),
        || "the program ran".into(),
    );
    if rt.delete(&id).ok {
        rt.forget(&id);
    }
}

fn delete_created(rt: &Runtime, report: &mut Report) {
    report.case("lifecycle: delete a created container");
    let Some((b, _)) = marked(report, "exec sleep 600") else {
        return;
    };
    let id = b.id.clone();
    if !rt.create(&id, &b).ok {
        report.add(
            "runtime.md, Delete: delete of a created container MUST generate an error",
            Outcome::Fail("create failed".into()),
        );
        return;
    }
    let pid = rt.state(&id).ok().and_then(|s| s["pid"].as_i64());
    let d = rt.delete(&id);
    let name = "runtime.md, Delete: delete of a created container MUST generate an error";
    if d.ok {
        report.add(name, Outcome::Skip(CLI_DELETES_CREATED.into()));
        report.ensure(
            "runtime.md, Delete: deleting a container MUST delete the resources that were created during the create step",
            rt.status(&id).is_none() && pid.is_none_or(|p| eventually(5, || !alive(i32::try_from(p).unwrap_or(0)))),
            || format!("after delete: status {:?}, init {pid:?} still alive", rt.status(&id)),
        );
    } else {
        report.add(name, Outcome::Pass);
        report.ensure(
            "runtime.md, Delete: delete of a created container MUST have no effect",
            rt.status(&id).as_deref() == Some("created"),
            || format!("status {:?}", rt.status(&id)),
        );
    }
}

fn missing(rt: &Runtime, report: &mut Report) {
    report.case("lifecycle: operations on a container that does not exist");
    let id = crate::bundle::unique_id("missing");
    let st = rt.run(&["state", &id]);
    report.ensure(
        "runtime.md, Query State: state of a missing container MUST generate an error",
        !st.ok,
        || st.stdout.clone(),
    );
    report.ensure(
        "runtime.md, Start: start of a missing container MUST generate an error",
        !rt.start(&id).ok,
        || "start succeeded".into(),
    );
    report.ensure(
        "runtime.md, Kill: kill of a missing container MUST generate an error",
        !rt.kill(&id, "KILL").ok,
        || "kill succeeded".into(),
    );
    report.ensure(
        "runtime.md, Delete: delete of a missing container MUST generate an error",
        !rt.delete(&id).ok,
        || "delete succeeded".into(),
    );
}

fn config_read_at_create(rt: &Runtime, report: &mut Report) {
    report.case("lifecycle: config.json edited between create and start");
    let Some((mut b, mark)) = marked(report, "hostname > /mark/hostname") else {
        return;
    };
    let id = b.id.clone();
    if !rt.create(&id, &b).ok {
        report.add(
            "runtime.md, Create: changes to config.json after create MUST NOT affect the container",
            Outcome::Fail("create failed".into()),
        );
        return;
    }
    b.config["hostname"] = json!("edited-after-create");
    let _ = b.write();
    let ran = rt.start(&id).ok
        && rt
            .wait_status(&id, "stopped", Duration::from_secs(10))
            .is_ok();
    let got = fs::read_to_string(mark.join("hostname")).unwrap_or_default();
    report.ensure(
        "runtime.md, Create: changes to config.json after create MUST NOT affect the container",
        ran && got.trim() == "conformance",
        || format!("hostname {got:?}"),
    );
    if rt.delete(&id).ok {
        rt.forget(&id);
    }
}

fn signal_delivered(rt: &Runtime, report: &mut Report) {
    report.case("lifecycle: kill with a caught signal");
    let Some((b, mark)) = marked(
        report,
        "trap 'echo USR1 > /mark/signal; exit 0' USR1; echo ready > /mark/ready; while :; do sleep 0.05; done",
    ) else {
        return;
    };
    let id = b.id.clone();
    let ready =
        rt.create(&id, &b).ok && rt.start(&id).ok && eventually(5, || mark.join("ready").exists());
    let k = ready && rt.kill(&id, "USR1").ok;
    let got = eventually(5, || mark.join("signal").exists());
    report.ensure(
        "runtime.md, Kill: kill MUST send the named signal to the container process",
        k && got,
        || format!("ready {ready}, kill ok {k}, signal seen {got}"),
    );
    let _ = rt.wait_status(&id, "stopped", Duration::from_secs(5));
    if rt.delete(&id).ok {
        rt.forget(&id);
    }
}
