//! The container lifecycle through rt's command line, as a user or a
//! manager drives it: create, start, state, kill, delete, run, list, and
//! the JSON, exit codes and messages they give.

mod common;

use std::fs;
use std::process::Stdio;
use std::time::Duration;

use common::*;
use rt_testkit::wait_for_handler;
use serde_json::json;

#[test]
fn create_start_state_kill_delete() {
    let rt = Rt::new();
    let b = Bundle::busybox(&["sleep", "1000"]);
    let id = unique_id("life");
    let bundle = b.path().to_str().unwrap();
    let pid_file = b.path().join("init.pid");

    rt.ok(&[
        "create",
        "--bundle",
        bundle,
        "--pid-file",
        pid_file.to_str().unwrap(),
        &id,
    ]);
    let st = rt.state(&id);
    assert_eq!(st["status"], "created");
    assert_eq!(st["id"], id.as_str());
    assert_eq!(
        st["ociVersion"].as_str().unwrap().split('.').next(),
        Some("1")
    );
    assert_eq!(st["bundle"], bundle);
    assert_eq!(st["rootfs"], b.rootfs().to_str().unwrap());
    let created = st["created"].as_str().unwrap();
    assert!(
        humantime::parse_rfc3339(created).is_ok(),
        "created is RFC 3339: {created}"
    );
    let pid = st["pid"].as_i64().unwrap();
    assert!(pid > 0);
    assert_eq!(
        fs::read_to_string(&pid_file).unwrap().trim(),
        pid.to_string(),
        "pid file holds the init's pid"
    );
    // Until start, the init waits in rt, not in the user's program.
    let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_ne!(comm.trim(), "sleep", "user code ran before start");

    rt.ok(&["start", &id]);
    rt.wait_status(&id, "running");
    let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm.trim(), "sleep");
    assert_eq!(rt.state(&id)["pid"].as_i64(), Some(pid));

    // Errors a manager relies on.
    let err = rt.fails(&["start", &id]);
    assert_one_line_error(&err, &["cannot start an already running container"]);
    let err = rt.fails(&["delete", &id]);
    assert_one_line_error(&err, &[&id, "running"]);
    let err = rt.fails(&["create", "--bundle", bundle, &id]);
    assert_one_line_error(&err, &["container with given ID already exists", &id]);

    // Signal 0 asks whether the container runs, as kill(1) does.
    rt.ok(&["kill", &id, "0"]);
    assert_eq!(rt.status(&id), "running");
    rt.ok(&["kill", &id, "KILL"]);
    rt.wait_status(&id, "stopped");
    let err = rt.fails(&["kill", &id]);
    assert_one_line_error(&err, &["container not running"]);
    let err = rt.fails(&["kill", &id, "0"]);
    assert_one_line_error(&err, &["container not running"]);
    // --all (runc's obsolete flag) of a stopped container is no error.
    rt.ok(&["kill", "--all", &id, "0"]);
    let err = rt.fails(&["start", &id]);
    assert_one_line_error(&err, &["stopped"]);

    rt.ok(&["delete", &id]);
    let err = rt.fails(&["state", &id]);
    assert_one_line_error(&err, &["container does not exist", &id]);
    assert_no_leaks(&rt, &id, &b);
}

