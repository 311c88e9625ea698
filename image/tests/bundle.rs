//! End to end without a network: an OCI layout built from busybox is
//! imported (as a directory, an OCI archive and a docker-archive), made
//! into bundles and run with the built `rt`.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::{json, Value};

/// A two-layer image: busybox (gzip), then a layer of `top_type` that
/// adds /hello.txt and /srv.
fn layout(dir: &Path, top_type: &str) -> OciLayout {
    let mut l = OciLayout::new(dir);
    let base = busybox_layer();
    let top = Layer::new()
        .file("hello.txt", 0o644, b"hello from the image\n")
        .dir("srv", 0o755)
        .tar();
    let m = l.image(
        &[(base, TAR_GZIP), (top, top_type)],
        json!({"Cmd": ["cat", "/hello.txt"], "Env": ["PATH=/bin", "GREETING=hi"],
               "WorkingDir": "/srv", "User": "app",
               "Labels": {"org.example.team": "rt"}, "ExposedPorts": {"8080/tcp": {}},
               "StopSignal": "SIGTERM"}),
        "amd64",
    );
    l.tag(m, "1.0");
    l
}

fn lowerdirs(rootfs: &Path) -> String {
    let mi = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let line = mi
        .lines()
        .find(|l| l.split(' ').nth(4) == Some(rootfs.to_str().unwrap()))
        .unwrap_or_else(|| panic!("{} is not mounted", rootfs.display()));
    let opts = line.rsplit(' ').next().unwrap();
    opts.split(',')
        .find_map(|o| o.strip_prefix("lowerdir="))
        .unwrap()
        .to_string()
}

