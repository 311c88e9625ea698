//! Running without root: whether rt is rootless (not root, or root only in
//! a user namespace that is not the initial one, as under rootless
//! Podman), where its state goes then, and whether a cgroup is delegated
//! to it.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// How rt runs, as far as privileges go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Root in the initial user namespace.
    Root,
    /// Not root (euid != 0).
    User { euid: u32 },
    /// Root inside a user namespace that is not the initial one: rt owns
    /// nothing on the host beyond what the namespace maps.
    NamespacedRoot,
}

impl Mode {
    /// Whether rt lacks the host's root.
    pub fn is_rootless(self) -> bool {
        self != Mode::Root
    }

    /// Whether rt is root in its own user namespace: it can then write
    /// any id map of a child user namespace, and join the namespaces such
    /// a child owns.
    pub fn root_in_own_namespace(self) -> bool {
        !matches!(self, Mode::User { .. })
    }

    /// One line for `--debug`.
    pub fn describe(self) -> String {
        match self {
            Mode::Root => "running as root in the initial user namespace".into(),
            Mode::User { euid } => format!("rootless: running as uid {euid}, not root"),
            Mode::NamespacedRoot => {
                "rootless: root only inside a user namespace that is not the initial one \
                 (/proc/self/uid_map is not the identity map)"
                    .into()
            }
        }
    }
}

/// The identity map of the initial user namespace.
fn is_identity_map(uid_map: &str) -> bool {
    let lines: Vec<Vec<&str>> = uid_map
        .lines()
        .map(|l| l.split_whitespace().collect())
        .filter(|f: &Vec<&str>| !f.is_empty())
        .collect();
    lines.len() == 1 && lines[0] == ["0", "0", "4294967295"]
}

/// How this process runs (see [`Mode`]).
pub fn detect() -> Mode {
    // Asked several times per create (the CLI, create, spawn, the child):
    // read once. A forked child keeps the parent's answer, which stays
    // right for it (a new user namespace is known from the plan).
    static MODE: std::sync::OnceLock<Mode> = std::sync::OnceLock::new();
    *MODE.get_or_init(read_mode)
}

fn read_mode() -> Mode {
    let euid = nix::unistd::geteuid().as_raw();
    if euid != 0 {
        return Mode::User { euid };
    }
    match fs::read_to_string("/proc/self/uid_map") {
        Ok(m) if !is_identity_map(&m) => Mode::NamespacedRoot,
        _ => Mode::Root,
    }
}

/// The state root for a rootless caller: `$XDG_RUNTIME_DIR/rt`.
pub fn default_root(xdg_runtime_dir: Option<&std::ffi::OsStr>) -> Result<PathBuf> {
    match xdg_runtime_dir.filter(|d| !d.is_empty()) {
        Some(d) => Ok(Path::new(d).join("rt")),
        None => Err(Error::Usage(
            "rootless: XDG_RUNTIME_DIR is not set, so rt has no state directory of this user's \
             (set XDG_RUNTIME_DIR, or pass --root DIR)",
        )),
    }
}

/// Whether the cgroup `dir` (under the cgroup2 mount `mount`) can be made
/// and used by this process: the nearest existing directory on its path
/// is writable (or `dir` exists and its cgroup.procs is), and so is the
/// cgroup.procs of the common ancestor of rt's own cgroup and `dir` (the
/// kernel asks that to move a process, CLONE_INTO_CGROUP included).
pub fn cgroup_delegated(mount: &Path, own: &str, path: &str) -> bool {
    let dir = under(mount, path);
    let writable = |p: &Path| nix::unistd::access(p, nix::unistd::AccessFlags::W_OK).is_ok();
    let usable = if dir.is_dir() {
        writable(&dir.join("cgroup.procs"))
    } else {
        let mut d = dir.as_path();
        loop {
            match d.parent() {
                Some(p) if p.starts_with(mount) => {
                    if p.is_dir() {
                        break writable(p);
                    }
                    d = p;
                }
                _ => break false,
            }
        }
    };
    if !usable {
        return false;
    }
    let ancestor = common_ancestor(own, path);
    writable(&under(mount, &ancestor).join("cgroup.procs"))
}

fn under(mount: &Path, path: &str) -> PathBuf {
    path.split('/')
        .filter(|c| !c.is_empty())
        .fold(mount.to_path_buf(), |d, c| d.join(c))
}

/// The longest common prefix of two cgroup paths, by component.
fn common_ancestor(a: &str, b: &str) -> String {
    let mut out = String::new();
    for (x, y) in a
        .split('/')
        .filter(|c| !c.is_empty())
        .zip(b.split('/').filter(|c| !c.is_empty()))
    {
        if x != y {
            break;
        }
        out.push('/');
        out.push_str(x);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_map() {
        assert!(is_identity_map("         0          0 4294967295\n"));
        assert!(!is_identity_map("         0       1000          1\n"));
        assert!(!is_identity_map("0 1000 1\n1 100000 65536\n"));
    }

    #[test]
    fn root_dir() {
        assert_eq!(
            default_root(Some(std::ffi::OsStr::new("/run/user/1000"))).unwrap(),
            PathBuf::from("/run/user/1000/rt")
        );
        let e = default_root(None).unwrap_err().to_string();
        assert!(e.contains("XDG_RUNTIME_DIR") && e.contains("--root"), "{e}");
        assert!(default_root(Some(std::ffi::OsStr::new(""))).is_err());
    }

    #[test]
    fn ancestors() {
        assert_eq!(common_ancestor("/", "/rt/c1"), "/");
        assert_eq!(common_ancestor("/a/b/shell", "/a/b/c1"), "/a/b");
        assert_eq!(common_ancestor("/a", "/ab"), "/");
    }

    #[test]
    fn delegation_by_directory_permissions() {
        // As root every directory is writable: a tempdir stands in for
        // the hierarchy; what is checked is the walk up to an existing one.
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join("deleg")).unwrap();
        fs::write(d.path().join("cgroup.procs"), "").unwrap();
        assert!(cgroup_delegated(d.path(), "/", "/deleg/x/c1"));
        assert!(!cgroup_delegated(Path::new("/nonexistent"), "/", "/c1"));
    }
}
