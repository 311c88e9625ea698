//! A fresh bundle per container: a root filesystem of busybox-static plus
//! the checker, and the config.json the test shapes.

use std::fs;
use std::ops::{Deref, DerefMut};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use serde_json::{json, Value};

pub use rt_testkit::BUSYBOX;

/// Namespace kinds as /proc/self/ns names them.
pub const NS_KINDS: [&str; 8] = ["pid", "net", "mnt", "ipc", "uts", "user", "cgroup", "time"];

/// The kit's busybox bundle (its directory, rootfs and `config`), with the
/// checker, the tokens it looks for and the files a case reads.
pub struct Bundle {
    kit: rt_testkit::Bundle,
    pub id: String,
}

impl Deref for Bundle {
    type Target = rt_testkit::Bundle;
    fn deref(&self) -> &rt_testkit::Bundle {
        &self.kit
    }
}

impl DerefMut for Bundle {
    fn deref_mut(&mut self) -> &mut rt_testkit::Bundle {
        &mut self.kit
    }
}

/// An id unique across the processes that may run the suite at once (a
/// runtime's default cgroup may be shared between state roots).
pub fn unique_id(group: &str) -> String {
    rt_testkit::unique_id(&format!("conf-{group}"))
}

impl Bundle {
    /// A bundle for container `id` running `args` (the checker when empty).
    pub fn new(id: &str, args: &[&str]) -> Result<Bundle, String> {
        let checker = crate::artifacts::checker()?;
        let e = |what: &str| {
            let what = what.to_string();
            move |err: std::io::Error| format!("bundle: {what}: {err}")
        };
        let mut kit = rt_testkit::Bundle::new("conformance-bundle.")
            .map_err(|err| format!("bundle: {err}"))?;
        // Readable by everyone: with a user namespace the container's root
        // is an unprivileged user on the host.
        fs::set_permissions(kit.path(), fs::Permissions::from_mode(0o755)).map_err(e("chmod"))?;
        let rootfs = kit.rootfs();
        fs::create_dir_all(rootfs.join("conformance")).map_err(e("conformance"))?;
        fs::set_permissions(rootfs.join("tmp"), fs::Permissions::from_mode(0o1777))
            .map_err(e("tmp"))?;
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
        kit.config = config;
        Ok(Bundle {
            kit,
            id: id.to_string(),
        })
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
        self.kit.save().map_err(|e| format!("config.json: {e}"))?;
        let text = serde_json::to_vec_pretty(&self.config).map_err(|e| e.to_string())?;
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