#[test]
fn a_created_container_dies_of_term() {
    // Its init is pid 1 of its namespace, which ignores signals it has no
    // handler for; a manager's SIGTERM (through `kill` or a pidfd) must
    // still end a container that was never started, as under runc.
    let rt = Rt::new();
    let b = Bundle::busybox(&["sleep", "1000"]);
    for how in ["rt kill", "kill(2)"] {
        let id = unique_id("term-created");
        rt.ok(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
        let pid = rt.state(&id)["pid"].as_i64().unwrap();
        if how == "rt kill" {
            rt.ok(&["kill", &id, "TERM"]);
        } else {
            let rc = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .unwrap();
            assert!(rc.success());
        }
        rt.wait_status(&id, "stopped");
        assert!(!alive(pid), "{how}: the init outlived SIGTERM");
        rt.ok(&["delete", &id]);
        assert_no_leaks(&rt, &id, &b);
    }
}

#[test]
fn user_code_only_runs_after_start() {
    let rt = Rt::new();
    let mut b = Bundle::busybox(&["sh", "-c", "echo started > /out/marker"]);
    let out = tempfile::tempdir().unwrap();
    b.add_mount(json!({
        "destination": "/out", "type": "bind",
        "source": out.path(), "options": ["rbind", "rw"]
    }));
    let id = unique_id("gate");
    rt.ok(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !out.path().join("marker").exists(),
        "the process ran before start"
    );
    rt.ok(&["start", &id]);
    rt.wait_status(&id, "stopped");
    assert_eq!(
        fs::read_to_string(out.path().join("marker")).unwrap(),
        "started\n"
    );
    rt.ok(&["delete", &id]);
    assert_no_leaks(&rt, &id, &b);
}

#[test]
fn delete_force_kills_a_running_container() {
    let rt = Rt::new();
    let b = Bundle::busybox(&["sleep", "1000"]);
    let id = unique_id("force");
    let pid = rt.detached(&b, &id);
    assert_eq!(rt.status(&id), "running");
    rt.ok(&["delete", "--force", &id]);
    assert!(!alive(pid), "delete -f left the init running");
    assert_no_leaks(&rt, &id, &b);
}

#[test]
fn delete_of_a_missing_container() {
    let rt = Rt::new();
    let err = rt.fails(&["delete", "no-such-container"]);
    assert_one_line_error(&err, &["container does not exist", "no-such-container"]);
    let out = rt.run(&["delete", "--force", "no-such-container"]);
    assert!(
        out.status.success(),
        "delete -f of a missing id: {}",
        stderr(&out)
    );
    assert_eq!(stderr(&out), "");
    rt.ok(&["delete", "-f", "no-such-container"]);
}

#[test]
fn kill_accepts_names_and_numbers() {
    let rt = Rt::new();
    let b = Bundle::busybox(&[
        "sh",
        "-c",
        "trap 'exit 0' USR1; while :; do sleep 0.05; done",
    ]);
    for sig in ["USR1", "SIGUSR1", "10", "KILL"] {
        let id = unique_id("sig");
        let init = rt.detached(&b, &id);
        assert!(
            wait_for_handler(init, libc::SIGUSR1, Duration::from_secs(20)),
            "the shell never trapped USR1"
        );
        rt.ok(&["kill", &id, sig]);
        rt.wait_status(&id, "stopped");
        rt.ok(&["delete", &id]);
        assert_no_leaks(&rt, &id, &b);
    }
    // TERM by default: sh as pid 1 ignores it unless trapped, so use sleep.
    let b = Bundle::busybox(&["sleep", "1000"]);
    let id = unique_id("term");
    rt.detached(&b, &id);
    let err = rt.fails(&["kill", &id, "NOSUCHSIG"]);
    assert_one_line_error(&err, &["NOSUCHSIG"]);
    assert_eq!(rt.status(&id), "running");
    rt.ok(&["kill", "--all", &id, "KILL"]);
    rt.wait_status(&id, "stopped");
    rt.ok(&["delete", &id]);
    assert_no_leaks(&rt, &id, &b);
}

#[test]
fn run_returns_the_exit_code() {
    let rt = Rt::new();
    let b = Bundle::busybox(&["sh", "-c", "echo out; echo err >&2; exit 7"]);
    let id = unique_id("exit");
    let (code, out, err) = run_in(&rt, &b, &id);
    assert_eq!(code, 7);
    assert_eq!(out, "out\n");
    assert_eq!(err, "err\n");
    // run without --keep deletes the container.
    assert_no_leaks(&rt, &id, &b);

    // Killed by a signal: 128 + the signal, as with runc.
    let b = Bundle::busybox(&["sleep", "1000"]);
    let id = unique_id("sig");
    rt.created(&id);
    let child = rt
        .cmd(&["run", "--bundle", b.path().to_str().unwrap(), &id])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    rt.wait_status(&id, "running");
    rt.ok(&["kill", &id, "KILL"]);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(128 + 9));
    assert_no_leaks(&rt, &id, &b);
}

