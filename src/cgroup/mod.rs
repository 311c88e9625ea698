//! The cgroup v2 manager: finding the unified hierarchy, placing the
//! container in its cgroup, killing what is left in it, and removing it.

pub mod devices;
pub mod resources;
pub mod stats;
pub mod systemd;

use std::fs;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;
use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

use crate::error::{Context, Error, Result};
use resources::Write;

/// Where a container's cgroup is, and which directories rt made for it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Placement {
    /// The cgroup directory on the cgroup2 filesystem.
    pub dir: PathBuf,
    /// The cgroup path relative to the hierarchy root, as the spec names it.
    pub path: String,
    /// The directory rt created (empty if it joined an existing cgroup).
    pub created: Vec<PathBuf>,
    /// With `--systemd-cgroup`: the scope unit systemd made for the
    /// container, stopped by `delete`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

/// The mount point of the cgroup2 hierarchy: pure v2 at /sys/fs/cgroup, or
/// the unified hierarchy of a hybrid host.
pub fn find_mount() -> Result<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").ctx("read /proc/self/mountinfo")?;
    parse_mount(&info).ok_or_else(|| {
        Error::Invalid("no cgroup2 filesystem is mounted (rt needs cgroup v2)".into())
    })
}

fn parse_mount(mountinfo: &str) -> Option<PathBuf> {
    let mut found = None;
    for line in mountinfo.lines() {
        // fields: id parent major:minor root mountpoint opts [optional...] - fstype source superopts
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        if right.split_whitespace().next() != Some("cgroup2") {
            continue;
        }
        let Some(mp) = left.split_whitespace().nth(4) else {
            continue;
        };
        let mp = PathBuf::from(unescape_octal(mp));
        if mp == Path::new("/sys/fs/cgroup") {
            return Some(mp);
        }
        found.get_or_insert(mp);
    }
    found
}

fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// rt's own cgroup v2 path (the `0::` line of /proc/self/cgroup).
fn own_path() -> Result<String> {
    let s = fs::read_to_string("/proc/self/cgroup").ctx("read /proc/self/cgroup")?;
    Ok(s.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or("/")
        .to_string())
}

/// The cgroup v2 path of process `pid` (its `0::` line).
pub fn cgroup_of(pid: i32) -> Result<String> {
    let f = format!("/proc/{pid}/cgroup");
    let s = fs::read_to_string(&f).with_ctx(|| format!("read {f}"))?;
    s.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(|p| p.trim().to_string())
        .ok_or_else(|| Error::Invalid(format!("{f}: no cgroup v2 line")))
}

/// The cgroup path for a container, relative to the hierarchy root.
///
/// - none: `/rt/<id>`
/// - absolute: as given
/// - relative: under rt's own cgroup
/// - `slice:prefix:name` with `--systemd-cgroup`: where systemd puts the
///   scope unit, `/a.slice/a-b.slice/prefix-name.scope` (none:
///   `system.slice:rt:<id>`); see [`systemd::Scope`].
pub fn resolve_path(spec_path: Option<&Path>, id: &str, systemd: bool) -> Result<String> {
    let spec_path = spec_path.and_then(|p| p.to_str()).filter(|p| !p.is_empty());
    if systemd {
        return Ok(systemd_scope(spec_path, id)?.cgroup_path());
    }
    let Some(p) = spec_path else {
        return Ok(default_path(id));
    };
    let path = if p.starts_with('/') {
        p.to_string()
    } else {
        let own = own_path()?;
        format!("{}/{}", own.trim_end_matches('/'), p)
    };
    if path.split('/').any(|c| c == "..") {
        return Err(Error::Invalid(format!(
            "linux.cgroupsPath: {p:?} must not contain '..'"
        )));
    }
    Ok(path)
}

/// The cgroup of a container whose config names none.
fn default_path(id: &str) -> String {
    format!("/rt/{id}")
}

/// Kills what is in the default cgroup of `id` and removes it: for a
/// container whose state does not say where its cgroup is (a create
/// killed before it recorded the cgroup).
pub fn remove_default(id: &str) {
    let Ok(mount) = find_mount() else { return };
    let dir = mount.join(default_path(id).trim_start_matches('/'));
    if dir.exists() {
        let p = Placement {
            dir,
            path: String::new(),
            created: vec![],
            unit: None,
        };
        let _ = p.kill_all(Duration::from_secs(5));
        let _ = fs::remove_dir(&p.dir);
    }
}

/// The scope unit of a container under `--systemd-cgroup`.
pub fn systemd_scope(spec_path: Option<&str>, id: &str) -> Result<systemd::Scope> {
    match spec_path {
        Some(p) => systemd::Scope::parse(p),
        None => systemd::Scope::parse(&format!("system.slice:{}:{id}", systemd::DEFAULT_PREFIX)),
    }
}

