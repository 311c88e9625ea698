//! rt as a plain user: each test makes a real unprivileged user (useradd,
//! with Debian's subuid/subgid range), a private XDG_RUNTIME_DIR, a bundle
//! in its home, and runs rt through `setpriv` as that user. Dropping the
//! [`User`] kills every process of its uid (by pid), removes the cgroups
//! the test made and deletes the user, so a failing test leaves nothing.

mod common;

use std::fs;
use std::path::Path;
use std::time::Duration;

use common::{assert_one_line_error, ensure_shim, require_root, rt_bin, FlaggedTmpfs, CGROUP2};
use serde_json::{json, Value};

/// A user of its own for a test, with this build's rt and rt-shim.
fn user() -> rt_testkit::user::User {
    require_root();
    ensure_shim();
    rt_testkit::user::User::new(Path::new(rt_bin()).parent().unwrap())
}

#[test]
fn rootless_run_maps_the_user_to_root_without_a_cgroup() {
    let u = user();
    let b = u.bundle(
        "b",
        &[
            "sh",
            "-c",
            "id -u; cat /proc/self/uid_map; ls /dev/null /dev/zero; mount | grep devpts",
        ],
        |c| {
            // A gid the one-id namespace lacks: dropped, not refused.
            for m in c["mounts"].as_array_mut().unwrap() {
                if m["destination"] == "/dev/pts" {
                    m["options"].as_array_mut().unwrap().push(json!("gid=5"));
                }
            }
        },
    );
    let r = u.run_in(&b, &["--debug", "run", "c1"]);
    assert!(r.success(), "rt run as the user: {}", r.stderr());
    let out = r.stdout();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "0", "{out}");
    let map: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(map, ["0", &u.uid.to_string(), "1"], "{out}");
    assert!(
        out.contains("/dev/null") && out.contains("/dev/zero"),
        "{out}"
    );
    assert!(!out.contains("gid=5"), "devpts kept an unmapped gid: {out}");
    let err = r.stderr();
    assert!(
        err.contains(&format!("rootless: running as uid {}", u.uid)),
        "--debug should say rt is rootless: {err}"
    );
    assert!(
        err.contains(&format!("state root {}/rt", u.runtime_dir.display())),
        "{err}"
    );
    assert_eq!(
        err.matches("without a cgroup of its own").count(),
        1,
        "--debug should say once that there is no cgroup: {err}"
    );
    u.assert_nothing_left();
}

#[test]
fn rootless_without_xdg_runtime_dir_says_so() {
    let u = user();
    let r = rt_testkit::run_captured(
        &mut u.command(&u.home, false, &["list"]),
        Some(Duration::from_secs(30)),
    )
    .unwrap();
    assert!(
        !r.success(),
        "rt list without XDG_RUNTIME_DIR: {}",
        r.stdout()
    );
    assert_one_line_error(&r.stderr(), &["XDG_RUNTIME_DIR", "--root"]);
    // With --root it works.
    let root = u.home.join("state");
    let r = rt_testkit::run_captured(
        &mut u.command(&u.home, false, &["--root", root.to_str().unwrap(), "list"]),
        Some(Duration::from_secs(30)),
    )
    .unwrap();
    assert!(r.success(), "rt --root list: {}", r.stderr());
}

#[test]
fn rootless_limit_without_delegation_is_refused_in_one_line() {
    let u = user();
    let b = u.bundle("b", &["true"], |c| {
        c["linux"]["resources"] =
            json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 2097152}]});
    });
    let r = u.run_in(&b, &["run", "c1"]);
    assert!(
        !r.success(),
        "a limit without delegation ran: {}",
        r.stdout()
    );
    assert_one_line_error(&r.stderr(), &["hugetlb.2MB.max", "not delegated"]);
    assert!(!Path::new(CGROUP2).join("rt/c1").exists());
    u.assert_nothing_left();
}

