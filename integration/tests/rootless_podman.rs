//! Rootless Podman driving rt (run, run -d, exec, run -it, exec -it,
//! logs, stop, rm): a real user (made by the test, with its
//! subuid range) runs Debian's podman with `--runtime` this build's rt.
//! Podman runs rt inside its own user namespace, where rt is root but
//! owns nothing on the host, with no `--root`: rt's state goes to
//! $XDG_RUNTIME_DIR/rt.
//!
//! Not here: slirp4netns networking. On these machines /dev/net/tun is
//! mode 0600 (Debian's udev makes it 0666 on a real host), so slirp4netns
//! fails to open it for the user with any runtime (runc too); every
//! container here uses `--network none`.

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
