//! Mounts in situations configs of other tools make (issue 23, item 7):
//! bind sources and idmapped binds in a user namespace, a container left
//! in the host's mount namespace; compared with runc 1.1.5 where it can
//! run them here. And a bind's flags as runc 1.3's own suite checks them
//! (`RT_TEST_RUNTIME` runs that test against its runc).

mod common;

use std::fs;
use std::path::Path;

use common::*;
use serde_json::json;

const RUNC: &str = "/usr/sbin/runc";

fn require_runc() {
    assert!(
        Path::new(RUNC).exists(),
        "{RUNC} missing: apt-get install runc (Debian's 1.1.5, the reference here)"
    );
}

/// A config with a user namespace (container root is host 100000),
/// without the sysfs mount a user namespace cannot make.
fn userns_bundle(args: &[&str]) -> Bundle {
    let mut b = Bundle::busybox(args);
    b.add_user_namespace(100000);
    // The mount point: the container's root may not make it in the image.
    fs::create_dir_all(b.rootfs().join("mnt")).unwrap();
    b
}

/// A bind source under a directory only host root may enter: rt opens it
/// before the container's user exists, as runc does.
#[test]
fn a_bind_source_only_rt_can_open() {
    use std::os::unix::fs::PermissionsExt;
    let secret = tempfile::tempdir().unwrap();
    fs::set_permissions(secret.path(), fs::Permissions::from_mode(0o700)).unwrap();
    fs::create_dir(secret.path().join("dir")).unwrap();
    fs::write(secret.path().join("dir/f"), "only root\n").unwrap();
    let mut b = userns_bundle(&["cat", "/mnt/f"]);
    b.add_mount(json!({"destination": "/mnt", "type": "bind",
        "source": secret.path().join("dir"), "options": ["rbind", "ro"]}));
    let rt = Rt::new();
    let id = unique_id("bindsecret");
    let (code, out, err) = run_in(&rt, &b, &id);
    assert_eq!((code, out.as_str()), (0, "only root\n"), "{err}");
    assert_no_leaks(&rt, &id, &b);
    require_runc();
    let (ok, theirs) = runc_run(&b, &id);
    assert!(ok && theirs == out, "runc: {theirs}");
}

/// An idmapped bind in a container with a user namespace (EPERM before:
/// the init may not idmap a host file system; rt does it before the
/// clone). Disk uid 0 is the container's root through the mount's map,
/// and what the container writes lands as disk uid 0. runc 1.1.5 has no
/// idmapped mounts (it binds without the map), so this is rt's alone.
#[test]
fn an_idmapped_bind_inside_a_user_namespace() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("root-owned"), "").unwrap();
    let mut b = userns_bundle(&[
        "sh",
        "-c",
        "stat -c '%u %n' /mnt/root-owned; touch /mnt/new; stat -c '%u %n' /mnt/new",
    ]);
    b.edit(|c| c["root"]["readonly"] = json!(false));
    b.add_mount(
        json!({"destination": "/mnt", "type": "bind", "source": dir.path(),
        "options": ["rbind", "idmap"],
        "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
        "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]}),
    );
    let rt = Rt::new();
    let id = unique_id("idmapuserns");
    let (code, out, err) = run_in(&rt, &b, &id);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "0 /mnt/root-owned\n0 /mnt/new\n");
    assert_eq!(fs::metadata(dir.path().join("new")).unwrap().uid(), 0);
    assert_no_leaks(&rt, &id, &b);
}

/// `idmap` with no maps in a container that joins another's user
/// namespace by path: that namespace's mapping is the mount's (runc's
/// idmap.bats "implied mapping, userns join").
#[test]
fn an_idmap_implied_by_a_joined_user_namespace() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("root-owned"), "").unwrap();
    let rt = Rt::new();
    let first = userns_bundle(&["sleep", "1000"]);
    let a = unique_id("idmapowner");
    let pid = rt.detached(&first, &a);
    let mut b = userns_bundle(&[
        "sh",
        "-c",
        "stat -c '%u %n' /mnt/root-owned; touch /mnt/new",
    ]);
    b.edit(|c| {
        let linux = c["linux"].as_object_mut().unwrap();
        linux.remove("uidMappings");
        linux.remove("gidMappings");
        for ns in c["linux"]["namespaces"].as_array_mut().unwrap() {
            if ns["type"] == "user" {
                ns["path"] = json!(format!("/proc/{pid}/ns/user"));
            }
        }
    });
    b.add_mount(
        json!({"destination": "/mnt", "type": "bind", "source": dir.path(),
        "options": ["rbind", "idmap"]}),
    );
    let id = unique_id("idmapjoined");
    let (code, out, err) = run_in(&rt, &b, &id);
    assert_eq!((code, out.as_str()), (0, "0 /mnt/root-owned\n"), "{err}");
    assert_eq!(fs::metadata(dir.path().join("new")).unwrap().uid(), 0);
    rt.ok(&["delete", "-f", &a]);
    assert_no_leaks(&rt, &id, &b);
    assert_no_leaks(&rt, &a, &first);
}

