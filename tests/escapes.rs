//! The 2025-2026 escape classes (runc's CVE-2025-31133, CVE-2025-52565,
//! CVE-2025-52881, CVE-2026-41579; crun's CVE-2026-47766 and
//! CVE-2026-30892), each performed as the advisory describes it, and the
//! holes found probing rt beside runc 1.3.5: an id of 4294967295, a
//! /dev/console symlink, read-only paths through a symlink, net sysctls
//! into the host's namespace, the tmpcopyup race, a FIFO at /etc/passwd.
//! The older classes are in security.rs.

mod common;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::*;
use rt_testkit::runtime::{run_captured, Ran};
use serde_json::json;

/// `rt ARGS` bounded by `secs`: a hang is a failure, and what it left is
/// deleted by the Rt's drop (the id is recorded).
fn bounded(rt: &Rt, id: &str, args: &[&str], secs: u64) -> Ran {
    rt.created(id);
    let ran = run_captured(&mut rt.cmd(args), Some(Duration::from_secs(secs))).unwrap();
    assert!(!ran.timed_out, "rt {args:?} hung: {}", ran.stderr());
    ran
}

/// A refusal: rt's one line with its words; a peer's, any message.
fn refused(err: &str, needles: &[&str]) {
    if is_rt() {
        assert_one_line_error(err, needles);
    } else {
        assert!(!err.trim().is_empty(), "refused without a word");
    }
}

