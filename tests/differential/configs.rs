//! Scenarios from configs other tools wrote (tests/data/configs, captured
//! by its capture.sh): each runs on rt and on runc, and what the process
//! saw inside is compared byte for byte.

use std::path::Path;

use serde_json::{json, Value};

use crate::common::*;
use crate::{Pair, KNOWN};

/// What the process reports from inside: who it is, its capabilities,
/// seccomp and no_new_privs, limits, hostname, devices, and every mount
/// point with its per-mount options and file system type.
const PROBE: &str =
    "echo hi; grep -E '^(Uid|Gid|Groups|Cap[A-Za-z]+|NoNewPrivs|Seccomp):' /proc/self/status; \
    echo nofile=$(ulimit -n) umask=$(umask) cwd=$(pwd) host=$(hostname); \
    ls /dev | tr '\\n' ' '; echo; \
    awk '{ for (i = 7; $i != \"-\"; i++); print $5, $6, $(i+1) }' /proc/self/mountinfo";

/// A captured config made runnable in `b`: the bundle's rootfs as its
/// root (unless `root` is given), the probe as its process, no terminal,
/// a scratch file for each bind source that named the capture's scratch
/// directory, no hook that named it (the capturing dockerd is gone), and
/// a cgroup path of this run's own so no two runs share one.
fn adopt(b: &mut Bundle, name: &str, root: &str) {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/data/configs/{name}")),
    )
    .unwrap();
    let mut c: Value = serde_json::from_str(&text).unwrap();
    let files = b.path().join("files");
    std::fs::create_dir_all(&files).unwrap();
    c["root"]["path"] = json!(root);
    c["process"]["args"] = json!(["sh", "-c", PROBE]);
    c["process"]["terminal"] = json!(false);
    for m in c["mounts"].as_array_mut().unwrap() {
        if m["source"] == "@SCRATCH@" {
            let dest = m["destination"].as_str().unwrap().replace('/', "_");
            let f = files.join(dest);
            if m["destination"] == "/dev/shm" {
                std::fs::create_dir_all(&f).unwrap();
            } else {
                std::fs::write(&f, "captured\n").unwrap();
            }
            m["source"] = json!(f);
        }
    }
    if let Some(hooks) = c.get_mut("hooks").and_then(Value::as_object_mut) {
        for list in hooks.values_mut() {
            list.as_array_mut()
                .unwrap()
                .retain(|h| !h.to_string().contains("@SCRATCH@"));
        }
    }
    // Top level: a parent (`/docker`) would be made by both runtimes
    // and removed by neither.
    if c["linux"]["cgroupsPath"].is_string() {
        c["linux"]["cgroupsPath"] = json!(format!("/{}", unique_id("diffcfg")));
    }
    b.edit(|cfg| *cfg = c);
}

/// Runs `name`'s config on both and compares the exit code and every
/// byte the process wrote; both leave nothing behind.
fn same_run(name: &str) -> String {
    let mut b = Bundle::busybox(&["true"]);
    adopt(&mut b, name, "rootfs");
    same_run_in(name, b)
}