#[test]
fn run_keep_leaves_a_stopped_container() {
    let rt = Rt::new();
    let b = Bundle::busybox(&["true"]);
    let id = unique_id("keep");
    rt.ok(&["run", "--keep", "--bundle", b.path().to_str().unwrap(), &id]);
    assert_eq!(rt.status(&id), "stopped");
    rt.ok(&["delete", &id]);
    assert_no_leaks(&rt, &id, &b);
}

#[test]
fn run_forwards_signals_to_the_container() {
    let rt = Rt::new();
    let b = Bundle::busybox(&[
        "sh",
        "-c",
        "trap 'exit 3' TERM; while :; do sleep 0.05; done",
    ]);
    let id = unique_id("fwd");
    rt.created(&id);
    let child = rt
        .cmd(&["run", "--bundle", b.path().to_str().unwrap(), &id])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    rt.wait_status(&id, "running");
    let init = rt.state(&id)["pid"].as_i64().unwrap();
    assert!(
        wait_for_handler(init, libc::SIGTERM, Duration::from_secs(20)),
        "the shell never trapped TERM"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "the trap's exit code comes back"
    );
    assert_no_leaks(&rt, &id, &b);
}

#[test]
fn list_shows_containers() {
    let rt = Rt::new();
    let b = Bundle::busybox(&["sleep", "1000"]);
    let a = unique_id("lista");
    let c = unique_id("listb");
    rt.ok(&["create", "--bundle", b.path().to_str().unwrap(), &a]);
    rt.detached(&b, &c);

    let table = rt.ok(&["list"]);
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    assert!(rows
        .iter()
        .any(|r| r[0] == a && r[2] == "created" && r[5] == "root"));
    assert!(rows.iter().any(|r| r[0] == c && r[2] == "running"));

    let quiet = rt.ok(&["list", "-q"]);
    let mut ids: Vec<&str> = quiet.lines().collect();
    ids.sort();
    let mut want = vec![a.as_str(), c.as_str()];
    want.sort();
    assert_eq!(ids, want);

    let json: serde_json::Value = serde_json::from_str(&rt.ok(&["list", "-f", "json"])).unwrap();
    let arr = json.as_array().unwrap();
    assert_eq!(arr.len(), 2);
    for e in arr {
        assert_eq!(e["bundle"], b.path().to_str().unwrap());
        assert!(e["pid"].as_i64().unwrap() > 0);
    }

    rt.ok(&["delete", "-f", &a]);
    rt.ok(&["delete", "-f", &c]);
    assert_eq!(rt.ok(&["list", "-q"]), "");
    assert_no_leaks(&rt, &a, &b);
    assert_no_leaks(&rt, &c, &b);
}

#[test]
fn spec_writes_a_default_config() {
    let dir = tempfile::tempdir().unwrap();
    let rt = Rt::new();
    rt.ok(&["spec", "-b", dir.path().to_str().unwrap()]);
    let config: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.path().join("config.json")).unwrap()).unwrap();
    assert_eq!(config["root"]["path"], "rootfs");
    assert_eq!(config["process"]["args"], json!(["sh"]));
    let err = rt.fails(&["spec", "-b", dir.path().to_str().unwrap()]);
    assert_one_line_error(&err, &["config.json", "exists"]);

    let dir = tempfile::tempdir().unwrap();
    rt.ok(&[
        "spec",
        "--rootless",
        "--bundle",
        dir.path().to_str().unwrap(),
    ]);
    let config: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.path().join("config.json")).unwrap()).unwrap();
    let ns: Vec<&str> = config["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    assert!(ns.contains(&"user"), "rootless spec has a user namespace");
    assert!(!config["linux"]["uidMappings"]
        .as_array()
        .unwrap()
        .is_empty());
}

#[test]
fn version_in_runc_layout() {
    let rt = Rt::new();
    let out = rt.ok(&["--version"]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("rt version "), "{out}");
    assert!(lines[1].starts_with("commit: "), "{out}");
    assert!(lines[2].starts_with("spec: 1."), "{out}");
}

#[test]
fn errors_go_to_the_log_file_as_json() {
    let rt = Rt::new();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.json");
    let out = rt.run(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "start",
        "nonexistent",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = fs::read_to_string(&log).unwrap();
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "error");
    assert_eq!(last["msg"], "container does not exist: nonexistent");
    assert!(humantime::parse_rfc3339(last["time"].as_str().unwrap()).is_ok());

    let text_log = dir.path().join("log.txt");
    rt.run(&["--log", text_log.to_str().unwrap(), "kill", "nonexistent"]);
    let text = fs::read_to_string(&text_log).unwrap();
    assert!(
        text.contains("container does not exist: nonexistent"),
        "{text}"
    );
}

