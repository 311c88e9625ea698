//! The cgroup v2 manager: finding the unified hierarchy, placing the
//! container in its cgroup, killing what is left in it, and removing it.

pub mod devices;
pub mod hybrid;
pub mod resources;
pub mod stats;
pub mod systemd;
pub mod user_bus;

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

/// `dir` and every cgroup below it, parents before children. cgroupfs has
/// only directories and interface files (no symlinks to follow out).
fn subtree(dir: &Path) -> Vec<PathBuf> {
    let mut all = vec![dir.to_path_buf()];
    let mut i = 0;
    while i < all.len() {
        if let Ok(entries) = fs::read_dir(&all[i]) {
            let mut subs: Vec<PathBuf> = entries
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path())
                .collect();
            subs.sort();
            all.extend(subs);
        }
        i += 1;
    }
    all
}

/// The mount point of the cgroup2 hierarchy: pure v2 at /sys/fs/cgroup, or
/// the unified hierarchy of a hybrid host.
pub fn find_mount() -> Result<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").ctx("read /proc/self/mountinfo")?;
    parse_mount(&info).ok_or_else(|| {
        Error::HostLacks("no cgroup2 filesystem is mounted (rt needs cgroup v2)".into())
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
pub fn own_path() -> Result<String> {
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
        .ok_or_else(|| Error::HostLacks(format!("{f}: no cgroup v2 line")))
}

/// The cgroup path for a container, relative to the hierarchy root.
///
/// - none: `/rt/<hash of the state root>/<id>` (see [`default_path`])
/// - absolute: as given
/// - relative: under the parent of rt's own cgroup, as runc places it: rt's
///   own cgroup holds processes (its caller's), so no controller could be
///   enabled below it (BuildKit's runc executor passes Docker's
///   `system.slice:docker:<id>` this way, without `--systemd-cgroup`)
/// - `slice:prefix:name` with `--systemd-cgroup`: where systemd puts the
///   scope unit, `/a.slice/a-b.slice/prefix-name.scope` (none:
///   `system.slice:rt:<id>`); see [`systemd::Scope`].
pub fn resolve_path(
    spec_path: Option<&Path>,
    state_root: &Path,
    id: &str,
    systemd: bool,
) -> Result<String> {
    let spec_path = spec_path.and_then(|p| p.to_str()).filter(|p| !p.is_empty());
    if systemd {
        return Ok(systemd_scope(spec_path, id)?.cgroup_path());
    }
    let Some(p) = spec_path else {
        return Ok(
            rootless_default_path(state_root, id).unwrap_or_else(|| default_path(state_root, id))
        );
    };
    let path = if p.starts_with('/') {
        p.to_string()
    } else {
        relative_to(&own_path()?, p)
    };
    if path.split('/').any(|c| c == "..") {
        return Err(Error::InvalidField {
            field: "linux.cgroupsPath".into(),
            reason: format!("{p:?} must not contain '..'"),
        });
    }
    Ok(path)
}

/// A relative cgroupsPath `p` for a runtime whose own cgroup is `own`: in
/// `own`'s parent (the root when `own` is the root).
fn relative_to(own: &str, p: &str) -> String {
    let parent = Path::new(own)
        .parent()
        .and_then(|d| d.to_str())
        .unwrap_or("/")
        .trim_end_matches('/');
    format!("{parent}/{p}")
}

/// The cgroup of a container whose config names none:
/// `/rt/<hash>/<id>`, the hash (FNV-1a, 32 bits in hex) of the state
/// root's absolute path. One id under two `--root` directories is two
/// containers, and they get two cgroups; the leaf is named for the id, as
/// runc's is, so `find /sys/fs/cgroup -name ID` and `systemd-cgls` show it.
pub fn default_path(state_root: &Path, id: &str) -> String {
    use std::os::unix::ffi::OsStrExt;
    let root = canonical(state_root);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in root.as_os_str().as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    #[allow(clippy::cast_possible_truncation)] // the hash folded to its low 32 bits, on purpose
    let folded = (h ^ (h >> 32)) as u32;
    format!("/{DEFAULT_PARENT}/{folded:08x}/{id}")
}

/// The directory of rt's default cgroups, under the hierarchy's root
/// (as root) or as the prefix of the state root's directory beside rt's
/// own cgroup (without root).
const DEFAULT_PARENT: &str = "rt";

/// Whether `dir` is the per-state-root directory of [`default_path`]
/// (`rt/<hash>`, or `rt-<hash>` beside rt's own cgroup without root),
/// which holds only default cgroups and goes when the last one goes.
fn is_default_state_dir(dir: &Path) -> bool {
    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let hex8 = |h: &str| h.len() == 8 && h.bytes().all(|b| b.is_ascii_hexdigit());
    let under_rt = dir
        .parent()
        .and_then(Path::file_name)
        .is_some_and(|p| p == DEFAULT_PARENT);
    (under_rt && hex8(name))
        || name
            .strip_prefix(DEFAULT_PARENT)
            .and_then(|r| r.strip_prefix('-'))
            .is_some_and(hex8)
}

/// Without root and with no path in the config: beside rt's own cgroup
/// (in its parent, as `rt-<hash>/<id>`) when that parent is delegated to
/// this user, as under a systemd user manager's scope (Delegate=yes),
/// where rootless Podman's cgroupfs manager runs rt. rt's own cgroup holds
/// processes, so the container cannot go below it. None otherwise.
fn rootless_default_path(state_root: &Path, id: &str) -> Option<String> {
    if !crate::rootless::detect().is_rootless() {
        return None;
    }
    let own = own_path().ok()?;
    let parent = Path::new(&own).parent()?.to_str()?.trim_end_matches('/');
    if parent.is_empty() {
        return None;
    }
    let name = default_path(state_root, id);
    let name = name.strip_prefix(&format!("/{DEFAULT_PARENT}/"))?;
    let path = format!("{parent}/{DEFAULT_PARENT}-{name}");
    let mount = find_mount().ok()?;
    crate::rootless::cgroup_delegated(&mount, &own, &path).then_some(path)
}

/// `path` with symlinks resolved as far as it exists (a state root is made
/// by the first create, after its cgroup path is known).
fn canonical(path: &Path) -> PathBuf {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut rest = Vec::new();
    let mut at = abs.as_path();
    loop {
        if let Ok(c) = fs::canonicalize(at) {
            return rest.iter().rev().fold(c, |p, r| p.join(r));
        }
        match (at.parent(), at.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                at = parent;
            }
            _ => return abs,
        }
    }
}

/// For a container whose state file cannot be read: kills what is in its
/// default cgroup and removes it. That cgroup belongs to this state root
/// and id alone, and rt never places a container in a cgroup that holds
/// processes, so what is in it is this container's.
pub fn remove_default(state_root: &Path, id: &str) {
    let Ok(mount) = find_mount() else { return };
    let dir = mount.join(default_path(state_root, id).trim_start_matches('/'));
    // Without root, never touch a cgroup of the same name that is not
    // this user's.
    let ours = || {
        use std::os::unix::fs::MetadataExt;
        fs::metadata(&dir).is_ok_and(|m| m.uid() == nix::unistd::geteuid().as_raw())
    };
    if crate::rootless::detect().is_rootless() && !ours() {
        return;
    }
    if dir.exists() {
        let p = Placement {
            created: vec![dir.clone()],
            dir,
            path: String::new(),
            unit: None,
        };
        let _ = p.kill_all(Duration::from_secs(5));
        let _ = p.remove();
    }
}

/// How many processes `dir` and the cgroups below it hold.
fn count_processes(dir: &Path) -> usize {
    let own = fs::read_to_string(dir.join("cgroup.procs"))
        .map(|s| s.lines().filter(|l| !l.trim().is_empty()).count())
        .unwrap_or(0);
    let below: usize = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| count_processes(&e.path()))
        .sum();
    own + below
}