/// A config whose /dev is the image's own (no tmpfs mounted there).
fn without_dev_tmpfs(c: &mut serde_json::Value) {
    c["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["destination"] != "/dev");
}

// ---- crun CVE-2026-30892 and the (uid_t)-1 hole ---------------------------

/// 4294967295 is (uid_t)-1, "leave unchanged" to setresuid: accepted, it
/// kept rt's uid 0. Refused in the config and in `exec -u`, in one line.
#[test]
fn an_id_of_4294967295_never_runs_as_root() {
    let rt = Rt::new();
    for (field, user) in [
        ("process.user.uid", json!({"uid": 4294967295u32, "gid": 1})),
        ("process.user.gid", json!({"uid": 1, "gid": 4294967295u32})),
        (
            "process.user.additionalGids[0]",
            json!({"uid": 1, "gid": 1, "additionalGids": [4294967295u32]}),
        ),
    ] {
        let mut b = Bundle::busybox(&["id"]);
        b.edit(|c| c["process"]["user"] = user);
        let id = unique_id("uidm1");
        let out = rt.run(&["run", "--bundle", b.path().to_str().unwrap(), &id]);
        assert!(
            !out.status.success(),
            "{field} 4294967295 ran: {}",
            stdout(&out)
        );
        refused(&stderr(&out), &[field, "4294967295", "not a valid id"]);
        assert_no_leaks(&rt, &id, &b);
    }
    let b = Bundle::busybox(&["sleep", "1000"]);
    let id = unique_id("execm1");
    rt.detached(&b, &id);
    for user in ["4294967295", "4294967295:1", "1:4294967295"] {
        let out = rt.run(&["exec", "-u", user, &id, "id"]);
        assert!(
            !out.status.success(),
            "exec -u {user} ran: {}",
            stdout(&out)
        );
        refused(&stderr(&out), &["--user", "4294967295", "not a valid id"]);
    }
    rt.ok(&["delete", "-f", &id]);
    assert_no_leaks(&rt, &id, &b);
}

/// crun's CVE-2026-30892: `exec -u 1` ran as uid 0. Ordinary ids are
/// taken as given, and a name (which runc does not resolve either) is
/// refused rather than run as root.
#[test]
fn cve_2026_30892_exec_user_is_the_user_asked_for() {
    let rt = Rt::new();
    let b = Bundle::busybox(&["sleep", "1000"]);
    let id = unique_id("execu");
    rt.detached(&b, &id);
    assert_eq!(rt.ok(&["exec", "-u", "1", &id, "id", "-u"]).trim(), "1");
    let both = rt.ok(&["exec", "-u", "1:1", &id, "sh", "-c", "id -u; id -g"]);
    assert_eq!(both, "1\n1\n");
    let gid = rt.ok(&["exec", "-u", "2:3", &id, "sh", "-c", "id -u; id -g"]);
    assert_eq!(gid, "2\n3\n");
    let err = rt.fails(&["exec", "-u", "daemon", &id, "id", "-u"]);
    refused(&err, &["--user", "daemon"]);
    rt.ok(&["delete", "-f", &id]);
    assert_no_leaks(&rt, &id, &b);
}

// ---- CVE-2025-52565: the console and the pty -------------------------------

/// An image whose /dev/console is a symlink (a config without a /dev
/// tmpfs): to /etc/passwd the init then read the pty as passwd and rt
/// hung; to any path, the pty was mounted over its target. Refused with
/// ELOOP, as runc 1.3.5 does, and the target is untouched.
#[test]
fn cve_2025_52565_a_console_symlink_is_refused() {
    let rt = Rt::new();
    for target in ["/etc/passwd", "/etc/target"] {
        let mut b = Bundle::busybox(&["sh", "-c", "echo ran"]);
        b.edit(|c| {
            without_dev_tmpfs(c);
            c["process"]["terminal"] = json!(true);
        });
        fs::write(b.rootfs().join("etc/target"), "kept\n").unwrap();
        let dev = b.rootfs().join("dev");
        let _ = fs::remove_file(dev.join("console"));
        symlink(target, dev.join("console")).unwrap();
        let before = fs::read(b.rootfs().join(target.trim_start_matches('/'))).unwrap();
        let id = unique_id("consym");
        let p = b.path().to_str().unwrap().to_string();
        let ran = bounded(&rt, &id, &["run", "--bundle", &p, &id], 20);
        assert!(
            !ran.success(),
            "ran through a /dev/console symlink: {}",
            ran.stdout()
        );
        refused(&ran.stderr(), &["/dev/console", "symlink"]);
        assert_eq!(
            fs::read(b.rootfs().join(target.trim_start_matches('/'))).unwrap(),
            before
        );
        assert_no_leaks(&rt, &id, &b);
    }
}

/// Swaps the running container's /dev/pts/ptmx (from the host, in its
/// mount namespace) for `what`, then asks for `exec -t`: a clean,
/// bounded refusal, and nothing of the swapped-in object used.
#[test]
fn cve_2025_52565_exec_t_verifies_ptmx() {
    let rt = Rt::new();
    let swaps = [
        ("a FIFO", "mkfifo /dev/pts/ptmx"),
        ("a file", "echo secret > /dev/pts/ptmx"),
        (
            "a symlink into /proc",
            "ln -s /proc/sys/kernel/core_pattern /dev/pts/ptmx",
        ),
        (
            "a tmpfs",
            "mount -t tmpfs none /dev/pts && touch /dev/pts/ptmx",
        ),
    ];
    for (what, swap) in swaps {
        let b = Bundle::busybox(&["sleep", "1000"]);
        let id = unique_id("ptmx");
        let pid = rt.detached(&b, &id);
        let script = format!("umount -l /dev/pts; {swap}");
        let out = std::process::Command::new("nsenter")
            .args(["-t", &pid.to_string(), "-m", "sh", "-c", &script])
            .output()
            .unwrap();
        assert!(out.status.success(), "{what}: {}", stderr(&out));
        let ran = bounded(&rt, &id, &["exec", "-t", &id, "echo", "ran"], 20);
        assert!(
            !ran.success(),
            "exec -t with {what} as ptmx ran: {}",
            ran.stdout()
        );
        refused(&ran.stderr(), &["/dev/pts/ptmx"]);
        rt.ok(&["delete", "-f", &id]);
        assert_no_leaks(&rt, &id, &b);
    }
    // /dev/ptmx itself is not what rt opens: swapped for a FIFO, exec -t
    // still gets a pty of the container's devpts.
    let b = Bundle::busybox(&["sleep", "1000"]);
    let id = unique_id("devptmx");
    let pid = rt.detached(&b, &id);
    let out = std::process::Command::new("nsenter")
        .args([
            "-t",
            &pid.to_string(),
            "-m",
            "sh",
            "-c",
            "rm -f /dev/ptmx && mkfifo /dev/ptmx",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let ran = bounded(&rt, &id, &["exec", "-t", &id, "tty"], 20);
    assert!(ran.success(), "{}", ran.stderr());
    assert!(ran.stdout().starts_with("/dev/pts/"), "{}", ran.stdout());
    rt.ok(&["delete", "-f", &id]);
    assert_no_leaks(&rt, &id, &b);
}

// ---- CVE-2025-31133: what /dev/null is -------------------------------------

/// /dev/null must be the 1:3 device before it is bound over masked files.
/// A wrong device (the config's own /dev/null) is refused; in a user
/// namespace, where rt binds the host's nodes, an image's /dev/null that
/// is a symlink to a procfs file is replaced, never followed (rt bound the
/// host's null over the container's core_pattern).
#[test]
fn cve_2025_31133_dev_null_is_what_it_claims() {
    let rt = Rt::new();
    let mut b = Bundle::busybox(&["true"]);
    b.edit(|c| {
        c["linux"]["devices"] = json!([{"path": "/dev/null", "type": "c", "major": 1, "minor": 5}]);
    });
    let id = unique_id("nullzero");
    let err = rt.fails(&["run", "--bundle", b.path().to_str().unwrap(), &id]);
    refused(&err, &["/dev/null", "1:3"]);
    assert_no_leaks(&rt, &id, &b);

    let mut b = Bundle::busybox(&[
        "sh",
        "-c",
        "stat -c '%F %t:%T' /dev/null; grep -c core_pattern /proc/self/mountinfo; true",
    ]);
    b.add_user_namespace(200000);
    b.edit(without_dev_tmpfs);
    let dev = b.rootfs().join("dev");
    // The image's /dev belongs to the namespace's root, as an image
    // unpacked for it would.
    std::os::unix::fs::chown(&dev, Some(200000), Some(200000)).unwrap();
    symlink("/proc/sys/kernel/core_pattern", dev.join("null")).unwrap();
    let id = unique_id("nullsym");
    let (code, out, err) = run_in(&rt, &b, &id);
    assert_eq!(code, 0, "{out} {err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "character special file 1:3", "{out}");
    assert_eq!(
        lines[1], "0",
        "something was mounted on core_pattern: {out}"
    );
    assert_no_leaks(&rt, &id, &b);
}

// ---- CVE-2025-52881: mounts and writes redirected into /proc ---------------

/// A config mount landing inside /proc (directly or through an image's
/// symlink) is refused before anything is mounted, as runc's
/// checkProcMount does; the host's values are unchanged.
#[test]
fn cve_2025_52881_no_mount_lands_inside_proc() {
    let rt = Rt::new();
    let host = tempfile::NamedTempFile::new().unwrap();
    fs::write(host.path(), "|/bin/evil\n").unwrap();
    let core = fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap();
    let dests = [
        ("/proc/sys/kernel/core_pattern", None),
        ("/proc/sysrq-trigger", None),
        ("/proc/self/attr/current", None),
        ("/k/core_pattern", Some(("/proc/sys/kernel", "k"))),
        ("/t", Some(("/proc/sysrq-trigger", "t"))),
    ];
    for (dest, link) in dests {
        let mut b = Bundle::busybox(&["sh", "-c", "echo c > /proc/sysrq-trigger"]);
        if let Some((target, name)) = link {
            symlink(target, b.rootfs().join(name)).unwrap();
        }
        b.add_mount(json!({"destination": dest, "type": "bind",
                           "source": host.path(), "options": ["bind"]}));
        let id = unique_id("inproc");
        let err = rt.fails(&["run", "--bundle", b.path().to_str().unwrap(), &id]);
        refused(&err, &["inside /proc"]);
        assert_no_leaks(&rt, &id, &b);
    }
    assert_eq!(
        fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap(),
        core
    );
    // What lxcfs emulates stays allowed.
    let out = sh(
        |c| {
            c["mounts"]
                .as_array_mut()
                .unwrap()
                .push(json!({"destination": "/proc/uptime",
                "type": "bind", "source": host.path(), "options": ["bind"]}));
        },
        "cat /proc/uptime",
    );
    assert_eq!(out, "|/bin/evil\n");
}

/// net.* sysctls written into a network namespace joined by path that is
/// the runtime's own (the host's) are refused, as runc does; rt set the
/// host's value before.
#[test]
fn net_sysctls_never_reach_the_hosts_namespace() {
    let rt = Rt::new();
    let key = "/proc/sys/net/ipv4/tcp_keepalive_probes";
    let before = fs::read_to_string(key).unwrap();
    let other = (before.trim().parse::<u32>().unwrap() % 100 + 1).to_string();
    let mut b = Bundle::busybox(&["true"]);
    let own = format!("/proc/{}/ns/net", std::process::id());
    b.edit(|c| {
        for ns in c["linux"]["namespaces"].as_array_mut().unwrap() {
            if ns["type"] == "network" {
                ns["path"] = json!(own);
            }
        }
        c["linux"]["sysctl"] = json!({"net.ipv4.tcp_keepalive_probes": other});
    });
    let id = unique_id("hostnet");
    let out = rt.run(&["run", "--bundle", b.path().to_str().unwrap(), &id]);
    let after = fs::read_to_string(key).unwrap();
    if after != before {
        fs::write(key, &before).unwrap();
    }
    assert!(!out.status.success(), "the sysctl was written");
    assert_eq!(after, before, "the host's sysctl changed");
    refused(
        &stderr(&out),
        &["linux.sysctl", "tcp_keepalive_probes", "host"],
    );
    assert_no_leaks(&rt, &id, &b);
}

/// readonlyPaths through an image's symlink: the target is made
/// read-only (rt made the link read-only and left the target writable).
#[test]
fn readonly_paths_through_a_symlink_are_read_only() {
    let rt = Rt::new();
    let mut b = Bundle::busybox(&["sh", "-c", "touch /data/x 2>&1; echo rc=$?"]);
    fs::create_dir(b.rootfs().join("data")).unwrap();
    symlink("/data", b.rootfs().join("etc/ro")).unwrap();
    b.edit(|c| {
        c["root"]["readonly"] = json!(false);
        c["linux"]["readonlyPaths"] = json!(["/etc/ro"]);
    });
    let id = unique_id("rosym");
    let (code, out, err) = run_in(&rt, &b, &id);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Read-only file system"), "{out}");
    assert!(out.contains("rc=1"), "{out}");
    assert!(!b.rootfs().join("data/x").exists());
    assert_no_leaks(&rt, &id, &b);
}

/// Many masked directories share one read-only tmpfs of one block and
/// one inode (rt and runc 1.3.5 made one unlimited tmpfs each).
#[test]
fn masked_directories_share_one_capped_tmpfs() {
    let rt = Rt::new();
    let mut b = Bundle::busybox(&[
        "sh",
        "-c",
        "grep ' /m/' /proc/self/mountinfo | awk '{print $3}' | sort | uniq -c; \
         grep ' /m/0 ' /proc/self/mountinfo; touch /m/7/x 2>/dev/null || echo refused",
    ]);
    let dirs: Vec<String> = (0..200).map(|i| format!("/m/{i}")).collect();
    for d in &dirs {
        fs::create_dir_all(b.rootfs().join(d.trim_start_matches('/'))).unwrap();
    }
    b.edit(|c| c["linux"]["maskedPaths"] = json!(dirs));
    let id = unique_id("masked200");
    let (code, out, err) = run_in(&rt, &b, &id);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0].split_whitespace().next(), Some("200"), "{out}");
    assert!(
        lines[1].contains(" ro") && lines[1].contains("nr_inodes=1"),
        "{out}"
    );
    assert_eq!(lines[2], "refused", "{out}");
    assert_no_leaks(&rt, &id, &b);
}

/// tmpcopyup copies the covered directory while a racer swaps one of its
/// entries between a file and a symlink to a host file: rt must never
/// copy the host file (runc 1.3.5 and rt did, in 2 to 36 tries).
#[test]
fn tmpcopyup_never_follows_a_swapped_symlink() {
    let rt = Rt::new();
    let secret = tempfile::NamedTempFile::new().unwrap();
    fs::write(secret.path(), "HOST-SECRET\n").unwrap();
    let mut b = Bundle::busybox(&["cat", "/opt/d/entry"]);
    let dir = b.rootfs().join("opt/d");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("entry"), "image\n").unwrap();
    b.add_mount(
        json!({"destination": "/opt/d", "type": "tmpfs", "source": "tmpfs",
                       "options": ["tmpcopyup"]}),
    );
    // A symlink beside the entry, the two exchanged atomically as fast as
    // the kernel allows.
    let link = dir.join(".l");
    symlink(secret.path(), &link).unwrap();
    let stop = AtomicBool::new(false);
    let mut copied = 0;
    std::thread::scope(|s| {
        s.spawn(|| {
            let entry = dir.join("entry");
            while !stop.load(Ordering::Relaxed) {
                let _ = nix::fcntl::renameat2(
                    nix::fcntl::AT_FDCWD,
                    &entry,
                    nix::fcntl::AT_FDCWD,
                    &link,
                    nix::fcntl::RenameFlags::RENAME_EXCHANGE,
                );
            }
        });
        // Stops the racer however this closure ends (a failed assertion
        // too), or the scope would wait for it forever.
        struct Stop<'a>(&'a AtomicBool);
        impl Drop for Stop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let _stop = Stop(&stop);
        for _ in 0..40 {
            let id = unique_id("copyup");
            let p = b.path().to_str().unwrap().to_string();
            let ran = bounded(&rt, &id, &["run", "--bundle", &p, &id], 20);
            if ran.stdout() == "image\n" {
                copied += 1;
            }
            if !ran.stdout().is_empty() {
                assert!(
                    !ran.stdout().contains("HOST-SECRET"),
                    "the host file was copied into the container"
                );
            }
            let _ = rt.run(&["delete", "-f", &id]);
            assert_no_leaks(&rt, &id, &b);
        }
    });
    // Not refused every time: the copy itself works under the race.
    assert!(copied > 0, "no run of 40 copied the directory");
}

