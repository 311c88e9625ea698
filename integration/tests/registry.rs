//! One image in Debian's docker-registry on 127.0.0.1, run two ways:
//! `rt-image pull` + `rt-image bundle` + `rt run`, and containerd's
//! `ctr image pull --plain-http` + `ctr run --runc-binary rt` (its Go runc
//! shim). Both print what the image's Cmd says. (rt-image's own tests in
//! image/tests/pull.rs cover tags, digests, indexes, auth and failures.)

use std::process::{Command, Stdio};

use rt_integration::*;

const GREETING: &str = "hello from the registry";

#[test]
fn one_registry_image_through_rt_image_and_containerd() {
    require(&["docker-registry", "containerd", "ctr", "umoci", "skopeo"]);
    let rt = rt_binary();
    let rt_image = built_binary("rt-image");
    let scratch = Scratch::new("registry");
    let s = scratch.path();
    busybox_image(s);
    // The busybox image with a Cmd that says something, pushed as OCI.
    let layout = s.join("img");
    ok(Command::new("umoci")
        .args(["config", "--image"])
        .arg(format!("{}:latest", layout.display()))
        .args([
            "--tag",
            "hello",
            "--config.cmd",
            "echo",
            "--config.cmd",
            GREETING,
        ]));
    let (reg, addr) = registry(s);
    let image = format!("{addr}/busybox:hello");
    ok(Command::new("skopeo")
        .args(["copy", "-q", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:hello", layout.display()))
        .arg(format!("docker://{image}")));

    // rt-image pull, bundle, rt run.
    let store = s.join("rt-image");
    let img = || {
        let mut c = Command::new(&rt_image);
        c.arg("--root")
            .arg(&store)
            .env("DOCKER_CONFIG", s.join("no-docker-config"));
        c
    };
    let out = ok(img().args(["pull", "--plain-http", &image]));
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {image}")),
        "{out}"
    );
    let bundle = s.join("bundle");
    ok(img().arg("bundle").arg(&image).arg(&bundle));
    let rt_root = scratch.rt_root(s.join("rt-root"));
    let ctr_rt_root = s.join("ctr-rt-root");
    scratch.rt_root(ctr_rt_root.join("default"));
    let rt_cmd = || {
        let mut c = Command::new(&rt);
        c.arg("--root").arg(&rt_root);
        c
    };
    let out = run(rt_cmd()
        .args(["run", "--bundle"])
        .arg(&bundle)
        .arg("from-rt-image")
        .stdin(Stdio::null()));
    let _ = run(rt_cmd().args(["delete", "--force", "from-rt-image"]));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{GREETING}\n"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success());
    ok(img().args(["bundle", "--remove"]).arg(&bundle));

    // The same image through containerd and its Go runc shim.
    let (ctd, sock) = containerd(s, false, "");
    let ctr = || {
        let mut c = Command::new("ctr");
        c.env("CONTAINERD_ADDRESS", &sock);
        c
    };
    ok(ctr().args(["image", "pull", "--plain-http", &image]));
    let out = ok(ctr()
        .args(["run", "--rm", "--cpu-shares", "0", "--runc-binary"])
        .arg(&rt)
        .arg("--runc-root")
        .arg(&ctr_rt_root)
        .args([&image, "from-ctr"]));
    assert_eq!(out, format!("{GREETING}\n"));
    for root in [rt_root, s.join("ctr-rt-root/default")] {
        let left = ok(Command::new(&rt)
            .arg("--root")
            .arg(root)
            .args(["list", "-q"]));
        assert_eq!(left, "", "rt's state is gone");
    }

    drop(ctd);
    drop(reg);
    scratch.assert_clean();
}
