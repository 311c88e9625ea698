//! `rt features` checked against what rt does: everything it lists is
//! accepted and works, everything it says is disabled is refused.

mod common;

use std::fs;

use common::*;
use serde_json::{json, Value};

fn features(rt: &Rt) -> Value {
    serde_json::from_str(&rt.ok(&["features"])).expect("features JSON")
}

fn runs(rt: &Rt, b: &Bundle) {
    let id = unique_id("feat");
    let (code, out, err) = run_in(rt, b, &id);
    assert_eq!(code, 0, "stdout {out}; stderr {err}");
    assert_no_leaks(rt, &id, b);
}

fn refused(rt: &Rt, b: &Bundle, needles: &[&str]) {
    let id = unique_id("featno");
    let err = rt.fails(&["run", "--bundle", b.path().to_str().unwrap(), &id]);
    assert_one_line_error(&err, needles);
    assert_no_leaks(rt, &id, b);
}

#[test]
fn versions_match_what_is_accepted() {
    let rt = Rt::new();
    let f = features(&rt);
    let b = Bundle::busybox(&["true"]);
    let id = unique_id("featver");
    rt.ok(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    assert_eq!(rt.state(&id)["ociVersion"], f["ociVersionMax"]);
    rt.ok(&["delete", "-f", &id]);
    let mut b = Bundle::busybox(&["true"]);
    let min = f["ociVersionMin"].clone();
    b.edit(|c| c["ociVersion"] = min);
    runs(&rt, &b);
}

#[test]
fn every_listed_hook_kind_runs() {
    let rt = Rt::new();
    let f = features(&rt);
    let dir = tempfile::tempdir().unwrap();
    let mut hooks = serde_json::Map::new();
    let kinds: Vec<String> = f["hooks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds.len(), 6, "{kinds:?}");
    for k in &kinds {
        // startContainer runs inside the container: touch a file there.
        let hook = if k == "startContainer" {
            json!({"path": "/bin/touch", "args": ["touch", "/dev/shm/started"]})
        } else {
            json!({"path": "/usr/bin/touch", "args": ["touch", dir.path().join(k)]})
        };
        hooks.insert(k.clone(), json!([hook]));
    }
    let mut b = Bundle::busybox(&["sh", "-c", "test -e /dev/shm/started"]);
    b.edit(|c| c["hooks"] = Value::Object(hooks));
    runs(&rt, &b);
    for k in kinds.iter().filter(|k| *k != "startContainer") {
        assert!(dir.path().join(k).exists(), "{k} hook did not run");
    }
}

#[test]
fn every_listed_namespace_can_be_made() {
    let rt = Rt::new();
    let f = features(&rt);
    for ns in f["linux"]["namespaces"].as_array().unwrap() {
        let ns = ns.as_str().unwrap();
        let mut b = Bundle::busybox(&["true"]);
        b.edit(|c| {
            let list = c["linux"]["namespaces"].as_array_mut().unwrap();
            if !list.iter().any(|n| n["type"] == ns) {
                list.push(json!({"type": ns}));
            }
            if ns == "user" {
                c["linux"]["uidMappings"] =
                    json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
                c["linux"]["gidMappings"] =
                    json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
                c["mounts"]
                    .as_array_mut()
                    .unwrap()
                    .retain(|m| m["destination"] != "/sys" && m["destination"] != "/sys/fs/cgroup");
            }
        });
        runs(&rt, &b);
    }
}

#[test]
fn every_listed_mount_option_is_accepted() {
    let rt = Rt::new();
    let f = features(&rt);
    let host = tempfile::tempdir().unwrap();
    fs::write(host.path().join("file"), "x").unwrap();
    let mut b = Bundle::busybox(&["true"]);
    let opts: Vec<String> = f["mountOptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_str().unwrap().to_string())
        .collect();
    assert!(opts.len() > 40, "{opts:?}");
    for o in ["idmap", "ridmap"] {
        assert!(opts.iter().any(|l| l == o), "{o} is listed: {opts:?}");
    }
    let map = json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
    b.edit(|c| {
        let mounts = c["mounts"].as_array_mut().unwrap();
        for (i, o) in opts.iter().enumerate() {
            let mut m = json!({
                "destination": format!("/m/{i}"), "type": "bind",
                "source": host.path(), "options": ["bind", o]
            });
            // An idmapped mount takes its mappings with it.
            if o == "idmap" || o == "ridmap" {
                m["uidMappings"] = map.clone();
                m["gidMappings"] = map.clone();
            }
            mounts.push(m);
        }
    });
    runs(&rt, &b);
}

#[test]
fn every_listed_capability_is_known() {
    let rt = Rt::new();
    let f = features(&rt);
    let caps: Vec<Value> = f["linux"]["capabilities"].as_array().unwrap().clone();
    assert!(caps.iter().any(|c| c == "CAP_SYS_ADMIN"));
    let mut b = Bundle::busybox(&["true"]);
    b.edit(|c| c["process"]["capabilities"]["bounding"] = Value::Array(caps));
    runs(&rt, &b);
}

#[test]
fn every_listed_seccomp_action_operator_and_flag_works() {
    let rt = Rt::new();
    let f = features(&rt);
    let sc = &f["linux"]["seccomp"];
    assert_eq!(sc["enabled"], true);
    let ops = sc["operators"].as_array().unwrap().clone();
    let flags = sc["supportedFlags"].as_array().unwrap().clone();
    for action in sc["actions"].as_array().unwrap() {
        // Each action on a syscall busybox true never makes, with every
        // operator on its arguments and every flag.
        let rules: Vec<Value> = ops
            .iter()
            .map(|op| {
                json!({"names": ["reboot"], "action": action,
                       "args": [{"index": 0, "value": 1, "valueTwo": 1, "op": op}]})
            })
            .collect();
        // WAIT_KILLABLE_RECV is for a notifying filter only.
        let flags: Vec<&Value> = flags
            .iter()
            .filter(|f| {
                action == "SCMP_ACT_NOTIFY" || *f != "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"
            })
            .collect();
        let mut b = Bundle::busybox(&["true"]);
        b.edit(|c| {
            c["linux"]["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ALLOW", "flags": flags, "syscalls": rules
            })
        });
        // NOTIFY needs an agent's socket; the listener it gets is never
        // used, since `true` never calls reboot.
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("agent.sock");
        let _agent = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        if action == "SCMP_ACT_NOTIFY" {
            b.edit(|c| c["linux"]["seccomp"]["listenerPath"] = json!(sock));
        }
        runs(&rt, &b);
    }
}

#[test]
fn disabled_features_are_refused() {
    let rt = Rt::new();
    let f = features(&rt);
    let linux = &f["linux"];
    assert_eq!(linux["apparmor"]["enabled"], false);
    let mut b = Bundle::busybox(&["true"]);
    b.edit(|c| c["process"]["apparmorProfile"] = json!("docker-default"));
    refused(&rt, &b, &["apparmorProfile"]);

    assert_eq!(linux["selinux"]["enabled"], false);
    let mut b = Bundle::busybox(&["true"]);
    b.edit(|c| c["process"]["selinuxLabel"] = json!("system_u:system_r:container_t:s0"));
    refused(&rt, &b, &["selinuxLabel"]);

    assert_eq!(linux["cgroup"]["v1"], false);
    assert_eq!(linux["cgroup"]["v2"], true);
}

#[test]
fn idmapped_mounts_show_files_with_the_mapped_owner() {
    let rt = Rt::new();
    assert_eq!(
        features(&rt)["linux"]["mountExtensions"]["idmap"]["enabled"],
        true
    );
    let host = tempfile::tempdir().unwrap();
    fs::write(host.path().join("file"), "x").unwrap();
    std::os::unix::fs::chown(host.path().join("file"), Some(0), Some(0)).unwrap();
    let map = |id: u32| json!([{"containerID": 0, "hostID": id, "size": 1}]);
    let mut b = Bundle::busybox(&[
        "sh",
        "-c",
        "stat -c '%u:%g' /mapped/file /plain/file; touch /mapped/new; echo rc=$?",
    ]);
    b.add_mount(
        json!({"destination": "/mapped", "type": "bind", "source": host.path(),
        "options": ["rbind", "idmap"], "uidMappings": map(1234), "gidMappings": map(4321)}),
    );
    b.add_mount(
        json!({"destination": "/plain", "type": "bind", "source": host.path(),
        "options": ["rbind"]}),
    );
    let id = unique_id("idmap");
    let (code, out, err) = run_in(&rt, &b, &id);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0], "1234:4321",
        "the owner 0 on disk seen through the mapping: {out}"
    );
    assert_eq!(lines[1], "0:0", "the same file through a plain bind: {out}");
    // Root in the container is uid 0, which the mapping does not cover
    // (only 0 on disk <-> 1234 in the mount): writes are refused.
    assert_eq!(lines[2], "rc=1", "{out} {err}");
    assert!(!host.path().join("new").exists());
    assert_no_leaks(&rt, &id, &b);

    // Bad idmaps: not a bind mount, or half a mapping.
    let mut b = Bundle::busybox(&["true"]);
    b.add_mount(
        json!({"destination": "/t", "type": "tmpfs", "source": "tmpfs",
        "options": ["idmap"], "uidMappings": map(1), "gidMappings": map(1)}),
    );
    refused(&rt, &b, &["mounts[", "bind mounts only"]);
    let mut b = Bundle::busybox(&["true"]);
    b.add_mount(
        json!({"destination": "/m", "type": "bind", "source": host.path(),
        "options": ["rbind"], "uidMappings": map(1)}),
    );
    refused(&rt, &b, &["mounts[", "both uidMappings and gidMappings"]);
    let mut b = Bundle::busybox(&["true"]);
    b.add_mount(
        json!({"destination": "/m", "type": "bind", "source": host.path(),
        "options": ["rbind", "idmap"]}),
    );
    refused(&rt, &b, &["mounts[", "idmap needs uidMappings"]);
}

