//! Resources written to the container's cgroup v2 files, on the one
//! controller this hybrid host gives cgroup v2: hugetlb. (The full set is
//! proven on a full cgroup v2 host: integration/vm.)

mod common;

use std::fs;
use std::path::Path;

use common::*;
use serde_json::json;

fn hugetlb_available() -> bool {
    fs::read_to_string(format!("{CGROUP2}/cgroup.controllers"))
        .unwrap_or_default()
        .split_whitespace()
        .any(|c| c == "hugetlb")
        && Path::new("/sys/kernel/mm/hugepages/hugepages-2048kB").exists()
}

fn read(p: &str) -> String {
    fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("{p}: {e}"))
        .trim()
        .to_string()
}

/// hugepageLimits become hugetlb.<size>.max before the init runs, `update
/// --resources` changes them live, and a limit that cannot be honoured
/// leaves the old value in place.
#[test]
fn hugepage_limits_are_written_and_updated() {
    assert!(
        hugetlb_available(),
        "this test needs the hugetlb controller on cgroup v2 and 2 MB pages"
    );
    let rt = Rt::new();
    let mut b = Bundle::busybox(&["sleep", "1000"]);
    b.edit(|c| {
        c["linux"]["resources"]["hugepageLimits"] = json!([
            {"pageSize": "2MB", "limit": 4194304},
            {"pageSize": "1GB", "limit": 0}
        ])
    });
    let id = unique_id("huge");
    // create, not run: the limit is there before the container's program.
    rt.ok(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    let cg = format!("{CGROUP2}/{}", default_cgroup(rt.root(), &id));
    assert_eq!(read(&format!("{cg}/hugetlb.2MB.max")), "4194304");
    assert_eq!(read(&format!("{cg}/hugetlb.1GB.max")), "0");
    rt.ok(&["start", &id]);

    let update = |json: &str| {
        let f = tempfile::NamedTempFile::new().unwrap();
        fs::write(f.path(), json).unwrap();
        rt.run(&["update", "--resources", f.path().to_str().unwrap(), &id])
    };
    let out = update(r#"{"hugepageLimits": [{"pageSize": "2MB", "limit": 8388608}]}"#);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(read(&format!("{cg}/hugetlb.2MB.max")), "8388608");
    // -1 lifts the limit.
    let out = update(r#"{"hugepageLimits": [{"pageSize": "2MB", "limit": -1}]}"#);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(read(&format!("{cg}/hugetlb.1GB.max")), "0");
    let max = read(&format!("{cg}/hugetlb.2MB.max"));
    assert_eq!(max, "max");
    // A page size the kernel does not have: named, nothing changed.
    let out = update(r#"{"hugepageLimits": [{"pageSize": "4MB", "limit": 1}]}"#);
    assert!(!out.status.success());
    assert_one_line_error(&stderr(&out), &["hugetlb.4MB.max", &cg]);
    assert_eq!(read(&format!("{cg}/hugetlb.2MB.max")), "max");

    rt.ok(&["delete", "-f", &id]);
    assert!(!Path::new(&cg).exists(), "delete removes the cgroup");
}

/// A page size this kernel lacks, at create: one line naming the file,
/// nothing left (the cgroup made for it is removed).
#[test]
fn an_unknown_page_size_fails_create_cleanly() {
    assert!(hugetlb_available(), "needs hugetlb on cgroup v2");
    let rt = Rt::new();
    let mut b = Bundle::busybox(&["true"]);
    b.edit(|c| {
        c["linux"]["resources"]["hugepageLimits"] = json!([{"pageSize": "4MB", "limit": 1}])
    });
    let id = unique_id("badhuge");
    let err = rt.fails(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    assert_one_line_error(&err, &["hugetlb.4MB.max", "no such interface file"]);
    assert_no_leaks(&rt, &id, &b);
    assert!(!Path::new(CGROUP2)
        .join(default_cgroup(rt.root(), &id))
        .exists());
}

/// `events --stats` prints one runc-shaped stats event; `events` streams
/// them until the container stops; bad input is one line.
#[test]
fn events_reports_usage_until_the_container_stops() {
    assert!(hugetlb_available(), "needs hugetlb on cgroup v2");
    let rt = Rt::new();
    let mut b = Bundle::busybox(&["sh", "-c", "while :; do :; done"]);
    b.edit(|c| {
        c["linux"]["resources"]["hugepageLimits"] = json!([{"pageSize": "2MB", "limit": 2097152}])
    });
    let id = unique_id("events");
    rt.detached(&b, &id);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let out = rt.ok(&["events", "--stats", &id]);
    assert_eq!(out.lines().count(), 1, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["type"], "stats");
    assert_eq!(v["id"], id.as_str());
    assert!(
        v["data"]["cpu"]["usage"]["total"].as_u64().unwrap() > 0,
        "{v}"
    );
    assert_eq!(v["data"]["hugetlb"]["2MB"]["max"], 2097152, "{v}");

    // Into a file, so the test can see two samples arrive before the kill
    // without a read that could block for ever.
    let out_file = tempfile::NamedTempFile::new().unwrap();
    let mut stream = rt
        .cmd(&["events", "--interval", "100ms", &id])
        .stdout(out_file.reopen().unwrap())
        .spawn()
        .unwrap();
    let samples = || {
        fs::read_to_string(out_file.path())
            .unwrap_or_default()
            .lines()
            .count()
    };
    assert!(
        rt_testkit::wait_until(std::time::Duration::from_secs(20), || samples() >= 2),
        "events printed {} samples in 20 s",
        samples()
    );
    rt.ok(&["kill", &id, "KILL"]);
    // It ends by itself once the container is gone.
    assert!(stream.wait().unwrap().success());
    let lines: Vec<serde_json::Value> = fs::read_to_string(out_file.path())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.len() >= 2, "{lines:?}");
    assert!(lines.iter().all(|l| l["type"] == "stats"));

    let err = rt.fails(&["events", "--stats", &id]);
    assert_one_line_error(&err, &[&id, "stopped"]);
    let err = rt.fails(&["events", "--interval", "soon", &id]);
    assert_one_line_error(&err, &["--interval", "soon"]);
    rt.ok(&["delete", &id]);
    let err = rt.fails(&["events", &id]);
    assert_one_line_error(&err, &["does not exist", &id]);
}

/// `update --resources -` with what Docker sends (recorded from dockerd
/// 20.10 through containerd's runc shim): every `docker update` carries
/// `"kernel": 0, "reservation": 0` and zeros for whatever was not asked
/// for. Those zeros mean "not set" and write nothing; the one limit asked
/// for is applied, or refused in one line naming its controller.
#[test]
fn docker_update_zeros_are_not_set() {
    assert!(hugetlb_available(), "needs hugetlb on cgroup v2");
    let rt = Rt::new();
    let b = Bundle::busybox(&["sleep", "1000"]);
    let id = unique_id("dockerupd");
    rt.detached(&b, &id);
    let cg = format!("{CGROUP2}/{}", default_cgroup(rt.root(), &id));
    let update = |json: &str| {
        use std::io::Write;
        let mut child = rt
            .cmd(&["update", "--resources", "-", &id])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(json.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let zeros = r#""memory":{"limit":0,"reservation":0,"kernel":0},"cpu":{"shares":0,"quota":0,"period":0},"blockIO":{"weight":0}"#;
    let out = update(&format!(
        r#"{{{zeros},"hugepageLimits":[{{"pageSize":"2MB","limit":2097152}}]}}"#
    ));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(read(&format!("{cg}/hugetlb.2MB.max")), "2097152");
    // `docker update --memory 64m`: memory is not on cgroup v2 here.
    let out = update(
        r#"{"memory":{"limit":67108864,"reservation":0,"kernel":0},"cpu":{"shares":0,"quota":0,"period":0},"blockIO":{"weight":0}}"#,
    );
    assert!(!out.status.success());
    assert_one_line_error(
        &stderr(&out),
        &["linux.resources.memory", "memory controller"],
    );
    // A real kernel memory limit is ignored with runc's warning.
    let out = update(r#"{"memory":{"kernel":1048576}}"#);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out)
            .contains("warning: linux.resources.memory.kernel: Kernel memory settings are ignored"),
        "{}",
        stderr(&out)
    );
    assert_eq!(read(&format!("{cg}/hugetlb.2MB.max")), "2097152");
    rt.ok(&["delete", "-f", &id]);
}

/// A hybrid host's admin may choose, in rt's settings file (`RT_CONFIG`
/// here, /etc/rt/config.json by default), that limits whose controller
/// the host keeps in cgroup v1 are skipped: the container then runs, each
/// skipped field named in a warning, and what cgroup v2 has here is still
/// applied. Without that choice the same config is refused in one line
/// that names the setting; a bad settings file is one line naming it.
#[test]
fn cgroup_v1_limits_are_skipped_only_when_the_settings_say_so() {
    let controllers = fs::read_to_string(format!("{CGROUP2}/cgroup.controllers")).unwrap();
    if controllers.split_whitespace().any(|c| c == "cpu") {
        eprintln!("skipped: cgroup v2 has the cpu controller here (not a hybrid host)");
        return;
    }
    let rt = Rt::new();
    let dir = tempfile::tempdir().unwrap();
    let settings = dir.path().join("config.json");
    let mut b = Bundle::busybox(&["sh", "-c", "echo ran"]);
    b.edit(|c| {
        // What containerd 2.x gives a pod sandbox, and a container's limits.
        c["linux"]["resources"] = json!({
            "cpu": {"shares": 2, "quota": 50000, "period": 100000},
            "memory": {"limit": 67108864},
            "pids": {"limit": 100}
        })
    });
    let run = |setting: &str| {
        fs::write(&settings, setting).unwrap();
        let id = unique_id("v1limits");
        let out = rt
            .cmd(&["run", "--bundle", b.path().to_str().unwrap(), &id])
            .env("RT_CONFIG", &settings)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert_no_leaks(&rt, &id, &b);
        out
    };

    for refuse in ["{}", r#"{"cgroupV1Limits": "refuse"}"#] {
        let out = run(refuse);
        assert!(!out.status.success(), "{refuse}: {}", stdout(&out));
        assert_one_line_error(
            &stderr(&out),
            &[
                "linux.resources.",
                "controller is not available",
                "cgroupV1Limits",
            ],
        );
    }

    let out = run(r#"{"cgroupV1Limits": "skip"}"#);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert_eq!(stdout(&out), "ran\n");
    for field in ["cpu.shares", "cpu.quota", "memory.limit", "pids.limit"] {
        assert!(
            err.contains(&format!("linux.resources.{field}: skipped")),
            "{field} named: {err}"
        );
    }

    let out = run(r#"{"cgroupV1Limits": "sometimes"}"#);
    assert!(!out.status.success());
    assert_one_line_error(
        &stderr(&out),
        &[settings.to_str().unwrap(), "unknown variant `sometimes`"],
    );
}