/// Plain `runc run` of `bundle` as `id` in a state root of its own:
/// (success, stdout, or stderr on failure). The container is deleted.
fn runc_run(bundle: &Bundle, id: &str) -> (bool, String) {
    let root = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(RUNC)
        .arg("--root")
        .arg(root.path())
        .args(["run", "--bundle", bundle.path().to_str().unwrap(), id])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let _ = std::process::Command::new(RUNC)
        .arg("--root")
        .arg(root.path())
        .args(["delete", "-f", id])
        .output();
    if out.status.success() {
        (true, stdout(&out))
    } else {
        (false, stderr(&out))
    }
}

/// A container that keeps the host's mount namespace: with nothing to
/// mount it runs, chrooted into its root (or in the host's `/`), and the
/// host's mount table is the same after; a mount with the host's `/` as
/// the root or in a user namespace, or the root's propagation, is refused
/// in one line naming the field (mounts under another root: compat_runc.rs). (runc 1.1.5 runs it too but binds the root over the
/// host's `/`, which breaks the host: not run here.)
#[test]
fn a_container_in_the_host_mount_namespace() {
    // Mounts on the host's `/` (other tests may mount elsewhere meanwhile).
    let on_root = || -> usize {
        fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter(|l| l.split(' ').nth(4) == Some("/"))
            .count()
    };
    let on_root_before = on_root();
    let host_mnt = fs::read_link("/proc/self/ns/mnt").unwrap();
    let rt = Rt::new();
    let keep_host = |c: &mut serde_json::Value| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "mount");
        c["mounts"] = json!([]);
        let l = c["linux"].as_object_mut().unwrap();
        l.remove("maskedPaths");
        l.remove("readonlyPaths");
        c["root"]["readonly"] = json!(false);
    };
    let mut b = Bundle::busybox(&["sh", "-c", "echo ok; ls /"]);
    b.edit(keep_host);
    let id = unique_id("hostmnt");
    let (code, out, err) = run_in(&rt, &b, &id);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("ok\nbin\n"),
        "chrooted into the rootfs: {out}"
    );
    assert_no_leaks(&rt, &id, &b);

    let mut b = Bundle::busybox(&["/bin/sh", "-c", "readlink /proc/self/ns/mnt"]);
    b.edit(|c| {
        keep_host(c);
        c["root"]["path"] = json!("/");
        c["process"]["env"] = json!(["PATH=/usr/bin:/bin"]);
    });
    let id = unique_id("hostmntroot");
    let (code, out, err) = run_in(&rt, &b, &id);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim_end(), host_mnt.to_str().unwrap());
    assert_no_leaks(&rt, &id, &b);

    // With the host's `/` as its root, a mount would land on the host's
    // own paths.
    let mut b = Bundle::busybox(&["true"]);
    b.edit(|c| {
        keep_host(c);
        c["root"]["path"] = json!("/");
        c["mounts"] = json!([{"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}]);
    });
    let id = unique_id("hostmntbad");
    let err = rt.fails(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    assert_one_line_error(&err, &["mounts", "root.path is the host's /"]);
    assert_no_leaks(&rt, &id, &b);
    // The root's propagation is the host's there.
    let mut b = Bundle::busybox(&["true"]);
    b.edit(|c| {
        keep_host(c);
        c["linux"]["rootfsPropagation"] = json!("private");
    });
    let id = unique_id("hostmntprop");
    let err = rt.fails(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    assert_one_line_error(&err, &["linux.rootfsPropagation", "no mount namespace"]);
    assert_no_leaks(&rt, &id, &b);
    // A user namespace may not mount in the host's mount namespace.
    let mut b = Bundle::busybox(&["true"]);
    b.add_user_namespace(100000);
    b.edit(|c| {
        keep_host(c);
        c["mounts"] = json!([{"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}]);
    });
    let id = unique_id("hostmntuserns");
    let err = rt.fails(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    assert_one_line_error(
        &err,
        &["mounts", "user namespace", "host's mount namespace"],
    );
    assert_no_leaks(&rt, &id, &b);
    assert_eq!(on_root(), on_root_before, "a mount on the host's /");
}

/// A tmpfs without `mode=` takes the mode of the directory it covers,
/// but on a directory rt makes for it keeps tmpfs's own 1777 (runc
/// 1.3, its suite's "tmpfs mount mode=1777 default"); the directories rt
/// made under the root stay 0755.
#[test]
fn a_tmpfs_on_a_directory_rt_makes_is_1777() {
    use std::os::unix::fs::PermissionsExt;
    let mut b = Bundle::busybox(&["stat", "-c", "%a", "/made/for/it", "/kept"]);
    let kept = b.rootfs().join("kept");
    fs::create_dir(&kept).unwrap();
    fs::set_permissions(&kept, fs::Permissions::from_mode(0o710)).unwrap();
    for dest in ["/made/for/it", "/kept"] {
        b.add_mount(
            json!({"destination": dest, "type": "tmpfs", "source": "tmpfs",
            "options": ["rw", "nodev", "nosuid"]}),
        );
    }
    let rt = Rt::new();
    let id = unique_id("tmpfsmode");
    let (code, out, err) = run_in(&rt, &b, &id);
    assert_eq!((code, out.as_str()), (0, "1777\n710\n"), "{err}");
    for made in ["made", "made/for", "made/for/it"] {
        let mode = fs::metadata(b.rootfs().join(made))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o755, "{made}");
    }
    assert_no_leaks(&rt, &id, &b);
}

/// Runs a busybox container that mounts a tmpfs under `/shared`, a bind
/// (`rbind,rshared`) of a shared mount of the "host", with
/// `rootfsPropagation` as given. The host is a mount namespace of the
/// test's own (`unshare --propagation shared`), so nothing can reach the
/// machine's. Returns whether the tmpfs showed on the host.
fn mount_inside_reaches_the_host(root_propagation: Option<&str>) -> bool {
    let rt = Rt::new();
    let host = tempfile::tempdir().unwrap();
    let dir = host.path().display().to_string();
    let mut b = Bundle::busybox(&[
        "sh",
        "-c",
        "mkdir -p /shared/sub && mount -t tmpfs inside /shared/sub",
    ]);
    fs::create_dir_all(b.rootfs().join("shared")).unwrap();
    b.edit(|c| {
        for set in ["bounding", "effective", "permitted"] {
            c["process"]["capabilities"][set]
                .as_array_mut()
                .unwrap()
                .push(json!("CAP_SYS_ADMIN"));
        }
        if let Some(p) = root_propagation {
            c["linux"]["rootfsPropagation"] = json!(p);
        }
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/shared", "type": "bind", "source": dir,
            "options": ["rbind", "rshared"]
        }));
    });
    let id = unique_id("propagation");
    rt.created(&id);
    let script = format!(
        "mount --bind {dir} {dir} && mount --make-shared {dir} && \
         {rt} --root {root} run --bundle {bundle} {id} </dev/null && \
         grep -c ' {dir}/sub ' /proc/self/mountinfo",
        rt = rt_bin(),
        root = rt.root().display(),
        bundle = b.path().display(),
    );
    let out = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "shared", "sh", "-c", &script])
        .output()
        .expect("unshare (util-linux) runs");
    let seen = stdout(&out).trim().parse::<u32>().unwrap_or(0);
    // grep -c exits 1 when it counts 0; anything else failed.
    assert!(
        out.status.success() || (seen == 0 && out.status.code() == Some(1)),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert_no_leaks(&rt, &id, &b);
    seen > 0
}

/// `rootfsPropagation: rshared`, which containerd sets for Kubernetes'
/// Bidirectional mount propagation: a bind of a shared host mount stays
/// its peer, so a mount made under it inside reaches the host, as with
/// runc. Without it (rt's default, / made rslave) nothing comes back.
#[test]
fn rshared_root_propagation_carries_a_mount_made_inside_to_the_host() {
    assert!(mount_inside_reaches_the_host(Some("rshared")));
    assert!(!mount_inside_reaches_the_host(None));
}

/// runc's mount order: a bind whose source is a place inside the
/// container's root that an earlier mount made, written (as its
/// destination is) as the root's host path; it exists only in the
/// container's mount namespace, so it is opened there, in order. With a
/// user namespace too (rt opens other sources before the clone).
#[test]
fn a_bind_source_made_by_an_earlier_mount_of_the_container() {
    let src = tempfile::tempdir().unwrap();
    fs::create_dir(src.path().join("a")).unwrap();
    fs::write(src.path().join("a/file"), "from a\n").unwrap();
    for userns in [false, true] {
        let mut b = if userns {
            userns_bundle(&["cat", "/final/file"])
        } else {
            Bundle::busybox(&["cat", "/final/file"])
        };
        let root = b.rootfs();
        fs::create_dir_all(root.join("mnt")).unwrap();
        fs::create_dir_all(root.join("final")).unwrap();
        b.add_mount(json!({"destination": "/mnt", "type": "bind",
            "source": src.path().join("a"), "options": ["rbind"]}));
        b.add_mount(json!({"destination": root.join("final"), "type": "bind",
            "source": root.join("mnt"), "options": ["rbind"]}));
        let rt = Rt::new();
        let id = unique_id("mountorder");
        let (code, out, err) = run_in(&rt, &b, &id);
        assert_eq!(
            (code, out.as_str()),
            (0, "from a\n"),
            "userns {userns}: {err}"
        );
        assert!(
            !root.join(root.strip_prefix("/").unwrap()).exists(),
            "the destination was made under the root's host path"
        );
        assert_no_leaks(&rt, &id, &b);
    }
}

/// A bind of `source` at /mnt with `options`, in a user namespace or
/// not: (exit code, the flags /mnt shows in the container, stderr).
fn bind_flags(source: &FlaggedTmpfs, options: &[&str], userns: bool) -> (i32, String, String) {
    let rt = Rt::new();
    let mut b = Bundle::busybox(&[
        "sh",
        "-c",
        "grep ' /mnt ' /proc/self/mounts | cut -d' ' -f4",
    ]);
    if userns {
        b.add_user_namespace(100000);
    }
    // There, as in runc's busybox: the root of a user namespace may not
    // make it in the host's root-owned rootfs.
    std::fs::create_dir(b.rootfs().join("mnt")).unwrap();
    b.add_mount(
        json!({"destination": "/mnt", "type": "bind", "source": source.path(), "options": options}),
    );
    let id = unique_id("bindflags");
    let (code, out, err) = run_in(&rt, &b, &id);
    assert_no_leaks(&rt, &id, &b);
    (code, out.trim().to_string(), err)
}

fn has(flags: &str, flag: &str) -> bool {
    flags.split(',').any(|f| f == flag)
}

/// runc 1.3's mounts_sshfs.bats (`make test-runc-suite`): a bind with any flag option, even one that only
/// clears ("dev"), is remounted with the flags asked alone (the source's
/// others cleared); a plain "bind" keeps the source's. In a user
/// namespace, where the kernel locks the source's ro, nodev, noexec,
/// nosuid and atime flags, those are kept unless an option clears one,
/// which fails the mount.
#[test]
fn a_bind_takes_the_flags_asked_and_keeps_only_the_locked_ones_in_a_user_namespace() {
    use nix::mount::MsFlags;
    let src = FlaggedTmpfs::new(MsFlags::MS_RDONLY | MsFlags::MS_NOEXEC);
    let (code, flags, err) = bind_flags(&src, &["bind"], false);
    assert_eq!(code, 0, "{err}");
    assert!(has(&flags, "ro") && has(&flags, "noexec"), "kept: {flags}");
    let (code, flags, err) = bind_flags(&src, &["bind", "dev"], false);
    assert_eq!(code, 0, "{err}");
    assert!(
        has(&flags, "rw") && !has(&flags, "noexec"),
        "cleared: {flags}"
    );
    let (code, flags, err) = bind_flags(&src, &["bind", "nosuid", "nodev"], true);
    assert_eq!(code, 0, "{err}");
    assert!(
        has(&flags, "ro") && has(&flags, "noexec") && has(&flags, "nosuid") && has(&flags, "nodev"),
        "locked flags kept, the asked ones set: {flags}"
    );
    let (code, _, err) = bind_flags(&src, &["bind", "rw", "nosuid"], true);
    assert_ne!(code, 0, "rw of a locked ro source must fail");
    if is_rt() {
        assert!(
            err.contains("(/mnt)")
                && err.contains("EPERM")
                && err.contains(
                    "the source is ro and a user namespace locks that; the options ask for rw"
                ),
            "one line naming the mount and the locked flag: {err}"
        );
    }
}