/// Refuses an existing cgroup that holds processes or is frozen: a
/// container placed there would share it with whatever runs there (and be
/// killed with it, or kill it), or hang frozen in its setup.
fn check_unused(dir: &Path) -> Result<()> {
    let n = count_processes(dir);
    if n > 0 {
        return Err(Error::CgroupInUse {
            dir: dir.to_path_buf(),
            // runc's words first, which callers match.
            why: format!(
                "container's cgroup is not empty: it already holds {n} process{}",
                if n == 1 { "" } else { "es" }
            ),
        });
    }
    let frozen = fs::read_to_string(dir.join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1");
    if frozen {
        return Err(Error::CgroupInUse {
            dir: dir.to_path_buf(),
            why: "container's cgroup unexpectedly frozen: it is frozen".into(),
        });
    }
    Ok(())
}

/// Under `--systemd-cgroup`: the bus to systemd (one line saying so when
/// it is not running) and the container's scope unit, from the config's
/// `linux.cgroupsPath` (empty: the default).
pub fn connect_scope(
    cgroups_path: Option<&Path>,
    id: &str,
) -> Result<(systemd::Systemd, systemd::Scope)> {
    let sd = systemd::Systemd::connect()?;
    let scope = systemd_scope(
        cgroups_path
            .and_then(|p| p.to_str())
            .filter(|p| !p.is_empty()),
        id,
    )?;
    Ok((sd, scope))
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
/// `devices`). Where controllers are missing, and cgroup v1 holds them,
/// rt's settings decide whether those limits are skipped (`hybrid`); the
/// settings are read only then.
pub fn check_resources(r: &LinuxResources, mount: &Path) -> Result<Vec<Write>> {
    let writes = resources::plan(r)?;
    let missing: Vec<hybrid::Missing> = resources::controllers(&writes)
        .into_iter()
        .filter(|c| !controller_available(mount, c))
        .map(|c| hybrid::Missing {
            on_v1: bound_to_v1(&c),
            controller: c,
        })
        .collect();
    if missing.is_empty() {
        return Ok(writes);
    }
    let (file, setting) = if missing.iter().all(|m| m.on_v1) {
        let (file, s) = hybrid::Settings::load()?;
        (Some(file), s.cgroup_v1_limits)
    } else {
        (None, hybrid::V1Limits::Refuse)
    };
    match hybrid::decide(writes, &missing, setting) {
        hybrid::Decision::Apply(kept, skipped) => {
            let file = file.unwrap_or_default();
            for s in skipped {
                log::warn!(
                    "linux.resources.{}: skipped, the {} controller is in cgroup v1 on this host \
                     (\"cgroupV1Limits\": \"skip\" in {})",
                    s.field,
                    s.controller,
                    file.display()
                );
            }
            Ok(kept)
        }
        hybrid::Decision::Refuse(ctl) => {
            let field = match ctl.as_str() {
                "cpu" | "cpuset" => "cpu",
                "io" => "blockIO",
                "hugetlb" => "hugepageLimits",
                "memory" | "pids" | "rdma" => ctl.as_str(),
                _ => "unified",
            };
            Err(missing_controller(field, &ctl, mount))
        }
    }
}

/// Whether the cgroup2 root at `mount` offers controller `ctl`.
fn controller_available(mount: &Path, ctl: &str) -> bool {
    fs::read_to_string(mount.join("cgroup.controllers"))
        .map(|c| c.split_whitespace().any(|x| x == ctl))
        .unwrap_or(false)
}

/// Whether a cgroup v1 hierarchy holds controller `ctl` (v2's name).
fn bound_to_v1(ctl: &str) -> bool {
    // /proc/cgroups: name, hierarchy id, cgroups, enabled; a non-zero
    // hierarchy id means a v1 hierarchy holds the controller.
    let v1_name = if ctl == "io" { "blkio" } else { ctl };
    fs::read_to_string("/proc/cgroups")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 4 && f[0] == v1_name).then(|| f[1] != "0")
        })
        .next()
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
    Error::HostLacks(format!(
        "linux.resources.{what}: the {ctl} controller is not available in cgroup v2 at {} \
         (it offers: {have}){}",
        mount.display(),
        if bound_to_v1(ctl) {
            "; on this hybrid host it is bound to cgroup v1, and rt manages cgroup v2 only \
             (\"cgroupV1Limits\": \"skip\" in /etc/rt/config.json runs containers without such limits)"
        } else {
            ""
        }
    ))
}

