//! `make soak`: churn. Workers create, start, exec into, kill, wait for
//! and delete busybox containers (each with its rt-shim) for a bounded
//! time while one long-lived container logs without pause; then checks
//! that nothing leaked: state directories, cgroups, mounts, zombies, the
//! long-lived shim's descriptors and memory, and rt's own peak memory.
//!
//! SOAK_SECS (default 600), SOAK_QUICK=1 (60 s, what CI runs),
//! SOAK_WORKERS (default 4). Prints one summary line; exits 1 on any
//! failure or leak.

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rt_integration::{rt_binary, unmount_under};

const CGROUP2: &str = "/sys/fs/cgroup/unified";
/// Longer than any single command takes; a command past it is a hang.
const HANG: Duration = Duration::from_secs(60);

/// What one command did: exit code, stderr, and its peak RSS in KiB.
struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    max_rss_kib: i64,
}

/// Runs rt with a deadline, collecting its peak RSS through wait4.
fn rt(root: &Path, args: &[&str]) -> Ran {
    let out = tempfile::tempfile().unwrap();
    let err = tempfile::tempfile().unwrap();
    // Reaped by wait4 below, which std's Child cannot do (it drops the
    // rusage).
    #[allow(clippy::zombie_processes)]
    let child = Command::new(rt_binary())
        .arg("--root")
        .arg(root)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(err.try_clone().unwrap())
        .spawn()
        .expect("spawn rt");
    let pid = libc::pid_t::try_from(child.id()).expect("a pid fits an int");
    let deadline = Instant::now() + HANG;
    let (status, usage) = loop {
        let mut status = 0;
        // SAFETY: zeroed rusage is a valid value of this plain C struct.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `pid` is our own child, not yet reaped (std's Child is
        // never waited on); status and usage point to live locals.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid {
            break (status, usage);
        }
        assert!(r == 0, "wait4: {}", std::io::Error::last_os_error());
        if Instant::now() > deadline {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            panic!("rt {args:?} hung for more than {HANG:?}");
        }
        std::thread::sleep(Duration::from_micros(500));
    };
    let read = |mut f: fs::File| {
        use std::io::{Read, Seek};
        let mut s = String::new();
        f.seek(std::io::SeekFrom::Start(0)).unwrap();
        f.read_to_string(&mut s).unwrap();
        s
    };
    Ran {
        code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        stdout: read(out),
        stderr: read(err),
        max_rss_kib: usage.ru_maxrss,
    }
}

/// A busybox bundle running `args`.
fn bundle(dir: &Path, args: &[&str]) -> PathBuf {
    let rootfs = dir.join("rootfs");
    for d in ["bin", "etc", "tmp", "proc", "sys", "dev", "root"] {
        fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    for a in ["sh", "sleep", "true", "echo"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a)).unwrap();
    }
    let out = Command::new(rt_binary())
        .arg("spec")
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "rt spec: {out:?}");
    let path = dir.join("config.json");
    let mut config: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    config["process"]["args"] = serde_json::json!(args);
    config["process"]["terminal"] = false.into();
    fs::write(&path, config.to_string()).unwrap();
    dir.to_path_buf()
}

fn median(v: &mut [i64]) -> i64 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

/// rt-shim processes whose container directory is under `root`.
fn shims_under(root: &Path) -> Vec<(i32, PathBuf)> {
    let mut found = vec![];
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|p| p.parse().ok()) else {
            continue;
        };
        let cmdline = fs::read(e.path().join("cmdline")).unwrap_or_default();
        let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
        if !args.first().is_some_and(|a| a.ends_with(b"rt-shim")) {
            continue;
        }
        for a in &args {
            let p = Path::new(std::ffi::OsStr::from_bytes(a));
            if p.parent() == Some(root) {
                found.push((pid, p.to_path_buf()));
            }
        }
    }
    found
}

/// The pid of the rt-shim watching container `id` under `root`.
fn shim_of(root: &Path, id: &str) -> Option<i32> {
    let dir = root.join(id);
    shims_under(root)
        .into_iter()
        .find_map(|(pid, d)| (d == dir).then_some(pid))
}

