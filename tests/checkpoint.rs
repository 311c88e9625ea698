//! `rt checkpoint` and `rt restore` where CRIU cannot be used: no CRIU
//! binary, one that dies before answering, and (on a host whose kernel
//! CRIU does not support, as Debian's 3.17 on 6.x kernels) the real one.
//! Each is one line saying CRIU cannot be used and why, a non-zero exit,
//! and nothing changed: the container still running with the same
//! state, no image directory made, and for a restore no state, cgroup,
//! mount or process. A working CRIU is exercised in `make test-host`'s
//! VM (integration/host/checks.sh).

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// A running container and its state as `rt state` showed it.
fn running(rt: &Rt) -> (Bundle, String, serde_json::Value) {
    let b = Bundle::busybox(&["sleep", "1000"]);
    let id = unique_id("ckpt");
    rt.detached(&b, &id);
    let state = rt.state(&id);
    (b, id, state)
}

/// The container is as it was: same pid, alive, running, same state.
fn unchanged(rt: &Rt, id: &str, before: &serde_json::Value) {
    let after = rt.state(id);
    assert_eq!(&after, before, "the container's state changed");
    assert_eq!(after["status"], "running");
    assert!(alive(after["pid"].as_i64().unwrap()), "the init is gone");
}

/// A stand-in CRIU that cannot start: it says why on stderr, as CRIU
/// does when its kernel checks fail, and exits without answering.
fn broken_criu(dir: &Path) -> PathBuf {
    let p = dir.join("criu");
    fs::write(
        &p,
        "#!/bin/sh\necho 'Error (criu/kerndat.c:1): stand-in: cannot start here' >&2\nexit 1\n",
    )
    .unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// `criu check`'s first error line on this host, or None when CRIU is
/// missing or works (the VM's checks cover a working CRIU).
fn criu_fails_here() -> Option<String> {
    let out = Command::new("criu").arg("check").output().ok()?;
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.split_once("): ").map(|(_, m)| m.trim().to_string()))
        .filter(|_| !text.contains("Looks good"))
}

