//! Pulls from a real registry: Debian's docker-registry on 127.0.0.1,
//! started by each test, with images pushed by skopeo from OCI layouts
//! built in Rust.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::{json, Value};

fn layer_digests(l: &OciLayout, desc: &Value) -> Vec<String> {
    let m: Value =
        serde_json::from_slice(&fs::read(l.blob_path(desc["digest"].as_str().unwrap())).unwrap())
            .unwrap();
    m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["digest"].as_str().unwrap().to_string())
        .collect()
}

fn top(text: &str) -> Vec<u8> {
    Layer::new().file("hello.txt", 0o644, text.as_bytes()).tar()
}

fn cmd() -> Value {
    json!({"Cmd": ["cat", "/hello.txt"], "Env": ["PATH=/bin"]})
}

fn lines_with(out: &str, what: &str) -> usize {
    out.lines().filter(|l| l.contains(what)).count()
}

#[test]
fn by_tag_by_digest_shared_layers_then_run() {
    let reg = Registry::start();
    let img = RtImage::new();
    let work = tmpdir("rt-image-pull.");
    let mut l = OciLayout::new(&work.path().join("layout"));
    let base = busybox_layer();
    let a = l.image(
        &[(base.clone(), TAR_GZIP), (top("from a\n"), TAR_GZIP)],
        cmd(),
        "amd64",
    );
    let b = l.image(
        &[(base, TAR_GZIP), (top("from b\n"), TAR_GZIP)],
        cmd(),
        "amd64",
    );
    let (la, lb) = (layer_digests(&l, &a), layer_digests(&l, &b));
    assert_eq!(la[0], lb[0], "the base layer is shared");
    l.tag(a, "a");
    l.tag(b, "b");
    let src = |t: &str| format!("oci:{}:{t}", l.dir.display());
    reg.push(&src("a"), "busybox:a", &[]);
    reg.push(&src("b"), "other/img:b", &[]);

    let ref_a = format!("{}/busybox:a", reg.addr);
    let out = img.ok(&["pull", "--plain-http", &ref_a]);
    assert_eq!(lines_with(&out, "Downloading"), 2, "{out}");
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {ref_a}")),
        "{out}"
    );
    let digest = out
        .lines()
        .find_map(|x| x.strip_prefix("Digest: "))
        .unwrap()
        .to_string();

    // The second image downloads and unpacks only its own layer.
    let out = img.ok(&["pull", "--plain-http", &format!("{}/other/img:b", reg.addr)]);
    assert_eq!(lines_with(&out, "Already exists"), 1, "{out}");
    assert!(
        out.contains(&format!("{}: Already exists", &la[0][7..19])),
        "{out}"
    );
    assert_eq!(lines_with(&out, "Downloading"), 1, "{out}");
    assert!(
        out.contains(&format!("{}: Downloading", &lb[1][7..19])),
        "{out}"
    );
    assert_eq!(img.count("layers"), 3);

    // By digest: everything is there already.
    let by_digest = format!("{}/busybox@{digest}", reg.addr);
    let out = img.ok(&["pull", "--plain-http", &by_digest]);
    assert_eq!(lines_with(&out, "Already exists"), 2, "{out}");
    assert!(out.contains("Image is up to date"), "{out}");
    let list = img.ok(&["list"]);
    assert!(list.contains(&by_digest) && list.contains(&ref_a), "{list}");

    // Pull, bundle, run.
    let bundle = work.path().join("bundle");
    let out = img.ok(&[Path::new("bundle"), Path::new(&ref_a), &bundle]);
    assert!(out.contains("rt run"), "{out}");
    let rt_root = tmpdir("rt-image-rt.");
    let rt = rt_bin();
    let id = format!("pull-{}", std::process::id());
    let run = Command::new(&rt)
        .arg("--root")
        .arg(rt_root.path())
        .args(["run", "-b"])
        .arg(&bundle)
        .arg(&id)
        .output();
    let _ = Command::new(&rt)
        .arg("--root")
        .arg(rt_root.path())
        .args(["delete", "-f", &id])
        .output();
    img.ok(&[Path::new("bundle"), Path::new("--remove"), &bundle]);
    let run = run.unwrap();
    assert_eq!(
        String::from_utf8_lossy(&run.stdout),
        "from a\n",
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
}

