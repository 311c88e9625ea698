//! One test per class of past runc escapes: each performs the attack (or
//! its nearest safe equivalent) and shows that rt refuses it.

mod common;

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

use common::*;
use serde_json::json;

/// CVE-2019-5736: a container whose program is the runtime's own binary
/// (`/proc/self/exe` at exec time) could reopen that file through
/// /proc/<pid>/exe and overwrite rt on the host.
#[test]
fn cve_2019_5736_the_runtime_binary_is_never_the_containers_program() {
    let rt = Rt::new();
    let b = Bundle::busybox(&["/proc/self/exe", "--version"]);
    let id = unique_id("exe");
    let err = rt.fails(&["run", "--bundle", b.path().to_str().unwrap(), &id]);
    assert!(
        !err.contains("rt version"),
        "rt's binary ran in the container: {err}"
    );
    assert_one_line_error(&err, &["runtime's own binary", "CVE-2019-5736"]);
    assert_no_leaks(&rt, &id, &b);
}

#[test]
fn cve_2019_5736_nor_the_interpreter_of_a_script() {
    let rt = Rt::new();
    let b = Bundle::busybox(&["/bin/evil"]);
    let evil = b.rootfs().join("bin/evil");
    fs::write(&evil, "#!/proc/self/exe --version\n").unwrap();
    fs::set_permissions(&evil, fs::Permissions::from_mode(0o755)).unwrap();
    let id = unique_id("shebang");
    let err = rt.fails(&["run", "--bundle", b.path().to_str().unwrap(), &id]);
    assert_one_line_error(&err, &["interpreter /proc/self/exe", "CVE-2019-5736"]);
    assert_no_leaks(&rt, &id, &b);
}

#[test]
fn cve_2019_5736_nor_of_an_exec() {
    let rt = Rt::new();
    let b = Bundle::busybox(&["sleep", "1000"]);
    let id = unique_id("execexe");
    rt.detached(&b, &id);
    let err = rt.fails(&["exec", &id, "/proc/self/exe", "--version"]);
    assert_one_line_error(&err, &["runtime's own binary"]);
    rt.ok(&["delete", "-f", &id]);
}

/// CVE-2016-9962: until it execs the user's program, the init is rt and
/// must not be dumpable: a process with the same uid and no
/// CAP_SYS_PTRACE (what a container's root has) cannot then open its
/// /proc/<pid>/exe, fds or memory.
#[test]
fn cve_2016_9962_the_init_is_not_dumpable_before_exec() {
    let rt = Rt::new();
    let b = Bundle::busybox(&["sleep", "1000"]);
    let id = unique_id("dump");
    rt.ok(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    let peek = || {
        std::process::Command::new("setpriv")
            .args(["--bounding-set=-sys_ptrace", "readlink"])
            .arg(format!("/proc/{pid}/exe"))
            .output()
            .unwrap()
    };
    let before = peek();
    assert!(
        !before.status.success(),
        "the waiting init's exe was readable: {}",
        stdout(&before)
    );
    rt.ok(&["start", &id]);
    rt.wait_status(&id, "running");
    // The exec of the user's program makes it an ordinary process again;
    // the same probe now works, so it was dumpability that stopped it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut after = peek();
    while !after.status.success() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
        after = peek();
    }
    assert!(after.status.success(), "{}", stderr(&after));
    assert!(
        stdout(&after).trim().ends_with("busybox"),
        "{}",
        stdout(&after)
    );
    rt.ok(&["delete", "-f", &id]);
    assert_no_leaks(&rt, &id, &b);
}

/// CVE-2024-21626: a cwd through a descriptor rt held (/proc/self/fd/N)
/// would start the container in the host's filesystem.
#[test]
fn cve_2024_21626_a_cwd_through_proc_self_fd_is_refused() {
    let rt = Rt::new();
    for fd in 3..8 {
        let mut b = Bundle::busybox(&["pwd"]);
        b.edit(|c| c["process"]["cwd"] = json!(format!("/proc/self/fd/{fd}")));
        let id = unique_id("cwdfd");
        let out = rt.run(&["run", "--bundle", b.path().to_str().unwrap(), &id]);
        assert!(
            !out.status.success(),
            "cwd /proc/self/fd/{fd} was accepted: {}",
            stdout(&out)
        );
        assert_one_line_error(&stderr(&out), &["process.cwd"]);
        assert_no_leaks(&rt, &id, &b);
    }
}