#[test]
fn rootless_subuid_range_is_mapped_through_newuidmap() {
    let u = user();
    let s = u.sub_start;
    let b = u.bundle(
        "b",
        &[
            "sh",
            "-c",
            "cat /proc/self/uid_map /proc/self/gid_map; touch /tmp/f && chown 1000:1000 /tmp/f && stat -c %u:%g /tmp/f",
        ],
        |c| {
            let maps = json!([{"containerID": 0, "hostID": u.uid, "size": 1},
                              {"containerID": 1, "hostID": s, "size": 65536}]);
            c["linux"]["uidMappings"] = maps.clone();
            c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": u.gid, "size": 1},
                              {"containerID": 1, "hostID": s, "size": 65536}]);
            c["mounts"]
                .as_array_mut()
                .unwrap()
                .push(json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}));
            for set in ["bounding", "effective", "permitted"] {
                c["process"]["capabilities"][set]
                    .as_array_mut()
                    .unwrap()
                    .push(json!("CAP_CHOWN"));
            }
        },
    );
    let r = u.run_in(&b, &["run", "c1"]);
    assert!(r.success(), "rt run with a subuid range: {}", r.stderr());
    let out = r.stdout();
    assert!(
        out.contains(&format!("1     {s}      65536"))
            || out
                .split_whitespace()
                .collect::<Vec<_>>()
                .windows(3)
                .any(|w| w == ["1", &s.to_string(), "65536"]),
        "the range should be mapped: {out}"
    );
    assert!(
        out.trim_end().ends_with("1000:1000"),
        "chown to a mapped id: {out}"
    );

    // A range the user does not have: newuidmap's refusal, in one line.
    let b2 = u.bundle("b2", &["true"], |c| {
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": u.uid, "size": 1},
                                           {"containerID": 1, "hostID": 10, "size": 10}]);
    });
    let r = u.run_in(&b2, &["run", "c2"]);
    assert!(!r.success(), "a range not in /etc/subuid was mapped");
    assert_one_line_error(
        &r.stderr(),
        &["linux.uidMappings", "newuidmap", "/etc/subuid"],
    );
    u.assert_nothing_left();
}

#[test]
fn rootless_shim_exec_logs_wait_kill_delete() {
    let u = user();
    let b = u.bundle(
        "b",
        &["sh", "-c", "echo hello-from-init; exec sleep 1000"],
        |_| {},
    );
    let bs = b.to_str().unwrap();
    u.ok(&["run", "-d", "--log-output", "--bundle", bs, "d1"]);
    let state: Value = serde_json::from_str(&u.ok(&["state", "d1"])).unwrap();
    assert_eq!(state["status"], "running");
    let pid = state["pid"].as_i64().unwrap();
    // The shim and the init run as the user.
    let init_uid = rt_testkit::user::real_uid(i32::try_from(pid).unwrap()).unwrap();
    assert_eq!(init_uid, u.uid);
    assert!(
        rt_testkit::wait_until(Duration::from_secs(5), || u
            .ok(&["logs", "d1"])
            .contains("hello-from-init")),
        "rt logs: {}",
        u.ok(&["logs", "d1"])
    );
    assert_eq!(
        u.ok(&["exec", "d1", "sh", "-c", "echo in-exec $(id -u)"])
            .trim(),
        "in-exec 0"
    );
    let tty = u.ok(&["exec", "-t", "d1", "sh", "-c", "tty"]);
    assert!(tty.contains("/dev/pts/"), "exec -t: {tty:?}");
    // What needs a cgroup says so.
    for args in [
        &["ps", "d1"][..],
        &["pause", "d1"],
        &["kill", "--all", "d1", "KILL"],
    ] {
        let err = u.fails(args);
        assert_one_line_error(&err, &["no cgroup of its own"]);
    }
    u.ok(&["kill", "d1", "KILL"]);
    assert_eq!(u.ok(&["wait", "d1"]).trim(), "137");
    u.ok(&["delete", "d1"]);
    assert!(u.ok(&["list", "-q"]).trim().is_empty());
    u.assert_nothing_left();
}