#[test]
fn index_with_two_platforms_and_docker_v2s2() {
    let reg = Registry::start();
    let img = RtImage::new();
    let work = tmpdir("rt-image-pull.");
    let mut l = OciLayout::new(&work.path().join("layout"));
    let amd = l.image(&[(top("amd64\n"), TAR_GZIP)], cmd(), "amd64");
    let arm = l.image(&[(top("arm64\n"), TAR_GZIP)], cmd(), "arm64");
    let (amd_digest, arm_digest) = (
        amd["digest"].as_str().unwrap().to_string(),
        arm["digest"].as_str().unwrap().to_string(),
    );
    let idx = l.index(vec![amd.clone(), arm]);
    l.tag(idx, "multi");
    l.tag(amd, "single");
    reg.push(
        &format!("oci:{}:multi", l.dir.display()),
        "multi:latest",
        &["--all"],
    );
    reg.push(
        &format!("oci:{}:single", l.dir.display()),
        "v2:latest",
        &["--format", "v2s2"],
    );

    let multi = format!("{}/multi:latest", reg.addr);
    let out = img.ok(&["pull", "--plain-http", "--platform", "linux/arm64", &multi]);
    assert!(out.contains(&format!("resolved to {arm_digest}")), "{out}");
    let inspect = img.ok(&["inspect", &multi]);
    assert!(
        inspect.contains("Platform:     linux/arm64") && inspect.contains("Index:"),
        "{inspect}"
    );

    let out = img.ok(&["pull", "--plain-http", &multi]);
    assert!(
        out.contains(&format!("resolved to {amd_digest}")),
        "the host's platform: {out}"
    );

    let e = img.fails(&["pull", "--plain-http", "--platform", "linux/s390x", &multi]);
    assert!(
        e.contains("linux/s390x") && e.contains("linux/arm64") && e.contains(&multi),
        "{e}"
    );
    let e = img.fails(&["pull", "--plain-http", "--platform", "linux", &multi]);
    assert!(e.contains("\"linux\""), "{e}");

    let v2 = format!("{}/v2:latest", reg.addr);
    img.ok(&["pull", "--plain-http", &v2]);
    let inspect = img.ok(&["inspect", &v2]);
    assert!(
        inspect.contains("application/vnd.docker.distribution.manifest.v2+json"),
        "{inspect}"
    );
    assert!(
        inspect.contains("application/vnd.docker.image.rootfs.diff.tar.gzip"),
        "{inspect}"
    );
    let b = work.path().join("b");
    img.ok(&[Path::new("bundle"), Path::new("--copy"), Path::new(&v2), &b]);
    assert_eq!(
        fs::read_to_string(b.join("rootfs/hello.txt")).unwrap(),
        "amd64\n"
    );
    img.ok(&[Path::new("bundle"), Path::new("--remove"), &b]);
}

#[test]
fn corrupt_blob_and_missing_tag_leave_nothing() {
    let reg = Registry::start();
    let img = RtImage::new();
    let work = tmpdir("rt-image-pull.");
    let mut l = OciLayout::new(&work.path().join("layout"));
    let a = l.image(
        &[(top("one\n"), TAR_GZIP), (top("two\n"), TAR_GZIP)],
        cmd(),
        "amd64",
    );
    let layers = layer_digests(&l, &a);
    l.tag(a, "a");
    reg.push(&format!("oci:{}:a", l.dir.display()), "bad:a", &[]);

    // The registry now serves other bytes (of the same length) for layer 2.
    let data = reg.blob_data(&layers[1]);
    let len = usize::try_from(fs::metadata(&data).unwrap().len()).unwrap();
    fs::write(&data, vec![b'x'; len]).unwrap();
    let bad = format!("{}/bad:a", reg.addr);
    let e = img.fails(&["pull", "--plain-http", &bad]);
    assert!(e.contains(&layers[1]) && e.contains(&bad), "{e}");
    img.assert_empty();

    let missing = format!("{}/bad:nope", reg.addr);
    let e = img.fails(&["pull", "--plain-http", &missing]);
    assert!(
        e.contains(&missing) && e.to_lowercase().contains("manifest unknown"),
        "{e}"
    );
    let e = img.fails(&[
        "pull",
        "--plain-http",
        &format!("{}/nosuchrepo:1", reg.addr),
    ]);
    assert!(e.contains("nosuchrepo"), "{e}");
    let e = img.fails(&["pull", "--plain-http", "Bad Ref"]);
    assert!(e.contains("\"Bad Ref\""), "{e}");
    img.assert_empty();
}