fn rss_kib(pid: i32) -> i64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

fn fds(pid: i32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Zombies whose parent is `parent`.
fn zombies_of(parent: i32) -> Vec<i32> {
    let mut found = vec![];
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let mut f = rest.split(' ');
        let (state, ppid) = (f.next(), f.next().and_then(|p| p.parse::<i32>().ok()));
        if state == Some("Z") && ppid == Some(parent) {
            found.push(pid);
        }
    }
    found
}

fn mount_count() -> usize {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .count()
}

#[derive(Default)]
struct Tally {
    ops: [AtomicUsize; 6],
    failures: AtomicUsize,
    first_errors: Mutex<Vec<String>>,
    create_rss: Mutex<Vec<i64>>,
}

const OPS: [&str; 6] = ["create", "start", "exec", "kill", "wait", "delete"];

impl Tally {
    fn fail(&self, what: String) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        let mut e = self.first_errors.lock().unwrap();
        if e.len() < 5 {
            e.push(what);
        }
    }
}

/// One container's life. Returns false if a step failed (the rest is
/// skipped; delete -f still runs).
fn one_life(root: &Path, b: &Path, id: &str, t: &Tally) -> bool {
    let bundle = b.to_str().unwrap();
    let steps: [&[&str]; 6] = [
        &["create", "--bundle", bundle, id],
        &["start", id],
        &["exec", id, "true"],
        &["kill", id, "KILL"],
        &["wait", id],
        &["delete", id],
    ];
    for (i, args) in steps.iter().enumerate() {
        let r = rt(root, args);
        let want_out = if OPS[i] == "wait" { "137" } else { "" };
        if r.code != Some(0) || (OPS[i] == "wait" && r.stdout.trim() != want_out) {
            t.fail(format!(
                "rt {args:?}: exit {:?}: {}{}",
                r.code,
                r.stdout.trim(),
                r.stderr.trim()
            ));
            let _ = rt(root, &["delete", "-f", id]);
            return false;
        }
        if i == 0 {
            t.create_rss.lock().unwrap().push(r.max_rss_kib);
        }
        t.ops[i].fetch_add(1, Ordering::Relaxed);
    }
    true
}

