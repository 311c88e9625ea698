//! The state directory: one directory per container under the runtime
//! root, its state.json written atomically (temp file + rename), and a
//! per-container lock (flock on the directory) so two commands on one id
//! never interleave.

pub mod atomic;
pub mod exit;
pub mod id;

pub use atomic::write_atomic;
pub use exit::{ExitRecord, ATTACH_SOCKET, EXIT_FILE, LOG_FILE};
pub use id::validate_id;

use std::collections::HashMap;
use std::fs;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{open, Flock, FlockArg, OFlag};
use nix::sys::stat::Mode;
use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

use crate::error::{Context, Error, Result};

pub const STATE_FILE: &str = "state.json";
pub const EXEC_FIFO: &str = "exec.fifo";

/// The lifecycle phase rt recorded; the live status is derived from it and
/// from the init process (see `container::Container::status`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Creating,
    Created,
    Running,
}

/// What rt keeps on disk about one container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub id: String,
    pub phase: Phase,
    /// The init's pid in rt's pid namespace; 0 until it exists.
    pub pid: i32,
    /// The init's start time (clock ticks since boot), so a recycled pid is
    /// never mistaken for the container.
    pub pid_start: u64,
    /// The `rt create` that is making the container, for a creating state
    /// whose creator died.
    pub creator_pid: i32,
    pub creator_start: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// RFC 3339 with nanoseconds, UTC.
    pub created: String,
    pub owner: String,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    /// The container's cgroup, if rt placed it in one.
    pub cgroup: Option<crate::cgroup::Placement>,
    /// The creator stayed as the init's monitor (rt-shim).
    #[serde(default)]
    pub shim: bool,
    /// The container's Intel RDT groups (`linux.intelRdt`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resctrl: Option<crate::resctrl::Groups>,
    /// A container without a mount namespace: the mounts rt made under its
    /// root in the host's mount namespace, in the order they were made;
    /// `delete` unmounts exactly these.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host_mounts: Vec<HostMount>,
    /// The config as it was at create time: later commands never re-read
    /// the bundle (it may have changed).
    pub config: Spec,
}

/// One mount rt made in the host's mount namespace, as mountinfo named
/// it: its id and its mount point (a host path under the container's
/// root). Both must still match for rt to unmount it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostMount {
    pub id: u64,
    pub point: PathBuf,
}

/// The runtime's root directory (`--root`).
#[derive(Debug, Clone)]
pub struct Root {
    pub path: PathBuf,
}

impl Root {
    pub fn new(path: impl Into<PathBuf>) -> Root {
        Root { path: path.into() }
    }

    /// Creates the root directory if it does not exist (mode 0700).
    pub fn ensure(&self) -> Result<()> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.path)
            .with_ctx(|| format!("create state root {}", self.path.display()))
    }

    pub fn dir_of(&self, id: &str) -> PathBuf {
        self.path.join(id)
    }

    /// Makes the directory of a new container and locks it. mkdir is the
    /// arbiter between two creates of one id: exactly one succeeds.
    pub fn create_dir(&self, id: &str) -> Result<Locked> {
        validate_id(id)?;
        self.ensure()?;
        let dir = self.dir_of(id);
        match fs::DirBuilder::new().mode(0o711).create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(Error::Exists(id.to_string()))
            }
            Err(e) => return Err(e).with_ctx(|| format!("create state dir {}", dir.display())),
        }
        // The mode given to mkdir is filtered by the umask.
        let _ = fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o711));
        match Locked::lock(id, &dir) {
            Ok(Some(l)) => Ok(l),
            Ok(None) => Err(Error::NotFound(id.to_string())),
            Err(e) => {
                let _ = fs::remove_dir(&dir);
                Err(e)
            }
        }
    }

    /// Locks an existing container's directory.
    pub fn lock(&self, id: &str) -> Result<Locked> {
        validate_id(id)?;
        match Locked::lock(id, &self.dir_of(id))? {
            Some(l) => Ok(l),
            None => Err(Error::NotFound(id.to_string())),
        }
    }

    /// Reads a container's state without locking (writes are atomic).
    pub fn load(&self, id: &str) -> Result<State> {
        validate_id(id)?;
        read_state(id, &self.dir_of(id))
    }

    /// The ids of all containers, sorted. A missing root means none.
    pub fn ids(&self) -> Result<Vec<String>> {
        let rd = match fs::read_dir(&self.path) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(e).with_ctx(|| format!("read {}", self.path.display())),
        };
        let mut ids: Vec<String> = rd
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|id| validate_id(id).is_ok())
            .collect();
        ids.sort();
        Ok(ids)
    }
}

fn read_state(id: &str, dir: &Path) -> Result<State> {
    let path = dir.join(STATE_FILE);
    let data = match fs::read(&path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::NotFound(id.to_string()))
        }
        Err(e) => return Err(e).with_ctx(|| format!("read {}", path.display())),
    };
    serde_json::from_slice(&data).map_err(|e| Error::CorruptState {
        path,
        msg: e.to_string(),
    })
}

