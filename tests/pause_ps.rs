//! pause/resume (cgroup.freeze, which any non-root cgroup v2 has, so
//! these run on the hybrid host too) and ps.

mod common;

use std::fs;
use std::time::Duration;

use common::*;
use serde_json::json;

fn counter_bundle(out: &std::path::Path) -> Bundle {
    let mut b = Bundle::busybox(&[
        "sh",
        "-c",
        "i=0; while :; do i=$((i+1)); echo $i > /out/n; sleep 0.01; done",
    ]);
    b.add_mount(json!({"destination": "/out", "type": "bind",
        "source": out, "options": ["rbind", "rw"]}));
    b
}

fn count(out: &std::path::Path) -> u64 {
    fs::read_to_string(out.join("n"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_paused_container_makes_no_progress_until_resumed() {
    let rt = Rt::new();
    let out = tempfile::tempdir().unwrap();
    let b = counter_bundle(out.path());
    let id = unique_id("pause");
    rt.detached(&b, &id);
    while count(out.path()) < 3 {
        std::thread::sleep(Duration::from_millis(10));
    }
    rt.ok(&["pause", &id]);
    assert_eq!(rt.status(&id), "paused");
    assert!(rt.ok(&["list"]).contains("paused"));
    let frozen_at = count(out.path());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        count(out.path()),
        frozen_at,
        "the counter moved while paused"
    );
    let err = rt.fails(&["pause", &id]);
    assert_one_line_error(&err, &["already paused"]);
    let err = rt.fails(&["exec", &id, "true"]);
    assert_one_line_error(&err, &["paused"]);

    rt.ok(&["resume", &id]);
    assert_eq!(rt.status(&id), "running");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while count(out.path()) <= frozen_at {
        assert!(
            std::time::Instant::now() < deadline,
            "no progress after resume"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let err = rt.fails(&["resume", &id]);
    assert_one_line_error(&err, &["not paused"]);

    // A paused container can be deleted with --force.
    rt.ok(&["pause", &id]);
    rt.ok(&["delete", "-f", &id]);
    assert_no_leaks(&rt, &id, &b);
}

#[test]
fn pause_of_what_is_not_running_is_refused() {
    let rt = Rt::new();
    let b = Bundle::busybox(&["sleep", "1000"]);
    let id = unique_id("pausecreated");
    rt.ok(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    let err = rt.fails(&["pause", &id]);
    assert_one_line_error(&err, &["created", "only a running container"]);
    rt.ok(&["delete", "-f", &id]);
    let err = rt.fails(&["pause", &id]);
    assert_one_line_error(&err, &["does not exist", &id]);
    let err = rt.fails(&["resume", "no-such-container"]);
    assert_one_line_error(&err, &["does not exist"]);
}

#[test]
fn ps_lists_the_containers_processes() {
    let rt = Rt::new();
    let b = Bundle::busybox(&["sleep", "1000"]);
    let id = unique_id("ps");
    let init = rt.detached(&b, &id);
    let exec = rt
        .cmd(&["exec", "-d", &id, "sleep", "999"])
        .status()
        .unwrap();
    assert!(exec.success());
    let pids: Vec<i64> = serde_json::from_str(&rt.ok(&["ps", "--format", "json", &id])).unwrap();
    assert!(pids.contains(&init), "{pids:?}");
    assert_eq!(pids.len(), 2, "the init and the exec'd sleep: {pids:?}");
    let table = rt.ok(&["ps", &id]);
    let mut lines = table.lines();
    assert!(lines.next().unwrap().contains("PID"), "{table}");
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 2, "{table}");
    assert!(rows.iter().any(|r| r.contains("sleep 1000")), "{table}");
    assert!(rows.iter().any(|r| r.contains("sleep 999")), "{table}");
    // ps(1) options go through.
    let custom = rt.ok(&["ps", &id, "-o", "pid,comm"]);
    assert_eq!(custom.lines().count(), 3, "{custom}");
    rt.ok(&["delete", "-f", &id]);
    let err = rt.fails(&["ps", &id]);
    assert_one_line_error(&err, &["does not exist", &id]);
}

#[test]
fn update_names_what_it_cannot_do() {
    let rt = Rt::new();
    let b = Bundle::busybox(&["sleep", "1000"]);
    let id = unique_id("update");
    rt.detached(&b, &id);
    // runc's flags: on this hybrid host memory is a cgroup v1 controller.
    let mem_available = fs::read_to_string("/sys/fs/cgroup/unified/cgroup.controllers")
        .unwrap_or_default()
        .split_whitespace()
        .any(|c| c == "memory");
    let cg = format!("{CGROUP2}/{}", default_cgroup(rt.root(), &id));
    if mem_available {
        rt.ok(&["update", "--memory", "67108864", &id]);
        assert_eq!(
            fs::read_to_string(format!("{cg}/memory.max"))
                .unwrap()
                .trim(),
            "67108864"
        );
    } else {
        let err = rt.fails(&["update", "--memory", "67108864", &id]);
        assert_one_line_error(&err, &["memory controller", "not available"]);
    }
    // What v2 cannot express is named whatever the host.
    let err = rt.fails(&[
        "update",
        "--memory",
        "67108864",
        "--memory-swap",
        "1048576",
        &id,
    ]);
    assert_one_line_error(&err, &["linux.resources.memory.swap"]);
    // --resources - as containerd sends it.
    let out = rt
        .cmd(&["update", "--resources", "-", &id])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin
                .take()
                .unwrap()
                .write_all(br#"{"pids": {"limit": 100}}"#)?;
            c.wait_with_output()
        })
        .unwrap();
    let pids_available = fs::read_to_string(format!("{CGROUP2}/cgroup.controllers"))
        .unwrap_or_default()
        .split_whitespace()
        .any(|c| c == "pids");
    if pids_available {
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(
            fs::read_to_string(format!("{cg}/pids.max")).unwrap().trim(),
            "100"
        );
    } else {
        assert!(!out.status.success());
        assert_one_line_error(&stderr(&out), &["linux.resources.pids", "pids controller"]);
    }
    let err = rt.fails(&["update", "--resources", "/no/such.json", &id]);
    assert_one_line_error(&err, &["--resources", "/no/such.json"]);
    // An empty update changes nothing and succeeds.
    rt.ok(&["update", &id]);
    assert_eq!(rt.status(&id), "running");
    rt.ok(&["delete", "-f", &id]);
    let err = rt.fails(&["update", "--pids-limit", "10", &id]);
    assert_one_line_error(&err, &["does not exist", &id]);
}

/// runc's update flags, spelled as runc spells them (`--cpu-share`, with
/// `--cpu-shares` kept as an alias), sizes with units, and the Intel RDT
/// schemata: each reaches the cgroup file it sets, or is refused naming
/// what this host lacks.
#[test]
fn update_takes_runcs_flags() {
    let rt = Rt::new();
    let b = Bundle::busybox(&["sleep", "1000"]);
    let id = unique_id("updflags");
    rt.detached(&b, &id);
    let v2 = fs::read_to_string(format!("{CGROUP2}/cgroup.controllers")).unwrap_or_default();
    let has = |c: &str| v2.split_whitespace().any(|x| x == c);
    let cg = format!("{CGROUP2}/{}", default_cgroup(rt.root(), &id));
    let file = |name: &str| fs::read_to_string(format!("{cg}/{name}")).unwrap();
    let cpu_cases: [(&[&str], &str, &str); 4] = [
        (&["--cpu-share", "1024"], "cpu.weight", "100"),
        (&["--cpu-shares", "2"], "cpu.weight", "1"),
        (
            &["--cpu-period", "100000", "--cpu-burst", "500"],
            "cpu.max.burst",
            "500",
        ),
        (&["--cpu-idle", "1"], "cpu.idle", "1"),
    ];
    for (flags, name, want) in cpu_cases {
        let mut args = vec!["update"];
        args.extend(flags);
        args.push(&id);
        if has("cpu") {
            rt.ok(&args);
            assert_eq!(file(name).trim(), want, "{flags:?}");
        } else {
            let err = rt.fails(&args);
            assert_one_line_error(&err, &["linux.resources.cpu", "cpu controller"]);
        }
    }
    let args = ["update", "--memory", "50M", &id];
    if has("memory") {
        rt.ok(&args);
        assert_eq!(file("memory.max").trim(), (50 << 20).to_string());
    } else {
        let err = rt.fails(&args);
        assert_one_line_error(&err, &["linux.resources.memory", "memory controller"]);
    }
    let err = rt.fails(&["update", "--memory", "5x", &id]);
    assert_one_line_error(&err, &["--memory", "\"5x\"", "not a size"]);
    // Real-time budgets are cgroup v1's: a warning, as runc on cgroup v2.
    let out = rt.run(&[
        "update",
        "--cpu-rt-period",
        "1000",
        "--cpu-rt-runtime",
        "500",
        &id,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("warning: linux.resources.cpu.realtimePeriod"),
        "{}",
        stderr(&out)
    );
    // This container has no Intel RDT group (and most hosts no resctrl).
    for flag in ["--l3-cache-schema", "--mem-bw-schema"] {
        let err = rt.fails(&["update", flag, "L3:0=f", &id]);
        let resctrl = std::path::Path::new("/sys/fs/resctrl/schemata").exists();
        let why = if resctrl {
            "has no Intel RDT group"
        } else {
            "resctrl is not mounted"
        };
        assert_one_line_error(&err, &["Intel RDT", why]);
    }
    assert_eq!(rt.status(&id), "running");
    rt.ok(&["delete", "-f", &id]);
    assert_no_leaks(&rt, &id, &b);
}
