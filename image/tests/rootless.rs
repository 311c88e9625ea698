//! rt-image for a plain user: a real user (made by the test, with its
//! subuid range) imports an image whose layers give files to several
//! uids, and whose top layer deletes a file and makes a directory opaque,
//! into its own store; makes bundles (the container's own rootless overlay,
//! and a copy) that rt runs rootless; and removes all of it.

mod common;

use std::fs;
use std::path::Path;
use std::time::Duration;

use common::*;
use rt_testkit::user::User;
use serde_json::{json, Value};

/// A tar entry owned by `uid:gid`.
fn entry(t: &mut tar::Builder<Vec<u8>>, path: &str, dir: bool, uid: u64, gid: u64) {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(if dir {
        tar::EntryType::Directory
    } else {
        tar::EntryType::Regular
    });
    h.set_mode(if dir { 0o755 } else { 0o644 });
    h.set_uid(uid);
    h.set_gid(gid);
    h.set_size(if dir { 0 } else { 3 });
    h.set_mtime(1_700_000_000);
    let data: &[u8] = if dir { b"" } else { b"hi\n" };
    t.append_data(&mut h, path, data).unwrap();
}

/// The one path under `dir` (searched two levels down) whose name ends
/// with `rel`.
fn find_under(dir: &Path, rel: &str) -> std::path::PathBuf {
    fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path().join(rel))
        .find(|p| p.symlink_metadata().is_ok())
        .unwrap_or_else(|| panic!("no {rel} under {}", dir.display()))
}

