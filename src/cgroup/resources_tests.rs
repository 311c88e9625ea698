//! The plan of cgroup v2 writes from OCI resources, without root: each
//! controller's files and values, what v2 cannot say, and applying them
//! to a directory tree.

use super::*;

fn res(json: &str) -> LinuxResources {
    serde_json::from_str(json).unwrap()
}

fn files(json: &str) -> Vec<(String, String)> {
    plan(&res(json))
        .unwrap()
        .into_iter()
        .map(|w| (w.file, w.value))
        .collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn cpu() {
    assert_eq!(shares_to_weight(2), 1);
    assert_eq!(shares_to_weight(1024), 100);
    assert_eq!(shares_to_weight(100), 17);
    assert_eq!(shares_to_weight(512), 59);
    assert_eq!(shares_to_weight(262_144), 10_000);
    assert_eq!(shares_to_weight(1), 1);
    assert_eq!(
        files(
            r#"{"cpu": {"shares": 1024, "quota": 50000, "period": 100000, "burst": 1000, "idle": 0, "cpus": "0-1", "mems": "0"}}"#
        ),
        pairs(&[
            ("cpu.weight", "100"),
            ("cpu.max", "50000 100000"),
            ("cpu.max.burst", "1000"),
            ("cpu.idle", "0"),
            ("cpuset.cpus", "0-1"),
            ("cpuset.mems", "0"),
        ])
    );
    assert_eq!(
        files(r#"{"cpu": {"quota": -1}}"#),
        pairs(&[("cpu.max", "max 100000")])
    );
    assert_eq!(
        files(r#"{"cpu": {"period": 50000}}"#),
        pairs(&[("cpu.max", "max 50000")])
    );
    // Ignored with a warning, as runc does on cgroup v2.
    assert_eq!(files(r#"{"cpu": {"realtimeRuntime": 1000}}"#), vec![]);
}

#[test]
fn memory() {
    assert_eq!(
        files(r#"{"memory": {"limit": 104857600, "reservation": 52428800, "swap": 209715200}}"#),
        pairs(&[
            ("memory.low", "52428800"),
            ("memory.max", "104857600"),
            ("memory.swap.max", "104857600"),
        ])
    );
    assert_eq!(
        files(r#"{"memory": {"limit": -1, "swap": -1}}"#),
        pairs(&[("memory.max", "max"), ("memory.swap.max", "max")])
    );
    // `update --memory -1`: swap is lifted with it.
    assert_eq!(
        files(r#"{"memory": {"limit": -1}}"#),
        pairs(&[("memory.max", "max"), ("memory.swap.max", "max")])
    );
    // Docker's "unset" zeros write nothing.
    assert_eq!(files(r#"{"memory": {"limit": 0, "swap": 0}}"#), pairs(&[]));
    // What `docker update --cpu-shares 512` sends: only cpu.weight.
    assert_eq!(
        files(
            r#"{"memory": {"limit": 0, "reservation": 0, "kernel": 0, "kernelTCP": 0},
                "cpu": {"shares": 512, "quota": 0, "period": 0}, "blockIO": {"weight": 0}}"#
        ),
        pairs(&[("cpu.weight", "59")])
    );
    for (json, field) in [
        (r#"{"memory": {"limit": 100, "swap": 50}}"#, "memory.swap"),
        (r#"{"memory": {"swap": 50}}"#, "memory.swap"),
    ] {
        let e = plan(&res(json)).unwrap_err().to_string();
        assert!(
            e.contains(&format!("linux.resources.{field}")),
            "{json}: {e}"
        );
    }
    // What runc ignores on cgroup v2: ignored, with a warning.
    for json in [
        r#"{"memory": {"kernel": 50}}"#,
        r#"{"memory": {"kernelTCP": 50}}"#,
        r#"{"memory": {"swappiness": 50}}"#,
        r#"{"memory": {"disableOOMKiller": true}}"#,
        r#"{"memory": {"disableOOMKiller": false}}"#,
    ] {
        assert_eq!(files(json), vec![], "{json}");
    }
}

#[test]
fn update_keeps_the_cpu_max_part_it_is_not_given() {
    let keep = |json: &str, current: &str| {
        let r = res(json);
        let mut w = plan(&r).unwrap();
        keep_unchanged_cpu_max(&r, current, &mut w);
        w.into_iter().map(|w| (w.file, w.value)).collect::<Vec<_>>()
    };
    // update.bats "update cgroup cpu limits": --cpu-period alone.
    assert_eq!(
        keep(r#"{"cpu": {"period": 900000}}"#, "500000 1000000\n"),
        pairs(&[("cpu.max", "500000 900000")])
    );
    assert_eq!(
        keep(r#"{"cpu": {"quota": 600000}}"#, "500000 900000\n"),
        pairs(&[("cpu.max", "600000 900000")])
    );
    assert_eq!(
        keep(r#"{"cpu": {"quota": -1}}"#, "500000 900000\n"),
        pairs(&[("cpu.max", "max 900000")])
    );
    assert_eq!(
        keep(
            r#"{"cpu": {"quota": 1000, "period": 2000}}"#,
            "500000 900000\n"
        ),
        pairs(&[("cpu.max", "1000 2000")])
    );
}

#[test]
fn check_before_update_compares_with_usage_in_runcs_words() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("memory.current"), "167936\n").unwrap();
    std::fs::write(d.path().join("memory.swap.current"), "4096\n").unwrap();
    let check = |json: &str| {
        check_memory_usage(d.path(), &plan(&res(json)).unwrap())
            .err()
            .map(|e| e.to_string())
    };
    let e = check(r#"{"memory": {"limit": 1024}}"#).unwrap();
    assert!(
        e.contains("linux.resources.memory.limit")
            && e.contains("rejecting memory limit 1024 below current usage 167936"),
        "{e}"
    );
    let e = check(r#"{"memory": {"limit": 1024, "swap": 2048}}"#).unwrap();
    assert!(
        e.contains("rejecting memory+swap limit 2048 below current usage 172032"),
        "{e}"
    );
    assert_eq!(check(r#"{"memory": {"limit": 1048576}}"#), None);
    assert_eq!(
        check(r#"{"memory": {"limit": 1048576, "swap": 2097152}}"#),
        None
    );
    assert_eq!(check(r#"{"pids": {"limit": 1}}"#), None);
}

#[test]
fn pids_io_hugetlb_rdma_unified() {
    assert_eq!(files(r#"{"pids": {"limit": 0}}"#), pairs(&[]));
    assert_eq!(
        files(r#"{"pids": {"limit": -1}}"#),
        pairs(&[("pids.max", "max")])
    );
    assert_eq!(
        files(
            r#"{"pids": {"limit": 20},
                "blockIO": {"weight": 500,
                  "weightDevice": [{"major": 8, "minor": 0, "weight": 10}],
                  "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
                  "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 0}]},
                "hugepageLimits": [{"pageSize": "2MB", "limit": 0}, {"pageSize": "1GB", "limit": -1}],
                "rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}},
                "unified": {"memory.high": "50M", "io.latency": "8:0 target=60"}}"#
        ),
        pairs(&[
            ("pids.max", "20"),
            ("io.weight", "4950"),
            ("io.weight", "8:0 1"),
            ("io.max", "8:0 rbps=1048576"),
            ("io.max", "8:16 wiops=max"),
            ("hugetlb.2MB.max", "0"),
            ("hugetlb.2MB.rsvd.max", "0"),
            ("hugetlb.1GB.max", "max"),
            ("hugetlb.1GB.rsvd.max", "max"),
            ("rdma.max", "mlx5_1 hca_handle=3 hca_object=10000"),
            ("io.latency", "8:0 target=60"),
            ("memory.high", "50M"),
        ])
    );
    // Several lines are several writes (cgroups.bats "per-device
    // multiple iops via unified").
    assert_eq!(
        files(r#"{"unified": {"io.max": "7:0 riops=333 wiops=444\n7:1 riops=555 wiops=666\n"}}"#),
        pairs(&[
            ("io.max", "7:0 riops=333 wiops=444"),
            ("io.max", "7:1 riops=555 wiops=666"),
        ])
    );
    for (json, field) in [
        (
            r#"{"hugepageLimits": [{"pageSize": "../x", "limit": 1}]}"#,
            "hugepageLimits",
        ),
        (r#"{"unified": {"../../escape.max": "1"}}"#, "unified"),
        (r#"{"unified": {"cgroup.procs": "1"}}"#, "unified"),
        (r#"{"unified": {"nodot": "1"}}"#, "unified"),
    ] {
        let e = plan(&res(json)).unwrap_err().to_string();
        assert!(
            e.contains(&format!("linux.resources.{field}")),
            "{json}: {e}"
        );
    }
}

#[test]
fn controllers_of_the_plan() {
    let w = plan(&res(
        r#"{"memory": {"limit": 1000000}, "pids": {"limit": 5}, "unified": {"memory.high": "1M", "cgroup.freeze": "0"}}"#,
    ))
    .unwrap();
    assert_eq!(controllers(&w), vec!["memory", "pids"]);
}

/// A temporary directory stands in for a cgroup tree: the files a
/// kernel would offer exist, writes land in them, and the controllers
/// are enabled in every ancestor.
#[test]
fn apply_writes_files_and_enables_controllers_down_the_tree() {
    let t = tempfile::tempdir().unwrap();
    let mount = t.path();
    let leaf = mount.join("rt/c1");
    fs::create_dir_all(&leaf).unwrap();
    for d in [mount.to_path_buf(), mount.join("rt")] {
        fs::write(d.join("cgroup.subtree_control"), "").unwrap();
    }
    for f in ["memory.max", "memory.swap.max", "pids.max", "cpu.max"] {
        fs::write(leaf.join(f), "").unwrap();
    }
    let w = plan(&res(
        r#"{"memory": {"limit": 1048576, "swap": 2097152}, "pids": {"limit": 7}, "cpu": {"quota": 1000}}"#,
    ))
    .unwrap();
    apply(mount, &leaf, &w).unwrap();
    let read = |p: &Path| fs::read_to_string(p).unwrap();
    assert_eq!(read(&leaf.join("memory.max")), "1048576");
    assert_eq!(read(&leaf.join("memory.swap.max")), "1048576");
    assert_eq!(read(&leaf.join("pids.max")), "7");
    assert_eq!(read(&leaf.join("cpu.max")), "1000 100000");
    for d in [mount.to_path_buf(), mount.join("rt")] {
        assert_eq!(
            read(&d.join("cgroup.subtree_control")),
            "+memory +cpu +pids"
        );
    }
    // A file the cgroup does not have is named.
    let w = plan(&res(r#"{"unified": {"memory.high": "1M"}}"#)).unwrap();
    let e = write_all(&leaf, &w).unwrap_err().to_string();
    assert!(
        e.contains("memory.high") && e.contains("no such interface file"),
        "{e}"
    );
}