#[test]
fn import_bundle_run_two_bundles_share_layers() {
    let img = RtImage::new();
    let work = tmpdir("rt-image-e2e.");
    layout(&work.path().join("layout"), TAR_ZSTD);
    let out = img.ok(&[
        Path::new("import"),
        &work.path().join("layout"),
        Path::new("--name"),
        Path::new("e2e:1"),
    ]);
    assert!(out.contains("Loaded image: e2e:1"), "{out}");
    assert_eq!(img.count("layers"), 2);

    let b1 = work.path().join("b1");
    let b2 = work.path().join("b2");
    let _guard = Bundles(&img, vec![b1.clone(), b2.clone()]);
    img.ok(&[Path::new("bundle"), Path::new("e2e:1"), &b1]);
    img.ok(&[
        Path::new("bundle"),
        Path::new("e2e:1"),
        &b2,
        Path::new("--name"),
        Path::new("second"),
        Path::new("--"),
        Path::new("sh"),
        Path::new("-c"),
        Path::new("id; pwd; echo $GREETING; cat /hello.txt; ls /tmp/written 2>&1; hostname"),
    ]);
    let config: Value = serde_json::from_slice(&fs::read(b1.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["process"]["args"], json!(["cat", "/hello.txt"]));
    assert_eq!(
        config["process"]["user"],
        json!({"uid": 1234, "gid": 2345, "additionalGids": [3456]})
    );
    assert_eq!(config["process"]["cwd"], "/srv");
    assert_eq!(config["annotations"]["org.example.team"], "rt");
    assert_eq!(
        config["annotations"]["org.opencontainers.image.exposedPorts"],
        "8080/tcp"
    );
    assert_eq!(
        config["annotations"]["org.opencontainers.image.stopSignal"],
        "SIGTERM"
    );

    // Both overlays stack the same two store directories.
    let l1 = lowerdirs(&b1.join("rootfs"));
    assert_eq!(l1, lowerdirs(&b2.join("rootfs")));
    assert_eq!(l1.split(':').count(), 2);
    assert!(
        l1.split(':')
            .all(|d| d.starts_with(img.root().join("layers").to_str().unwrap())),
        "{l1}"
    );

    let mut rt = Rt::new();
    let (out, ok) = rt.run(&b1, &format!("img-a-{}", std::process::id()));
    assert!(ok);
    assert_eq!(out, "hello from the image\n");

    // A write in bundle 1 lands in its upper directory only.
    let mut c = config.clone();
    c["process"]["args"] = json!(["sh", "-c", "echo mine > /tmp/written && cat /tmp/written"]);
    fs::write(b1.join("config.json"), serde_json::to_vec(&c).unwrap()).unwrap();
    let (out, ok) = rt.run(&b1, &format!("img-b-{}", std::process::id()));
    assert!(ok);
    assert_eq!(out, "mine\n");
    assert!(b1.join(".rt-image/upper/tmp/written").exists());
    assert!(!b2.join(".rt-image/upper/tmp/written").exists());
    for d in l1.split(':') {
        assert!(
            !Path::new(d).join("tmp/written").exists(),
            "a store layer was written"
        );
    }

    // Commit bundle 1 (a new file, a deleted one) and run the result.
    c["process"]["args"] = json!(["rm", "/hello.txt"]);
    c["process"]["user"] = json!({"uid": 0, "gid": 0});
    fs::write(b1.join("config.json"), serde_json::to_vec(&c).unwrap()).unwrap();
    assert!(rt.run(&b1, &format!("img-d-{}", std::process::id())).1);
    let out = img.ok(&[
        Path::new("commit"),
        &b1,
        Path::new("committed:2"),
        Path::new("-m"),
        Path::new("by the test"),
    ]);
    assert!(out.starts_with("committed:2 (sha256:"), "{out}");
    let b3 = work.path().join("b3");
    let _guard3 = Bundles(&img, vec![b3.clone()]);
    img.ok(&[
        Path::new("bundle"),
        Path::new("committed:2"),
        &b3,
        Path::new("--"),
        Path::new("sh"),
        Path::new("-c"),
        Path::new("cat /tmp/written; ls /hello.txt 2>&1; true"),
    ]);
    assert_eq!(lowerdirs(&b3.join("rootfs")).split(':').count(), 3);
    let (out, ok) = rt.run(&b3, &format!("img-e-{}", std::process::id()));
    assert!(ok, "{out}");
    assert!(
        out.starts_with("mine\n") && out.contains("No such file"),
        "{out}"
    );
    let inspect = img.ok(&["inspect", "committed:2"]);
    assert!(inspect.contains("rt-image commit"), "{inspect}");
    img.ok(&[Path::new("bundle"), Path::new("--remove"), &b3]);
    img.ok(&["rm", "committed:2"]);

    let (out, ok) = rt.run(&b2, &format!("img-c-{}", std::process::id()));
    assert!(ok, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("uid=1234(app) gid=2345(app)"), "{out}");
    assert!(lines[0].contains("3456(extra)"), "{out}");
    assert_eq!(&lines[1..4], ["/srv", "hi", "hello from the image"]);
    assert!(
        lines[4].contains("No such file"),
        "bundle 2 sees bundle 1's write: {out}"
    );
    assert_eq!(lines[5], "second");
    drop(rt);

    img.ok(&[Path::new("bundle"), Path::new("--remove"), &b1]);
    assert!(!b1.exists());
    // The layers stay while bundle 2 uses them, even with no image named.
    img.ok(&["rm", "e2e:1"]);
    img.ok(&["prune"]);
    assert_eq!(img.count("layers"), 2);
    img.ok(&[Path::new("bundle"), Path::new("--remove"), &b2]);
    assert!(!b2.exists());
    img.ok(&["prune"]);
    img.assert_empty();
}

#[test]
fn oci_archive_docker_archive_and_copy_bundles() {
    let img = RtImage::new();
    let work = tmpdir("rt-image-archives.");
    let dir = work.path().join("layout");
    // docker-archive has no zstd: a plain tar on top.
    layout(&dir, TAR);
    // An OCI archive: the layout as a tar; named after the file and tag.
    let archive = work.path().join("myimg.tar");
    assert!(Command::new("tar")
        .arg("-C")
        .arg(&dir)
        .arg("-cf")
        .arg(&archive)
        .arg(".")
        .status()
        .unwrap()
        .success());
    let out = img.ok(&[Path::new("import"), &archive]);
    assert!(out.contains("Loaded image: localhost/myimg:1.0"), "{out}");

    // A docker-archive, as `docker save` writes it (skopeo makes one).
    let docker = work.path().join("docker.tar");
    let st = Command::new("skopeo")
        .args(["copy", "-q"])
        .arg(format!("oci:{}:1.0", dir.display()))
        .arg(format!(
            "docker-archive:{}:example.com/team/app:2",
            docker.display()
        ))
        .status()
        .unwrap();
    assert!(st.success());
    let out = img.ok(&[Path::new("import"), &docker]);
    assert!(
        out.contains("Loaded image: example.com/team/app:2"),
        "{out}"
    );
    // skopeo recompresses nothing for docker-archive: same diff ids, so the
    // same chain ids: the layers are shared, not unpacked again.
    assert_eq!(img.count("layers"), 2);

    // RT_IMAGE_ROOT moves the store like --root.
    let out = Command::new(env!("CARGO_BIN_EXE_rt-image"))
        .arg("list")
        .env("RT_IMAGE_ROOT", img.root())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("localhost/myimg:1.0"));
    let list = img.ok(&["images"]);
    assert!(
        list.contains("localhost/myimg:1.0") && list.contains("example.com/team/app:2"),
        "{list}"
    );
    let inspect = img.ok(&["inspect", "example.com/team/app:2"]);
    assert!(
        inspect.contains("\"Cmd\"") && inspect.contains("layer 1"),
        "{inspect}"
    );

    let b = work.path().join("copy");
    let _guard = Bundles(&img, vec![b.clone()]);
    img.ok(&[
        Path::new("bundle"),
        Path::new("--copy"),
        Path::new("example.com/team/app:2"),
        &b,
    ]);
    assert_eq!(
        fs::read_to_string(b.join("rootfs/hello.txt")).unwrap(),
        "hello from the image\n"
    );
    let mut rt = Rt::new();
    let (out, ok) = rt.run(&b, &format!("img-copy-{}", std::process::id()));
    assert!(ok);
    assert_eq!(out, "hello from the image\n");
    drop(rt);
    img.ok(&[Path::new("bundle"), Path::new("--remove"), &b]);
    assert!(!b.exists());
}

