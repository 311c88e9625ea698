//! Helpers of the push and login tests: rt-image with a docker config, an
//! image committed from a change, a store emptied and pulled back.

use std::fs;
use std::path::Path;
use std::process::{Output, Stdio};

use super::*;

/// rt-image with the docker config in `cfg` (None: the store's empty one).
pub fn rti(img: &RtImage, cfg: Option<&Path>, args: &[&str]) -> Output {
    let mut c = img.cmd(args);
    if let Some(d) = cfg {
        c.env("DOCKER_CONFIG", d);
    }
    c.output().unwrap()
}

pub fn ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Asserts a failure with exactly one line on stderr; returns it.
pub fn fails(out: Output) -> String {
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

pub fn count(out: &str, what: &str) -> usize {
    out.lines().filter(|l| l.contains(what)).count()
}

/// The `TAG: digest: D size: N` line a push ends with.
pub fn pushed_digest(out: &str) -> String {
    let last = out.lines().last().unwrap_or("");
    let (_, rest) = last
        .split_once(": digest: ")
        .unwrap_or_else(|| panic!("no digest line: {out}"));
    rest.split(' ').next().unwrap().to_string()
}

pub fn login(img: &RtImage, cfg: &Path, registry: &str, user: &str, pw: &str) -> Output {
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
pub fn base_image(img: &RtImage, dir: &Path) {
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
pub fn commit_change(img: &RtImage, rt: &mut Rt, dir: &Path, name: &str, text: &str) {
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
pub fn empty_store(img: &RtImage) {
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
pub fn pull_and_run(
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

pub fn registry_blobs(reg: &Registry) -> usize {
    let d = reg.dir.path().join("data/docker/registry/v2/blobs/sha256");
    fs::read_dir(&d)
        .map(|r| {
            r.flat_map(|p| fs::read_dir(p.unwrap().path()).unwrap())
                .count()
        })
        .unwrap_or(0)
}
