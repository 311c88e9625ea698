//! `rt-image run -p` and the bridge network (the standard CNI plugins):
//! a busybox httpd served through a published port on loopback and
//! through the container's address, then stopped and removed with
//! nothing left: no veth, no namespace file, no iptables rule naming the
//! container, no host-local reservation. Needs root (as every test here)
//! and the plugins (Debian's containernetworking-plugins); without them
//! each test says so in one line and passes.

mod common;

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use rt_testkit::{free_port, http_get};
use serde_json::{json, Value};

const PLUGINS: [&str; 5] = ["bridge", "host-local", "portmap", "firewall", "loopback"];
const IPAM: &str = "/run/rt-image/ipam/rt";

/// Why these tests cannot run here, if they cannot.
fn cannot_run() -> Option<String> {
    let missing: Vec<&str> = PLUGINS
        .iter()
        .copied()
        .filter(|p| rt_image::cni::find_plugin(p, rt_image::cni::DEFAULT_PATH).is_none())
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "skipped: CNI plugins {} not in {} (apt install containernetworking-plugins)",
            missing.join(", "),
            rt_image::cni::DEFAULT_PATH
        )
    })
}

fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "arm64",
        "x86_64" => "amd64",
        a => a,
    }
}

/// rt-image with `web:1` imported: busybox serving /www on port 80.
fn web_image() -> (RtImage, tempfile::TempDir) {
    let img = RtImage::new();
    rt_bin(); // rt-image runs the rt beside it
    let work = tmpdir("rt-image-net.");
    let mut l = OciLayout::new(&work.path().join("layout"));
    let www = Layer::new()
        .dir("www", 0o755)
        .file("www/index.html", 0o644, b"hello from rt0\n")
        .tar();
    let m = l.image(
        &[(busybox_layer(), TAR_GZIP), (www, TAR)],
        json!({"Cmd": ["httpd", "-f", "-p", "80", "-h", "/www"], "ExposedPorts": {"80/tcp": {}}}),
        arch(),
    );
    l.tag(m, "1");
    let layout = work.path().join("layout");
    img.ok(&[
        Path::new("import"),
        &layout,
        Path::new("--name"),
        Path::new("web:1"),
    ]);
    (img, work)
}

/// `rt-image ARGS` that starts a detached container: its stdout, read
/// from a file, since the container keeps the descriptors it inherited
/// (a pipe would not end while it runs).
fn detached(img: &RtImage, args: &[&str]) -> String {
    use std::io::Seek;
    let mut out = tempfile::tempfile().unwrap();
    let mut err = tempfile::tempfile().unwrap();
    let status = img
        .cmd(args)
        .stdout(out.try_clone().unwrap())
        .stderr(err.try_clone().unwrap())
        .status()
        .unwrap();
    let read = |f: &mut fs::File| {
        f.rewind().unwrap();
        let mut s = String::new();
        f.read_to_string(&mut s).unwrap();
        s
    };
    let (o, e) = (read(&mut out), read(&mut err));
    assert!(status.success(), "rt-image {args:?}: {status}: {o}{e}");
    o
}

/// A container `rt-image run` started: stopped, its network released and
/// its bundle removed on drop, even when the test failed (by the
/// library's own release when `stop` could not).
struct Container<'a> {
    img: &'a RtImage,
    id: String,
}

impl Container<'_> {
    fn bundle(&self) -> PathBuf {
        self.img.root().join("containers").join(&self.id)
    }
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        let b = self.bundle();
        if !b.exists() {
            return;
        }
        let _ = self.img.run(&["stop", "-t", "1", "--rm", &self.id]);
        let _ = Command::new(rt_bin())
            .args(["delete", "-f", &self.id])
            .status();
        let _ = rt_image::network::detach(&b);
        let _ = self
            .img
            .run(&[Path::new("bundle"), Path::new("--remove"), &b]);
    }
}

