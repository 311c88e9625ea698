//! Fixtures for rt-image's tests: OCI image layouts built in Rust from
//! Debian's busybox-static (no network), a runner for the built
//! `rt-image` with a private store, and a docker-registry on loopback.

#![allow(dead_code)] // each test binary uses its own part of this module

pub mod push;

use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

pub use rt_testkit::bundle::BUSYBOX;

pub fn require_root() {
    rt_testkit::require_root("these tests mount overlays and make containers");
    rt_testkit::bundle::require_busybox();
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
    for applet in rt_testkit::bundle::applets().unwrap() {
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

/// The built `rt` (and `rt-shim` beside it, where rt looks for it),
/// built now when a lone `cargo test -p rt-image` has not.
pub fn rt_bin() -> PathBuf {
    static RT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        let rt = rt_testkit::bins::ensure_built("rt", "rt").unwrap();
        let dir = rt.parent().unwrap().to_path_buf();
        rt_testkit::bins::ensure_built_in(&dir, "rt-shim", "rt-shim").unwrap();
        rt
    })
    .clone()
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
        Self::start_with(|_| String::new())
    }

    /// A registry that asks for basic auth: user `rt`, password `pw`.
    pub fn with_basic_auth() -> Registry {
        Self::start_with(|dir| {
            // bcrypt("pw"), as `htpasswd -B` writes it.
            let htpasswd = dir.join("htpasswd");
            fs::write(
                &htpasswd,
                "rt:$2b$05$abcdefghijklmnopqrstuuHIrMEWpUCQe2YqFR3sXwQ75u4od..9q\n",
            )
            .unwrap();
            format!(
                "auth:\n  htpasswd: {{realm: rt-test, path: {}}}\n",
                htpasswd.display()
            )
        })
    }

    /// A registry that takes bearer tokens from `realm`, signed by the key
    /// of certificate `cert` (PEM), for service `rt-test` and issuer
    /// `rt-test-issuer`.
    pub fn with_token_auth(realm: &str, cert: &Path) -> Registry {
        let (realm, cert) = (realm.to_string(), cert.to_path_buf());
        Self::start_with(move |_| {
            format!(
                "auth:\n  token: {{realm: \"{realm}\", service: rt-test, issuer: rt-test-issuer, rootcertbundle: {}}}\n",
                cert.display()
            )
        })
    }

    fn start_with(extra: impl FnOnce(&Path) -> String) -> Registry {
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
        let extra_config = extra(dir.path());
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

/// A private rt state root; deletes the containers it ran when dropped.
pub struct Rt {
    pub root: tempfile::TempDir,
    pub ids: Vec<String>,
}

impl Rt {
    pub fn new() -> Rt {
        Rt {
            root: tmpdir("rt-image-rt."),
            ids: Vec::new(),
        }
    }

    /// `rt run -b BUNDLE ID`: the container's stdout, and whether it exited 0.
    pub fn run(&mut self, bundle: &Path, id: &str) -> (String, bool) {
        self.ids.push(id.to_string());
        let out = tempfile::tempfile().unwrap();
        let status = Command::new(rt_bin())
            .arg("--root")
            .arg(self.root.path())
            .args(["run", "-b"])
            .arg(bundle)
            .arg(id)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(Stdio::inherit())
            .status()
            .unwrap();
        let mut out = out;
        use std::io::{Read, Seek};
        out.rewind().unwrap();
        let mut s = String::new();
        out.read_to_string(&mut s).unwrap();
        (s, status.success())
    }
}

impl Drop for Rt {
    fn drop(&mut self) {
        for id in &self.ids {
            let _ = Command::new(rt_bin())
                .arg("--root")
                .arg(self.root.path())
                .args(["delete", "-f", id])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Removes bundles (unmounting) even when a test fails.
pub struct Bundles<'a>(pub &'a RtImage, pub Vec<PathBuf>);

impl Drop for Bundles<'_> {
    fn drop(&mut self) {
        for b in &self.1 {
            if b.exists() {
                let _ = self.0.run(&[Path::new("bundle"), Path::new("--remove"), b]);
                let _ = nix::mount::umount2(&b.join("rootfs"), nix::mount::MntFlags::MNT_DETACH);
                let _ = fs::remove_dir_all(b);
            }
        }
    }
}

/// Every file, directory and symlink under `dir` with its content hash
/// (or link target) and mode: what "nothing stored changed" compares.
pub fn snapshot(dir: &Path) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let mut entries: Vec<_> = fs::read_dir(dir).unwrap().map(|e| e.unwrap()).collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            let rel = p.strip_prefix(base).unwrap().display().to_string();
            let m = fs::symlink_metadata(&p).unwrap();
            let mode = m.permissions().mode();
            if m.file_type().is_symlink() {
                out.push(format!("{rel} -> {}", fs::read_link(&p).unwrap().display()));
            } else if m.is_dir() {
                out.push(format!("{rel}/ {mode:o}"));
                walk(base, &p, out);
            } else if m.is_file() {
                out.push(format!("{rel} {mode:o} {}", sha256(&fs::read(&p).unwrap())));
            } else {
                out.push(format!("{rel} special {mode:o}"));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out
}

/// What a [`Proxy`] does with one request, decided from its head.
pub enum Action {
    /// Pass it to the upstream registry and its answer back.
    Forward,
    /// Forward, then change the answer's head (status line and headers).
    Rewrite(Box<dyn Fn(&str) -> String + Send>),
    /// Answer this status and JSON body without asking upstream.
    Respond(u16, String),
    /// Read half the body and hang up: a push cut off half-way.
    Cut,
    /// Answer these bytes (status line, headers, body) as they are.
    Raw(String),
}

/// The head of a request, as a proxy rule sees it.
pub struct Req {
    pub method: String,
    pub path: String,
    /// Header lines, as sent.
    pub headers: Vec<String>,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|h| {
            let (k, v) = h.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

type Rule = Box<dyn FnMut(&Req) -> Action + Send>;

/// An HTTP server on loopback that forwards to a registry (or answers by
/// itself, with no upstream) and lets a test break what it chooses: one
/// request per connection, `Connection: close`. Stopped on drop.
pub struct Proxy {
    pub addr: String,
    rule: std::sync::Arc<std::sync::Mutex<Option<Rule>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Proxy {
    pub fn start(upstream: Option<&str>) -> Proxy {
        use std::sync::{atomic::AtomicBool, Arc, Mutex};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let rule: Arc<Mutex<Option<Rule>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s, up) = (rule.clone(), stop.clone(), upstream.map(str::to_string));
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let _ = serve(conn, &r, up.as_deref());
            }
        });
        Proxy {
            addr,
            rule,
            stop,
            thread: Some(thread),
        }
    }

    /// Decides what happens to each request from now on.
    pub fn set(&self, rule: impl FnMut(&Req) -> Action + Send + 'static) {
        *self.rule.lock().unwrap() = Some(Box::new(rule));
    }

    /// Forwards everything from now on.
    pub fn clear(&self) {
        *self.rule.lock().unwrap() = None;
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(&self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(
    mut c: std::net::TcpStream,
    rule: &std::sync::Mutex<Option<Rule>>,
    upstream: Option<&str>,
) -> std::io::Result<()> {
    use std::io::Read;
    c.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if c.read(&mut byte)? == 0 {
            return Ok(());
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).to_string();
    let mut lines = head.split("\r\n").filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or("").to_string();
    let mut parts = first.split(' ');
    let req = Req {
        method: parts.next().unwrap_or("").to_string(),
        path: parts.next().unwrap_or("").to_string(),
        headers: lines.map(str::to_string).collect(),
    };
    let len: usize = req
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(
        req.header("transfer-encoding").is_none(),
        "the proxy reads Content-Length bodies only: {first}"
    );
    let action = match rule.lock().unwrap().as_mut() {
        Some(r) => r(&req),
        None => Action::Forward,
    };
    if let Action::Cut = action {
        let mut half = vec![0u8; len / 2];
        c.read_exact(&mut half)?;
        return c.shutdown(std::net::Shutdown::Both);
    }
    let mut body = vec![0u8; len];
    c.read_exact(&mut body)?;
    let reply = |c: &mut std::net::TcpStream, status: u16, body: &str| {
        write!(
            c,
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    let rewrite = match action {
        Action::Respond(status, text) => return reply(&mut c, status, &text),
        Action::Raw(text) => return c.write_all(text.as_bytes()),
        Action::Rewrite(f) => Some(f),
        _ => None,
    };
    let Some(up) = upstream else {
        return reply(
            &mut c,
            404,
            r#"{"errors":[{"code":"NOT_FOUND","message":"no upstream"}]}"#,
        );
    };
    let mut u = std::net::TcpStream::connect(up)?;
    let mut out = format!("{first}\r\n");
    for h in &req.headers {
        if !h.to_ascii_lowercase().starts_with("connection:") {
            out.push_str(h);
            out.push_str("\r\n");
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    u.write_all(out.as_bytes())?;
    u.write_all(&body)?;
    let mut answer = Vec::new();
    u.read_to_end(&mut answer)?;
    if let Some(f) = rewrite {
        let split = answer
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|i| i + 4)
            .unwrap_or(answer.len());
        let head = String::from_utf8_lossy(&answer[..split]).to_string();
        let mut new = f(&head).into_bytes();
        new.extend_from_slice(&answer[split..]);
        answer = new;
    }
    c.write_all(&answer)
}

/// A containerd with its state under `dir`, for `ctr`; killed (by pid) on
/// drop.
pub struct Containerd {
    pub sock: PathBuf,
    child: Child,
}

impl Containerd {
    pub fn start(dir: &Path) -> Containerd {
        let sock = dir.join("containerd.sock");
        let config = dir.join("containerd.toml");
        fs::write(
            &config,
            format!(
                "version = 2\nroot = \"{0}/root\"\nstate = \"{0}/state\"\n\
                 disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
                 [grpc]\n  address = \"{1}\"\n\
                 [plugins.\"io.containerd.monitor.v1.cgroups\"]\n  no_prometheus = true\n",
                dir.display(),
                sock.display()
            ),
        )
        .unwrap();
        let log = fs::File::create(dir.join("containerd.log")).unwrap();
        let child = Command::new("containerd")
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("containerd missing: bash scripts/deps.sh --test");
        let c = Containerd { sock, child };
        let start = Instant::now();
        while !c
            .ctr()
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "containerd did not start: {}",
                fs::read_to_string(dir.join("containerd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        c
    }

    pub fn ctr(&self) -> Command {
        let mut c = Command::new("ctr");
        c.env("CONTAINERD_ADDRESS", &self.sock).stdin(Stdio::null());
        c
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