#[test]
fn basic_auth_from_the_docker_config() {
    let reg = Registry::with_basic_auth();
    let img = RtImage::new();
    let work = tmpdir("rt-image-pull.");
    let mut l = OciLayout::new(&work.path().join("layout"));
    let a = l.image(&[(top("secret\n"), TAR_GZIP)], cmd(), "amd64");
    l.tag(a, "a");
    reg.push(
        &format!("oci:{}:a", l.dir.display()),
        "private:a",
        &["--dest-creds", "rt:pw"],
    );
    let r = format!("{}/private:a", reg.addr);

    let e = img.fails(&["pull", "--plain-http", &r]);
    assert!(e.contains(&r) && e.contains("authorized"), "{e}");
    img.assert_empty();

    // What `docker login 127.0.0.1:PORT` writes.
    let docker = work.path().join("docker");
    fs::create_dir(&docker).unwrap();
    let wrong = json!({"auths": {reg.addr.clone(): {"auth": "cnQ6bm9wZQ=="}}}); // rt:nope
    fs::write(docker.join("config.json"), wrong.to_string()).unwrap();
    let out = img
        .cmd(&["pull", "--plain-http", &r])
        .env("DOCKER_CONFIG", &docker)
        .output()
        .unwrap();
    assert!(!out.status.success());
    img.assert_empty();

    let right = json!({"auths": {reg.addr.clone(): {"auth": "cnQ6cHc="}}}); // rt:pw
    fs::write(docker.join("config.json"), right.to_string()).unwrap();
    let out = img
        .cmd(&["pull", "--plain-http", &r])
        .env("DOCKER_CONFIG", &docker)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(img.ok(&["list"]).contains(&r));
}

/// `rt-image pull` SIGKILLed at 12 moments spread over a pull, into one
/// store: every blob the store names matches its digest after each kill,
/// and the pull that finally completes gives an image that runs.
#[test]
fn a_pull_killed_at_any_moment_leaves_nothing_a_later_pull_trusts() {
    use sha2::Digest as _;
    let reg = Registry::start();
    let img = RtImage::new();
    let work = tmpdir("rt-image-pull.");
    let mut l = OciLayout::new(&work.path().join("layout"));
    let a = l.image(
        &[(busybox_layer(), TAR_GZIP), (top("survived\n"), TAR_GZIP)],
        cmd(),
        "amd64",
    );
    l.tag(a, "a");
    reg.push(&format!("oci:{}:a", l.dir.display()), "busybox:k", &[]);
    let r = format!("{}/busybox:k", reg.addr);

    // How long a whole pull takes, into a store of its own.
    let timing = RtImage::new();
    let t = std::time::Instant::now();
    timing.ok(&["pull", "--plain-http", &r]);
    let took = t.elapsed();

    let n = 12;
    for i in 0..n {
        let mut child = img
            .cmd(&["pull", "--plain-http", &r])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(took * i / n);
        let _ = child.kill();
        let _ = child.wait();
        for e in fs::read_dir(img.root().join("blobs/sha256"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let data = fs::read(e.path()).unwrap();
            let hex = format!("{:x}", sha2::Sha256::digest(&data));
            assert_eq!(
                e.file_name().to_string_lossy(),
                hex,
                "kill {i}: a blob that does not match its name"
            );
        }
    }
    img.ok(&["pull", "--plain-http", &r]);
    let bundle = work.path().join("bundle");
    img.ok(&[Path::new("bundle"), Path::new(&r), &bundle]);
    let rt_root = tmpdir("rt-image-rt.");
    let id = format!("killed-pull-{}", std::process::id());
    let run = Command::new(rt_bin())
        .arg("--root")
        .arg(rt_root.path())
        .args(["run", "-b"])
        .arg(&bundle)
        .arg(&id)
        .output()
        .unwrap();
    let _ = Command::new(rt_bin())
        .arg("--root")
        .arg(rt_root.path())
        .args(["delete", "-f", &id])
        .output();
    img.ok(&[Path::new("bundle"), Path::new("--remove"), &bundle]);
    assert_eq!(
        String::from_utf8_lossy(&run.stdout),
        "survived\n",
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
}
