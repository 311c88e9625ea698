//! rt-testkit: what rt's test suites (`tests/`, `image/tests`,
//! `integration/`, `spec-conformance/`) would otherwise each write again.
//!
//! - [`bins`]: the workspace's built binaries (rt, rt-shim,
//!   containerd-shim-rt-v2, rt-image) in the target directory,
//!   `CARGO_TARGET_DIR` respected, built on demand where a suite wants it.
//! - [`bundle`]: a root filesystem from Debian's busybox-static and a
//!   bundle directory around it with its config.json.
//! - [`runtime`]: any runtime with runc's command line, run with a private
//!   `--root`, its output through files, what it created deleted on drop.
//! - Here: [`require_root`], [`unique_id`], [`wait_until`], [`retry`],
//!   [`alive`] and [`mount_points_under`].
//!
//! `image/tests/common` can take the same: [`require_root`],
//! [`bundle::applets`] and [`BUSYBOX`] for its busybox layer,
//! [`ensure_built`] for the rt and rt-shim its bundles run with.
//!
//! Nothing here asserts for a suite: a helper returns what it found (or an
//! error), and the suite keeps its own assertions and messages.

pub mod bins;
pub mod bundle;
pub mod runtime;
pub mod user;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub use bins::{
    built_binary, ensure_built, ensure_built_in, find_binary, target_dir, workspace_root,
};
pub use bundle::{applets, busybox_rootfs, require_busybox, Bundle, BUSYBOX};
pub use runtime::{run_captured, Ran, Runtime};

/// Panics unless the tests run as root: they make namespaces, mounts and
/// cgroups, and a silent skip would pass without testing anything. `why`
/// says what the tests do ("these tests make containers").
pub fn require_root(why: &str) {
    assert!(
        nix::unistd::geteuid().is_root(),
        "{why}: run them as root (bash scripts/test.sh)"
    );
}

/// An id unique across the test processes running at once
/// (`PREFIX-PID-N`): a runtime's default cgroup is shared by every state
/// root.
pub fn unique_id(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// How often [`retry`] and [`wait_until`] look again.
pub const POLL: Duration = Duration::from_millis(20);

/// Calls `probe` until it returns `Ok`, or `timeout` has passed: then its
/// last `Err`.
pub fn retry<T, E>(timeout: Duration, mut probe: impl FnMut() -> Result<T, E>) -> Result<T, E> {
    let deadline = Instant::now() + timeout;
    loop {
        match probe() {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => std::thread::sleep(POLL),
        }
    }
}

/// Waits up to `timeout` for `cond`; false if it never held.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    retry(timeout, || if cond() { Ok(()) } else { Err(()) }).is_ok()
}

/// The mount points at or below `dir`, from this process's mountinfo.
pub fn mount_points_under(dir: &Path) -> Vec<String> {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| Path::new(p).starts_with(dir))
        .map(str::to_string)
        .collect()
}

/// Whether `pid` is a live process (a zombie waiting for its reaper is
/// dead: it runs nothing and holds nothing but its pid).
pub fn alive(pid: impl Into<i64>) -> bool {
    let pid = pid.into();
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat.rsplit_once(") ").map(|(_, rest)| rest.chars().next());
            !matches!(state, Some(Some('Z' | 'X')) | None)
        }
        Err(_) => false,
    }
}

/// Waits up to `timeout` for `pid` to catch signal number `signal` (its
/// SigCgt in /proc): a shell's `trap` is then in place. A signal sent
/// before that is lost when the shell is pid 1 of a pid namespace, which
/// ignores what it has no handler for. False if it never did.
pub fn wait_for_handler(pid: i64, signal: i32, timeout: Duration) -> bool {
    let bit = 1u64 << (signal - 1);
    wait_until(timeout, || {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("SigCgt:"))
                    .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
            })
            .is_some_and(|m| m & bit != 0)
    })
}

/// A TCP port free on 127.0.0.1 (bound, read, released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// `GET /` from `addr` (`host:port`) over HTTP/1.0, tried until `timeout`
/// while the server starts: the body of a `200` answer, or the last
/// error or answer.
pub fn http_get(addr: &str, timeout: Duration) -> Result<String, String> {
    use std::io::{Read, Write};
    let attempt = || -> Result<String, String> {
        let sa = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
        let mut s = std::net::TcpStream::connect_timeout(&sa, Duration::from_secs(2))
            .map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(|e| e.to_string())?;
        s.write_all(b"GET / HTTP/1.0\r\nHost: rt\r\n\r\n")
            .map_err(|e| e.to_string())?;
        let mut r = String::new();
        s.read_to_string(&mut r).map_err(|e| e.to_string())?;
        match r.split_once("\r\n\r\n") {
            Some((head, body)) if head.contains(" 200 ") => Ok(body.to_string()),
            _ => Err(r),
        }
    };
    retry(timeout, attempt).map_err(|e| format!("GET http://{addr}/: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn unique_ids_differ_and_name_the_process() {
        let (a, b) = (unique_id("x"), unique_id("x"));
        assert_ne!(a, b);
        assert!(a.starts_with(&format!("x-{}-", std::process::id())), "{a}");
    }

    #[test]
    fn retry_gives_the_last_error_after_the_timeout() {
        let mut n = 0;
        let r: Result<(), i32> = retry(Duration::from_millis(50), || {
            n += 1;
            Err(n)
        });
        assert_eq!(r, Err(n));
        assert!(n > 1, "it tried again");
        assert!(wait_until(Duration::from_secs(1), || true));
    }

    #[test]
    fn run_captured_kills_what_outlives_its_timeout() {
        let mut sleep = Command::new("sleep");
        sleep.arg("10");
        let ran = run_captured(&mut sleep, Some(Duration::from_millis(100))).unwrap();
        assert!(ran.timed_out && !ran.success());
        let mut echo = Command::new("sh");
        echo.args(["-c", "echo out; echo err >&2"]);
        let ran = run_captured(&mut echo, None).unwrap();
        assert!(ran.success());
        assert_eq!(
            (ran.stdout().as_str(), ran.why().as_str()),
            ("out\n", "err")
        );
    }

    #[test]
    fn runtime_remembers_what_create_and_run_name() {
        let rt = Runtime::new("/bin/true", "rt-testkit-root.").unwrap();
        rt.run(&["create", "--bundle", "b", "c1"]).unwrap();
        rt.run(&["--debug", "run", "-d", "c2"]).unwrap();
        rt.run(&["state", "c3"]).unwrap();
        rt.created("c4");
        rt.forget("c1");
        assert_eq!(rt.delete_all(), ["c2", "c4"]);
        assert!(rt.delete_all().is_empty());
    }

    #[test]
    fn a_busybox_bundle_has_its_applets() {
        require_busybox();
        let b = Bundle::new("rt-testkit-bundle.").unwrap();
        assert!(b.rootfs().join("bin/sh").is_symlink());
        assert!(b.rootfs().join("etc/passwd").exists());
        assert!(b.mounts_left().is_empty());
    }
}