/// Every memoryPolicy mode and flag listed is applied by the kernel (on
/// node 0, which every machine has), and shows in the container's
/// /proc/self/numa_maps.
#[test]
fn every_listed_memory_policy_mode_and_flag_is_applied() {
    let rt = Rt::new();
    let f = features(&rt);
    let names = |k: &str| -> Vec<String> {
        f["linux"]["memoryPolicy"][k]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m.as_str().unwrap().to_string())
            .collect()
    };
    let modes = names("modes");
    assert_eq!(modes.len(), 7, "{modes:?}");
    let mut policies: Vec<Value> = modes
        .iter()
        .map(|m| match m.as_str() {
            "MPOL_DEFAULT" | "MPOL_LOCAL" => json!({"mode": m}),
            _ => json!({"mode": m, "nodes": "0"}),
        })
        .collect();
    for flag in names("flags") {
        policies.push(json!({"mode": "MPOL_BIND", "nodes": "0", "flags": [flag]}));
    }
    for p in policies {
        let mut b = Bundle::busybox(&["head", "-n", "1", "/proc/self/numa_maps"]);
        b.edit(|c| c["linux"]["memoryPolicy"] = p.clone());
        let id = unique_id("featmpol");
        let (code, out, err) = run_in(&rt, &b, &id);
        assert_eq!(code, 0, "{p}: {err}");
        let shown = out
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string();
        let want = match p["mode"].as_str().unwrap() {
            "MPOL_DEFAULT" => "default",
            "MPOL_LOCAL" => "local",
            "MPOL_PREFERRED" => "prefer",
            "MPOL_PREFERRED_MANY" => "prefer (many)",
            "MPOL_BIND" => "bind",
            "MPOL_INTERLEAVE" => "interleave",
            _ => "weighted interleave",
        };
        assert!(
            shown.starts_with(want.split(' ').next().unwrap()),
            "{p}: numa_maps shows {out:?}"
        );
        assert_no_leaks(&rt, &id, &b);
    }
}

