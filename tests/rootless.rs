//! rt as a plain user: each test makes a real unprivileged user (useradd,
//! with Debian's subuid/subgid range), a private XDG_RUNTIME_DIR, a bundle
//! in its home, and runs rt through `setpriv` as that user. Dropping the
//! [`User`] kills every process of its uid (by pid), removes the cgroups
//! the test made and deletes the user, so a failing test leaves nothing.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{assert_one_line_error, ensure_shim, require_root, rt_bin, CGROUP2};
use serde_json::{json, Value};

/// A user made for one test, with rt and rt-shim copied where it can run
/// them, and a busybox bundle in its home.
struct User {
    name: String,
    uid: u32,
    gid: u32,
    home: PathBuf,
    runtime_dir: PathBuf,
    /// rt and rt-shim, readable by the user (the target directory may not
    /// be).
    bin_dir: PathBuf,
    /// The first id of its subuid and subgid ranges.
    sub_start: u32,
    /// Cgroup directories the test made for it, removed deepest first.
    cgroups: Vec<PathBuf>,
    /// The cgroup its commands are moved into (a delegated one), if any.
    shell_cgroup: Option<PathBuf>,
}

fn check(c: &mut Command, what: &str) {
    let out = c.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl User {
    fn new() -> User {
        require_root();
        ensure_shim();
        assert!(
            Path::new("/usr/bin/newuidmap").exists() && Path::new("/usr/bin/setpriv").exists(),
            "these tests need newuidmap (uidmap) and setpriv (util-linux): bash scripts/deps.sh --test"
        );
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "rtl{}x{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        check(
            Command::new("useradd").args(["-m", "-U", "-s", "/bin/sh", &name]),
            "useradd",
        );
        let id = |flag: &str| -> u32 {
            let out = Command::new("id").args([flag, &name]).output().unwrap();
            String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
        };
        let (uid, gid) = (id("-u"), id("-g"));
        let home = PathBuf::from(format!("/home/{name}"));
        let sub_start = fs::read_to_string("/etc/subuid")
            .unwrap()
            .lines()
            .find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() == 3 && f[0] == name).then(|| f[1].parse().unwrap())
            })
            .expect("useradd gave the user a subuid range");
        let runtime_dir = PathBuf::from(format!("/run/user/{uid}"));
        let bin_dir = PathBuf::from(format!("/tmp/rt-rootless-bin-{name}"));
        let u = User {
            name,
            uid,
            gid,
            home,
            runtime_dir,
            bin_dir,
            sub_start,
            cgroups: vec![],
            shell_cgroup: None,
        };
        fs::create_dir_all(&u.runtime_dir).unwrap();
        std::os::unix::fs::chown(&u.runtime_dir, Some(uid), Some(gid)).unwrap();
        fs::set_permissions(&u.runtime_dir, fs::Permissions::from_mode(0o700)).unwrap();
        fs::create_dir_all(&u.bin_dir).unwrap();
        fs::set_permissions(&u.bin_dir, fs::Permissions::from_mode(0o755)).unwrap();
        let rt_dir = Path::new(rt_bin()).parent().unwrap();
        for b in ["rt", "rt-shim"] {
            fs::copy(rt_dir.join(b), u.bin_dir.join(b)).unwrap();
            fs::set_permissions(u.bin_dir.join(b), fs::Permissions::from_mode(0o755)).unwrap();
        }
        u
    }

    fn rt(&self) -> PathBuf {
        self.bin_dir.join("rt")
    }

    /// `rt ARGS...` as the user, in `dir`, with only HOME, PATH and
    /// (unless `xdg` is false) XDG_RUNTIME_DIR set.
    fn command(&self, dir: &Path, xdg: bool, args: &[&str]) -> Command {
        let mut c = Command::new("/bin/sh");
        // Moved into its cgroup first (as root: that takes write access to
        // the common ancestor), then the user.
        c.arg("-c").arg(
            r#"cg=$1; shift; [ -z "$cg" ] || echo $$ > "$cg/cgroup.procs" || exit 99; exec "$@""#,
        );
        c.arg("sh");
        c.arg(self.shell_cgroup.as_deref().unwrap_or(Path::new("")));
        c.args([
            "setpriv",
            &format!("--reuid={}", self.uid),
            &format!("--regid={}", self.gid),
            "--init-groups",
            "--",
            "env",
            "-i",
            &format!("HOME={}", self.home.display()),
            "PATH=/usr/local/bin:/usr/bin:/bin",
        ]);
        if xdg {
            c.arg(format!("XDG_RUNTIME_DIR={}", self.runtime_dir.display()));
        }
        c.arg(self.rt()).args(args).current_dir(dir);
        c
    }

    fn run_in(&self, dir: &Path, args: &[&str]) -> rt_testkit::Ran {
        rt_testkit::run_captured(
            &mut self.command(dir, true, args),
            Some(Duration::from_secs(60)),
        )
        .expect("spawn rt as the user")
    }

    fn run(&self, args: &[&str]) -> rt_testkit::Ran {
        self.run_in(&self.home, args)
    }

    fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert!(r.success(), "rt {args:?} as the user: {}", r.stderr());
        r.stdout()
    }

    fn fails(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert!(
            !r.success(),
            "rt {args:?} as the user should have failed: {}",
            r.stdout()
        );
        r.stderr()
    }

    /// A bundle in the user's home: busybox, `rt spec --rootless` written
    /// by the user, no terminal, `args`, shaped by `edit`.
    fn bundle(&self, name: &str, args: &[&str], edit: impl FnOnce(&mut Value)) -> PathBuf {
        let dir = self.home.join(name);
        rt_testkit::busybox_rootfs(&dir.join("rootfs")).unwrap();
        check(
            Command::new("chown").args([
                "-R",
                &format!("{}:{}", self.uid, self.gid),
                dir.to_str().unwrap(),
            ]),
            "chown the bundle",
        );
        let r = self.run_in(&dir, &["spec", "--rootless"]);
        assert!(r.success(), "rt spec --rootless: {}", r.stderr());
        let path = dir.join("config.json");
        let mut c: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        c["process"]["terminal"] = json!(false);
        c["process"]["args"] = json!(args);
        edit(&mut c);
        fs::write(&path, serde_json::to_vec_pretty(&c).unwrap()).unwrap();
        dir
    }

    /// The pids of every process running as the user.
    fn pids(&self) -> Vec<i32> {
        let mut out = vec![];
        for e in fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            if let Some(uid) = real_uid(pid) {
                if uid == self.uid || self.in_subrange(uid) {
                    out.push(pid);
                }
            }
        }
        out
    }

    fn in_subrange(&self, uid: u32) -> bool {
        uid >= self.sub_start && uid < self.sub_start + 65536
    }

    /// What of the user's is left: processes, its state root's entries,
    /// mounts under its home.
    fn leftovers(&self) -> Vec<String> {
        let mut left: Vec<String> = self
            .pids()
            .into_iter()
            .map(|p| {
                let cmd = fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
                format!(
                    "process {p} ({})",
                    String::from_utf8_lossy(&cmd).replace('\0', " ")
                )
            })
            .collect();
        if let Ok(rd) = fs::read_dir(self.runtime_dir.join("rt")) {
            for e in rd.flatten() {
                left.push(format!("state {}", e.path().display()));
            }
        }
        left.extend(rt_testkit::mount_points_under(&self.home));
        left
    }

    fn assert_nothing_left(&self) {
        let r = rt_testkit::retry(Duration::from_secs(5), || {
            let l = self.leftovers();
            if l.is_empty() {
                Ok(())
            } else {
                Err(l)
            }
        });
        if let Err(l) = r {
            panic!("the user's containers left: {l:#?}");
        }
    }

    /// A cgroup delegated to the user as an admin would: a directory it
    /// owns with its cgroup.procs, cgroup.threads and
    /// cgroup.subtree_control, and a leaf `shell` its commands run in.
    /// Returns the delegated directory's path below the cgroup2 root.
    fn delegate_cgroup(&mut self) -> String {
        let rel = format!("rt-rootless-{}", self.name);
        let dir = Path::new(CGROUP2).join(&rel);
        fs::create_dir(&dir).unwrap();
        self.cgroups.push(dir.clone());
        for f in [
            "",
            "cgroup.procs",
            "cgroup.threads",
            "cgroup.subtree_control",
        ] {
            std::os::unix::fs::chown(dir.join(f), Some(self.uid), Some(self.gid)).unwrap();
        }
        let shell = dir.join("shell");
        fs::create_dir(&shell).unwrap();
        self.cgroups.push(shell.clone());
        self.shell_cgroup = Some(shell);
        format!("/{rel}")
    }
}