/// What of container `id` is on the host: namespace file, host-local
/// reservations, iptables lines naming it or its address, interfaces
/// named in `result`.
fn traces(id: &str, result: Option<&Value>) -> Vec<String> {
    let ip = result
        .and_then(|r| r["ips"][0]["address"].as_str())
        .map(|a| format!("{}/32", a.split('/').next().unwrap_or(a)));
    let mut found = Vec::new();
    let ns = Path::new("/run/rt-image/netns").join(id);
    if ns.exists() {
        found.push(format!("namespace file {}", ns.display()));
    }
    for e in fs::read_dir(IPAM).into_iter().flatten().flatten() {
        if fs::read_to_string(e.path()).is_ok_and(|s| s.lines().next() == Some(id)) {
            found.push(format!("reservation {}", e.path().display()));
        }
    }
    for save in ["iptables-save", "ip6tables-save"] {
        if let Ok(out) = Command::new(save).output() {
            for l in String::from_utf8_lossy(&out.stdout).lines() {
                if l.contains(id) || ip.as_ref().is_some_and(|ip| l.contains(ip.as_str())) {
                    found.push(format!("{save}: {l}"));
                }
            }
        }
    }
    let ifaces = result.and_then(|r| r["interfaces"].as_array()).cloned();
    for i in ifaces.unwrap_or_default() {
        let name = i["name"].as_str().unwrap_or("");
        if i.get("sandbox").is_none()
            && name != "rt0"
            && Path::new("/sys/class/net").join(name).exists()
        {
            found.push(format!("host interface {name}"));
        }
    }
    found
}

/// The ADD result recorded in a running container's bundle.
fn recorded_result(bundle: &Path) -> Value {
    let a: Value =
        serde_json::from_slice(&fs::read(bundle.join(".rt-image/network.json")).unwrap()).unwrap();
    a["result"].clone()
}

