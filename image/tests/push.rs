//! Pushes to a real registry (Debian's docker-registry on 127.0.0.1, with
//! and without htpasswd auth), logins, and pushes that go wrong: through a
//! proxy that refuses, lies about digests or hangs up half-way.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use base64::Engine;
use common::*;
use serde_json::{json, Value};

/// rt-image with the docker config in `cfg` (None: the store's empty one).
fn rti(img: &RtImage, cfg: Option<&Path>, args: &[&str]) -> Output {
    let mut c = img.cmd(args);
    if let Some(d) = cfg {
        c.env("DOCKER_CONFIG", d);
    }
    c.output().unwrap()
}

fn ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Asserts a failure with exactly one line on stderr; returns it.
fn fails(out: Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).trim_end().to_string();
    assert!(
        !out.status.success(),
        "expected failure, got: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(err.lines().count(), 1, "one error line: {err}");
    eprintln!("rt-image said: {err}");
    err
}

fn count(out: &str, what: &str) -> usize {
    out.lines().filter(|l| l.contains(what)).count()
}

/// The `TAG: digest: D size: N` line a push ends with.
fn pushed_digest(out: &str) -> String {
    let last = out.lines().last().unwrap_or("");
    let (_, rest) = last
        .split_once(": digest: ")
        .unwrap_or_else(|| panic!("no digest line: {out}"));
    rest.split(' ').next().unwrap().to_string()
}

