//! Pushes to a real registry (Debian's docker-registry on 127.0.0.1):
//! commit, tag, push, pull back, run; and pushes that go wrong, through a
//! proxy that refuses, lies about digests or hangs up half-way.

mod common;

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use common::push::*;
use common::*;
use serde_json::{json, Value};

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