#[test]
fn rootless_delegated_cgroup_gets_limits_freeze_kill_and_stats() {
    let mut u = user();
    let deleg = u.delegate_cgroup();
    let path = format!("{deleg}/c1");
    let b = u.bundle("b", &["sleep", "1000"], |c| {
        c["linux"]["cgroupsPath"] = json!(path);
        c["linux"]["resources"] =
            json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 2097152}]});
    });
    let r = u.run_in(&b, &["--debug", "run", "-d", "c1"]);
    assert!(
        r.success(),
        "rt run -d in a delegated cgroup: {}",
        r.stderr()
    );
    assert!(
        r.stderr().contains("is delegated to this user"),
        "{}",
        r.stderr()
    );
    let dir = Path::new(CGROUP2).join(path.trim_start_matches('/'));
    assert_eq!(
        fs::read_to_string(dir.join("hugetlb.2MB.max"))
            .unwrap()
            .trim(),
        "2097152"
    );
    let pid = serde_json::from_str::<Value>(&u.ok(&["state", "c1"])).unwrap()["pid"]
        .as_i64()
        .unwrap();
    assert!(fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap()
        .lines()
        .any(|l| l == pid.to_string()));
    let ps = u.ok(&["ps", "--format", "json", "c1"]);
    assert!(ps.contains(&pid.to_string()), "rt ps: {ps}");
    u.ok(&["pause", "c1"]);
    let st: Value = serde_json::from_str(&u.ok(&["state", "c1"])).unwrap();
    assert_eq!(st["status"], "paused");
    let stats = u.ok(&["events", "--stats", "c1"]);
    assert!(
        stats.contains("\"hugetlb\"") && stats.contains("2097152"),
        "{stats}"
    );
    u.ok(&["resume", "c1"]);
    u.ok(&["kill", "--all", "c1", "KILL"]);
    assert!(rt_testkit::wait_until(Duration::from_secs(10), || {
        serde_json::from_str::<Value>(&u.ok(&["state", "c1"])).unwrap()["status"] == "stopped"
    }));
    u.ok(&["delete", "c1"]);
    assert!(!dir.exists(), "delete should remove the container's cgroup");
    u.assert_nothing_left();
}

#[test]
fn rootless_terminal_container_is_held_by_the_shim_and_attachable() {
    let u = user();
    let b = u.bundle("b", &["sh"], |c| c["process"]["terminal"] = json!(true));
    u.ok(&["run", "-d", "--bundle", b.to_str().unwrap(), "t1"]);
    // `script` gives rt attach a terminal; the input is typed into it.
    let attach = format!("{} attach t1", u.rt().display());
    let r = rt_testkit::run_captured(
        &mut u.command_of(
            Path::new("/bin/sh"),
            &u.home,
            true,
            &[
                "-c",
                &format!(
                    "(sleep 0.5; printf 'echo hi-$((6*7)) $(id -u)\\n'; sleep 0.5; printf 'exit 5\\n'; sleep 2) | script -qec '{attach}' /dev/null; echo \"attach-exit=$?\""
                ),
            ],
        ),
        Some(Duration::from_secs(60)),
    )
    .unwrap();
    let text = r.stdout();
    assert!(text.contains("hi-42 0"), "{text}");
    assert!(text.contains("attach-exit=5"), "{text}");
    assert_eq!(u.ok(&["wait", "t1"]).trim(), "5");
    assert!(u.ok(&["logs", "t1"]).contains("hi-42"));
    u.ok(&["delete", "t1"]);
    u.assert_nothing_left();
}

#[test]
fn rootless_joins_a_user_and_pid_namespace_by_path() {
    let u = user();
    let a = u.bundle("a", &["sleep", "1000"], |_| {});
    u.ok(&["run", "-d", "--bundle", a.to_str().unwrap(), "p1"]);
    let pid = serde_json::from_str::<Value>(&u.ok(&["state", "p1"])).unwrap()["pid"]
        .as_i64()
        .unwrap();
    // The second container joins the first one's user and pid namespaces
    // by path (so it takes no id maps of its own) and sees its processes.
    let b = u.bundle("b", &["sh", "-c", "ps -o pid,args; id -u"], |c| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        for n in ns.iter_mut() {
            if n["type"] == "user" || n["type"] == "pid" {
                n["path"] = json!(format!("/proc/{pid}/ns/{}", n["type"].as_str().unwrap()));
            }
        }
        let l = c["linux"].as_object_mut().unwrap();
        l.remove("uidMappings");
        l.remove("gidMappings");
    });
    let r = u.run_in(&b, &["run", "p2"]);
    assert!(r.success(), "rt run joining by path: {}", r.stderr());
    let out = r.stdout();
    assert!(
        out.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["1", "sleep", "1000"]),
        "the joined pid namespace's init should be pid 1 there: {out}"
    );
    assert_eq!(out.lines().last(), Some("0"), "{out}");
    // The pid namespace alone, with a new user namespace: the kernel
    // refuses, and rt says what is missing.
    let c = u.bundle("c", &["true"], |c| {
        for n in c["linux"]["namespaces"].as_array_mut().unwrap() {
            if n["type"] == "pid" {
                n["path"] = json!(format!("/proc/{pid}/ns/pid"));
            }
        }
    });
    let r = u.run_in(&c, &["run", "p3"]);
    assert!(
        !r.success(),
        "joined a pid namespace from outside its owner"
    );
    assert_one_line_error(
        &r.stderr(),
        &["pid namespace", "user namespace that owns it"],
    );
    u.ok(&["kill", "p1", "KILL"]);
    u.ok(&["wait", "p1"]);
    u.ok(&["delete", "p1"]);
    u.assert_nothing_left();
}

