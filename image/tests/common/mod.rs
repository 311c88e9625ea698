//! Fixtures for rt-image's tests: OCI image layouts built in Rust from
//! Debian's busybox-static (no network), a runner for the built
//! `rt-image` with a private store, and a docker-registry on loopback.

#![allow(dead_code)] // each test binary uses its own part of this module

use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

pub const BUSYBOX: &str = "/bin/busybox";

pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "these tests mount overlays and make containers: run them as root"
    );
    assert!(
        Path::new(BUSYBOX).exists(),
        "{BUSYBOX} missing: apt-get install busybox-static"
    );
}

pub fn tmpdir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(prefix).tempdir().unwrap()
}

pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// A tar layer built entry by entry.
pub struct Layer(tar::Builder<Vec<u8>>);

impl Layer {
    pub fn new() -> Layer {
        Layer(tar::Builder::new(Vec::new()))
    }
    fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_mtime(1_700_000_000);
        h.set_size(size);
        h
    }
    pub fn dir(mut self, path: &str, mode: u32) -> Layer {
        let mut h = Self::header(tar::EntryType::Directory, mode, 0);
        self.0.append_data(&mut h, path, std::io::empty()).unwrap();
        self
    }
    pub fn file(mut self, path: &str, mode: u32, data: &[u8]) -> Layer {
        let mut h = Self::header(tar::EntryType::Regular, mode, data.len() as u64);
        self.0.append_data(&mut h, path, data).unwrap();
        self
    }
    pub fn symlink(mut self, path: &str, target: &str) -> Layer {
        let mut h = Self::header(tar::EntryType::Symlink, 0o777, 0);
        self.0.append_link(&mut h, path, target).unwrap();
        self
    }
    pub fn tar(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }
}

/// A root filesystem layer: busybox, its applets, /etc/passwd and /etc/group.
pub fn busybox_layer() -> Vec<u8> {
    let mut l = Layer::new();
    for d in [
        "bin", "etc", "tmp", "proc", "sys", "dev", "root", "home", "home/app",
    ] {
        l = l.dir(d, if d == "tmp" { 0o1777 } else { 0o755 });
    }
    l = l.file("bin/busybox", 0o755, &fs::read(BUSYBOX).unwrap());
    let list = Command::new(BUSYBOX).arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" {
            l = l.symlink(&format!("bin/{applet}"), "busybox");
        }
    }
    l.file(
        "etc/passwd",
        0o644,
        b"root:x:0:0:root:/root:/bin/sh\napp:x:1234:2345::/home/app:/bin/sh\n",
    )
    .file(
        "etc/group",
        0o644,
        b"root:x:0:\napp:x:2345:\nextra:x:3456:app\n",
    )
    .tar()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 1).unwrap()
}

pub const TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const TAR_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// An OCI image layout directory written blob by blob.
pub struct OciLayout {
    pub dir: PathBuf,
    index: Vec<Value>,
}

impl OciLayout {
    pub fn new(dir: &Path) -> OciLayout {
        fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        let l = OciLayout {
            dir: dir.to_path_buf(),
            index: Vec::new(),
        };
        l.save();
        l
    }

    pub fn blob(&self, data: &[u8]) -> (String, usize) {
        let d = sha256(data);
        fs::write(self.blob_path(&d), data).unwrap();
        (d, data.len())
    }

    pub fn blob_path(&self, digest: &str) -> PathBuf {
        self.dir
            .join("blobs/sha256")
            .join(&digest["sha256:".len()..])
    }

    /// Writes an image: `layers` are (uncompressed tar, media type);
    /// `config` is the image config's `config` object. Returns the
    /// manifest descriptor.
    pub fn image(&self, layers: &[(Vec<u8>, &str)], config: Value, arch: &str) -> Value {
        let mut descs = Vec::new();
        let mut diff_ids = Vec::new();
        for (tar, mt) in layers {
            diff_ids.push(sha256(tar));
            let blob = match *mt {
                TAR_GZIP => gzip(tar),
                TAR_ZSTD => zstd(tar),
                _ => tar.clone(),
            };
            let (d, n) = self.blob(&blob);
            descs.push(json!({"mediaType": mt, "digest": d, "size": n}));
        }
        let cfg = json!({
            "created": "2024-01-01T00:00:00Z", "architecture": arch, "os": "linux",
            "config": config,
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": layers.iter().enumerate().map(|(i, _)| json!({"created_by": format!("layer {i}")})).collect::<Vec<_>>(),
        });
        let (cd, cn) = self.blob(&serde_json::to_vec(&cfg).unwrap());
        let manifest = json!({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cn},
            "layers": descs,
        });
        let (md, mn) = self.blob(&serde_json::to_vec(&manifest).unwrap());
        json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": mn,
               "platform": {"architecture": arch, "os": "linux"}})
    }

    /// An index over manifest descriptors; returns its descriptor.
    pub fn index(&self, manifests: Vec<Value>) -> Value {
        let idx = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                         "manifests": manifests});
        let (d, n) = self.blob(&serde_json::to_vec(&idx).unwrap());
        json!({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": d, "size": n})
    }

    /// Lists `desc` in index.json under tag `name`.
    pub fn tag(&mut self, mut desc: Value, name: &str) {
        desc["annotations"] = json!({"org.opencontainers.image.ref.name": name});
        if let Some(o) = desc.as_object_mut() {
            o.remove("platform");
        }
        self.index.push(desc);
        self.save();
    }

    fn save(&self) {
        let idx = json!({"schemaVersion": 2, "manifests": self.index});
        fs::write(
            self.dir.join("index.json"),
            serde_json::to_vec(&idx).unwrap(),
        )
        .unwrap();
    }
}

