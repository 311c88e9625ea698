//! Helpers for driving rt through real managers: the built rt binary, a
//! busybox OCI image made offline, and daemons that are stopped (by pid)
//! and unmounted when a test ends, even when it fails.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};

/// The rt binary this workspace built (`cargo test --workspace` builds it
/// before running any test).
pub fn rt_binary() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    for profile in ["debug", "release"] {
        let p = target.join(profile).join("rt");
        if p.exists() {
            return p.canonicalize().unwrap();
        }
    }
    panic!("rt is not built: run `cargo build` first");
}

/// Panics with a clear message unless every program is on PATH.
pub fn require(programs: &[&str]) {
    assert!(
        nix::unistd::geteuid().is_root(),
        "integration tests run as root (bash scripts/test.sh)"
    );
    for p in programs {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {p}")])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        assert!(
            found,
            "{p} is missing: bash scripts/deps.sh --test installs it"
        );
    }
}

/// Runs a command and returns its output, panicking if it cannot start.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

/// Runs a command and panics with its output unless it succeeds.
pub fn ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A busybox image as an OCI archive and a docker-archive, built offline
/// with umoci and skopeo.
pub fn busybox_image(dir: &Path) -> (PathBuf, PathBuf) {
    let img = dir.join("img");
    let work = dir.join("work");
    ok(Command::new("umoci").args(["init", "--layout"]).arg(&img));
    ok(Command::new("umoci")
        .args(["new", "--image"])
        .arg(format!("{}:latest", img.display())));
    ok(Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:latest", img.display()))
        .arg(&work));
    let rootfs = work.join("rootfs");
    for d in ["bin", "etc", "tmp", "proc", "sys", "dev"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    let list = ok(Command::new("/bin/busybox").arg("--list"));
    for a in list.lines().filter(|a| *a != "busybox") {
        let _ = std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a));
    }
    std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\n").unwrap();
    let image = format!("{}:latest", img.display());
    ok(Command::new("umoci")
        .args(["repack", "--image", &image])
        .arg(&work));
    ok(Command::new("umoci").args([
        "config",
        "--image",
        &image,
        "--config.cmd",
        "/bin/sh",
        "--config.env",
        "PATH=/bin",
    ]));
    let oci = dir.join("busybox-oci.tar");
    ok(Command::new("tar")
        .arg("-C")
        .arg(&img)
        .arg("-cf")
        .arg(&oci)
        .arg("."));
    let docker = dir.join("busybox-docker.tar");
    ok(Command::new("skopeo")
        .args(["copy", "-q"])
        .arg(format!("oci:{image}"))
        .arg(format!(
            "docker-archive:{}:localhost/busybox:latest",
            docker.display()
        )));
    (oci, docker)
}

/// A daemon started by a test: killed by pid, and every mount under
/// `scratch` lazily unmounted, when dropped.
pub struct Daemon {
    pub child: Child,
    pub scratch: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
        unmount_under(&self.scratch);
    }
}

/// Lazily unmounts every mount point under `dir`, deepest first.
pub fn unmount_under(dir: &Path) {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mut points: Vec<&str> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| Path::new(p).starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let _ = nix::mount::umount2(p, nix::mount::MntFlags::MNT_DETACH);
    }
}