fn main() -> ExitCode {
    assert!(nix::unistd::geteuid().is_root(), "soak runs as root");
    let quick = std::env::var("SOAK_QUICK").is_ok_and(|v| v == "1");
    let secs: u64 = std::env::var("SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if quick { 60 } else { 600 });
    let workers: usize = std::env::var("SOAK_WORKERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);

    let scratch = tempfile::Builder::new()
        .prefix("rt-soak.")
        .tempdir()
        .unwrap();
    let root = scratch.path().join("state");
    fs::create_dir(&root).unwrap();
    let short = bundle(&scratch.path().join("short"), &["sleep", "1000"]);
    let chatty = bundle(
        &scratch.path().join("chatty"),
        &["sh", "-c", "while :; do echo tick; sleep 0.01; done"],
    );
    let prefix = format!("soak-{}-", std::process::id());
    let mounts_before = mount_count();

    // The long-lived container: its shim logs ~100 lines a second all
    // along; its memory and descriptors must not grow.
    let long_id = format!("{prefix}long");
    let r = rt(
        &root,
        &[
            "run",
            "-d",
            "--log-output",
            "--bundle",
            chatty.to_str().unwrap(),
            &long_id,
        ],
    );
    assert_eq!(
        r.code,
        Some(0),
        "run -d the long-lived container: {}",
        r.stderr
    );
    std::thread::sleep(Duration::from_secs(2));
    let long_shim = shim_of(&root, &long_id).expect("the long-lived container's rt-shim");
    let (rss0, fds0) = (rss_kib(long_shim), fds(long_shim));

    let t = Tally::default();
    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    std::thread::scope(|s| {
        for w in 0..workers {
            let (t, root, short, prefix) = (&t, &root, &short, &prefix);
            s.spawn(move || {
                let mut n = 0;
                while Instant::now() < deadline {
                    let id = format!("{prefix}{w}-{n}");
                    n += 1;
                    one_life(root, short, &id, t);
                }
            });
        }
        // Meanwhile: exec into the long-lived container and list.
        let (t, root, long_id) = (&t, &root, &long_id);
        s.spawn(move || {
            while Instant::now() < deadline {
                for args in [&["exec", long_id, "true"][..], &["list", "-q"][..]] {
                    let r = rt(root, args);
                    if r.code != Some(0) {
                        t.fail(format!("rt {args:?}: {}", r.stderr.trim()));
                    }
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        });
    });
    let elapsed = start.elapsed();

    let mut leaks: Vec<String> = vec![];
    let (rss1, fds1) = (rss_kib(long_shim), fds(long_shim));
    if fds1 != fds0 {
        leaks.push(format!("long-lived rt-shim fds {fds0} -> {fds1}"));
    }
    // Pages touched once (log buffers, the allocator's arenas) may settle
    // in; growth past that is a leak.
    if rss1 > rss0 + 256 {
        leaks.push(format!("long-lived rt-shim RSS {rss0} KiB -> {rss1} KiB"));
    }
    let z = zombies_of(long_shim);
    if !z.is_empty() {
        leaks.push(format!("zombies of the long-lived rt-shim: {z:?}"));
    }
    let r = rt(&root, &["delete", "-f", &long_id]);
    if r.code != Some(0) {
        leaks.push(format!(
            "delete -f of the long-lived container: {}",
            r.stderr.trim()
        ));
    }

    // Everything the workers made is gone.
    let deadline = Instant::now() + Duration::from_secs(5);
    let left = loop {
        let left: Vec<String> = fs::read_dir(&root)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        if left.is_empty() || Instant::now() > deadline {
            break left;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    if !left.is_empty() {
        leaks.push(format!("state dirs: {left:?}"));
        for id in &left {
            let _ = rt(&root, &["delete", "-f", id]);
        }
    }
    let cgroups: Vec<String> = fs::read_dir(Path::new(CGROUP2).join("rt"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(&prefix))
                .collect()
        })
        .unwrap_or_default();
    if !cgroups.is_empty() {
        leaks.push(format!("cgroups: {cgroups:?}"));
    }
    let mounts_after = mount_count();
    if mounts_after != mounts_before {
        leaks.push(format!("mounts {mounts_before} -> {mounts_after}"));
    }
    let z = zombies_of(i32::try_from(std::process::id()).expect("a pid fits an int"));
    if !z.is_empty() {
        leaks.push(format!("zombies of soak: {z:?}"));
    }
    let shims = shims_under(&root);
    if !shims.is_empty() {
        leaks.push(format!("rt-shims still running: {shims:?}"));
    }
    // rt's own peak memory: the last creates against the first.
    let mut rss = t.create_rss.lock().unwrap().clone();
    let k = (rss.len() / 10).clamp(1, 50);
    let (first, last) = if rss.len() >= 2 * k {
        let n = rss.len();
        (median(&mut rss[..k]), median(&mut rss[n - k..]))
    } else {
        (0, 0)
    };
    if last > first + first / 10 {
        leaks.push(format!("rt create peak RSS {first} KiB -> {last} KiB"));
    }
    unmount_under(scratch.path());

    let counts: Vec<String> = OPS
        .iter()
        .zip(&t.ops)
        .map(|(name, n)| format!("{name} {}", n.load(Ordering::Relaxed)))
        .collect();
    let failures = t.failures.load(Ordering::Relaxed);
    println!(
        "soak: {:.0}s, {workers} workers: {}; {failures} failed; rt create peak RSS {first}->{last} KiB; \
         long-lived rt-shim RSS {rss0}->{rss1} KiB, fds {fds0}->{fds1}; leaked: {}",
        elapsed.as_secs_f64(),
        counts.join(", "),
        if leaks.is_empty() {
            "nothing".to_string()
        } else {
            leaks.join("; ")
        }
    );
    for e in t.first_errors.lock().unwrap().iter() {
        println!("  failure: {e}");
    }
    if failures == 0 && leaks.is_empty() && t.ops[0].load(Ordering::Relaxed) > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