#[test]
fn bad_inputs_leave_nothing() {
    let img = RtImage::new();
    let work = tmpdir("rt-image-bad.");

    let missing = work.path().join("nope");
    let e = img.fails(&[Path::new("import"), &missing]);
    assert!(e.contains(missing.to_str().unwrap()), "{e}");

    let e = img.fails(&[Path::new("import"), work.path()]);
    assert!(e.contains("neither an OCI image layout"), "{e}");

    let junk = work.path().join("junk.tar");
    fs::write(
        &junk,
        b"this is not a tar archive at all, not even close........",
    )
    .unwrap();
    let e = img.fails(&[Path::new("import"), &junk]);
    assert!(e.contains("junk.tar"), "{e}");

    // A layout whose layer does not match its digest.
    let dir = work.path().join("corrupt");
    let l = layout(&dir, TAR_GZIP);
    let idx: Value = serde_json::from_slice(&fs::read(dir.join("index.json")).unwrap()).unwrap();
    let manifest: Value = serde_json::from_slice(
        &fs::read(l.blob_path(idx["manifests"][0]["digest"].as_str().unwrap())).unwrap(),
    )
    .unwrap();
    let top = manifest["layers"][1]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    fs::write(l.blob_path(&top), b"tampered").unwrap();
    let e = img.fails(&[Path::new("import"), &dir]);
    assert!(e.contains(&top), "{e}");
    img.assert_empty();

    // Not a stored image, into a fresh directory: nothing created.
    let b = work.path().join("b");
    let e = img.fails(&[Path::new("bundle"), Path::new("missing:1"), &b]);
    assert!(
        e.contains("\"missing:1\"") && e.contains("not found"),
        "{e}"
    );
    assert!(!b.exists());
    let e = img.fails(&["inspect", "missing:1"]);
    assert!(e.contains("missing:1"), "{e}");
    let e = img.fails(&["rm", "missing:1"]);
    assert!(e.contains("missing:1"), "{e}");

    // A non-empty target directory is refused and left as it was.
    let dir = work.path().join("good");
    layout(&dir, TAR_GZIP);
    img.ok(&[
        Path::new("import"),
        &dir,
        Path::new("--name"),
        Path::new("good:1"),
    ]);
    fs::create_dir(&b).unwrap();
    fs::write(b.join("mine"), "x").unwrap();
    let e = img.fails(&[Path::new("bundle"), Path::new("good:1"), &b]);
    assert!(
        e.contains("not empty") && e.contains(b.to_str().unwrap()),
        "{e}"
    );
    assert_eq!(fs::read_dir(&b).unwrap().count(), 1);

    // commit needs an overlay bundle rt-image made.
    let e = img.fails(&[Path::new("commit"), &b, Path::new("x:1")]);
    assert!(e.contains("not a bundle rt-image made"), "{e}");
    let c = work.path().join("c");
    let _guard = Bundles(&img, vec![c.clone()]);
    img.ok(&[
        Path::new("bundle"),
        Path::new("--copy"),
        Path::new("good:1"),
        &c,
    ]);
    let e = img.fails(&[Path::new("commit"), &c, Path::new("x:1")]);
    assert!(
        e.contains("copied bundle") && e.contains(c.to_str().unwrap()),
        "{e}"
    );
    img.ok(&[Path::new("bundle"), Path::new("--remove"), &c]);
    assert!(!img.ok(&["images"]).contains("x:1"));

    // --remove refuses a directory rt-image did not make.
    let e = img.fails(&[Path::new("bundle"), Path::new("--remove"), &b]);
    assert!(e.contains("not a bundle rt-image made"), "{e}");
    assert!(b.join("mine").exists());
    assert_eq!(img.count("bundles"), 0);
}
