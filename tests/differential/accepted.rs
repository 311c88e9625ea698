//! What runc accepts in configs of other tools (issue 23, item 7), each
//! run on rt and on runc: the same exit code and the same output.

use serde_json::{json, Value};

use crate::common::*;
use crate::{bundle, Pair};

/// Runs `b` on both; same exit code (0) and stdout. Returns rt's outcome.
fn same(what: &str, b: &Bundle) -> crate::Outcome {
    let p = Pair::new();
    let id = unique_id("diffok");
    let (rt, _) = p.step(what, b, &["run", &id], true);
    assert_eq!(rt.code, 0, "{what}: {rt:?}");
    p.clean(b, &[&id]);
    rt
}

fn mkdir(b: &Bundle, dir: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let d = b.rootfs().join(dir);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A relative destination is taken from `/`, with a warning.
#[test]
fn a_relative_mount_destination() {
    let mut b = bundle(&["sh", "-c", "grep -c ' /mnt/rel ' /proc/self/mountinfo"]);
    b.add_mount(json!({"destination": "mnt/rel", "type": "tmpfs", "source": "tmpfs"}));
    let rt = same("relative destination", &b);
    assert_eq!(rt.stdout, "1\n");
    assert!(
        rt.stderr.contains("rt: warning: mounts[") && rt.stderr.contains("mnt/rel"),
        "{}",
        rt.stderr
    );
}

/// `tmpcopyup`: the tmpfs starts with the directory's content, modes and
/// owners.
#[test]
fn tmpcopyup() {
    let mut b = bundle(&[
        "sh",
        "-c",
        "cat /data/f /data/sub/g; stat -c '%a %u %n' /data /data/sub /data/f; readlink /data/l; \
         grep ' /data ' /proc/self/mountinfo | cut -d' ' -f9",
    ]);
    mkdir(&b, "data/sub", 0o750);
    std::fs::write(b.rootfs().join("data/f"), "hello\n").unwrap();
    std::fs::write(b.rootfs().join("data/sub/g"), "deeper\n").unwrap();
    std::os::unix::fs::symlink("f", b.rootfs().join("data/l")).unwrap();
    std::os::unix::fs::chown(b.rootfs().join("data/f"), Some(1000), Some(1000)).unwrap();
    b.add_mount(json!({"destination": "/data", "type": "tmpfs", "source": "tmpfs", "options": ["tmpcopyup"]}));
    let rt = same("tmpcopyup", &b);
    assert!(rt.stdout.starts_with("hello\ndeeper\n"), "{}", rt.stdout);
    assert!(rt.stdout.contains("1000 /data/f\n") && rt.stdout.ends_with("f\ntmpfs\n"));
}

/// A tmpfs without `mode=` takes the mode of the directory it covers,
/// not tmpfs's 1777.
#[test]
fn a_tmpfs_without_mode_keeps_the_covered_mode() {
    let mut b = bundle(&["stat", "-c", "%a", "/cov"]);
    mkdir(&b, "cov", 0o710);
    b.add_mount(json!({"destination": "/cov", "type": "tmpfs", "source": "tmpfs"}));
    assert_eq!(same("tmpfs mode", &b).stdout, "710\n");
}

/// An explicit `mode=` is kept: rt gives 750; runc 1.1.5 chmods the
/// tmpfs to the covered directory's mode anyway (fixed in runc 1.2), so
/// this one is on rt alone (see KNOWN).
#[test]
fn a_tmpfs_with_mode_keeps_it() {
    let mut b = bundle(&["stat", "-c", "%a", "/cov"]);
    mkdir(&b, "cov", 0o710);
    b.add_mount(
        json!({"destination": "/cov", "type": "tmpfs", "source": "tmpfs", "options": ["mode=750"]}),
    );
    let rt = Rt::new();
    let id = unique_id("tmpfsmode");
    let (code, out, err) = run_in(&rt, &b, &id);
    assert_eq!((code, out.as_str()), (0, "750\n"), "{err}");
    assert_no_leaks(&rt, &id, &b);
}

/// A read-only root whose image has no /dev/pts and no devpts mount.
#[test]
fn a_read_only_root_without_dev_pts() {
    let mut b = bundle(&["sh", "-c", "ls -d /dev/pts 2>&1; echo ok"]);
    b.edit(|c| {
        c["root"]["readonly"] = json!(true);
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .retain(|m| m["destination"] != "/dev/pts");
    });
    assert!(same("ro root", &b).stdout.ends_with("ok\n"));
}

/// Two rules for one syscall told apart by an argument, each with its own
/// errnoRet: the caller sees each rule's errno.
#[test]
fn seccomp_argument_rules_with_their_own_errno() {
    let mut b = bundle(&["sh", "-c", "mkdir /x 2>&1; mkdir -p /y 2>&1; echo done"]);
    b.edit(|c| {
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [
                {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
                 "args": [{"index": 1, "value": 0o777, "op": "SCMP_CMP_EQ"}]},
                {"names": ["mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 55,
                 "args": [{"index": 2, "value": 0o777, "op": "SCMP_CMP_EQ"}]}
            ]
        })
    });
    let out = same("seccomp errnoRet", &b).stdout;
    assert!(
        out.contains("Invalid argument") || out.contains("No anode"),
        "{out}"
    );
}

/// A startContainer hook without an env of its own sees the process's.
#[test]
fn start_container_hooks_see_the_process_environment() {
    let mut b = bundle(&["true"]);
    b.edit(|c| {
        c["root"]["readonly"] = json!(false);
        c["process"]["env"]
            .as_array_mut()
            .unwrap()
            .push(json!("FOO=bar"));
        c["hooks"] = json!({"startContainer": [
            {"path": "/bin/sh", "args": ["sh", "-c", "echo FOO=$FOO >> /hookout"]},
            {"path": "/bin/sh", "args": ["sh", "-c", "echo FOO=$FOO >> /hookout"], "env": ["FOO=own"]}
        ]});
    });
    same("startContainer env", &b);
    let out = std::fs::read_to_string(b.rootfs().join("hookout")).unwrap();
    assert_eq!(out, "FOO=bar\nFOO=own\n".repeat(2), "rt's then runc's");
}

/// Resource fields given empty (hugepage limits, blockIO, ...), as
/// generators write them: both run the container.
#[test]
fn empty_resource_fields() {
    let mut b = bundle(&["true"]);
    b.edit(|c| {
        let devices: Value = c["linux"]["resources"]["devices"].take();
        c["linux"]["resources"] = json!({
            "devices": devices, "hugepageLimits": [], "blockIO": {}, "cpu": {},
            "memory": {}, "network": {}, "rdma": {}, "unified": {}
        });
    });
    same("empty resources", &b);
}