#[test]
fn a_published_port_serves_on_loopback_and_the_container_ip() {
    if let Some(why) = cannot_run() {
        eprintln!("{why}");
        return;
    }
    let (img, _work) = web_image();
    let c = Container {
        img: &img,
        id: rt_testkit::unique_id("rtimg-net"),
    };
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:80");
    let out = detached(&img, &["run", "-d", "-p", &publish, "web:1", &c.id]);
    let shown: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(shown["id"], c.id.as_str());
    assert_eq!(shown["network"], "rt");
    assert_eq!(shown["ports"], json!([format!("127.0.0.1:{port}->80/tcp")]));
    let ip = shown["ip"].as_str().expect("an ip").to_string();
    assert!(ip.starts_with("10.89.0."), "{ip}");

    let result = recorded_result(&c.bundle());
    let before = traces(&c.id, Some(&result));
    assert!(
        before.iter().any(|t| t.starts_with("namespace file")),
        "{before:?}"
    );
    assert!(
        before.iter().any(|t| t.starts_with("reservation")),
        "{before:?}"
    );
    assert!(
        before.iter().any(|t| t.starts_with("host interface")),
        "{before:?}"
    );
    let config: Value =
        serde_json::from_slice(&fs::read(c.bundle().join("config.json")).unwrap()).unwrap();
    let netns = config["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["type"] == "network")
        .unwrap();
    assert_eq!(netns["path"], shown["netns"]);

    let ps: Value = serde_json::from_str(&img.ok(&["ps", "--json"])).unwrap();
    assert_eq!(ps[0]["ip"], ip.as_str(), "{ps}");
    assert_eq!(ps[0]["status"], "running", "{ps}");

    assert_eq!(
        http_get(&format!("{ip}:80"), Duration::from_secs(20)).unwrap(),
        "hello from rt0\n"
    );
    assert_eq!(
        http_get(&format!("127.0.0.1:{port}"), Duration::from_secs(20)).unwrap(),
        "hello from rt0\n"
    );

    // httpd is the container's pid 1, which SIGTERM does not end: SIGKILL
    // after a second.
    let out = img.ok(&["stop", "-t", "1", "--rm", &c.id]);
    assert_eq!(out.trim(), c.id);
    assert!(!c.bundle().exists());
    let left = traces(&c.id, Some(&result));
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(http_get(&format!("127.0.0.1:{port}"), Duration::from_secs(1)).is_err());
    let ps: Value = serde_json::from_str(&img.ok(&["ps", "--json"])).unwrap();
    assert_eq!(ps, json!([]));
}

#[test]
fn a_foreground_run_releases_its_network_when_it_exits() {
    if let Some(why) = cannot_run() {
        eprintln!("{why}");
        return;
    }
    let (img, _work) = web_image();
    let c = Container {
        img: &img,
        id: rt_testkit::unique_id("rtimg-net"),
    };
    let out = img.ok(&[
        "run",
        "--rm",
        "--network",
        "bridge",
        "web:1",
        &c.id,
        "--",
        "sh",
        "-c",
        "ip -o addr; cat /etc/resolv.conf",
    ]);
    assert!(out.contains("lo    inet 127.0.0.1/8"), "{out}");
    assert!(out.contains("eth0    inet 10.89.0."), "{out}");
    let host = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    if let Some(want) = rt_image::network::container_resolv_conf(&host) {
        assert!(out.ends_with(&want), "the host's nameservers: {out}");
    }
    assert!(!c.bundle().exists());
    assert_eq!(traces(&c.id, None), Vec::<String>::new());
}

#[test]
fn a_plugin_failing_halfway_leaves_nothing() {
    if let Some(why) = cannot_run() {
        eprintln!("{why}");
        return;
    }
    let (img, work) = web_image();
    // The real plugins, but a firewall that refuses (after bridge and
    // portmap have set up their part).
    let bin = work.path().join("cni");
    fs::create_dir(&bin).unwrap();
    for p in PLUGINS {
        let real = rt_image::cni::find_plugin(p, rt_image::cni::DEFAULT_PATH).unwrap();
        std::os::unix::fs::symlink(real, bin.join(p)).unwrap();
    }
    fs::remove_file(bin.join("firewall")).unwrap();
    fs::write(
        bin.join("firewall"),
        "#!/bin/sh\ncat >/dev/null\n[ \"$CNI_COMMAND\" = ADD ] || exit 0\n\
         echo '{\"cniVersion\":\"1.0.0\",\"code\":100,\"msg\":\"refused by the test\"}'\nexit 1\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(bin.join("firewall"), fs::Permissions::from_mode(0o755)).unwrap();

    let c = Container {
        img: &img,
        id: rt_testkit::unique_id("rtimg-net"),
    };
    let port = free_port().to_string();
    let out = img
        .cmd(&["run", "-d", "-p", &format!("{port}:80"), "web:1", &c.id])
        .env("CNI_PATH", &bin)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.trim_end(),
        "rt-image: CNI plugin firewall (ADD on network rt): refused by the test (code 100)"
    );
    assert!(!c.bundle().exists(), "the bundle is removed");
    assert_eq!(traces(&c.id, None), Vec::<String>::new());
    assert_eq!(img.count("bundles"), 0);
}

#[test]
fn ports_need_the_bridge_network() {
    if let Some(why) = cannot_run() {
        eprintln!("{why}");
        return;
    }
    let (img, _work) = web_image();
    let err = img.fails(&["run", "--network", "none", "-p", "8080:80", "web:1", "c1"]);
    assert!(
        err.contains("-p publishes ports on the bridge network, not with --network none"),
        "{err}"
    );
    let out = img.run(&["run", "-p", "8080", "web:1", "c1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("invalid value '8080' for '--publish <PUBLISH>': no host port"),
        "{err}"
    );
    assert!(!img.root().join("containers/c1").exists());
}