/// The real uid of a process (the Uid line of its status; the owner of
/// /proc/PID is root while it is not dumpable).
fn real_uid(pid: i32) -> Option<u32> {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

impl Drop for User {
    fn drop(&mut self) {
        // Everything of the user's, by pid; SIGKILL until none is left.
        for _ in 0..50 {
            let pids = self.pids();
            if pids.is_empty() {
                break;
            }
            for p in pids {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(p),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // Cgroups the containers made below the delegated one, then ours.
        for dir in self.cgroups.iter().rev() {
            if let Ok(rd) = fs::read_dir(dir) {
                for e in rd.flatten() {
                    if e.path().is_dir() && !self.cgroups.contains(&e.path()) {
                        let _ = fs::remove_dir(e.path());
                    }
                }
            }
            let _ = fs::remove_dir(dir);
        }
        let _ = Command::new("userdel").args(["-r", &self.name]).output();
        let _ = fs::remove_dir_all(&self.runtime_dir);
        let _ = fs::remove_dir_all(&self.bin_dir);
    }
}

#[test]
fn rootless_run_maps_the_user_to_root_without_a_cgroup() {
    let u = User::new();
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
    let u = User::new();
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
    let u = User::new();
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
    let u = User::new();
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
    let u = User::new();
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
    let init_uid = real_uid(pid as i32).unwrap();
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
    let mut u = User::new();
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