/// A FIFO at the image's /etc/passwd (read for HOME) hung run and exec.
#[test]
fn a_fifo_at_etc_passwd_does_not_hang_run_or_exec() {
    let rt = Rt::new();
    let b = Bundle::busybox(&["sh", "-c", "echo $HOME; sleep 1000"]);
    let passwd = b.rootfs().join("etc/passwd");
    fs::remove_file(&passwd).unwrap();
    nix::unistd::mkfifo(&passwd, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    let id = unique_id("fifo");
    let p = b.path().to_str().unwrap().to_string();
    let ran = bounded(&rt, &id, &["run", "-d", "--bundle", &p, &id], 20);
    assert!(ran.success(), "{}", ran.stderr());
    let ran = bounded(&rt, &id, &["exec", &id, "sh", "-c", "echo $HOME"], 20);
    assert!(ran.success(), "{}", ran.stderr());
    assert_eq!(ran.stdout(), "/\n");
    rt.ok(&["delete", "-f", &id]);
    assert_no_leaks(&rt, &id, &b);
    assert!(Path::new(&passwd).exists());
}

/// A racer swaps a read-only bind's destination for a symlink to another
/// mount (the container's /dev) while rt creates: the read-only flag
/// must never land on that mount while the bind stays writable, so the
/// host directory behind the bind is never written from inside.
#[test]
fn cve_2025_52881_a_swapped_bind_destination_never_leaves_the_bind_writable() {
    let rt = Rt::new();
    let host = tempfile::tempdir().unwrap();
    let mut b = Bundle::busybox(&[
        "sh",
        "-c",
        "for d in /data /.l; do touch $d/x 2>/dev/null; done; true",
    ]);
    let data = b.rootfs().join("data");
    fs::create_dir(&data).unwrap();
    let link = b.rootfs().join(".l");
    symlink("/dev", &link).unwrap();
    b.add_mount(json!({"destination": "/data", "type": "bind",
                       "source": host.path(), "options": ["rbind", "ro"]}));
    let stop = AtomicBool::new(false);
    let mut ran = 0;
    std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                let _ = nix::fcntl::renameat2(
                    nix::fcntl::AT_FDCWD,
                    &data,
                    nix::fcntl::AT_FDCWD,
                    &link,
                    nix::fcntl::RenameFlags::RENAME_EXCHANGE,
                );
            }
        });
        struct Stop<'a>(&'a AtomicBool);
        impl Drop for Stop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let _stop = Stop(&stop);
        for _ in 0..40 {
            let id = unique_id("bindrace");
            let p = b.path().to_str().unwrap().to_string();
            if bounded(&rt, &id, &["run", "--bundle", &p, &id], 20).success() {
                ran += 1;
            }
            assert!(
                !host.path().join("x").exists(),
                "the read-only bind's source was written from the container"
            );
            let _ = rt.run(&["delete", "-f", &id]);
            assert_no_leaks(&rt, &id, &b);
        }
    });
    assert!(ran > 0, "no run of 40 succeeded under the racer");
}
