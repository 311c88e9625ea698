//! rt-image for a plain user: a real user (made by the test, with its
//! subuid range) imports an image into its own store, makes a bundle that
//! rt runs rootless, and removes it.
//!
//! What a rootless store cannot do yet: a layer's files owned by other
//! uids keep the user as owner (root in the container), and the bundle's
//! rootfs is a copy, not an overlay (mounting overlayfs needs root here;
//! rt-image says so).

mod common;

use std::fs;
use std::path::Path;
use std::time::Duration;

use common::*;
use rt_testkit::user::User;
use serde_json::{json, Value};

#[test]
fn a_plain_user_imports_bundles_and_runs_an_image() {
    require_root();
    let rt = rt_bin();
    let u = User::new(rt.parent().unwrap());
    let rt_image = u.bin_dir.join("rt-image");
    fs::copy(env!("CARGO_BIN_EXE_rt-image"), &rt_image).unwrap();

    // An image whose top layer has a file owned by uid 1000.
    let src = u.home.join("layout");
    let mut l = OciLayout::new(&src);
    let mut top = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_uid(1000);
    h.set_gid(1000);
    h.set_size(3);
    h.set_mtime(1_700_000_000);
    top.append_data(&mut h, "owned", &b"hi\n"[..]).unwrap();
    let m = l.image(
        &[
            (busybox_layer(), TAR_GZIP),
            (top.into_inner().unwrap(), TAR),
        ],
        json!({"Cmd": ["sh"], "Env": ["PATH=/bin"]}),
        "amd64",
    );
    l.tag(m, "latest");
    std::process::Command::new("chown")
        .args(["-R", &format!("{}:{}", u.uid, u.gid), src.to_str().unwrap()])
        .status()
        .unwrap();

    let as_user = |env: &[&str], args: &[&str]| {
        let mut all: Vec<&str> = env.to_vec();
        let prog = rt_image.to_str().unwrap();
        all.push(prog);
        all.extend_from_slice(args);
        let r = rt_testkit::run_captured(
            &mut u.command_of(Path::new("/usr/bin/env"), &u.home, true, &all),
            Some(Duration::from_secs(60)),
        )
        .unwrap();
        assert!(r.success(), "rt-image {args:?} as the user: {}", r.stderr());
        r
    };

    // $XDG_DATA_HOME is respected; without it the store is in ~/.local/share.
    let xdg = format!("XDG_DATA_HOME={}", u.home.join("data").display());
    as_user(&[&xdg], &["import", "--name", "bb", src.to_str().unwrap()]);
    assert!(u.home.join("data/rt/images/images.json").exists());
    as_user(&[], &["import", "--name", "bb", src.to_str().unwrap()]);
    assert!(u.home.join(".local/share/rt/images/images.json").exists());

    let dir = u.home.join("bundle");
    let r = as_user(
        &[],
        &[
            "bundle",
            "bb",
            dir.to_str().unwrap(),
            "--",
            "sh",
            "-c",
            "id -u; stat -c %u /owned; cat /proc/self/uid_map",
        ],
    );
    assert!(
        r.stderr().contains("rootfs is a copy") && r.stderr().contains("overlay unavailable"),
        "the copy should be said: {}",
        r.stderr()
    );
    let config: Value =
        serde_json::from_str(&fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["linux"]["uidMappings"][0]["hostID"], json!(u.uid));
    assert_eq!(
        config["linux"]["uidMappings"][1]["hostID"],
        json!(u.sub_start)
    );
    assert!(config["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["type"] == "user"));
    assert!(config["linux"].get("resources").is_none());

    let r = u.run_in(&dir, &["run", "-b", dir.to_str().unwrap(), "r1"]);
    assert!(r.success(), "rt run of the user's bundle: {}", r.stderr());
    let out = r.stdout();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "0", "{out}");
    // Unpacked without root: the file is the user's, root in the container.
    assert_eq!(lines[1], "0", "{out}");
    assert!(out.contains(&u.sub_start.to_string()), "{out}");

    as_user(&[], &["bundle", "--remove", dir.to_str().unwrap()]);
    assert!(!dir.exists());
    u.assert_nothing_left();
}