impl Placement {
    /// Where the container's cgroup directory will be, and whether rt will
    /// make it (`created`) or join an existing one, which must hold no
    /// processes and not be frozen. Nothing is made yet: the caller
    /// records the plan first, so that a create killed right after the
    /// mkdir still knows which directory is its own.
    pub fn plan(mount: &Path, path: &str) -> Result<Placement> {
        let dir = path
            .split('/')
            .filter(|c| !c.is_empty())
            .fold(mount.to_path_buf(), |d, c| d.join(c));
        let created = if dir.exists() {
            check_unused(&dir)?;
            vec![]
        } else {
            vec![dir.clone()]
        };
        Ok(Placement {
            dir,
            path: path.to_string(),
            created,
            unit: None,
        })
    }

    /// Makes the planned directory. Only the leaf is the container's:
    /// ancestors (like `/rt`) are shared and stay. Returns whether the
    /// plan changed (another process made the directory meanwhile: it is
    /// then joined, after the same checks).
    pub fn make(&mut self) -> Result<bool> {
        if self.created.is_empty() {
            return Ok(false);
        }
        // Another manager may remove an empty ancestor between our mkdirs:
        // try again a few times.
        let mut tries = 0;
        loop {
            if let Some(parent) = self.dir.parent() {
                fs::create_dir_all(parent)
                    .with_ctx(|| format!("create cgroup {}", parent.display()))?;
            }
            match fs::create_dir(&self.dir) {
                Ok(()) => return Ok(false),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    self.created.clear();
                    check_unused(&self.dir)?;
                    return Ok(true);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && tries < 5 => tries += 1,
                Err(e) => {
                    return Err(e).with_ctx(|| format!("create cgroup {}", self.dir.display()))
                }
            }
        }
    }

