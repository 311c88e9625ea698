//! A real unprivileged user for rootless tests: made with useradd (and
//! so with Debian's subuid/subgid range), a private XDG_RUNTIME_DIR,
//! the runtime copied where it can run it, commands run as it through
//! `setpriv`. Dropping it kills every process of its uid and subuid range
//! (by pid), removes the cgroups made for it and deletes the user, so a
//! failing test leaves nothing.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{json, Value};

/// The cgroup2 mount of the hosts rt is tested on (hybrid: the unified
/// hierarchy).
pub const CGROUP2: &str = "/sys/fs/cgroup/unified";

/// A user made for one test, with rt and rt-shim copied where it can run
/// them, and a busybox bundle in its home.
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
    pub runtime_dir: PathBuf,
    /// rt and rt-shim, readable by the user (the target directory may not
    /// be).
    pub bin_dir: PathBuf,
    /// The first id of its subuid and subgid ranges.
    pub sub_start: u32,
    /// Cgroup directories the test made for it, removed deepest first.
    pub cgroups: Vec<PathBuf>,
    /// The cgroup its commands are moved into (a delegated one), if any.
    pub shell_cgroup: Option<PathBuf>,
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
    /// A new user; `rt_dir` holds the rt and rt-shim to copy for it.
    pub fn new(rt_dir: &Path) -> User {
        crate::require_root("these tests make users");
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
        for b in ["rt", "rt-shim"] {
            fs::copy(rt_dir.join(b), u.bin_dir.join(b)).unwrap_or_else(|e| {
                panic!(
                    "copy {}: {e} (build rt and rt-shim first)",
                    rt_dir.join(b).display()
                )
            });
            fs::set_permissions(u.bin_dir.join(b), fs::Permissions::from_mode(0o755)).unwrap();
        }
        u
    }

    pub fn rt(&self) -> PathBuf {
        self.bin_dir.join("rt")
    }

    /// `PROG ARGS...` as the user, in `dir`, with only HOME, PATH and
    /// (unless `xdg` is false) XDG_RUNTIME_DIR set.
    pub fn command_of(&self, prog: &Path, dir: &Path, xdg: bool, args: &[&str]) -> Command {
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
        c.arg(prog).args(args).current_dir(dir);
        c
    }

    /// `rt ARGS...` as the user (see [`User::command_of`]).
    pub fn command(&self, dir: &Path, xdg: bool, args: &[&str]) -> Command {
        self.command_of(&self.rt(), dir, xdg, args)
    }

    pub fn run_in(&self, dir: &Path, args: &[&str]) -> crate::Ran {
        crate::run_captured(
            &mut self.command(dir, true, args),
            Some(Duration::from_secs(60)),
        )
        .expect("spawn rt as the user")
    }

    pub fn run(&self, args: &[&str]) -> crate::Ran {
        self.run_in(&self.home, args)
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert!(r.success(), "rt {args:?} as the user: {}", r.stderr());
        r.stdout()
    }

    pub fn fails(&self, args: &[&str]) -> String {
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
    pub fn bundle(&self, name: &str, args: &[&str], edit: impl FnOnce(&mut Value)) -> PathBuf {
        let dir = self.home.join(name);
        crate::busybox_rootfs(&dir.join("rootfs")).unwrap();
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
    pub fn pids(&self) -> Vec<i32> {
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
    pub fn leftovers(&self) -> Vec<String> {
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
        left.extend(crate::mount_points_under(&self.home));
        left
    }

    pub fn assert_nothing_left(&self) {
        let r = crate::retry(Duration::from_secs(5), || {
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
    pub fn delegate_cgroup(&mut self) -> String {
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
pub fn real_uid(pid: i32) -> Option<u32> {
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