/// CVE-2022-29162: `exec --cap` adds to the bounding, effective and
/// permitted sets only, never inheritable or ambient.
#[test]
fn cve_2022_29162_exec_cap_never_sets_inheritable_or_ambient() {
    let rt = Rt::new();
    let b = Bundle::busybox(&["sleep", "1000"]);
    let id = unique_id("execcap");
    rt.detached(&b, &id);
    let out = rt.ok(&[
        "exec",
        "--cap",
        "CAP_SYS_ADMIN",
        &id,
        "grep",
        "-E",
        "^Cap(Inh|Amb|Eff)",
        "/proc/self/status",
    ]);
    let field = |name: &str| {
        let line = out.lines().find(|l| l.starts_with(name)).unwrap();
        u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
    };
    assert_eq!(field("CapInh:"), 0, "{out}");
    assert_eq!(field("CapAmb:"), 0, "{out}");
    assert_ne!(
        field("CapEff:") & (1 << 21),
        0,
        "CAP_SYS_ADMIN was added: {out}"
    );
    rt.ok(&["delete", "-f", &id]);
}

/// CVE-2021-30465, CVE-2024-45310: a mount destination that is a symlink
/// pointing out of the root lands inside the root.
#[test]
fn cve_2021_30465_a_symlinked_mount_destination_stays_in_the_root() {
    let rt = Rt::new();
    let host = tempfile::tempdir().unwrap();
    let mut b = Bundle::busybox(&["sh", "-c", "echo inside > /data/marker; cat /data/marker"]);
    // Absolute and relative escapes alike.
    symlink(host.path(), b.rootfs().join("data")).unwrap();
    b.add_mount(json!({"destination": "/data", "type": "tmpfs", "source": "tmpfs"}));
    let id = unique_id("symdest");
    let (code, out, err) = run_in(&rt, &b, &id);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "inside");
    assert_eq!(
        fs::read_dir(host.path()).unwrap().count(),
        0,
        "the tmpfs or the marker reached the host directory"
    );
    assert_no_leaks(&rt, &id, &b);

    let mut b = Bundle::busybox(&["true"]);
    symlink("../../../../../../../../..", b.rootfs().join("up")).unwrap();
    b.add_mount(json!({"destination": "/up/tmp/escape", "type": "tmpfs", "source": "tmpfs"}));
    let id = unique_id("symrel");
    let (code, _, err) = run_in(&rt, &b, &id);
    assert_eq!(code, 0, "{err}");
    assert!(
        !Path::new("/tmp/escape").exists(),
        "a mount point was made on the host"
    );
    assert_no_leaks(&rt, &id, &b);
}

/// CVE-2019-16884, CVE-2019-19921: /proc is only mounted on a real
/// directory; a symlink in its place must not redirect it.
#[test]
fn cve_2019_19921_proc_is_not_mounted_through_a_symlink() {
    let rt = Rt::new();
    let b = Bundle::busybox(&["true"]);
    fs::remove_dir(b.rootfs().join("proc")).unwrap();
    fs::create_dir(b.rootfs().join("elsewhere")).unwrap();
    symlink("/elsewhere", b.rootfs().join("proc")).unwrap();
    let id = unique_id("procsym");
    let err = rt.fails(&["run", "--bundle", b.path().to_str().unwrap(), &id]);
    // runc's words, which callers match.
    assert_one_line_error(&err, &["/proc", "must be mounted on ordinary directory"]);
    assert_no_leaks(&rt, &id, &b);
}

/// CVE-2026-41579: a /dev that is a symlink in the image must not make rt
/// create device nodes outside the root.
#[test]
fn cve_2026_41579_a_dev_symlink_cannot_reach_the_host() {
    let rt = Rt::new();
    let host = tempfile::tempdir().unwrap();
    let b = Bundle::busybox(&["sh", "-c", "ls /dev/null"]);
    fs::remove_dir_all(b.rootfs().join("dev")).ok();
    symlink(host.path(), b.rootfs().join("dev")).unwrap();
    let id = unique_id("devsym");
    let out = rt.run(&["run", "--bundle", b.path().to_str().unwrap(), &id]);
    assert_eq!(
        fs::read_dir(host.path()).unwrap().count(),
        0,
        "device nodes were made in the host directory (run said: {})",
        stderr(&out)
    );
    assert_no_leaks(&rt, &id, &b);
}