/// The files `r` needs written, once every controller they need is known
/// to be offered by the cgroup2 root at `mount`: a config rt cannot honour
/// fails here, before anything is made. Device rules are not files (see
/// `devices`).
pub fn check_resources(r: &LinuxResources, mount: &Path) -> Result<Vec<Write>> {
    let writes = resources::plan(r)?;
    for ctl in resources::controllers(&writes) {
        if !controller_available(mount, &ctl) {
            let field = match ctl.as_str() {
                "cpu" | "cpuset" => "cpu",
                "io" => "blockIO",
                "hugetlb" => "hugepageLimits",
                "memory" | "pids" | "rdma" => ctl.as_str(),
                _ => "unified",
            };
            return Err(missing_controller(field, &ctl, mount));
        }
    }
    Ok(writes)
}

/// Whether the cgroup2 root at `mount` offers controller `ctl`.
fn controller_available(mount: &Path, ctl: &str) -> bool {
    fs::read_to_string(mount.join("cgroup.controllers"))
        .map(|c| c.split_whitespace().any(|x| x == ctl))
        .unwrap_or(false)
}

/// The error for a resource whose controller cgroup v2 does not offer
/// here, saying why when the controller is bound to cgroup v1.
fn missing_controller(what: &str, ctl: &str, mount: &Path) -> Error {
    let have = fs::read_to_string(mount.join("cgroup.controllers")).unwrap_or_default();
    let have = if have.trim().is_empty() {
        "none"
    } else {
        have.trim()
    };
    // /proc/cgroups: name, hierarchy id, cgroups, enabled; a non-zero
    // hierarchy id means a v1 hierarchy holds the controller.
    let v1_name = if ctl == "io" { "blkio" } else { ctl };
    let on_v1 = fs::read_to_string("/proc/cgroups")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 4 && f[0] == v1_name).then(|| f[1] != "0")
        })
        .next()
        .unwrap_or(false);
    Error::Invalid(format!(
        "linux.resources.{what}: the {ctl} controller is not available in cgroup v2 at {} \
         (it offers: {have}){}",
        mount.display(),
        if on_v1 {
            "; on this hybrid host it is bound to cgroup v1, and rt manages cgroup v2 only"
        } else {
            ""
        }
    ))
}