    /// Plans and makes the cgroup at once (see [`Placement::plan`]).
    pub fn create(mount: &Path, path: &str) -> Result<Placement> {
        let mut p = Placement::plan(mount, path)?;
        p.make()?;
        Ok(p)
    }

    /// Whether rt made this cgroup for the container (and so may kill
    /// what is in it and remove it).
    pub fn is_own(&self) -> bool {
        !self.created.is_empty()
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

    /// The pids in the cgroup and in the cgroups the container made below
    /// it (a container managing its cgroup namespace moves processes
    /// there): cgroup.procs of each.
    pub fn pids(&self) -> Result<Vec<i32>> {
        let mut pids = Vec::new();
        for dir in subtree(&self.dir) {
            let p = dir.join("cgroup.procs");
            match fs::read_to_string(&p) {
                Ok(s) => pids.extend(s.lines().filter_map(|l| l.trim().parse::<i32>().ok())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                // A threaded cgroup has no cgroup.procs to read; its
                // processes are listed by the domain above it.
                Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {}
                Err(e) => return Err(e).with_ctx(|| format!("read {}", p.display())),
            }
        }
        Ok(pids)
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
                return Err(Error::TimedOut {
                    what: format!(
                        "cgroup {} still has processes after SIGKILL",
                        self.dir.display()
                    ),
                    after: timeout,
                });
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

    /// Removes the container's cgroup if rt created it, with the cgroups
    /// the container made below it, deepest first (never beside it: the
    /// parents rt made hold other containers' cgroups).
    pub fn remove(&self) -> Result<()> {
        if self.created.contains(&self.dir) {
            for d in subtree(&self.dir).into_iter().skip(1).rev() {
                match fs::remove_dir(&d) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e).with_ctx(|| format!("remove cgroup {}", d.display())),
                }
            }
        }
        for d in &self.created {
            match fs::remove_dir(d) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).with_ctx(|| format!("remove cgroup {}", d.display())),
            }
        }
        // The state root's directory of default cgroups goes with its last
        // one; while another container of the root is in it, rmdir fails
        // (EBUSY/ENOTEMPTY) and it stays. A create racing this retries its
        // mkdir (see `make`).
        if let Some(parent) = self.dir.parent().filter(|p| is_default_state_dir(p)) {
            if self.created.contains(&self.dir) {
                let _ = fs::remove_dir(parent);
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
                return Err(Error::TimedOut {
                    what: format!("{}: the kernel did not report \"{want}\"", events.display()),
                    after: timeout,
                });
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
    fn a_relative_path_goes_beside_rts_own_cgroup_as_with_runc() {
        // rt under dockerd (BuildKit's executor): Docker's systemd form,
        // without --systemd-cgroup, is a directory name.
        assert_eq!(
            relative_to("/system.slice/docker.service", "system.slice:docker:b1"),
            "/system.slice/system.slice:docker:b1"
        );
        assert_eq!(
            relative_to("/user.slice/session-1.scope", "a/b"),
            "/user.slice/a/b"
        );
        assert_eq!(relative_to("/", "c1"), "/c1");
        assert_eq!(relative_to("/top", "c1"), "/c1");
    }

    #[test]
    fn paths() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a"), d.path().join("b"));
        let def = resolve_path(None, &a, "c1", false).unwrap();
        assert!(def.starts_with("/rt/") && def.ends_with("/c1"), "{def}");
        assert!(
            is_default_state_dir(Path::new(&def).parent().unwrap()),
            "{def}"
        );
        assert!(!is_default_state_dir(Path::new("/rt")));
        assert!(!is_default_state_dir(Path::new("/x/0123abcd")));
        assert!(is_default_state_dir(Path::new("/user.slice/rt-0123abcd")));
        assert_eq!(def, resolve_path(None, &a, "c1", false).unwrap());
        assert_ne!(def, resolve_path(None, &b, "c1", false).unwrap());
        let root = Path::new("/");
        assert_eq!(
            resolve_path(Some(Path::new("/a/b")), root, "c1", false).unwrap(),
            "/a/b"
        );
        assert!(resolve_path(Some(Path::new("/a/../b")), root, "c1", false).is_err());
        assert_eq!(
            resolve_path(Some(Path::new("machine-web.slice:rt:c1")), root, "c1", true).unwrap(),
            "/machine.slice/machine-web.slice/rt-c1.scope"
        );
        assert_eq!(
            resolve_path(Some(Path::new(":rt:c1")), root, "c1", true).unwrap(),
            "/system.slice/rt-c1.scope"
        );
        assert!(resolve_path(Some(Path::new("/a/b")), root, "c1", true).is_err());
        assert_eq!(
            resolve_path(None, root, "c1", true).unwrap(),
            "/system.slice/rt-c1.scope"
        );
        let rel = resolve_path(Some(Path::new("x/y")), root, "c1", false).unwrap();
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
        assert!(!p.is_own());
        p.remove().unwrap();
        assert!(d.path().join("rt/a/c").exists());
        // One that holds processes is refused, naming it and the count.
        fs::create_dir(d.path().join("rt/a/d")).unwrap();
        fs::write(d.path().join("rt/a/d/cgroup.procs"), "7\n8\n").unwrap();
        let e = Placement::create(d.path(), "/rt/a/d")
            .unwrap_err()
            .to_string();
        assert!(e.contains("rt/a/d") && e.contains("2 processes"), "{e}");
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