#[test]
fn rootless_without_a_cgroups_path_goes_beside_rt_in_a_delegated_parent() {
    let mut u = user();
    let deleg = u.delegate_cgroup();
    // rt runs in DELEG/shell; the config names no cgroup (as rootless
    // Podman's cgroupfs manager writes it) and asks for a limit.
    let b = u.bundle("b", &["sleep", "1000"], |c| {
        c["linux"]["resources"] =
            json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 2097152}]});
    });
    let r = u.run_in(&b, &["run", "-d", "c1"]);
    assert!(r.success(), "rt run -d: {}", r.stderr());
    let dir = Path::new(CGROUP2).join(deleg.trim_start_matches('/'));
    // rt-<hash of the state root>/c1
    let made: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("rt-"))
                && p.join("c1").is_dir()
        })
        .collect();
    assert_eq!(made.len(), 1, "one cgroup beside rt's in {}", dir.display());
    let cg = made[0].join("c1");
    assert_eq!(
        fs::read_to_string(cg.join("hugetlb.2MB.max"))
            .unwrap()
            .trim(),
        "2097152"
    );
    let pid = serde_json::from_str::<Value>(&u.ok(&["state", "c1"])).unwrap()["pid"]
        .as_i64()
        .unwrap();
    assert!(fs::read_to_string(cg.join("cgroup.procs"))
        .unwrap()
        .lines()
        .any(|l| l == pid.to_string()));
    u.ok(&["kill", "c1", "KILL"]);
    u.ok(&["wait", "c1"]);
    u.ok(&["delete", "c1"]);
    assert!(!cg.exists(), "delete should remove it");
    assert!(
        !made[0].exists(),
        "delete should remove the state root's directory"
    );
    u.assert_nothing_left();
}

/// A bind whose source's flags the kernel locks for a plain user (a
/// root's ro,nosuid,nodev tmpfs, seen from the user's namespace): the
/// flags asked are added to the locked ones; an option that clears a
/// locked one fails in one line naming both, and leaves nothing.
#[test]
fn rootless_bind_keeps_the_sources_locked_flags_or_names_the_one_asked_away() {
    use nix::mount::MsFlags;
    let u = user();
    let src = FlaggedTmpfs::new(MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV);
    let bind = |name: &str, options: &[&str]| {
        let show = "grep ' /mnt ' /proc/self/mounts | cut -d' ' -f4";
        u.bundle(name, &["sh", "-c", show], |c| {
            c["mounts"].as_array_mut().unwrap().push(json!({
                "destination": "/mnt", "type": "bind",
                "source": src.path(), "options": options,
            }));
        })
    };
    let b = bind("noexec", &["bind", "noexec"]);
    let r = u.run_in(&b, &["run", "c1"]);
    assert!(r.success(), "rt run: {}", r.stderr());
    let out = r.stdout();
    let flags: Vec<&str> = out.trim().split(',').collect();
    for f in ["ro", "nosuid", "nodev", "noexec"] {
        assert!(flags.contains(&f), "{f} missing from /mnt's {flags:?}");
    }
    let b = bind("rw", &["bind", "rw"]);
    let r = u.run_in(&b, &["run", "c2"]);
    assert!(!r.success(), "rw of a locked ro source ran: {}", r.stdout());
    assert_one_line_error(
        &r.stderr(),
        &[
            "(/mnt)",
            "the source is ro and a user namespace locks that; the options ask for rw",
        ],
    );
    u.assert_nothing_left();
}