/// A container directory held under an exclusive lock.
#[derive(Debug)]
pub struct Locked {
    pub id: String,
    pub dir: PathBuf,
    /// An O_PATH-free directory descriptor: the lock lives on it.
    _lock: Flock<OwnedFd>,
}

impl Locked {
    fn lock(id: &str, dir: &Path) -> Result<Option<Locked>> {
        let fd = match open(
            dir,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(nix::Error::ENOENT) => return Ok(None),
            Err(e) => return Err(e).with_ctx(|| format!("open state dir {}", dir.display())),
        };
        let lock = Flock::lock(fd, FlockArg::LockExclusive)
            .map_err(|(_, e)| e)
            .with_ctx(|| format!("lock state dir {}", dir.display()))?;
        // A delete may have removed the directory while we waited.
        let st =
            nix::sys::stat::fstat(lock.as_fd()).with_ctx(|| format!("stat {}", dir.display()))?;
        if st.st_nlink == 0 {
            return Ok(None);
        }
        Ok(Some(Locked {
            id: id.to_string(),
            dir: dir.to_path_buf(),
            _lock: lock,
        }))
    }

    /// The descriptor the lock lives on, for a child to close its copy.
    pub fn raw_fd(&self) -> std::os::fd::RawFd {
        self._lock.as_raw_fd()
    }

    pub fn load(&self) -> Result<State> {
        read_state(&self.id, &self.dir)
    }

    /// Replaces state.json atomically: readers see the old or the new file,
    /// never a partial one.
    pub fn save(&self, state: &State) -> Result<()> {
        let data = serde_json::to_vec(state).map_err(|source| Error::Json {
            what: "encode state".into(),
            source,
        })?;
        write_atomic(&self.dir.join(STATE_FILE), &data, 0o600)
    }

    /// Removes the directory and everything in it.
    pub fn remove(self) -> Result<()> {
        // A shim whose container was just killed may still be writing its
        // exit record here (it gives up once the directory is gone).
        let mut tries = 0;
        loop {
            match fs::remove_dir_all(&self.dir) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty && tries < 50 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(e) => {
                    return Err(e).with_ctx(|| format!("remove state dir {}", self.dir.display()))
                }
            }
        }
    }
}

/// The current time as RFC 3339 with nanoseconds in UTC, as runc prints it.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(id: &str) -> State {
        State {
            id: id.into(),
            phase: Phase::Created,
            pid: 42,
            pid_start: 7,
            creator_pid: 0,
            creator_start: 0,
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: now_rfc3339(),
            owner: String::new(),
            annotations: HashMap::new(),
            cgroup: None,
            shim: false,
            resctrl: None,
            host_mounts: vec![],
            config: Spec::default(),
        }
    }

    #[test]
    fn create_save_load_remove() {
        let d = tempfile::tempdir().unwrap();
        let root = Root::new(d.path().join("root"));
        let l = root.create_dir("c1").unwrap();
        l.save(&state("c1")).unwrap();
        let s = root.load("c1").unwrap();
        assert_eq!(s.pid, 42);
        assert_eq!(root.ids().unwrap(), vec!["c1".to_string()]);
        let mode = fs::metadata(root.dir_of("c1")).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o711
        );
        l.remove().unwrap();
        assert!(matches!(root.load("c1"), Err(Error::NotFound(_))));
        assert!(matches!(root.lock("c1"), Err(Error::NotFound(_))));
    }

    #[test]
    fn second_create_of_an_id_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let root = Root::new(d.path());
        let _l = root.create_dir("c1").unwrap();
        let e = root.create_dir("c1").unwrap_err();
        assert_eq!(e.to_string(), "container with given ID already exists: c1");
    }

    #[test]
    fn corrupt_state_names_the_file() {
        let d = tempfile::tempdir().unwrap();
        let root = Root::new(d.path());
        let l = root.create_dir("c1").unwrap();
        fs::write(l.dir.join(STATE_FILE), b"{\"id\": \"c1\", \"pha").unwrap();
        let e = root.load("c1").unwrap_err().to_string();
        assert!(
            e.starts_with("state file ") && e.contains("c1/state.json"),
            "{e}"
        );
    }

    #[test]
    fn bad_ids_never_touch_the_filesystem() {
        let d = tempfile::tempdir().unwrap();
        let root = Root::new(d.path().join("r"));
        assert!(root.create_dir("../x").is_err());
        assert!(!d.path().join("r").exists());
        assert!(!d.path().join("x").exists());
    }

    #[test]
    fn atomic_write_leaves_no_temp_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        write_atomic(&p, b"one", 0o600).unwrap();
        write_atomic(&p, b"two", 0o600).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
    }
}