/// CVE-2025-31133: masked paths are covered with a /dev/null that is
/// checked to be the real 1:3 device, so a file swapped in cannot be bound
/// over (and so written through) a masked path.
#[test]
fn cve_2025_31133_masked_paths_use_the_real_dev_null() {
    let out = sh(
        |c| c["linux"]["maskedPaths"] = json!(["/proc/kcore", "/etc/hostname-secret"]),
        "stat -c '%t:%T' /etc/hostname-secret 2>/dev/null || echo absent",
    );
    // A path that does not exist is not created by masking.
    assert_eq!(out.trim(), "absent");
    let out = sh(
        |c| c["linux"]["maskedPaths"] = json!(["/etc/passwd"]),
        "stat -c '%t:%T' /etc/passwd; cat /etc/passwd | wc -c",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1:3", "masked with the null device");
    assert_eq!(lines[1].trim(), "0");
}

/// CVE-2019-19921, CVE-2023-27561, CVE-2023-28642: something else than a
/// procfs at the container's /proc could redirect the runtime's procfs
/// writes (sysctls, oom_score_adj). rt refuses such a mount outright, as
/// runc does (checkProcMount), and writes through a procfs it verified,
/// so the fake /proc never sees the write.
#[test]
fn cve_2023_27561_procfs_writes_only_through_a_real_procfs() {
    let rt = Rt::new();
    let fake = tempfile::tempdir().unwrap();
    fs::create_dir_all(fake.path().join("sys/kernel")).unwrap();
    fs::write(fake.path().join("sys/kernel/domainname"), "untouched").unwrap();
    let mut b = Bundle::busybox(&["cat", "/proc/sys/kernel/domainname"]);
    b.edit(|c| {
        let mounts = c["mounts"].as_array_mut().unwrap();
        for m in mounts.iter_mut() {
            if m["destination"] == "/proc" {
                *m = json!({"destination": "/proc", "type": "bind",
                            "source": fake.path(), "options": ["rbind"]});
            }
        }
        c["linux"]["sysctl"] = json!({"kernel.domainname": "evil"});
    });
    let id = unique_id("fakeproc");
    let err = rt.fails(&["run", "--bundle", b.path().to_str().unwrap(), &id]);
    assert_one_line_error(&err, &["mounts[", "/proc", "not of type proc"]);
    assert_eq!(
        fs::read_to_string(fake.path().join("sys/kernel/domainname")).unwrap(),
        "untouched"
    );
    assert_no_leaks(&rt, &id, &b);
}

/// `--no-pivot` leaves the host's mounts under the container's root; a
/// whole procfs visible there would let a user namespace in the container
/// mount a fresh /proc without the masked paths (and write
/// /proc/sysrq-trigger). Those are hidden before the chroot.
#[test]
fn no_pivot_gives_no_unmasked_proc_to_a_nested_user_namespace() {
    let rt = Rt::new();
    let mut b = Bundle::busybox(&[
        "unshare",
        "-mrpf",
        "sh",
        "-c",
        "mount -t proc none /proc && echo mounted-proc",
    ]);
    b.edit(|c| {
        // unshare -r maps uid 0, which needs CAP_SETFCAP.
        for set in ["bounding", "permitted", "effective"] {
            c["process"]["capabilities"][set]
                .as_array_mut()
                .unwrap()
                .push(json!("CAP_SETFCAP"));
        }
    });
    for extra in [None, Some("--no-pivot")] {
        let id = unique_id("nopivot-proc");
        let mut args = vec!["run"];
        args.extend(extra);
        args.extend(["--bundle", b.path().to_str().unwrap(), &id]);
        let out = rt.run(&args);
        let (text, err) = (stdout(&out), stderr(&out));
        assert!(
            !text.contains("mounted-proc"),
            "{extra:?}: a fresh /proc was mounted"
        );
        assert_ne!(out.status.code(), Some(0), "{extra:?}: {err}");
        assert!(
            err.contains("mount"),
            "{extra:?}: the mount's own refusal: {err}"
        );
        assert_no_leaks(&rt, &id, &b);
    }
}