/// A config with limits for controllers this hybrid host keeps on cgroup
/// v1 (`controllers`): rt, cgroup v2 only, refuses it with one line
/// naming the first controller and leaves nothing (see [`KNOWN`]); with
/// only its device rules kept, it runs as under runc.
fn same_run_but_v1_limits(name: &str, controllers: &[&str]) -> String {
    let have = std::fs::read_to_string(Path::new(CGROUP2).join("cgroup.controllers")).unwrap();
    let mut b = Bundle::busybox(&["true"]);
    adopt(&mut b, name, "rootfs");
    if controllers
        .iter()
        .all(|c| !have.split_whitespace().any(|h| h == *c))
    {
        let rt = Rt::new();
        let id = unique_id("diffv1");
        let err = rt.fails(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
        let named = format!("linux.resources.{}", controllers[0]);
        assert_one_line_error(&err, &[&named, "not available in cgroup v2"]);
        assert_no_leaks(&rt, &id, &b);
    }
    b.edit(|c| {
        let devices = c["linux"]["resources"]["devices"].take();
        c["linux"]["resources"] = json!({ "devices": devices });
    });
    same_run_in(name, b)
}

fn same_run_in(name: &str, b: Bundle) -> String {
    let p = Pair::new();
    let id = unique_id("diffcfg");
    let (rt, runc) = p.step(name, &b, &["run", &id], false);
    assert_eq!(rt.code, 0, "{name}: {rt:?}");
    assert_eq!(seen(&rt.stdout), seen(&runc.stdout), "{name}: stdout");
    // runc 1.3 warns of ambient capabilities it cannot raise, as rt
    // does; the runc 1.1.5 compared with here does not.
    let rt_stderr: String = rt
        .stderr
        .lines()
        .filter(|l| !l.contains("can't raise ambient capability"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(rt_stderr, runc.stderr, "{name}: stderr");
    let cg = b_cgroup(&b);
    p.clean(&b, &[&id]);
    if let Some(cg) = cg {
        assert!(
            !Path::new(CGROUP2).join(cg.trim_start_matches('/')).exists(),
            "{name}: rt left its cgroup {cg}"
        );
    }
    rt.stdout
}

/// The probe's output but for the mounts under /sys/fs/cgroup: a `cgroup`
/// mount is cgroup v1's hierarchies under runc on this hybrid host and
/// the cgroup2 file system under rt (see [`KNOWN`]).
fn seen(out: &str) -> String {
    out.lines()
        .filter(|l| !l.starts_with("/sys/fs/cgroup"))
        .map(|l| format!("{l}\n"))
        .collect()
}

fn b_cgroup(b: &Bundle) -> Option<String> {
    let c: Value =
        serde_json::from_str(&std::fs::read_to_string(b.path().join("config.json")).unwrap())
            .unwrap();
    c["linux"]["cgroupsPath"].as_str().map(str::to_string)
}

#[test]
fn runc_spec() {
    let out = same_run("runc-spec.json");
    assert!(out.starts_with("hi\n"), "{out}");
}

#[test]
fn runc_spec_rootless() {
    let out = same_run("runc-spec-rootless.json");
    assert!(out.starts_with("hi\n"), "{out}");
}

#[test]
fn crun_spec() {
    same_run("crun-spec.json");
}

#[test]
fn containerd_ctr() {
    same_run_but_v1_limits("ctr.json", &["cpu"]);
}

#[test]
fn docker() {
    let out = same_run("docker.json");
    assert!(out.contains("Seccomp:\t2"), "docker's profile: {out}");
}

#[test]
fn podman() {
    same_run_but_v1_limits("podman.json", &["pids"]);
}

/// A runtime-tools generator config: root ".", so config.json sits in
/// the root filesystem and the bundle is the rootfs itself; the 2017
/// profile, every capability set filled, noNewPrivileges false.
#[test]
fn runtime_tools_generator() {
    let p = Pair::new();
    let mut b = Bundle::busybox(&["true"]);
    adopt(&mut b, "generator.json", ".");
    let rootfs = b.rootfs();
    std::fs::copy(b.path().join("config.json"), rootfs.join("config.json")).unwrap();
    let id = unique_id("diffgen");
    let bundle = rootfs.to_str().unwrap();
    let (rt, runc) = p.step("generator", &b, &["run", "--bundle", bundle, &id], false);
    assert_eq!(rt.code, 0, "{rt:?}");
    assert_eq!(seen(&rt.stdout), seen(&runc.stdout), "generator: stdout");
    assert_eq!(rt.stderr, runc.stderr);
    assert!(
        rt.stdout.contains("CapAmb:\t00000000a80425fb"),
        "{}",
        rt.stdout
    );
    p.clean(&b, &[&id]);
}

/// containerd's CRI plugin: a pod's sandbox (`sleep inf` as its pause)
/// and a container joining its namespaces through /proc/<pid>/ns, as
/// kubelet makes them. Each runtime gets its own pod; the container's
/// view is compared.
#[test]
fn containerd_cri_pod() {
    let p = Pair::new();
    let mut sandbox = Bundle::busybox(&["true"]);
    adopt(&mut sandbox, "cri-sandbox.json", "rootfs");
    sandbox.edit(|c| c["process"]["args"] = json!(["sleep", "inf"]));
    let pod = unique_id("diffpod");
    let mut seen_by = Vec::new();
    for r in [&p.rt, &p.runc] {
        let o = r.run(&sandbox, &["run", "-d", &pod]);
        assert_eq!(o.code, 0, "{}: sandbox: {o:?}", r.bin.display());
        let st: Value = serde_json::from_str(&r.run(&sandbox, &["state", &pod]).stdout).unwrap();
        let pid = st["pid"].as_i64().unwrap();
        let mut ctr = Bundle::busybox(&["true"]);
        adopt(&mut ctr, "cri-container.json", "rootfs");
        ctr.edit(|c| {
            let text = c.to_string().replace("@SANDBOX_PID@", &pid.to_string());
            *c = serde_json::from_str(&text).unwrap();
        });
        let id = unique_id("diffctr");
        let o = r.run(&ctr, &["run", &id]);
        assert_eq!(o.code, 0, "{}: container: {o:?}", r.bin.display());
        seen_by.push(seen(&o.stdout));
        r.clean(&ctr, &[&id]);
    }
    assert_eq!(seen_by[0], seen_by[1], "the container's view: rt, runc");
    p.clean(&sandbox, &[&pod]);
}

#[test]
fn every_config_has_a_scenario() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/configs");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    let src = include_str!("configs.rs");
    for n in &names {
        assert!(src.contains(&format!("\"{n}\"")), "{n} has no scenario");
    }
    assert!(names.len() >= 9, "{names:?}");
    assert!(!KNOWN.is_empty());
}
