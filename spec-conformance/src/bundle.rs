//! A fresh bundle per container: a root filesystem of busybox-static plus
//! the checker, and the config.json the test shapes.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{json, Value};

pub const BUSYBOX: &str = "/bin/busybox";

/// Namespace kinds as /proc/self/ns names them.
pub const NS_KINDS: [&str; 8] = ["pid", "net", "mnt", "ipc", "uts", "user", "cgroup", "time"];

pub struct Bundle {
    dir: Option<tempfile::TempDir>,
    pub id: String,
    pub config: Value,
}

/// An id unique across the processes that may run the suite at once (a
/// runtime's default cgroup may be shared between state roots).
pub fn unique_id(group: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "conf-{group}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

impl Bundle {
    /// A bundle for container `id` running `args` (the checker when empty).
    pub fn new(id: &str, args: &[&str]) -> Result<Bundle, String> {
        let checker = crate::artifacts::checker()?;
        let e = |what: &str| {
            let what = what.to_string();
            move |err: std::io::Error| format!("bundle: {what}: {err}")
        };
        let dir = tempfile::Builder::new()
            .prefix("conformance-bundle.")
            .tempdir()
            .map_err(e("tempdir"))?;
        // Readable by everyone: with a user namespace the container's root
        // is an unprivileged user on the host.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).map_err(e("chmod"))?;
        let rootfs = dir.path().join("rootfs");
        for d in [
            "bin",
            "etc",
            "tmp",
            "proc",
            "sys",
            "dev",
            "root",
            "conformance",
        ] {
            fs::create_dir_all(rootfs.join(d)).map_err(e(d))?;
        }
        fs::set_permissions(rootfs.join("tmp"), fs::Permissions::from_mode(0o1777))
            .map_err(e("tmp"))?;
        fs::copy(BUSYBOX, rootfs.join("bin/busybox")).map_err(e(BUSYBOX))?;
        let list = Command::new(BUSYBOX)
            .arg("--list")
            .output()
            .map_err(e("busybox --list"))?;
        for applet in String::from_utf8_lossy(&list.stdout).lines() {
            if applet != "busybox" {
                let _ = symlink("busybox", rootfs.join("bin").join(applet));
            }
        }
        fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n")
            .map_err(e("passwd"))?;
        fs::write(rootfs.join("etc/group"), "root:x:0:\n").map_err(e("group"))?;
        fs::copy(&checker, rootfs.join("conformance/checker")).map_err(e("checker"))?;
        let token = format!("rootfs-of-{id}");
        fs::write(rootfs.join("conformance/token"), &token).map_err(e("token"))?;

        let args: Vec<&str> = if args.is_empty() {
            vec!["/conformance/checker"]
        } else {
            args.to_vec()
        };
        let mut config = base_config(&args);
        config["linux"]["cgroupsPath"] = json!(format!("/{id}"));
        config["annotations"]["conformance/rootfs-token"] = json!(token);
        for kind in NS_KINDS {
            if let Ok(ino) = ns_inode(&format!("/proc/self/ns/{kind}")) {
                config["annotations"][format!("conformance/host-ns/{kind}")] =
                    json!(ino.to_string());
            }
        }
        Ok(Bundle {
            dir: Some(dir),
            id: id.to_string(),
            config,
        })
    }

    pub fn path(&self) -> &Path {
        self.dir.as_ref().expect("bundle dir").path()
    }

    pub fn rootfs(&self) -> PathBuf {
        self.path().join("rootfs")
    }

    pub fn pid_file(&self) -> PathBuf {
        self.path().join("pid")
    }

    pub fn out_file(&self) -> PathBuf {
        self.path().join("out")
    }

    pub fn err_file(&self) -> PathBuf {
        self.path().join("err")
    }

    /// The pid the runtime wrote to the pid file.
    pub fn pid(&self) -> Option<i32> {
        fs::read_to_string(self.pid_file())
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// What the container wrote to stdout and stderr so far.
    pub fn output(&self) -> (String, String) {
        (
            fs::read_to_string(self.out_file()).unwrap_or_default(),
            fs::read_to_string(self.err_file()).unwrap_or_default(),
        )
    }

    /// Writes config.json, and the copy the checker reads inside.
    pub fn write(&self) -> Result<(), String> {
        let text = serde_json::to_vec_pretty(&self.config).map_err(|e| e.to_string())?;
        fs::write(self.path().join("config.json"), &text)
            .map_err(|e| format!("config.json: {e}"))?;
        fs::write(self.rootfs().join("conformance/config.json"), &text)
            .map_err(|e| format!("rootfs config.json: {e}"))
    }

    /// A host directory for a bind mount, outside the root filesystem,
    /// holding a token file the checker looks for, recorded in the
    /// annotations under the destination it will be mounted at.
    pub fn host_dir(&mut self, name: &str, dest: &str) -> Result<PathBuf, String> {
        let d = self.path().join(name);
        fs::create_dir_all(&d).map_err(|e| format!("{}: {e}", d.display()))?;
        fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).map_err(|e| e.to_string())?;
        let token = format!("{name}-of-{}", self.id);
        fs::write(d.join("conformance-token"), &token).map_err(|e| e.to_string())?;
        self.config["annotations"][format!("conformance/bind-token{dest}")] = json!(token);
        Ok(d)
    }

    /// Host mounts under the bundle (a runtime that leaked them).
    pub fn mounts_left(&self) -> Vec<String> {
        let p = self.path().to_string_lossy().into_owned();
        fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter(|l| l.split(' ').nth(4).is_some_and(|m| m.starts_with(&p)))
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        // Never remove a tree something is still mounted in: that would
        // delete through the mount. Leave it and say so.
        if !self.mounts_left().is_empty() {
            if let Some(d) = self.dir.take() {
                eprintln!("leaving {}: still mounted", d.keep().display());
            }
        }
    }
}

/// The inode of a namespace file.
pub fn ns_inode(path: &str) -> Result<u64, String> {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(path)
        .map(|m| m.ino())
        .map_err(|e| format!("{path}: {e}"))
}

pub const DEFAULT_CAPS: [&str; 3] = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];

/// The config every case starts from: what `runc spec` gives, without a
/// terminal, with cgroup v1/v2-neutral mounts.
pub fn base_config(args: &[&str]) -> Value {
    json!({
        "ociVersion": "1.0.2",
        "root": { "path": "rootfs", "readonly": false },
        "hostname": "conformance",
        "process": {
            "terminal": false,
            "user": { "uid": 0, "gid": 0 },
            "args": args,
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/conformance",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": DEFAULT_CAPS,
                "effective": DEFAULT_CAPS,
                "permitted": DEFAULT_CAPS
            },
            "rlimits": [ { "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 } ],
            "noNewPrivileges": true
        },
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
              "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
            { "destination": "/dev/pts", "type": "devpts", "source": "devpts",
              "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"] },
            { "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
              "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
            { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
              "options": ["nosuid", "noexec", "nodev"] },
            { "destination": "/sys", "type": "sysfs", "source": "sysfs",
              "options": ["nosuid", "noexec", "nodev", "ro"] }
        ],
        "annotations": {},
        "linux": {
            "namespaces": [
                { "type": "pid" }, { "type": "network" }, { "type": "ipc" },
                { "type": "uts" }, { "type": "mount" }
            ],
            "resources": { "devices": [ { "allow": false, "access": "rwm" } ] },
            "maskedPaths": [
                "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    })
}