/// Intel RDT with runtime-spec 1.3's fields is reported: rt writes
/// `schemata` and makes monitoring groups where resctrl is mounted (see
/// spec_1_3.rs for the error where it is not, as here).
#[test]
fn intel_rdt_is_reported_with_schemata_and_monitoring() {
    let rt = Rt::new();
    let rdt = &features(&rt)["linux"]["intelRdt"];
    assert_eq!(
        rdt,
        &json!({"enabled": true, "schemata": true, "monitoring": true})
    );
}

/// runtime-spec 1.3's netDevices and memoryPolicy are reported, and the
/// version with them: spec_1_3.rs moves a device in and applies the
/// policies (as does every_listed_memory_policy_mode_and_flag_is_applied).
#[test]
fn runtime_spec_1_3_is_reported() {
    let rt = Rt::new();
    let f = features(&rt);
    assert_eq!(f["ociVersionMax"], "1.3.0");
    assert_eq!(f["linux"]["netDevices"], json!({"enabled": true}));
}

/// A tmpfs mounted on `dir`, unmounted when dropped.
struct Tmpfs<'a>(&'a std::path::Path);

impl<'a> Tmpfs<'a> {
    fn on(dir: &'a std::path::Path) -> Tmpfs<'a> {
        nix::mount::mount(
            Some("tmpfs"),
            dir,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .expect("mount a tmpfs");
        Tmpfs(dir)
    }
}

impl Drop for Tmpfs<'_> {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// `rro` is listed because it works: a bind mount with it is read-only
/// all the way down, its submounts too, where `ro` leaves a submount
/// writable (CRI asks for `rro` when a pod wants recursive read-only).
#[test]
fn rro_makes_submounts_read_only_too() {
    let rt = Rt::new();
    let f = features(&rt);
    assert!(
        f["mountOptions"]
            .as_array()
            .unwrap()
            .contains(&json!("rro")),
        "rro is listed"
    );
    let host = tempfile::tempdir().unwrap();
    let sub = host.path().join("sub");
    fs::create_dir(&sub).unwrap();
    let _tmpfs = Tmpfs::on(&sub);
    let script =
        "touch /m/top 2>/dev/null; echo top=$?; touch /m/sub/below 2>/dev/null; echo sub=$?";
    for (opt, want) in [("rro", "top=1\nsub=1\n"), ("ro", "top=1\nsub=0\n")] {
        let mut b = Bundle::busybox(&["sh", "-c", script]);
        b.add_mount(
            json!({"destination": "/m", "type": "bind", "source": host.path(),
            "options": ["rbind", opt]}),
        );
        let id = unique_id("featrro");
        let (code, out, err) = run_in(&rt, &b, &id);
        assert_eq!(code, 0, "{opt}: {err}");
        assert_eq!(out, want, "{opt}");
        assert_no_leaks(&rt, &id, &b);
    }
    assert!(!host.path().join("top").exists());
}