#[test]
fn twenty_runs_back_to_back_leave_nothing() {
    let rt = Rt::new();
    let b = Bundle::busybox(&["true"]);
    for i in 0..20 {
        let id = unique_id("loop");
        let (code, _, err) = run_in(&rt, &b, &id);
        assert_eq!(code, 0, "run {i}: {err}");
        assert_no_leaks(&rt, &id, &b);
    }
}

#[test]
fn state_of_a_container_whose_init_exited() {
    let rt = Rt::new();
    let b = Bundle::busybox(&["true"]);
    let id = unique_id("exited");
    rt.detached(&b, &id);
    rt.wait_status(&id, "stopped");
    let st = rt.state(&id);
    assert_eq!(
        st["pid"].as_i64(),
        Some(0),
        "a stopped container has pid 0 as with runc"
    );
    rt.ok(&["delete", &id]);
    assert_no_leaks(&rt, &id, &b);
}

#[test]
fn two_creates_of_one_id_at_once_one_wins_cleanly() {
    let rt = Rt::new();
    let b = Bundle::busybox(&["sleep", "1000"]);
    for round in 0..10 {
        let id = unique_id("race");
        rt.created(&id);
        // Both at once, from two threads.
        let create = || rt.run(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
        let (a, c) = std::thread::scope(|s| {
            let h = s.spawn(create);
            let c = create();
            (h.join().unwrap(), c)
        });
        let wins = [&a, &c].iter().filter(|o| o.status.success()).count();
        assert_eq!(wins, 1, "round {round}: {a:?} {c:?}");
        let loser = if a.status.success() { &c } else { &a };
        assert_one_line_error(
            &stderr(loser),
            &["container with given ID already exists", &id],
        );
        // Exactly one init exists: the winner's.
        let pid = rt.state(&id)["pid"].as_i64().unwrap();
        let procs = fs::read_to_string(format!(
            "{CGROUP2}/{}/cgroup.procs",
            default_cgroup(rt.root(), &id)
        ))
        .unwrap();
        assert_eq!(procs.trim(), pid.to_string(), "round {round}");
        rt.ok(&["delete", "-f", &id]);
        assert_no_leaks(&rt, &id, &b);
    }
}

/// `kill --all` signals every process of the cgroup, real-time signals
/// too: the shell (pid 1, which ignores signals it does not trap) waits
/// for two sleepers, and only killing the sleepers ends it.
#[test]
fn kill_all_reaches_every_process_with_any_signal() {
    let rt = Rt::new();
    let b = Bundle::busybox(&["sh", "-c", "sleep 1000 & sleep 1000 & wait"]);
    for sig in ["TERM", "RTMIN+2"] {
        let id = unique_id("killall");
        rt.detached(&b, &id);
        // Both sleepers forked: a kill before that would find only the
        // shell, which ignores it.
        let procs = || {
            serde_json::from_str::<Vec<i64>>(&rt.ok(&["ps", "--format", "json", &id]))
                .unwrap()
                .len()
        };
        assert!(
            rt_testkit::wait_until(Duration::from_secs(20), || procs() == 3),
            "{} processes, not 3",
            procs()
        );
        rt.ok(&["kill", "--all", &id, sig]);
        rt.wait_status(&id, "stopped");
        rt.ok(&["delete", &id]);
        assert_no_leaks(&rt, &id, &b);
    }
}

/// A container that joined another's pid namespace: `sh` forks a sleeper
/// and execs another (the init). Returns its id and the forked sleeper's
/// pid, once both run.
fn joined_with_a_child(rt: &Rt, b: &mut Bundle, owner_pid: i64, prefix: &str) -> (String, i64) {
    b.edit(|c| {
        let nss = c["linux"]["namespaces"].as_array_mut().unwrap();
        nss.retain(|n| n["type"] != "pid");
        nss.push(json!({"type": "pid", "path": format!("/proc/{owner_pid}/ns/pid")}));
    });
    let id = unique_id(prefix);
    let init = rt.detached(b, &id);
    let procs = format!("{CGROUP2}/{}/cgroup.procs", default_cgroup(rt.root(), &id));
    let mut child = 0;
    assert!(
        rt_testkit::wait_until(Duration::from_secs(10), || {
            let pids: Vec<i64> = fs::read_to_string(&procs)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.parse().ok())
                .collect();
            let comm = |p: i64| fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
            child = pids.iter().copied().find(|&p| p != init).unwrap_or(0);
            pids.len() == 2 && comm(init).trim() == "sleep" && comm(child).trim() == "sleep"
        }),
        "{id} runs its init and a child: {:?}",
        fs::read_to_string(&procs)
    );
    (id, child)
}