impl Placement {
    /// Creates (or reuses) the container's cgroup directory. Only the leaf
    /// is the container's: ancestors (like `/rt`) are shared and stay.
    pub fn create(mount: &Path, path: &str) -> Result<Placement> {
        let dir = path
            .split('/')
            .filter(|c| !c.is_empty())
            .fold(mount.to_path_buf(), |d, c| d.join(c));
        // Another manager may remove an empty ancestor between our mkdirs:
        // try again a few times.
        let mut tries = 0;
        loop {
            if let Some(parent) = dir.parent() {
                fs::create_dir_all(parent)
                    .with_ctx(|| format!("create cgroup {}", parent.display()))?;
            }
            match fs::create_dir(&dir) {
                Ok(()) => {
                    return Ok(Placement {
                        dir: dir.clone(),
                        path: path.to_string(),
                        created: vec![dir],
                        unit: None,
                    })
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    return Ok(Placement {
                        dir,
                        path: path.to_string(),
                        created: vec![],
                        unit: None,
                    })
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && tries < 5 => tries += 1,
                Err(e) => return Err(e).with_ctx(|| format!("create cgroup {}", dir.display())),
            }
        }
    }

    /// An O_PATH-less directory descriptor for clone3's CLONE_INTO_CGROUP.
    pub fn open_dir(&self) -> Result<OwnedFd> {
        open(
            &self.dir,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .with_ctx(|| format!("open cgroup {}", self.dir.display()))
    }

    /// The pids in the cgroup (cgroup.procs).
    pub fn pids(&self) -> Result<Vec<i32>> {
        let p = self.dir.join("cgroup.procs");
        match fs::read_to_string(&p) {
            Ok(s) => Ok(s.lines().filter_map(|l| l.trim().parse().ok()).collect()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(vec![]),
            Err(e) => Err(e).with_ctx(|| format!("read {}", p.display())),
        }
    }

    /// SIGKILLs every process in the cgroup (cgroup.kill, or one by one on
    /// kernels without it) and waits up to `timeout` for it to be empty.
    pub fn kill_all(&self, timeout: Duration) -> Result<()> {
        let kill = self.dir.join("cgroup.kill");
        if fs::write(&kill, b"1").is_err() {
            for pid in self.pids()? {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        let deadline = Instant::now() + timeout;
        while !self.pids()?.is_empty() {
            if Instant::now() > deadline {
                return Err(Error::Invalid(format!(
                    "cgroup {} still has processes after SIGKILL",
                    self.dir.display()
                )));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(())
    }

    /// Sends `sig` to every process of the cgroup: SIGKILL through
    /// cgroup.kill, other signals one process at a time (a process gone
    /// meanwhile is skipped).
    pub fn signal_all(&self, sig: i32) -> Result<()> {
        if sig == libc::SIGKILL && fs::write(self.dir.join("cgroup.kill"), b"1").is_ok() {
            return Ok(());
        }
        for pid in self.pids()? {
            let _ = crate::sys::process::kill(pid, sig);
        }
        Ok(())
    }

    /// Removes the container's cgroup if rt created it.
    pub fn remove(&self) -> Result<()> {
        for d in &self.created {
            match fs::remove_dir(d) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).with_ctx(|| format!("remove cgroup {}", d.display())),
            }
        }
        Ok(())
    }

    /// Freezes or thaws every process of the cgroup and waits until the
    /// kernel reports it done (`frozen` in cgroup.events).
    pub fn set_frozen(&self, frozen: bool, timeout: Duration) -> Result<()> {
        let freeze = self.dir.join("cgroup.freeze");
        fs::write(&freeze, if frozen { "1" } else { "0" })
            .with_ctx(|| format!("write {}", freeze.display()))?;
        let events = self.dir.join("cgroup.events");
        let want = if frozen { "frozen 1" } else { "frozen 0" };
        let deadline = Instant::now() + timeout;
        loop {
            let now =
                fs::read_to_string(&events).with_ctx(|| format!("read {}", events.display()))?;
            if now.lines().any(|l| l.trim() == want) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(Error::Invalid(format!(
                    "{}: the kernel did not report \"{want}\" within {timeout:?}",
                    events.display()
                )));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Whether the cgroup is frozen (cgroup.freeze reads 1).
    pub fn is_frozen(&self) -> bool {
        fs::read_to_string(self.dir.join("cgroup.freeze"))
            .map(|s| s.trim() == "1")
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_unified_and_pure_v2_mounts() {
        let hybrid = "25 24 0:22 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro\n\
            26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid shared:9 - cgroup2 cgroup2 rw\n\
            27 25 0:24 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
        assert_eq!(
            parse_mount(hybrid),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        let pure = "30 24 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        assert_eq!(parse_mount(pure), Some(PathBuf::from("/sys/fs/cgroup")));
        assert_eq!(parse_mount("1 0 8:1 / / rw - ext4 /dev/sda1 rw\n"), None);
        let esc = "30 24 0:26 / /mnt/a\\040b rw - cgroup2 cgroup2 rw\n";
        assert_eq!(parse_mount(esc), Some(PathBuf::from("/mnt/a b")));
    }

    #[test]
    fn paths() {
        assert_eq!(resolve_path(None, "c1", false).unwrap(), "/rt/c1");
        assert_eq!(
            resolve_path(Some(Path::new("/a/b")), "c1", false).unwrap(),
            "/a/b"
        );
        assert!(resolve_path(Some(Path::new("/a/../b")), "c1", false).is_err());
        assert_eq!(
            resolve_path(Some(Path::new("machine-web.slice:rt:c1")), "c1", true).unwrap(),
            "/machine.slice/machine-web.slice/rt-c1.scope"
        );
        assert_eq!(
            resolve_path(Some(Path::new(":rt:c1")), "c1", true).unwrap(),
            "/system.slice/rt-c1.scope"
        );
        assert!(resolve_path(Some(Path::new("/a/b")), "c1", true).is_err());
        assert_eq!(
            resolve_path(None, "c1", true).unwrap(),
            "/system.slice/rt-c1.scope"
        );
        let rel = resolve_path(Some(Path::new("x/y")), "c1", false).unwrap();
        assert!(rel.ends_with("/x/y") && rel.starts_with('/'), "{rel}");
    }

    #[test]
    fn create_and_remove_only_the_leaf() {
        let d = tempfile::tempdir().unwrap();
        let p = Placement::create(d.path(), "/rt/a/b").unwrap();
        assert_eq!(p.created, vec![d.path().join("rt/a/b")]);
        p.remove().unwrap();
        assert!(d.path().join("rt/a").exists());
        assert!(!d.path().join("rt/a/b").exists());
        // Joining an existing cgroup never removes it.
        fs::create_dir(d.path().join("rt/a/c")).unwrap();
        let p = Placement::create(d.path(), "/rt/a/c").unwrap();
        p.remove().unwrap();
        assert!(d.path().join("rt/a/c").exists());
    }

    #[test]
    fn resources_whose_controller_is_missing_are_refused() {
        let r: LinuxResources = serde_json::from_str(r#"{"memory":{"limit":1048576}}"#).unwrap();
        let e = check_resources(&r, Path::new("/nonexistent"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("linux.resources.memory") && e.contains("memory controller"),
            "{e}"
        );
        let r: LinuxResources = serde_json::from_str(
            r#"{"devices":[{"allow":false,"access":"rwm"}],"memory":{},"blockIO":{}}"#,
        )
        .unwrap();
        assert!(check_resources(&r, Path::new("/nonexistent")).is_ok());
    }
}