fn login(img: &RtImage, cfg: &Path, registry: &str, user: &str, pw: &str) -> Output {
    let mut c = img.cmd(&[
        "login",
        "--plain-http",
        "--username",
        user,
        "--password-stdin",
        registry,
    ]);
    c.env("DOCKER_CONFIG", cfg).stdin(Stdio::piped());
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{pw}\n").as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// A busybox image with /greeting, imported into the store as `base:1`.
fn base_image(img: &RtImage, dir: &Path) {
    let mut l = OciLayout::new(&dir.join("layout"));
    let m = l.image(
        &[(busybox_layer(), TAR_GZIP)],
        json!({"Cmd": ["cat", "/greeting"], "Env": ["PATH=/bin"]}),
        "amd64",
    );
    l.tag(m, "1");
    ok(
        img.cmd(&["import", "--name", "base:1"])
            .arg(dir.join("layout"))
            .output()
            .unwrap(),
        "import",
    );
}

/// Makes a change in a bundle of `base:1` with rt, and commits it as
/// `name`.
fn commit_change(img: &RtImage, rt: &mut Rt, dir: &Path, name: &str, text: &str) {
    let b = dir.join("commit-bundle");
    let _guard = Bundles(img, vec![b.clone()]);
    let script = format!("echo {text} > /greeting");
    ok(
        img.cmd(&["bundle", "base:1"])
            .arg(&b)
            .args(["--", "sh", "-c", &script])
            .output()
            .unwrap(),
        "bundle",
    );
    let (out, good) = rt.run(&b, &format!("push-commit-{}", std::process::id()));
    assert!(good, "{out}");
    ok(
        img.cmd(&["commit"]).arg(&b).arg(name).output().unwrap(),
        "commit",
    );
    ok(
        img.cmd(&["bundle", "--remove"]).arg(&b).output().unwrap(),
        "bundle --remove",
    );
}

/// Removes every image and what they use from the store.
fn empty_store(img: &RtImage) {
    let images: Value =
        serde_json::from_slice(&fs::read(img.root().join("images.json")).unwrap()).unwrap();
    for name in images.as_object().unwrap().keys() {
        img.ok(&["rm", name]);
    }
    img.ok(&["prune"]);
    img.assert_empty();
    let sources: Value =
        serde_json::from_slice(&fs::read(img.root().join("sources.json")).unwrap()).unwrap();
    assert_eq!(sources, json!({}), "prune forgets where removed blobs were");
}

/// Pulls `reference`, makes a bundle of it and runs it: its stdout.
fn pull_and_run(
    img: &RtImage,
    cfg: Option<&Path>,
    rt: &mut Rt,
    dir: &Path,
    reference: &str,
) -> (String, String) {
    let out = ok(rti(img, cfg, &["pull", "--plain-http", reference]), "pull");
    let digest = out
        .lines()
        .find_map(|l| l.strip_prefix("Digest: "))
        .unwrap()
        .to_string();
    let b = dir.join("run-bundle");
    let _guard = Bundles(img, vec![b.clone()]);
    ok(
        img.cmd(&["bundle", reference]).arg(&b).output().unwrap(),
        "bundle",
    );
    let id = format!("push-run-{}-{}", std::process::id(), rt.ids.len());
    let (stdout, good) = rt.run(&b, &id);
    assert!(good, "{stdout}");
    ok(
        img.cmd(&["bundle", "--remove"]).arg(&b).output().unwrap(),
        "bundle --remove",
    );
    (stdout, digest)
}

fn registry_blobs(reg: &Registry) -> usize {
    let d = reg.dir.path().join("data/docker/registry/v2/blobs/sha256");
    fs::read_dir(&d)
        .map(|r| {
            r.flat_map(|p| fs::read_dir(p.unwrap().path()).unwrap())
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn commit_tag_push_pull_run_then_ctr_pulls_it() {
    let reg = Registry::start();
    let img = RtImage::new();
    let mut rt = Rt::new();
    let work = tmpdir("rt-image-push.");
    base_image(&img, work.path());
    commit_change(&img, &mut rt, work.path(), "mine:v1", "pushed-by-rt");
    let dest = format!("{}/me/mine:v1", reg.addr);
    img.ok(&["tag", "mine:v1", &dest]);
    let local = img.ok(&["inspect", &dest]);
    let manifest = local
        .lines()
        .find_map(|l| l.strip_prefix("Manifest:"))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();

    let out = img.ok(&["push", "--plain-http", &dest]);
    assert!(
        out.starts_with(&format!(
            "The push refers to repository [{}/me/mine]",
            reg.addr
        )),
        "{out}"
    );
    // Two layers and the config.
    assert_eq!(count(&out, ": Pushed"), 3, "{out}");
    assert_eq!(count(&out, "already exists"), 0, "{out}");
    assert!(
        out.lines().last().unwrap().starts_with("v1: digest: "),
        "{out}"
    );
    assert_eq!(pushed_digest(&out), manifest, "{out}");
    let blobs = registry_blobs(&reg);

    // Again: nothing is uploaded.
    let out = img.ok(&["push", "--plain-http", &dest]);
    assert_eq!(count(&out, ": Layer already exists"), 3, "{out}");
    assert_eq!(count(&out, ": Pushed"), 0, "{out}");
    assert_eq!(pushed_digest(&out), manifest, "{out}");
    assert_eq!(registry_blobs(&reg), blobs, "no blob was added");

    // To another repository of the same registry: mounted, not uploaded.
    let other = format!("{}/you/theirs:v2", reg.addr);
    let out = img.ok(&["push", "--plain-http", "mine:v1", &other]);
    assert_eq!(count(&out, ": Mounted from me/mine"), 3, "{out}");
    assert_eq!(count(&out, ": Pushed"), 0, "{out}");
    assert!(
        out.lines().last().unwrap().starts_with("v2: digest: "),
        "{out}"
    );
    assert_eq!(registry_blobs(&reg), blobs, "mounts add no blob");

    // Gone from the store, pulled back, run: the committed change is there.
    empty_store(&img);
    for r in [&dest, &other] {
        let (stdout, digest) = pull_and_run(&img, None, &mut rt, work.path(), r);
        assert_eq!(stdout, "pushed-by-rt\n");
        assert_eq!(digest, manifest);
    }
    drop(rt);

    // Another client reads what was written.
    let ctd_dir = tmpdir("rt-image-ctr.");
    let ctd = Containerd::start(ctd_dir.path());
    let pulled = ctd
        .ctr()
        .args(["image", "pull", "--plain-http", &dest])
        .output()
        .unwrap();
    assert!(
        pulled.status.success(),
        "ctr image pull: {}{}",
        String::from_utf8_lossy(&pulled.stdout),
        String::from_utf8_lossy(&pulled.stderr)
    );
    let ls = ctd.ctr().args(["image", "ls"]).output().unwrap();
    let ls = String::from_utf8_lossy(&ls.stdout).to_string();
    let row = ls
        .lines()
        .find(|l| l.starts_with(&dest))
        .unwrap_or_else(|| panic!("{ls}"));
    assert!(row.contains(&manifest), "{row}");
    let check = ctd.ctr().args(["image", "check"]).output().unwrap();
    let check = String::from_utf8_lossy(&check.stdout).to_string();
    let row = check
        .lines()
        .find(|l| l.starts_with(&dest))
        .unwrap_or_else(|| panic!("{check}"));
    assert!(row.contains("complete"), "{row}");
    drop(ctd);
}

#[test]
fn login_with_htpasswd_then_push_pull_run_and_logout() {
    let reg = Registry::with_basic_auth();
    let img = RtImage::new();
    let mut rt = Rt::new();
    let work = tmpdir("rt-image-push-auth.");
    let cfg = work.path().join("docker");
    base_image(&img, work.path());
    commit_change(&img, &mut rt, work.path(), "auth:v1", "pushed-with-login");
    let dest = format!("{}/me/auth:v1", reg.addr);
    img.ok(&["tag", "auth:v1", &dest]);

    // No credentials: the push is refused, the store stays as it was.
    let before = snapshot(img.root());
    let err = fails(rti(&img, Some(&cfg), &["push", "--plain-http", &dest]));
    assert!(
        err.contains("not authorized (HTTP 401") && err.contains("rt-image login"),
        "{err}"
    );
    assert_eq!(snapshot(img.root()), before);

    // A wrong password: refused, nothing stored.
    let err = fails(login(&img, &cfg, &reg.addr, "rt", "wrong"));
    assert!(
        err.contains(&format!("login to {} refused", reg.addr)),
        "{err}"
    );
    assert!(err.contains("wrong user name or password"), "{err}");
    assert!(!cfg.join("config.json").exists());

    let out = ok(login(&img, &cfg, &reg.addr, "rt", "pw"), "login");
    assert!(out.starts_with("Login Succeeded"), "{out}");
    let file = cfg.join("config.json");
    assert_eq!(
        fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let stored: Value = serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
    let token = base64::engine::general_purpose::STANDARD.encode("rt:pw");
    assert_eq!(stored["auths"][&reg.addr]["auth"], json!(token), "{stored}");

    let out = ok(
        rti(&img, Some(&cfg), &["push", "--plain-http", &dest]),
        "push",
    );
    assert_eq!(count(&out, ": Pushed"), 3, "{out}");
    let digest = pushed_digest(&out);
    let out = ok(
        rti(&img, Some(&cfg), &["push", "--plain-http", &dest]),
        "push",
    );
    assert_eq!(count(&out, ": Layer already exists"), 3, "{out}");

    empty_store(&img);
    let (stdout, pulled) = pull_and_run(&img, Some(&cfg), &mut rt, work.path(), &dest);
    assert_eq!(stdout, "pushed-with-login\n");
    assert_eq!(pulled, digest);

    // Credentials that were good once and no longer are: 401 after login.
    let mut stale = stored.clone();
    stale["auths"][&reg.addr]["auth"] =
        json!(base64::engine::general_purpose::STANDARD.encode("rt:changed"));
    let stale_dir = work.path().join("stale");
    fs::create_dir(&stale_dir).unwrap();
    fs::write(stale_dir.join("config.json"), stale.to_string()).unwrap();
    let again = format!("{}/me/auth:v2", reg.addr);
    img.ok(&["tag", &dest, &again]);
    let before = snapshot(img.root());
    let err = fails(rti(
        &img,
        Some(&stale_dir),
        &["push", "--plain-http", &again],
    ));
    assert!(
        err.contains("not authorized (HTTP 401") && err.contains("with the credentials"),
        "{err}"
    );
    assert_eq!(snapshot(img.root()), before);

    let out = ok(rti(&img, Some(&cfg), &["logout", &reg.addr]), "logout");
    assert_eq!(
        out,
        format!("Removing login credentials for {}\n", reg.addr)
    );
    let stored: Value = serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
    assert_eq!(stored["auths"], json!({}), "{stored}");
    let out = ok(rti(&img, Some(&cfg), &["logout", &reg.addr]), "logout");
    assert_eq!(out, format!("Not logged in to {}\n", reg.addr));
    fails(rti(&img, Some(&cfg), &["push", "--plain-http", &again]));
}

#[test]
fn login_token_flow() {
    // A registry whose /v2/ asks for a bearer token from its realm, which
    // hands one out for rt:pw only.
    let fake = Proxy::start(None);
    let realm = format!("http://{}/token", fake.addr);
    let good = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("rt:pw")
    );
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    fake.set(move |r| {
        log.lock().unwrap().push(format!("{} {}", r.method, r.path));
        let auth = r.header("authorization").unwrap_or("").to_string();
        if r.path == "/v2/" {
            if auth == "Bearer tok-123" {
                return Action::Respond(200, "{}".into());
            }
            let challenge = format!("Bearer realm=\"{realm}\",service=\"fake\"");
            return Action::Raw(format!(
                "HTTP/1.1 401 Unauthorized\r\nWww-Authenticate: {challenge}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            ));
        }
        if r.path.starts_with("/token?") {
            if auth == good {
                return Action::Respond(200, r#"{"token":"tok-123"}"#.into());
            }
            return Action::Respond(
                401,
                r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}"#.into(),
            );
        }
        Action::Respond(404, "{}".into())
    });
    let img = RtImage::new();
    let work = tmpdir("rt-image-token.");
    let cfg = work.path().join("docker");

    let err = fails(login(&img, &cfg, &fake.addr, "rt", "nope"));
    assert!(
        err.contains(
            "token service: wrong user name or password (HTTP 401: UNAUTHORIZED: bad credentials)"
        ),
        "{err}"
    );
    assert!(!cfg.join("config.json").exists());

    let out = ok(login(&img, &cfg, &fake.addr, "rt", "pw"), "login");
    assert!(out.starts_with("Login Succeeded"), "{out}");
    let stored: Value =
        serde_json::from_slice(&fs::read(cfg.join("config.json")).unwrap()).unwrap();
    assert!(stored["auths"][&fake.addr]["auth"].is_string(), "{stored}");
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.iter().any(|s| s.starts_with("GET /token?")
            && s.contains("service=fake")
            && s.contains("account=rt")),
        "{seen:?}"
    );
    assert_eq!(
        seen.last().unwrap(),
        "GET /v2/",
        "the token is tried: {seen:?}"
    );

    // Credentials are not the store's business: none is made for them.
    let no_store = work.path().join("no-store");
    let out = Command::new(env!("CARGO_BIN_EXE_rt-image"))
        .arg("--root")
        .arg(&no_store)
        .args(["logout", &fake.addr])
        .env("DOCKER_CONFIG", &cfg)
        .output()
        .unwrap();
    let out = ok(out, "logout");
    assert_eq!(
        out,
        format!("Removing login credentials for {}\n", fake.addr)
    );
    assert!(!no_store.exists(), "logout made a store");
}

/// A registry behind a proxy, an image tagged for the proxy's address, and
/// the store's state before the push that goes wrong.
struct Broken {
    reg: Registry,
    proxy: Proxy,
    img: RtImage,
    dest: String,
    _work: tempfile::TempDir,
}

fn broken() -> Broken {
    let reg = Registry::start();
    let proxy = Proxy::start(Some(&reg.addr));
    let img = RtImage::new();
    let work = tmpdir("rt-image-push-bad.");
    base_image(&img, work.path());
    let dest = format!("{}/me/base:1", proxy.addr);
    img.ok(&["tag", "base:1", &dest]);
    Broken {
        reg,
        proxy,
        img,
        dest,
        _work: work,
    }
}

impl Broken {
    /// The push fails with one line, the store is unchanged; with the
    /// proxy mended, a second push completes and the image is whole in
    /// the registry. Returns the failure's line.
    fn fails_then_completes(&self) -> String {
        let before = snapshot(self.img.root());
        let err = self.img.fails(&["push", "--plain-http", &self.dest]);
        assert_eq!(snapshot(self.img.root()), before, "the store changed");
        self.proxy.clear();
        let out = self.img.ok(&["push", "--plain-http", &self.dest]);
        let digest = pushed_digest(&out);
        // Read back from the registry itself, by another store.
        let other = RtImage::new();
        let direct = self.dest.replace(&self.proxy.addr, &self.reg.addr);
        let pulled = other.ok(&["pull", "--plain-http", &direct]);
        assert!(pulled.contains(&format!("Digest: {digest}")), "{pulled}");
        err
    }
}

#[test]
fn push_refused_with_403() {
    let b = broken();
    b.proxy.set(|r| {
        if r.method == "POST" && r.path.contains("/blobs/uploads/") {
            Action::Respond(
                403,
                r#"{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}"#.into(),
            )
        } else {
            Action::Forward
        }
    });
    let err = b.fails_then_completes();
    assert!(
        err.contains(&format!("rt-image: {}: blob sha256:", b.dest))
            && err
                .contains("denied (HTTP 403: DENIED: requested access to the resource is denied)"),
        "{err}"
    );
}

#[test]
fn push_registry_reports_another_digest() {
    let b = broken();
    let other = format!("sha256:{}", "0".repeat(64));
    let o = other.clone();
    b.proxy.set(move |r| {
        if r.method == "PUT" && r.path.contains("/blobs/uploads/") {
            let o = o.clone();
            Action::Rewrite(Box::new(move |head| {
                head.split("\r\n")
                    .map(|l| {
                        if l.to_ascii_lowercase().starts_with("location:") {
                            let (base, _) = l.rsplit_once("/blobs/").unwrap();
                            format!("{base}/blobs/{o}")
                        } else {
                            l.to_string()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("\r\n")
            }))
        } else {
            Action::Forward
        }
    });
    let err = b.fails_then_completes();
    assert!(
        err.contains("sent blob sha256:")
            && err.contains(&format!("the registry reports it as {other}")),
        "{err}"
    );
}

#[test]
fn push_cut_off_half_way() {
    let b = broken();
    let mut cut = false;
    b.proxy.set(move |r| {
        if r.method == "PATCH" && !cut {
            cut = true;
            Action::Cut
        } else {
            Action::Forward
        }
    });
    let err = b.fails_then_completes();
    assert!(err.contains("connection to the registry failed"), "{err}");
}

#[test]
fn a_corrupt_blob_in_the_store_is_not_pushed() {
    let reg = Registry::start();
    let img = RtImage::new();
    let work = tmpdir("rt-image-push-corrupt.");
    base_image(&img, work.path());
    let dest = format!("{}/me/base:1", reg.addr);
    img.ok(&["tag", "base:1", &dest]);
    let inspect = img.ok(&["inspect", &dest]);
    let layer = inspect
        .lines()
        .skip_while(|l| *l != "Layers:")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let path: PathBuf = img.root().join("blobs/sha256").join(&layer[7..]);
    let good = fs::read(&path).unwrap();
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0xff;
    fs::write(&path, &bad).unwrap();
    let before = snapshot(img.root());
    let err = img.fails(&["push", "--plain-http", &dest]);
    assert!(
        err.contains(&format!("blob {layer}: content has digest sha256:")),
        "{err}"
    );
    assert_eq!(snapshot(img.root()), before);
    assert!(
        !reg.blob_data(&layer).exists(),
        "the registry did not take it"
    );
    fs::write(&path, &good).unwrap();
    let out = img.ok(&["push", "--plain-http", &dest]);
    assert_eq!(count(&out, ": Pushed"), 2, "{out}");
    assert!(reg.blob_data(&layer).exists());
}

#[test]
fn an_index_pushes_every_platform_held_and_docker_manifests_stay_docker() {
    let reg = Registry::start();
    let work = tmpdir("rt-image-push-index.");
    let mut l = OciLayout::new(&work.path().join("layout"));
    let top = |arch: &str| Layer::new().file("arch.txt", 0o644, arch.as_bytes()).tar();
    let cfg = json!({"Cmd": ["cat", "/arch.txt"], "Env": ["PATH=/bin"]});
    let amd = l.image(
        &[(busybox_layer(), TAR_GZIP), (top("amd64"), TAR_GZIP)],
        cfg.clone(),
        "amd64",
    );
    let arm = l.image(
        &[(busybox_layer(), TAR_GZIP), (top("arm64"), TAR_GZIP)],
        cfg,
        "arm64",
    );
    let (amd_d, arm_d) = (
        amd["digest"].as_str().unwrap().to_string(),
        arm["digest"].as_str().unwrap().to_string(),
    );
    let idx = l.index(vec![amd, arm]);
    let idx_d = idx["digest"].as_str().unwrap().to_string();
    l.tag(idx, "multi");
    reg.push(
        &format!("oci:{}:multi", l.dir.display()),
        "src/multi:1",
        &["--all"],
    );
    let src = format!("{}/src/multi:1", reg.addr);

    // A store with one platform of the index pushes that platform alone.
    let one = RtImage::new();
    one.ok(&["pull", "--plain-http", "--platform", "linux/amd64", &src]);
    let out = one.run(&[
        "push",
        "--plain-http",
        &src,
        &format!("{}/one/multi:1", reg.addr),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("the store lacks linux/arm64"));
    assert_eq!(pushed_digest(&stdout), amd_d, "{stdout}");

    // With both platforms held, the index goes with both.
    let both = RtImage::new();
    both.ok(&["pull", "--plain-http", "--platform", "linux/arm64", &src]);
    both.ok(&["pull", "--plain-http", "--platform", "linux/amd64", &src]);
    let dest = format!("{}/both/multi:1", reg.addr);
    let out = both.ok(&["push", "--plain-http", &src, &dest]);
    assert!(
        out.contains(&format!("linux/amd64: digest: {amd_d}")),
        "{out}"
    );
    assert!(
        out.contains(&format!("linux/arm64: digest: {arm_d}")),
        "{out}"
    );
    assert_eq!(pushed_digest(&out), idx_d, "{out}");
    let check = RtImage::new();
    let pulled = check.ok(&["pull", "--plain-http", "--platform", "linux/arm64", &dest]);
    assert!(pulled.contains(&format!("Digest: {arm_d}")), "{pulled}");

    // A Docker schema 2 image is pushed as one, byte for byte.
    reg.push(
        &format!("oci:{}:multi", l.dir.display()),
        "src/docker:1",
        &["--format", "v2s2"],
    );
    let d = RtImage::new();
    let src = format!("{}/src/docker:1", reg.addr);
    d.ok(&["pull", "--plain-http", &src]);
    let inspect = d.ok(&["inspect", &src]);
    assert!(
        inspect.contains("application/vnd.docker.distribution.manifest.v2+json"),
        "{inspect}"
    );
    let local = inspect
        .lines()
        .find_map(|l| l.strip_prefix("Manifest:"))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let dest = format!("{}/docker/img:1", reg.addr);
    let out = d.ok(&["push", "--plain-http", &src, &dest]);
    assert_eq!(pushed_digest(&out), local, "{out}");
    let raw = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{dest}"))
        .output()
        .unwrap();
    let raw: Value = serde_json::from_slice(&raw.stdout).unwrap();
    assert_eq!(
        raw["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
}

#[test]
fn a_registry_that_breaks_the_chunked_protocol_gets_one_put() {
    let b = broken();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    b.proxy.set(move |r| {
        let len = r.header("content-length").unwrap_or("0").to_string();
        log.lock()
            .unwrap()
            .push(format!("{} {} {len}", r.method, r.path));
        if r.method == "PATCH" {
            // Success, but not the 202 with a Location the spec asks for.
            Action::Raw(
                "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into(),
            )
        } else {
            Action::Forward
        }
    });
    let out = b.img.ok(&["push", "--plain-http", &b.dest]);
    assert_eq!(count(&out, ": Pushed"), 2, "{out}");
    let digest = pushed_digest(&out);
    let seen = seen.lock().unwrap().clone();
    let layer_size = fs::read_dir(b.img.root().join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .max()
        .unwrap();
    assert!(
        seen.iter()
            .any(|s| s.starts_with("PUT /v2/me/base/blobs/uploads/")
                && s.ends_with(&format!(" {layer_size}"))),
        "the layer went in one PUT: {seen:#?}"
    );
    assert!(
        seen.iter().any(|s| s.starts_with("PATCH ")),
        "a chunked upload was tried first: {seen:#?}"
    );
    let other = RtImage::new();
    let pulled = other.ok(&[
        "pull",
        "--plain-http",
        &b.dest.replace(&b.proxy.addr, &b.reg.addr),
    ]);
    assert!(pulled.contains(&format!("Digest: {digest}")), "{pulled}");
}

/// Runs `args` of rt-image under `script`, on a terminal of its own:
/// `answers` are typed, each once the text before it has been shown.
/// Returns everything the terminal showed.
fn on_a_terminal(img: &RtImage, cfg: &Path, args: &[&str], answers: &[(&str, &str)]) -> String {
    use std::io::{Read, Write};
    let mut cmd = format!(
        "{} --root {}",
        env!("CARGO_BIN_EXE_rt-image"),
        img.root().display()
    );
    for a in args {
        cmd.push(' ');
        cmd.push_str(a);
    }
    let mut child = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("DOCKER_CONFIG", cfg)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("script (util-linux)");
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut shown = String::new();
    let mut stdin = child.stdin.take().unwrap();
    for (wait_for, answer) in answers {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !shown.contains(wait_for) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(b) => shown.push_str(&String::from_utf8_lossy(&b)),
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("{wait_for:?} never shown: {shown:?}");
                }
            }
        }
        stdin.write_all(answer.as_bytes()).unwrap();
    }
    while let Ok(b) = rx.recv_timeout(std::time::Duration::from_secs(60)) {
        shown.push_str(&String::from_utf8_lossy(&b));
    }
    drop(stdin);
    let status = child.wait().unwrap();
    reader.join().unwrap();
    assert!(status.success(), "{shown}");
    shown
}

#[test]
fn on_a_terminal_login_asks_without_echo_and_push_draws_bars() {
    let reg = Registry::with_basic_auth();
    let img = RtImage::new();
    let work = tmpdir("rt-image-push-tty.");
    let cfg = work.path().join("docker");
    let shown = on_a_terminal(
        &img,
        &cfg,
        &["login", "--plain-http", &reg.addr],
        &[("Username: ", "rt\n"), ("Password: ", "pw\n")],
    );
    let (_, after) = shown.split_once("Password: ").unwrap();
    let (typed, _) = after
        .split_once("Login Succeeded")
        .unwrap_or_else(|| panic!("{shown:?}"));
    assert!(!typed.contains("pw"), "the password was echoed: {shown:?}");
    assert!(
        shown.contains("Username: rt"),
        "the user name echoes: {shown:?}"
    );

    base_image(&img, work.path());
    let dest = format!("{}/me/tty:1", reg.addr);
    img.ok(&["tag", "base:1", &dest]);
    let shown = on_a_terminal(&img, &cfg, &["push", "--plain-http", &dest], &[]);
    // Lines and bars share the terminal: counted in the whole transcript.
    assert_eq!(shown.matches(": Pushed").count(), 2, "{shown:?}");
    assert!(shown.contains("██"), "a bar was drawn: {shown:?}");
    assert!(shown.contains("1: digest: sha256:"), "{shown:?}");
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

/// A token service as Docker's token auth has it: `GET /token?service=&scope=`
/// with basic credentials `rt:pw` answers a JWT (RS256, signed with a key
/// made by openssl, its certificate in `x5c`) granting what was asked.
struct TokenService {
    proxy: Proxy,
    cert: PathBuf,
    _keys: tempfile::TempDir,
}

fn token_service() -> TokenService {
    let keys = tmpdir("rt-image-token-keys.");
    let (key, cert) = (keys.path().join("key.pem"), keys.path().join("cert.pem"));
    let st = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=rt-test-token", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "openssl req");
    let der = Command::new("openssl")
        .args(["x509", "-outform", "DER", "-in"])
        .arg(&cert)
        .output()
        .unwrap();
    assert!(der.status.success());
    let x5c = base64::engine::general_purpose::STANDARD.encode(&der.stdout);
    let good = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("rt:pw")
    );
    let proxy = Proxy::start(None);
    proxy.set(move |r| {
        let Some(query) = r.path.strip_prefix("/token?") else {
            return Action::Respond(404, "{}".into());
        };
        if r.header("authorization") != Some(good.as_str()) {
            return Action::Respond(
                401,
                r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}"#.into(),
            );
        }
        let mut access = Vec::new();
        for (k, v) in query.split('&').filter_map(|kv| kv.split_once('=')) {
            if k == "scope" {
                let scope = percent_decode(v);
                let mut parts = scope.splitn(3, ':');
                let (t, name, actions) = (parts.next(), parts.next(), parts.next());
                access.push(json!({"type": t, "name": name,
                                   "actions": actions.unwrap_or("").split(',').collect::<Vec<_>>()}));
            }
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let b64 = |v: &Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
        };
        let input = format!(
            "{}.{}",
            b64(&json!({"alg": "RS256", "typ": "JWT", "x5c": [x5c]})),
            b64(&json!({"iss": "rt-test-issuer", "sub": "rt", "aud": "rt-test",
                        "exp": now + 300, "nbf": now - 10, "iat": now - 10,
                        "jti": format!("{now}-{}", access.len()), "access": access}))
        );
        let mut sign = Command::new("openssl")
            .args(["dgst", "-sha256", "-sign"])
            .arg(&key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        sign.stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let sig = sign.wait_with_output().unwrap();
        assert!(sig.status.success(), "openssl dgst -sign");
        let token = format!(
            "{input}.{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&sig.stdout)
        );
        Action::Respond(200, json!({"token": token, "expires_in": 300}).to_string())
    });
    TokenService {
        proxy,
        cert,
        _keys: keys,
    }
}

#[test]
fn token_auth_login_push_pull_run() {
    let tokens = token_service();
    let reg =
        Registry::with_token_auth(&format!("http://{}/token", tokens.proxy.addr), &tokens.cert);
    let img = RtImage::new();
    let mut rt = Rt::new();
    let work = tmpdir("rt-image-push-token.");
    let cfg = work.path().join("docker");
    base_image(&img, work.path());
    commit_change(&img, &mut rt, work.path(), "tok:v1", "pushed-with-a-token");
    let dest = format!("{}/me/tok:v1", reg.addr);
    img.ok(&["tag", "tok:v1", &dest]);

    let before = snapshot(img.root());
    let err = fails(rti(&img, Some(&cfg), &["push", "--plain-http", &dest]));
    assert!(err.contains("rt-image login"), "{err}");
    assert_eq!(snapshot(img.root()), before);

    let err = fails(login(&img, &cfg, &reg.addr, "rt", "wrong"));
    assert!(
        err.contains("token service: wrong user name or password"),
        "{err}"
    );
    assert!(!cfg.join("config.json").exists());
    let out = ok(login(&img, &cfg, &reg.addr, "rt", "pw"), "login");
    assert!(out.starts_with("Login Succeeded"), "{out}");

    let out = ok(
        rti(&img, Some(&cfg), &["push", "--plain-http", &dest]),
        "push",
    );
    assert_eq!(count(&out, ": Pushed"), 3, "{out}");
    let digest = pushed_digest(&out);
    let out = ok(
        rti(&img, Some(&cfg), &["push", "--plain-http", &dest]),
        "push",
    );
    assert_eq!(count(&out, ": Layer already exists"), 3, "{out}");

    empty_store(&img);
    let (stdout, pulled) = pull_and_run(&img, Some(&cfg), &mut rt, work.path(), &dest);
    assert_eq!(stdout, "pushed-with-a-token\n");
    assert_eq!(pulled, digest);
}