#[test]
fn checkpoint_without_criu_is_one_line_and_changes_nothing() {
    let rt = Rt::new();
    let (_b, id, before) = running(&rt);
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    let img = images.to_str().unwrap();

    let err = rt.fails(&[
        "--criu",
        "/nonexistent/criu",
        "checkpoint",
        "--image-path",
        img,
        &id,
    ]);
    assert_one_line_error(
        &err,
        &[
            "CRIU cannot be used",
            "/nonexistent/criu",
            "no such program",
        ],
    );
    unchanged(&rt, &id, &before);
    assert!(!images.exists(), "--image-path was made");

    // criu not on PATH: the same, naming the binary it looked for.
    let out = rt
        .cmd(&["checkpoint", "--image-path", img, &id])
        .env("PATH", dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_one_line_error(
        &stderr(&out),
        &["CRIU cannot be used (criu)", "no such program"],
    );
    unchanged(&rt, &id, &before);
    assert!(!images.exists(), "--image-path was made");
}

#[test]
fn checkpoint_with_a_criu_that_cannot_start_gives_its_reason() {
    let rt = Rt::new();
    let (_b, id, before) = running(&rt);
    let dir = tempfile::tempdir().unwrap();
    let criu = broken_criu(dir.path());
    // An image directory that exists is left as it was.
    let images = dir.path().join("images");
    fs::create_dir(&images).unwrap();
    let err = rt.fails(&[
        "--criu",
        criu.to_str().unwrap(),
        "checkpoint",
        "--image-path",
        images.to_str().unwrap(),
        &id,
    ]);
    assert_one_line_error(
        &err,
        &["CRIU cannot be used", "stand-in: cannot start here"],
    );
    unchanged(&rt, &id, &before);
    assert_eq!(
        fs::read_dir(&images).unwrap().count(),
        0,
        "files left in --image-path"
    );
}

#[test]
fn checkpoint_with_this_hosts_criu_when_it_cannot_start() {
    let Some(reason) = criu_fails_here() else {
        eprintln!("criu is missing or works on this host: make test-host covers a working CRIU");
        return;
    };
    let rt = Rt::new();
    let (_b, id, before) = running(&rt);
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    // The default image path, ./checkpoint, is in the current directory.
    let out = rt
        .cmd(&["checkpoint", &id])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_one_line_error(&stderr(&out), &["CRIU cannot be used", &reason]);
    unchanged(&rt, &id, &before);
    assert!(
        !dir.path().join("checkpoint").exists(),
        "./checkpoint was made"
    );
    let err = rt.fails(&["checkpoint", "--image-path", images.to_str().unwrap(), &id]);
    assert_one_line_error(&err, &["CRIU cannot be used", &reason]);
    assert!(!images.exists(), "--image-path was made");
    unchanged(&rt, &id, &before);
}

#[test]
fn restore_without_a_usable_criu_leaves_nothing() {
    let rt = Rt::new();
    let b = Bundle::busybox(&["sleep", "1000"]);
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    fs::create_dir(&images).unwrap();
    let criu = broken_criu(dir.path());
    let bundle = b.path().to_str().unwrap();
    let img = images.to_str().unwrap();

    let mut cases: Vec<(Vec<String>, Vec<String>)> = vec![
        (
            vec!["--criu".into(), "/nonexistent/criu".into()],
            vec!["CRIU cannot be used".into(), "/nonexistent/criu".into()],
        ),
        (
            vec!["--criu".into(), criu.to_str().unwrap().into()],
            vec![
                "CRIU cannot be used".into(),
                "stand-in: cannot start here".into(),
            ],
        ),
    ];
    if let Some(reason) = criu_fails_here() {
        cases.push((vec![], vec!["CRIU cannot be used".into(), reason]));
    }
    for (global, needles) in cases {
        let id = unique_id("rst");
        let mut args = global.clone();
        args.extend(["restore", "--image-path", img, "-b", bundle, "-d", &id].map(String::from));
        let err = rt.fails(&args);
        let needles: Vec<&str> = needles.iter().map(String::as_str).collect();
        assert_one_line_error(&err, &needles);
        assert_no_leaks(&rt, &id, &b);
        assert!(rt.state_missing(&id), "{global:?}: the container exists");
        assert_eq!(
            fs::read_dir(&images).unwrap().count(),
            0,
            "files left in --image-path"
        );
    }
    assert_eq!(rt.ok(&["list", "-q"]), "", "a container is listed");
}

#[test]
fn restore_of_a_missing_checkpoint_names_the_path() {
    let rt = Rt::new();
    let b = Bundle::busybox(&["true"]);
    let id = unique_id("rst");
    let err = rt.fails(&[
        "restore",
        "--image-path",
        "/nonexistent/images",
        "-b",
        b.path().to_str().unwrap(),
        &id,
    ]);
    assert_one_line_error(
        &err,
        &["--image-path /nonexistent/images", "no checkpoint there"],
    );
    assert_no_leaks(&rt, &id, &b);
}

#[test]
fn bad_flags_and_states_are_one_line() {
    let rt = Rt::new();
    let (b, id, before) = running(&rt);
    let err = rt.fails(&["checkpoint", "--manage-cgroups-mode", "hard", &id]);
    assert_one_line_error(
        &err,
        &["--manage-cgroups-mode hard", "soft, full, strict, ignore"],
    );
    let err = rt.fails(&["checkpoint", "--empty-ns", "pid", &id]);
    assert_one_line_error(&err, &["--empty-ns pid", "network"]);
    let err = rt.fails(&["checkpoint", "--page-server", "nowhere", &id]);
    assert_one_line_error(&err, &["--page-server nowhere", "ADDRESS:PORT"]);
    // --parent-path is relative to the image directory and must be there
    // (runc's checkpoint.bats "--pre-dump (bad --parent-path)").
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    let img = images.to_str().unwrap();
    let abs = dir.path().join("parent");
    for (parent, needles) in [
        (abs.to_str().unwrap(), ["--parent-path", "must be relative"]),
        ("../parent", ["--parent-path ../parent", "No such file"]),
    ] {
        let err = rt.fails(&[
            "checkpoint",
            "--parent-path",
            parent,
            "--image-path",
            img,
            &id,
        ]);
        assert_one_line_error(&err, &needles);
    }
    // The image directory need not exist yet: `..` is taken from its name.
    fs::create_dir(dir.path().join("parent")).unwrap();
    let err = rt.fails(&[
        "--criu",
        "/nonexistent/criu",
        "checkpoint",
        "--parent-path",
        "../parent",
        "--image-path",
        img,
        &id,
    ]);
    assert_one_line_error(&err, &["CRIU cannot be used"]);
    assert!(
        !images.exists(),
        "--image-path made for a refused checkpoint"
    );
    // Lazy migration is not there yet: refused, for both commands.
    let err = rt.fails(&["checkpoint", "--lazy-pages", "--image-path", img, &id]);
    assert_one_line_error(&err, &["--lazy-pages", "not supported"]);
    let err = rt.fails(&[
        "restore",
        "--lazy-pages",
        "--image-path",
        img,
        "-b",
        b.path().to_str().unwrap(),
        "lazy",
    ]);
    assert_one_line_error(&err, &["--lazy-pages", "not supported"]);
    assert!(rt.state_missing("lazy"));
    unchanged(&rt, &id, &before);

    // A created container has nothing running to dump yet.
    let b = Bundle::busybox(&["true"]);
    let created = unique_id("ckpt");
    rt.ok(&["create", "--bundle", b.path().to_str().unwrap(), &created]);
    let err = rt.fails(&["checkpoint", &created]);
    assert_one_line_error(&err, &["container not running", "created"]);
    let err = rt.fails(&["checkpoint", "nosuch"]);
    assert_one_line_error(&err, &["container does not exist: nosuch"]);
}

#[test]
fn features_say_checkpoint_is_built_in_as_runc_does() {
    let rt = Rt::new();
    let f: serde_json::Value = serde_json::from_str(&rt.ok(&["features"])).unwrap();
    assert_eq!(
        f["annotations"]["org.opencontainers.runc.checkpoint.enabled"],
        "true"
    );
}