/// The built `rt` (and `rt-shim`), built now when a lone
/// `cargo test -p rt-image` has not.
pub fn rt_bin() -> PathBuf {
    static ONCE: std::sync::Once = std::sync::Once::new();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let rt = target.join("debug/rt");
    ONCE.call_once(|| {
        if rt.exists() && rt.with_file_name("rt-shim").exists() {
            return;
        }
        let ok = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args(["build", "-q", "-p", "rt", "-p", "rt-shim"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("run cargo")
            .success();
        assert!(ok, "building rt failed");
    });
    rt
}

/// The built rt-image with a private store.
pub struct RtImage {
    pub store: tempfile::TempDir,
}

impl RtImage {
    pub fn new() -> RtImage {
        require_root();
        RtImage {
            store: tmpdir("rt-image-store."),
        }
    }

    pub fn root(&self) -> &Path {
        self.store.path()
    }

    pub fn run<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Output {
        self.cmd(args).output().expect("run rt-image")
    }

    /// The command, with no docker config (anonymous) unless the caller
    /// sets DOCKER_CONFIG.
    pub fn cmd<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_rt-image"));
        c.arg("--root")
            .arg(self.store.path())
            .args(args)
            .env("DOCKER_CONFIG", self.store.path().join("no-docker-config"))
            .stdin(Stdio::null());
        c
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "rt-image {:?} failed: {}{}",
            args.iter()
                .map(|a| a.as_ref().to_string_lossy().to_string())
                .collect::<Vec<_>>(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs, asserts failure with one line on stderr; returns that line.
    pub fn fails<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> String {
        let out = self.run(args);
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(
            !out.status.success(),
            "expected failure, got: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert_eq!(err.trim_end().lines().count(), 1, "one error line: {err}");
        eprintln!("rt-image said: {}", err.trim_end());
        err
    }

    /// Number of entries in a store subdirectory.
    pub fn count(&self, sub: &str) -> usize {
        fs::read_dir(self.root().join(sub))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// The store holds no image, blob, layer or temp file.
    pub fn assert_empty(&self) {
        for sub in ["blobs/sha256", "layers", "tmp", "bundles"] {
            assert_eq!(self.count(sub), 0, "{sub} is not empty");
        }
        let images =
            fs::read_to_string(self.root().join("images.json")).unwrap_or_else(|_| "{}".into());
        assert_eq!(images.trim(), "{}", "no image is named");
    }
}

/// A `docker-registry` on 127.0.0.1 with a private storage directory,
/// killed (by pid) and removed on drop.
pub struct Registry {
    pub dir: tempfile::TempDir,
    pub addr: String,
    child: Child,
}

impl Registry {
    pub fn start() -> Registry {
        Self::start_with(false)
    }

    /// A registry that asks for basic auth: user `rt`, password `pw`.
    pub fn with_basic_auth() -> Registry {
        Self::start_with(true)
    }

    fn start_with(basic_auth: bool) -> Registry {
        require_root();
        let bin = Path::new("/usr/bin/docker-registry");
        assert!(
            bin.exists(),
            "docker-registry missing: bash scripts/deps.sh --test"
        );
        let dir = tmpdir("rt-image-registry.");
        // A free port: bind :0, read it, release it for the registry.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let mut extra_config = String::new();
        if basic_auth {
            // bcrypt("pw"), as `htpasswd -B` writes it.
            let htpasswd = dir.path().join("htpasswd");
            fs::write(
                &htpasswd,
                "rt:$2b$05$abcdefghijklmnopqrstuuHIrMEWpUCQe2YqFR3sXwQ75u4od..9q\n",
            )
            .unwrap();
            extra_config = format!(
                "auth:\n  htpasswd: {{realm: rt-test, path: {}}}\n",
                htpasswd.display()
            );
        }
        let cfg = dir.path().join("config.yml");
        fs::write(
            &cfg,
            format!(
                "version: 0.1\nlog: {{level: error}}\nstorage:\n  filesystem: {{rootdirectory: {}}}\n  delete: {{enabled: true}}\nhttp:\n  addr: {addr}\n{extra_config}",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let log = fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new(bin)
            .arg("serve")
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let r = Registry { dir, addr, child };
        let start = Instant::now();
        while std::net::TcpStream::connect(&r.addr).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "registry did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        r
    }

    /// Copies `src` (a skopeo transport:ref) to `name` in the registry.
    pub fn push(&self, src: &str, name: &str, extra: &[&str]) {
        let out = Command::new("skopeo")
            .args(["copy", "-q", "--dest-tls-verify=false"])
            .args(extra)
            .arg(src)
            .arg(format!("docker://{}/{name}", self.addr))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "skopeo copy: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The path of a blob's content in the registry's storage.
    pub fn blob_data(&self, digest: &str) -> PathBuf {
        let hex = &digest["sha256:".len()..];
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        if std::env::var_os("RT_IMAGE_KEEP_REGISTRY_LOG").is_some() {
            eprintln!(
                "{}",
                fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
            );
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
