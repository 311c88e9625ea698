//! Rootless Podman driving rt (run, run -d, exec, run -it, exec -it,
//! logs, stop, rm): a real user (made by the test, with its
//! subuid range) runs Debian's podman with `--runtime` this build's rt.
//! Podman runs rt inside its own user namespace, where rt is root but
//! owns nothing on the host, with no `--root`: rt's state goes to
//! $XDG_RUNTIME_DIR/rt.
//!
//! slirp4netns networking (Podman's default): on these machines
//! /dev/net/tun is mode 0600 (Debian's udev makes it 0666 on a real
//! host), so slirp4netns fails to open it for the user with any runtime
//! (runc too); the last test checks that, then gives the user a 0666 node
//! in a private mount namespace. The other containers use `--network none`.

use std::fs;
use std::path::Path;
use std::time::Duration;

use rt_integration::{busybox_image, require, rt_binary};
use rt_testkit::user::User;

#[test]
fn rootless_podman_runs_execs_logs_stops_and_removes_with_rt() {
    require(&[
        "podman",
        "conmon",
        "umoci",
        "skopeo",
        "newuidmap",
        "setpriv",
    ]);
    let rt = rt_binary();
    let u = User::new(rt.parent().unwrap());
    let scratch = tempfile::tempdir().unwrap();
    let (oci, _) = busybox_image(scratch.path());
    let image = u.home.join("busybox-oci.tar");
    fs::copy(&oci, &image).unwrap();
    std::os::unix::fs::chown(&image, Some(u.uid), Some(u.gid)).unwrap();

    let podman = |args: &[&str]| {
        let rt = u.rt();
        let mut all = vec![
            "--runtime",
            rt.to_str().unwrap(),
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "file",
        ];
        all.extend_from_slice(args);
        let r = rt_testkit::run_captured(
            &mut u.command_of(Path::new("/usr/bin/podman"), &u.home, true, &all),
            Some(Duration::from_secs(120)),
        )
        .unwrap();
        assert!(r.success(), "podman {args:?} as the user: {}", r.stderr());
        r.stdout()
    };
    podman(&["load", "-q", "-i", image.to_str().unwrap()]);
    let img = "localhost/latest:latest";

    let out = podman(&[
        "run",
        "--rm",
        "--network",
        "none",
        img,
        "sh",
        "-c",
        "echo hi $(id -u)",
    ]);
    assert_eq!(out.trim(), "hi 0");

    podman(&[
        "run",
        "-d",
        "--name",
        "p1",
        "--network",
        "none",
        img,
        "sh",
        "-c",
        "echo started; exec sleep 1000",
    ]);
    let ran_by_rt = fs::read_dir(u.runtime_dir.join("rt"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(
        ran_by_rt, 1,
        "rt's state for p1 should be in $XDG_RUNTIME_DIR/rt"
    );
    let out = podman(&["exec", "p1", "sh", "-c", "echo in-exec $(id -u)"]);
    assert_eq!(out.trim(), "in-exec 0");
    assert!(
        rt_testkit::wait_until(Duration::from_secs(10), || podman(&["logs", "p1"])
            .contains("started")),
        "podman logs: {}",
        podman(&["logs", "p1"])
    );
    // With a terminal (podman's -t needs one of its own: script gives it).
    let rt_path = u.rt();
    let through_script = |podman_args: &str| {
        let cmd = format!(
            "podman --runtime {} --cgroup-manager cgroupfs --events-backend file {podman_args}",
            rt_path.display()
        );
        // stdin kept open until script is done (at EOF it would end the
        // session early), output through a file.
        let mut file = tempfile::tempfile().unwrap();
        let mut child = u
            .command_of(
                Path::new("/usr/bin/script"),
                &u.home,
                true,
                &["-q", "-e", "-c", &cmd, "/dev/null"],
            )
            .stdin(std::process::Stdio::piped())
            .stdout(file.try_clone().unwrap())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        let status = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break st;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill(); // by its pid
                panic!("{cmd}: still running after 120 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        drop(stdin);
        let mut out = String::new();
        use std::io::{Read, Seek};
        file.rewind().unwrap();
        file.read_to_string(&mut out).unwrap();
        assert!(status.success(), "{cmd}: {out}");
        out
    };
    let out = through_script(&format!(
        "run --rm -it --network none {img} sh -c 'tty; echo run-tty-ok'"
    ));
    assert!(
        out.contains("/dev/pts/") && out.contains("run-tty-ok"),
        "{out:?}"
    );
    let out = through_script("exec -it p1 sh -c 'tty; echo exec-tty-ok'");
    assert!(
        out.contains("/dev/pts/") && out.contains("exec-tty-ok"),
        "{out:?}"
    );

    podman(&["stop", "-t", "1", "p1"]);
    podman(&["rm", "p1"]);
    assert!(podman(&["ps", "-aq"]).trim().is_empty());

    // Podman keeps a pause process holding its user namespace: it is
    // Podman's, stopped here by its pid file so the user can be checked
    // for anything of rt's left.
    let pause = u.runtime_dir.join("libpod/tmp/pause.pid");
    if let Ok(pid) = fs::read_to_string(&pause) {
        if let Ok(pid) = pid.trim().parse::<i32>() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
    u.assert_nothing_left();
}

/// Podman's default rootless network (slirp4netns) with rt, beside runc.
/// On these machines /dev/net/tun is mode 0600, and slirp4netns fails to
/// open it for the user with runc and rt alike: the host, not the runtime.
/// That is checked first; then, in a private mount namespace where a 0666
/// node for the same device (10:200, Debian's default mode) is bound over
/// /dev/net/tun (the host's node is not changed), each runtime's container
/// gets slirp4netns's tap0 and reaches a TCP listener on the host's
/// loopback through slirp4netns's gateway.
#[test]
fn rootless_podman_default_network_is_slirp4netns_with_rt_as_with_runc() {
    use std::io::{Read, Write};
    use std::os::unix::fs::PermissionsExt;
    use std::process::Command;
    require(&[
        "podman",
        "conmon",
        "umoci",
        "skopeo",
        "newuidmap",
        "setpriv",
        "slirp4netns",
        "unshare",
        "runc",
    ]);
    let rt = rt_binary();
    let u = User::new(rt.parent().unwrap());
    let scratch = tempfile::tempdir().unwrap();
    let (oci, _) = busybox_image(scratch.path());
    let image = u.home.join("busybox-oci.tar");
    fs::copy(&oci, &image).unwrap();
    std::os::unix::fs::chown(&image, Some(u.uid), Some(u.gid)).unwrap();
    let node = scratch.path().join("tun");
    let made = Command::new("mknod")
        .args(["-m", "0666"])
        .arg(&node)
        .args(["c", "10", "200"])
        .status()
        .unwrap();
    assert!(made.success(), "mknod a tun node");
    fs::set_permissions(scratch.path(), fs::Permissions::from_mode(0o755)).unwrap();

    // A listener on the host's loopback answers one line per connection.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut c in listener.incoming().flatten() {
            let mut b = [0u8; 64];
            let n = c.read(&mut b).unwrap_or(0);
            let _ =
                c.write_all(format!("host-saw:{}", String::from_utf8_lossy(&b[..n])).as_bytes());
        }
    });

    // As the user, in a private mount namespace with `tun` bound over
    // /dev/net/tun when given. Podman keeps a pause process holding its
    // namespaces between calls: `system migrate` ends it so the run sees
    // this mount namespace.
    let podman = |tun: Option<&Path>, runtime: &Path, script: &str| {
        let rt_args = format!(
            "podman --runtime {} --cgroup-manager cgroupfs --events-backend file",
            runtime.display()
        );
        let inner = u.command_of(
            Path::new("/bin/sh"),
            &u.home,
            true,
            &[
                "-c",
                &format!("podman system migrate >/dev/null 2>&1; P='{rt_args}'; {script}"),
            ],
        );
        let mut c = Command::new("unshare");
        c.args(["-m", "--propagation", "private", "/bin/sh", "-c"])
            .arg(r#"[ -z "$0" ] || mount --bind "$0" /dev/net/tun || exit 98; exec "$@""#)
            .arg(tun.unwrap_or(Path::new("")))
            .arg(inner.get_program())
            .args(inner.get_args())
            .current_dir(&u.home);
        rt_testkit::run_captured(&mut c, Some(Duration::from_secs(180))).unwrap()
    };
    // Outside any private mount namespace: Podman's first call sets up
    // the user's storage and pause process.
    let load = rt_testkit::run_captured(
        &mut u.command_of(
            Path::new("/usr/bin/podman"),
            &u.home,
            true,
            &["load", "-q", "-i", image.to_str().unwrap()],
        ),
        Some(Duration::from_secs(120)),
    )
    .unwrap();
    assert!(load.success(), "podman load: {}", load.stderr());

    let host_tun = fs::metadata("/dev/net/tun").map(|m| m.permissions().mode() & 0o006);
    let runc = Path::new("/usr/sbin/runc").to_path_buf();
    let probe = format!(
        "$P run --rm --network slirp4netns:allow_host_loopback=true localhost/latest:latest \
         sh -c 'grep -o tap0 /proc/net/dev; echo from-$RUNTIME | busybox nc 10.0.2.2 {port}'"
    );
    if host_tun.ok() != Some(0o006) {
        // The host's node: refused to the user with either runtime.
        for runtime in [&runc, &u.rt()] {
            let r = podman(None, runtime, &probe);
            assert!(
                !r.success(),
                "slirp4netns opened a 0600 tun: {}",
                r.stdout()
            );
            assert!(
                r.stderr()
                    .contains("open(\\\"/dev/net/tun\\\"): Permission denied"),
                "{}: {}",
                runtime.display(),
                r.stderr()
            );
        }
    }
    for (name, runtime) in [("runc", &runc), ("rt", &u.rt())] {
        let r = podman(Some(&node), runtime, &probe.replace("$RUNTIME", name));
        assert!(r.success(), "slirp4netns with {name}: {}", r.stderr());
        let out = r.stdout();
        assert!(out.contains("tap0"), "{name}: no tap0: {out}");
        assert!(
            out.contains(&format!("host-saw:from-{name}")),
            "{name}: no round trip to the host's loopback: {out}"
        );
    }
    drop(u);
}