/// A container in `owner_pid`'s pid namespace whose main process was
/// killed from outside, its child left running: (bundle, id, child).
fn stopped_with_a_leftover_child(rt: &Rt, owner_pid: i64) -> (Bundle, String, i64) {
    let mut b = Bundle::busybox(&["sh", "-c", "sleep 1000 & exec sleep 999"]);
    let (id, child) = joined_with_a_child(rt, &mut b, owner_pid, "leftover");
    let init = rt.state(&id)["pid"].as_i64().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(init).unwrap()),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    rt.wait_status(&id, "stopped");
    (b, id, child)
}

/// As with runc: `kill --all` of a container whose init has exited kills
/// what the init left in its cgroup (it shared a pid namespace, so the
/// init's death took nothing with it), and so does a plain SIGKILL
/// (kill.bats "kill KILL [host pidns + init gone]"); any other signal to
/// the stopped container is refused.
#[test]
fn kill_all_of_a_stopped_container_kills_what_its_init_left() {
    let rt = Rt::new();
    let owner = Bundle::busybox(&["sleep", "1000"]);
    let owner_id = unique_id("pidns-owner");
    let owner_pid = rt.detached(&owner, &owner_id);
    let (b, id, child) = stopped_with_a_leftover_child(&rt, owner_pid);
    assert!(alive(child), "the child outlives the init");

    let err = rt.fails(&["kill", &id, "TERM"]);
    assert_one_line_error(&err, &["container not running"]);
    assert!(alive(child), "a refused kill kills nothing");
    rt.ok(&["kill", &id, "KILL"]);
    assert!(
        rt_testkit::wait_until(Duration::from_secs(10), || !alive(child)),
        "kill KILL left {child} running"
    );
    rt.ok(&["delete", &id]);
    assert_no_leaks(&rt, &id, &b);

    // The same with --all, and another signal than SIGKILL.
    let (b, id, child) = stopped_with_a_leftover_child(&rt, owner_pid);
    rt.ok(&["kill", "--all", &id, "TERM"]);
    assert!(
        rt_testkit::wait_until(Duration::from_secs(10), || !alive(child)),
        "kill --all TERM left {child} running"
    );
    rt.ok(&["delete", &id]);
    assert_no_leaks(&rt, &id, &b);
    rt.ok(&["delete", "-f", &owner_id]);
    assert_no_leaks(&rt, &owner_id, &owner);
}

/// As with runc: a SIGKILL to a container without a pid namespace of its
/// own goes to its whole cgroup, not only to its init.
#[test]
fn sigkill_of_a_container_sharing_a_pid_namespace_kills_its_children() {
    let rt = Rt::new();
    let owner = Bundle::busybox(&["sleep", "1000"]);
    let owner_id = unique_id("pidns-owner");
    let owner_pid = rt.detached(&owner, &owner_id);
    let mut b = Bundle::busybox(&["sh", "-c", "sleep 1000 & exec sleep 999"]);
    let (id, child) = joined_with_a_child(&rt, &mut b, owner_pid, "sharedkill");

    rt.ok(&["kill", &id, "KILL"]);
    rt.wait_status(&id, "stopped");
    assert!(
        rt_testkit::wait_until(Duration::from_secs(10), || !alive(child)),
        "kill KILL left {child} running"
    );
    rt.ok(&["delete", &id]);
    assert_no_leaks(&rt, &id, &b);
    rt.ok(&["delete", "-f", &owner_id]);
    assert_no_leaks(&rt, &owner_id, &owner);
}
