//! A bundle from Debian's busybox-static: `rootfs/` with busybox, its
//! applets, `/etc/passwd` and `/etc/group` for root, and the config.json
//! a test shapes.

use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// Debian's busybox-static.
pub const BUSYBOX: &str = "/bin/busybox";

/// The directories of a busybox root filesystem.
pub const ROOTFS_DIRS: [&str; 7] = ["bin", "etc", "tmp", "proc", "sys", "dev", "root"];

/// Panics unless busybox-static is installed.
pub fn require_busybox() {
    assert!(
        Path::new(BUSYBOX).exists(),
        "{BUSYBOX} missing: apt-get install busybox-static"
    );
}

/// The applets busybox was built with, busybox itself left out.
pub fn applets() -> io::Result<Vec<String>> {
    let list = Command::new(BUSYBOX).arg("--list").output()?;
    Ok(String::from_utf8_lossy(&list.stdout)
        .lines()
        .filter(|a| *a != "busybox")
        .map(str::to_string)
        .collect())
}

/// Says which path an I/O error was about.
fn at(path: &Path) -> impl Fn(io::Error) -> io::Error + '_ {
    move |e| io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// Fills `rootfs` (made if missing): [`ROOTFS_DIRS`], `bin/busybox` and a
/// link to it for every applet, `etc/passwd` and `etc/group` with root.
pub fn busybox_rootfs(rootfs: &Path) -> io::Result<()> {
    for d in ROOTFS_DIRS {
        let p = rootfs.join(d);
        fs::create_dir_all(&p).map_err(at(&p))?;
    }
    let bin = rootfs.join("bin");
    fs::copy(BUSYBOX, bin.join("busybox")).map_err(at(Path::new(BUSYBOX)))?;
    for applet in applets().map_err(at(Path::new(BUSYBOX)))? {
        // Some applets share a name with one already linked.
        let _ = symlink("busybox", bin.join(applet));
    }
    let etc = rootfs.join("etc");
    fs::write(etc.join("passwd"), "root:x:0:0:root:/root:/bin/sh\n").map_err(at(&etc))?;
    fs::write(etc.join("group"), "root:x:0:\n").map_err(at(&etc))?;
    Ok(())
}

/// A bundle in a temporary directory: a busybox `rootfs/` and `config`,
/// written to config.json by [`Bundle::save`]. Dropping it removes the
/// directory, unless something is still mounted below it: removing would
/// delete through the mount, so it is left and said on stderr.
pub struct Bundle {
    dir: Option<tempfile::TempDir>,
    pub config: Value,
}

impl Bundle {
    /// A bundle in a new directory named `PREFIX…` under the temporary
    /// directory, with a busybox root filesystem and a null config.
    pub fn new(prefix: &str) -> io::Result<Bundle> {
        let dir = tempfile::Builder::new().prefix(prefix).tempdir()?;
        busybox_rootfs(&dir.path().join("rootfs"))?;
        Ok(Bundle {
            dir: Some(dir),
            config: Value::Null,
        })
    }

    pub fn path(&self) -> &Path {
        self.dir.as_ref().expect("bundle dir").path()
    }

    pub fn rootfs(&self) -> PathBuf {
        self.path().join("rootfs")
    }

    /// Writes `config` to config.json.
    pub fn save(&self) -> io::Result<()> {
        let path = self.path().join("config.json");
        let text = serde_json::to_vec_pretty(&self.config)?;
        fs::write(&path, text).map_err(at(&path))
    }

    /// Mount points at or below the bundle (a runtime that leaked them).
    pub fn mounts_left(&self) -> Vec<String> {
        crate::mount_points_under(self.path())
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        if !self.mounts_left().is_empty() {
            if let Some(d) = self.dir.take() {
                eprintln!("leaving {}: still mounted", d.keep().display());
            }
        }
    }
}