/// An OCI layout in the user's home whose layer 2 gives files to uids 33
/// and 1000 and whose layer 3 deletes one of them and makes a directory
/// opaque (OCI whiteouts).
fn many_owners_image(u: &User) -> std::path::PathBuf {
    let src = u.home.join("layout");
    let mut l = OciLayout::new(&src);
    let mut mid = tar::Builder::new(Vec::new());
    entry(&mut mid, "srv", true, 33, 33);
    entry(&mut mid, "srv/www", false, 33, 34);
    entry(&mut mid, "data", true, 0, 0);
    entry(&mut mid, "data/a", false, 1000, 1001);
    entry(&mut mid, "gone", false, 1000, 1000);
    entry(&mut mid, "opq", true, 0, 0);
    entry(&mut mid, "opq/old", false, 0, 0);
    let mut top = tar::Builder::new(Vec::new());
    entry(&mut top, ".wh.gone", false, 0, 0);
    entry(&mut top, "opq", true, 0, 0);
    entry(&mut top, "opq/.wh..wh..opq", false, 0, 0);
    entry(&mut top, "opq/new", false, 7, 7);
    let m = l.image(
        &[
            (busybox_layer(), TAR_GZIP),
            (mid.into_inner().unwrap(), TAR),
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

    src
}

/// `rt-image ARGS` as the user (after `env ENV...`), which must succeed.
fn rt_image_as(u: &User, rt_image: &Path, env: &[&str], args: &[&str]) -> rt_testkit::Ran {
    let mut all: Vec<&str> = env.to_vec();
    all.push(rt_image.to_str().unwrap());
    all.extend_from_slice(args);
    let r = rt_testkit::run_captured(
        &mut u.command_of(Path::new("/usr/bin/env"), &u.home, true, &all),
        Some(Duration::from_secs(60)),
    )
    .unwrap();
    assert!(r.success(), "rt-image {args:?} as the user: {}", r.stderr());
    r
}

#[test]
fn a_plain_user_goes_from_import_to_a_running_container_in_two_commands() {
    require_root();
    let rt = rt_bin();
    let u = User::new(rt.parent().unwrap());
    let rt_image = u.bin_dir.join("rt-image");
    fs::copy(env!("CARGO_BIN_EXE_rt-image"), &rt_image).unwrap();
    let src = many_owners_image(&u);

    rt_image_as(
        &u,
        &rt_image,
        &[],
        &["import", "--name", "bb", src.to_str().unwrap()],
    );
    let r = rt_image_as(
        &u,
        &rt_image,
        &[],
        &[
            "run",
            "--rm",
            "bb",
            "c1",
            "--",
            "sh",
            "-c",
            "id -u; hostname; stat -c %u:%g /srv/www",
        ],
    );
    assert_eq!(
        r.stdout().lines().collect::<Vec<_>>(),
        ["0", "c1", "33:34"],
        "{}",
        r.stderr()
    );
    // --rm: the bundle is gone, and so is the container.
    let containers = u.home.join(".local/share/rt/images/containers");
    assert_eq!(fs::read_dir(&containers).unwrap().count(), 0, "bundle left");
    assert!(u.ok(&["list", "-q"]).trim().is_empty());

    // A bad id is refused before anything is made.
    let bad = rt_testkit::run_captured(
        &mut u.command_of(&rt_image, &u.home, true, &["run", "bb", "../x"]),
        Some(Duration::from_secs(60)),
    )
    .unwrap();
    assert!(!bad.success());
    assert_eq!(bad.stderr().trim().lines().count(), 1, "{}", bad.stderr());
    assert!(bad.stderr().contains("../x"), "{}", bad.stderr());
    assert_eq!(fs::read_dir(&containers).unwrap().count(), 0);
    u.assert_nothing_left();
}

#[test]
fn a_plain_user_imports_bundles_and_runs_an_image_with_many_owners() {
    use std::os::unix::fs::MetadataExt;
    require_root();
    let rt = rt_bin();
    let u = User::new(rt.parent().unwrap());
    let rt_image = u.bin_dir.join("rt-image");
    fs::copy(env!("CARGO_BIN_EXE_rt-image"), &rt_image).unwrap();

    let src = many_owners_image(&u);
    let as_user = |env: &[&str], args: &[&str]| rt_image_as(&u, &rt_image, env, args);

    // $XDG_DATA_HOME is respected; without it the store is in ~/.local/share.
    let xdg = format!("XDG_DATA_HOME={}", u.home.join("data").display());
    as_user(&[&xdg], &["import", "--name", "bb", src.to_str().unwrap()]);
    assert!(u.home.join("data/rt/images/images.json").exists());
    as_user(&[], &["import", "--name", "bb", src.to_str().unwrap()]);
    let store = u.home.join(".local/share/rt/images");
    assert!(store.join("images.json").exists());

    // On the host the layer's owners are in the user's subuid range
    // (uid N in the layer is sub_start + N - 1, uid 0 the user).
    let s = u.sub_start;
    let layers = store.join("layers");
    for (rel, uid, gid) in [
        ("srv", s + 32, s + 32),
        ("srv/www", s + 32, s + 33),
        ("data/a", s + 999, s + 1000),
        ("opq/new", s + 6, s + 6),
        ("data", u.uid, u.gid),
    ] {
        let md = find_under(&layers, rel).symlink_metadata().unwrap();
        assert_eq!((md.uid(), md.gid()), (uid, gid), "host owner of {rel}");
    }

    let probe = "id -u; stat -c '%n %u:%g' /srv /srv/www /data/a /opq/new; ls -ln /srv; \
                 ls /opq; [ -e /gone ] || echo gone-is-gone; echo w > /mine && echo wrote; \
                 cat /proc/self/uid_map";
    for (name, copy) in [("bundle", false), ("copy", true)] {
        let dir = u.home.join(name);
        let mut args = vec!["bundle", "bb", dir.to_str().unwrap()];
        if copy {
            args.push("--copy");
        }
        args.extend(["--", "sh", "-c", probe]);
        let r = as_user(&[], &args);
        let config: Value =
            serde_json::from_str(&fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
        let root_mount = config["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == "/")
            .cloned();
        if copy {
            assert!(
                r.stderr().contains("rootfs is a copy: --copy"),
                "{}",
                r.stderr()
            );
            assert!(root_mount.is_none(), "{config}");
        } else {
            // The container mounts the overlay in its own user namespace.
            assert!(!r.stderr().contains("copy"), "{}", r.stderr());
            let m = root_mount.expect("an overlay mount on / in config.json");
            assert_eq!(m["type"], "overlay");
            assert!(
                m["options"]
                    .as_array()
                    .unwrap()
                    .contains(&json!("userxattr")),
                "{m}"
            );
            assert!(
                rt_testkit::mount_points_under(&u.home).is_empty(),
                "rt-image mounted on the host"
            );
        }
        // The config maps ids as the layers were unpacked.
        for (key, own) in [("uidMappings", u.uid), ("gidMappings", u.gid)] {
            assert_eq!(
                config["linux"][key],
                json!([{"containerID": 0, "hostID": own, "size": 1},
                       {"containerID": 1, "hostID": s, "size": 65536}]),
                "{key}"
            );
        }
        assert!(config["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["type"] == "user"));
        assert!(config["linux"].get("resources").is_none());

        let r = u.run_in(&dir, &["run", "-b", dir.to_str().unwrap(), name]);
        assert!(r.success(), "rt run of the user's {name}: {}", r.stderr());
        let out = r.stdout();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "0", "{out}");
        assert_eq!(
            &lines[1..5],
            [
                "/srv 33:33",
                "/srv/www 33:34",
                "/data/a 1000:1001",
                "/opq/new 7:7"
            ],
            "the image's owners inside ({name}): {out}"
        );
        assert!(
            out.lines()
                .any(|l| l.contains(" 33 ") && l.ends_with("www")),
            "ls -ln /srv: {out}"
        );
        // Opaque: the lower layer's old is hidden; the whiteout hid gone.
        assert!(out.contains("\nnew\n") && !out.contains("old"), "{out}");
        assert!(out.contains("gone-is-gone"), "{out}");
        assert!(out.contains("wrote"), "{out}");
        assert!(out.contains(&s.to_string()), "{out}");
    }
    // The overlay's writes are in the bundle's upper directory, as root in
    // the container (the user on the host).
    let mine = u.home.join("bundle/.rt-image/upper/mine");
    assert_eq!(fs::read_to_string(&mine).unwrap(), "w\n");
    assert_eq!(mine.symlink_metadata().unwrap().uid(), u.uid);

    // Removing as the user removes files the subuids own, too.
    for name in ["bundle", "copy"] {
        let dir = u.home.join(name);
        as_user(&[], &["bundle", "--remove", dir.to_str().unwrap()]);
        assert!(!dir.exists());
    }
    as_user(&[], &["rm", "bb"]);
    as_user(&[], &["prune"]);
    assert_eq!(fs::read_dir(&layers).unwrap().count(), 0, "layers left");
    u.assert_nothing_left();
}
