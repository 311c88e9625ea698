//! What runc 1.3's own integration suite (../shared/runc-suite, `make
//! test-runc-suite`) checks that rt got wrong, each kept here so it stays
//! fixed without the suite at hand: the wordings callers match, and
//! behaviours a user of runc sees.

mod common;

use common::*;
use serde_json::json;

/// An empty HOME is replaced with the user's home from /etc/passwd, once
/// (env.bats: "empty HOME env var is overridden", "env var HOME is set
/// only once"); a non-empty one is kept.
#[test]
fn an_empty_home_is_the_users_home_from_passwd() {
    let rt = Rt::new();
    for (env, want) in [
        (json!(["HOME="]), "/root"),
        (json!(["HOME=/override", "HOME="]), "/root"),
        (json!(["HOME=/override"]), "/override"),
    ] {
        let mut b = Bundle::busybox(&["env"]);
        b.edit(|c| c["process"]["env"] = env.clone());
        let id = unique_id("home");
        let (code, out, err) = run_in(&rt, &b, &id);
        assert_eq!(code, 0, "{env}: {err}");
        let homes: Vec<&str> = out.lines().filter(|l| l.starts_with("HOME=")).collect();
        assert_eq!(homes, [format!("HOME={want}")], "{env}: {out}");
        assert_no_leaks(&rt, &id, &b);
    }
}

/// A stdin on the host's /dev/null becomes the container's /dev/null, as
/// under runc: CRIU dumps only files of the container's own mounts, and
/// Podman's conmon hands the init the host's. stdout, a file, is kept.
#[test]
fn the_hosts_dev_null_on_stdio_is_the_containers() {
    let rt = Rt::new();
    let b = Bundle::busybox(&[
        "sh",
        "-c",
        "stat -L -c '%d %i %t:%T' /proc/self/fd/0; stat -c '%d %i %t:%T' /dev/null; stat -L -c %F /proc/self/fd/1",
    ]);
    let id = unique_id("null");
    let (code, out, err) = run_in(&rt, &b, &id);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[0].ends_with(" 1:3"),
        "stdin is not a null device: {out}"
    );
    assert_eq!(lines[0], lines[1], "stdin is not the container's /dev/null");
    assert_eq!(lines[2], "regular file", "stdout was replaced: {out}");
    assert_no_leaks(&rt, &id, &b);
}

/// A program execve refuses is reported in runc's words, alone on its
/// line (Docker turns "exec ...: no such file or directory" into exit
/// 127): from run, the init's last word, and from exec.
#[test]
fn a_failed_execve_is_worded_as_runc_words_it() {
    use std::os::unix::fs::PermissionsExt;
    let rt = Rt::new();
    let mut b = Bundle::busybox(&["/run.sh"]);
    let script = b.rootfs().join("run.sh");
    std::fs::write(&script, "#!/mmnnttbb foo bar\nsh\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let id = unique_id("execve");
    let (code, _, err) = run_in(&rt, &b, &id);
    assert_ne!(code, 0);
    assert_eq!(err, "exec /run.sh: no such file or directory\n");
    assert_no_leaks(&rt, &id, &b);

    b.edit(|c| c["process"]["args"] = json!(["sleep", "1000"]));
    let id = unique_id("execve");
    rt.detached(&b, &id);
    let out = rt.run(&["exec", &id, "/run.sh"]);
    assert!(!out.status.success());
    assert_one_line_error(&stderr(&out), &["exec /run.sh: no such file or directory"]);
    rt.ok(&["delete", "-f", &id]);
    assert_no_leaks(&rt, &id, &b);
}

/// A profile with a listenerPath but no SCMP_ACT_NOTIFY rule runs, the
/// path ignored with a warning, as runc ignores it (seccomp-notify.bats:
/// "ignore listener path if no notify act").
#[test]
fn a_listener_path_no_rule_needs_is_ignored() {
    let rt = Rt::new();
    let mut b = Bundle::busybox(&["echo", "made"]);
    b.edit(|c| {
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": "/run/no-such-agent.sock",
            "listenerMetadata": "bar",
        })
    });
    let id = unique_id("listener");
    let (code, out, err) = run_in(&rt, &b, &id);
    assert_eq!((code, out.as_str()), (0, "made\n"), "{err}");
    assert!(
        err.contains("warning: linux.seccomp.listenerPath /run/no-such-agent.sock: ignored"),
        "{err}"
    );
    assert_no_leaks(&rt, &id, &b);
}

/// Calls process_vm_readv/writev with pid argv[i] and prints -errno.
const ARGS_PROBE_C: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <unistd.h>
#include <sys/syscall.h>
int main(int argc, char **argv) {
    for (int i = 1; i + 1 < argc; i += 2) {
        long nr = argv[i][0] == 'r' ? SYS_process_vm_readv : SYS_process_vm_writev;
        long r = syscall(nr, atol(argv[i + 1]), NULL, 0, NULL, 0, ~0UL);
        printf("%s %s %ld\n", argv[i], argv[i + 1], r < 0 ? -errno : r);
    }
    return 0;
}
"#;

/// Conditions of one rule on the same argument are alternatives, each
/// its own rule, as runc reads them (seccomp.bats "seccomp -ENOSYS
/// handling"): a rule for pid 1337 or 2020 returns its errnoRet
/// (ENOANO) for either, one for 100 or 9001 the default errno (EPERM);
/// other pids reach the kernel (EINVAL: flags ~0). Read as "all at
/// once", neither rule could ever match.
#[test]
fn conditions_on_one_argument_are_alternatives() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("probe.c");
    std::fs::write(&src, ARGS_PROBE_C).unwrap();
    let mut b = Bundle::busybox(&[
        "/probe", "r", "100", "r", "9001", "r", "0", "w", "1337", "w", "2020", "w", "0",
    ]);
    let built = std::process::Command::new("gcc")
        .args(["-static", "-O1", "-o"])
        .arg(b.rootfs().join("probe"))
        .arg(&src)
        .status()
        .expect("gcc (scripts/deps.sh installs it)");
    assert!(built.success());
    b.edit(|c| {
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {"names": ["process_vm_readv"], "action": "SCMP_ACT_ERRNO", "args": [
                    {"index": 0, "value": 100, "op": "SCMP_CMP_EQ"},
                    {"index": 0, "value": 9001, "op": "SCMP_CMP_EQ"}]},
                {"names": ["process_vm_writev"], "action": "SCMP_ACT_ERRNO", "errnoRet": 55, "args": [
                    {"index": 0, "value": 1337, "op": "SCMP_CMP_EQ"},
                    {"index": 0, "value": 2020, "op": "SCMP_CMP_EQ"}]}
            ]
        })
    });
    let rt = Rt::new();
    let id = unique_id("secargs");
    let (code, out, err) = run_in(&rt, &b, &id);
    assert_eq!(code, 0, "{err}");
    let (einval, eperm, enoano) = (-libc::EINVAL, -libc::EPERM, -libc::ENOANO);
    assert_eq!(
        out,
        format!(
            "r 100 {eperm}\nr 9001 {eperm}\nr 0 {einval}\n\
             w 1337 {enoano}\nw 2020 {enoano}\nw 0 {einval}\n"
        )
    );
    assert_no_leaks(&rt, &id, &b);
}

/// `exec --process` takes a process.json as runc does: without "user"
/// (uid 0, gid 0), with the runtime spec's SCHED_FLAG_RESET_ON_FORK
/// spelling, its scheduler and ioPriority applied; and an exec'd process
/// gets the container's linux.personality (scheduler.bats, ioprio.bats,
/// personality.bats, tty.bats "exec [tty consolesize]").
#[test]
fn exec_takes_a_process_json_as_runc_does() {
    let rt = Rt::new();
    let mut b = Bundle::busybox(&["sleep", "1000"]);
    b.edit(|c| {
        c["linux"]["personality"] = json!({"domain": "LINUX32"});
        c["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 5,
            "flags": ["SCHED_FLAG_RESET_ON_FORK"]});
    });
    let id = unique_id("execjson");
    let init = rt.detached(&b, &id);
    let chrt = |pid: &str| {
        let out = std::process::Command::new("chrt")
            .args(["-p", pid])
            .output()
            .expect("chrt (util-linux)");
        stdout(&out)
    };
    let policy = chrt(&init.to_string());
    assert!(
        policy.contains("SCHED_BATCH|SCHED_RESET_ON_FORK"),
        "init: {policy}"
    );

    let dir = tempfile::tempdir().unwrap();
    let proc_json = dir.path().join("process.json");
    std::fs::write(
        &proc_json,
        json!({
            "terminal": false, "args": ["sleep", "600"], "cwd": "/",
            "scheduler": {"policy": "SCHED_IDLE", "flags": ["SCHED_FLAG_RESET_ON_FORK"]},
            "ioPriority": {"class": "IOPRIO_CLASS_IDLE"}
        })
        .to_string(),
    )
    .unwrap();
    let pid_file = dir.path().join("pid");
    let p = proc_json.to_str().unwrap();
    let f = pid_file.to_str().unwrap();
    rt.ok(&["exec", "-d", "--pid-file", f, "--process", p, &id]);
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let policy = chrt(pid.trim());
    assert!(
        policy.contains("SCHED_IDLE|SCHED_RESET_ON_FORK"),
        "exec: {policy}"
    );
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid.trim())).unwrap();
    assert!(status.contains("\nUid:\t0\t0\t0\t0\n"), "{status}");
    let out = std::process::Command::new("ionice")
        .args(["-p", pid.trim()])
        .output()
        .expect("ionice (util-linux)");
    assert_eq!(stdout(&out).trim(), "idle", "{}", stderr(&out));

    let arch = rt.ok(&["exec", &id, "uname", "-m"]);
    assert_eq!(arch.trim(), "i686");
    rt.ok(&["delete", "-f", &id]);
    assert_no_leaks(&rt, &id, &b);
}

/// Accepts one connection on `listener` and returns the payload and the
/// pid of the pidfd that came with it (from its fdinfo).
fn receive_pidfd(listener: std::os::unix::net::UnixListener) -> (String, i64) {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
    let (conn, _) = listener.accept().unwrap();
    let mut buf = [0u8; 64];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::empty(),
    )
    .unwrap();
    let mut fd = None;
    for c in msg.cmsgs().unwrap() {
        if let ControlMessageOwned::ScmRights(fds) = c {
            // SAFETY: a descriptor just received, owned by nobody else.
            fd = Some(unsafe { OwnedFd::from_raw_fd(fds[0]) });
        }
    }
    let n = msg.bytes;
    let fd = fd.expect("a descriptor came with the message");
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd())).unwrap();
    let pid = info
        .lines()
        .find_map(|l| l.strip_prefix("Pid:"))
        .unwrap_or_else(|| panic!("not a pidfd: {info}"))
        .trim()
        .parse()
        .unwrap();
    (String::from_utf8_lossy(&buf[..n]).into_owned(), pid)
}

/// `--pidfd-socket` on create and exec: a pidfd of the init, and of the
/// exec'd process, sent as runc sends it (pidfd-socket.bats); a socket
/// nobody listens on fails the create in one line, leaving nothing.
#[test]
fn pidfd_socket_gets_a_pidfd_of_the_process() {
    let rt = Rt::new();
    let b = Bundle::busybox(&["sleep", "1000"]);
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("pidfd.sock");
    let s = sock.to_str().unwrap();
    let bundle = b.path().to_str().unwrap();

    let id = unique_id("pidfdsock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let got = std::thread::spawn(move || receive_pidfd(listener));
    rt.ok(&["create", "--pidfd-socket", s, "--bundle", bundle, &id]);
    let init = rt.state(&id)["pid"].as_i64().unwrap();
    assert_eq!(got.join().unwrap(), ("pidfd".to_string(), init));
    rt.ok(&["start", &id]);

    std::fs::remove_file(&sock).unwrap();
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let got = std::thread::spawn(move || receive_pidfd(listener));
    let pid_file = dir.path().join("exec.pid");
    let f = pid_file.to_str().unwrap();
    rt.ok(&[
        "exec",
        "-d",
        "--pid-file",
        f,
        "--pidfd-socket",
        s,
        &id,
        "sleep",
        "600",
    ]);
    let pid: i64 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(got.join().unwrap(), ("pidfd".to_string(), pid));
    rt.ok(&["delete", "-f", &id]);
    assert_no_leaks(&rt, &id, &b);

    std::fs::remove_file(&sock).unwrap();
    let id = unique_id("pidfdsock");
    let err = rt.fails(&["run", "-d", "--pidfd-socket", s, "--bundle", bundle, &id]);
    assert_one_line_error(&err, &["--pidfd-socket", "pidfd.sock"]);
    assert!(rt.state_missing(&id));
    assert_no_leaks(&rt, &id, &b);
}

/// The CPU affinity rt was started with is not inherited: the init and an
/// exec'd process get every CPU (cpu_affinity.bats "CPU affinity should
/// reset"). Needs a host with two CPUs or more.
#[test]
fn the_affinity_rt_was_started_with_is_reset() {
    let own = |status: &str| -> String {
        status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .unwrap()
            .trim()
            .to_string()
    };
    let all = own(&std::fs::read_to_string("/proc/self/status").unwrap());
    assert_ne!(all, "0", "this test needs a host with two CPUs or more");
    let rt = Rt::new();
    let b = Bundle::busybox(&["sleep", "1000"]);
    let id = unique_id("affinity");
    let bundle = b.path().to_str().unwrap();
    let pinned = |args: &[&str]| {
        let out = std::process::Command::new("taskset")
            .args(["-c", "0", rt_bin(), "--root"])
            .arg(rt.root())
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("taskset (util-linux)");
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        stdout(&out)
    };
    // Detached: the container keeps rt's stdout, so no pipe to wait on.
    let status = std::process::Command::new("taskset")
        .args(["-c", "0", rt_bin(), "--root"])
        .arg(rt.root())
        .args(["run", "-d", "--bundle", bundle, &id])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("taskset (util-linux)");
    assert!(status.success(), "taskset -c 0 rt run -d");
    let init = rt.state(&id)["pid"].as_i64().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{init}/status")).unwrap();
    assert_eq!(own(&status), all, "init");
    let out = pinned(&["exec", &id, "cat", "/proc/self/status"]);
    assert_eq!(own(&out), all, "exec");
    rt.ok(&["delete", "-f", &id]);
    assert_no_leaks(&rt, &id, &b);
}

/// A non-root process owns the stdio rt made for it, as under runc (its
/// terminal: tty.bats "runc run/exec [tty owner] ({u,g}id != 0)"; the
/// pipes of a caller likewise), so it can reopen them; `/dev/null` as
/// stdin stays root's, on the host too (exec.bats "--user vs /dev/null
/// ownership").
#[test]
fn a_non_root_process_owns_its_stdio_but_not_dev_null() {
    use std::os::unix::fs::MetadataExt;
    let script = "stat -L -c %u /proc/self/fd/1 /proc/self/fd/2 /proc/self/fd/0";
    let rt = Rt::new();
    let mut b = Bundle::busybox(&["sh", "-c", script]);
    b.edit(|c| {
        c["process"]["user"]["uid"] = json!(1000);
        c["process"]["user"]["gid"] = json!(100);
    });
    let id = unique_id("stdio");
    let (code, out, err) = run_in(&rt, &b, &id);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out, "1000\n1000\n0\n",
        "run: owners of stdout, stderr, stdin"
    );
    assert_no_leaks(&rt, &id, &b);

    b.edit(|c| c["process"]["args"] = json!(["sleep", "1000"]));
    let id = unique_id("stdio");
    rt.detached(&b, &id);
    let out = rt.ok(&["exec", "--user", "1000:100", &id, "sh", "-c", script]);
    assert_eq!(
        out, "1000\n1000\n0\n",
        "exec: owners of stdout, stderr, stdin"
    );
    rt.ok(&["delete", "-f", &id]);
    assert_no_leaks(&rt, &id, &b);
    assert_eq!(
        std::fs::metadata("/dev/null").unwrap().uid(),
        0,
        "the host's /dev/null"
    );
}

/// runc's mount order with an idmapped bind (mounts.bats "mount order,
/// container idmap source (userns)"): its source is a place inside the
/// root that an earlier mount of the container made, in a user
/// namespace. The init may not idmap it (creating an idmapped mount takes
/// privilege over the source's file system) and rt cannot open it before
/// the init made it, so rt clones and idmaps it in the init's mount
/// namespace when the init reaches that mount. Disk uid 0 is the
/// container's root through the map (65534 without it), and what the
/// container writes there lands as disk uid 0.
#[test]
fn an_idmapped_bind_of_a_source_an_earlier_mount_made_in_a_user_namespace() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let src = tempfile::tempdir().unwrap();
    // Only host root may enter it: the first bind is rt's clone too.
    std::fs::set_permissions(src.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::create_dir(src.path().join("a")).unwrap();
    std::fs::write(src.path().join("a/file"), "from a\n").unwrap();
    let mut b = Bundle::busybox(&[
        "sh",
        "-c",
        "cat /final/file; stat -c %u /final/file; touch /final/new",
    ]);
    b.add_user_namespace(100000);
    let root = b.rootfs();
    std::fs::create_dir_all(root.join("mnt")).unwrap();
    std::fs::create_dir_all(root.join("final")).unwrap();
    b.add_mount(json!({"destination": "/mnt", "type": "bind",
        "source": src.path().join("a"), "options": ["rbind"]}));
    b.add_mount(json!({"destination": root.join("final"), "type": "bind",
        "source": root.join("mnt"), "options": ["rbind", "idmap"],
        "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
        "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]}));
    let rt = Rt::new();
    let id = unique_id("idmapinroot");
    let (code, out, err) = run_in(&rt, &b, &id);
    assert_eq!((code, out.as_str()), (0, "from a\n0\n"), "{err}");
    let new = std::fs::metadata(src.path().join("a/new")).unwrap();
    assert_eq!((new.uid(), new.gid()), (0, 0), "written through the idmap");
    assert_no_leaks(&rt, &id, &b);
}

/// The mounts under `root` in this mount namespace (id, mount point), in
/// mountinfo's order.
fn mounts_under(root: &std::path::Path) -> Vec<(u64, String)> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            Some((f.first()?.parse().ok()?, f.get(4)?.to_string()))
        })
        .filter(|(_, p)| std::path::Path::new(p).starts_with(root))
        .collect()
}

/// Detaches every mount under a root when dropped, deepest last made
/// first: what a failed test left (and the test's own mount) never
/// outlives it, and the bundle's removal never walks into a mount.
struct UnmountUnder(std::path::PathBuf);

impl Drop for UnmountUnder {
    fn drop(&mut self) {
        for (_, p) in mounts_under(&self.0).iter().rev() {
            let _ = nix::mount::umount2(p.as_str(), nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

/// A container without a mount namespace but with the default mounts and
/// a createRuntime hook (host-mntns.bats "host mount ns + hooks"): rt
/// makes the mounts under its root in the host's mount namespace, records
/// them in the state, and delete unmounts exactly those (runc leaves 17);
/// the hook ran once, in the bundle; a mount under the root from before
/// stays; root.readonly holds; a create that fails leaves no mount either.
#[test]
fn a_container_in_the_host_mount_namespace_with_its_mounts_and_a_hook() {
    let mut b = Bundle::busybox(&[
        "sh",
        "-c",
        "test -c /dev/null && test -r /proc/self/status && test -d /dev/pts && ! touch /rofile",
    ]);
    let root = std::fs::canonicalize(b.rootfs()).unwrap();
    b.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "mount");
        c["hooks"] = json!({"createRuntime": [{"path": "/bin/sh",
            "args": ["/bin/sh", "-c", "touch createRuntimeHook.$$"]}]});
    });
    let pre = root.join("mnt/pre");
    std::fs::create_dir_all(&pre).unwrap();
    let guard = UnmountUnder(root.clone());
    nix::mount::mount(
        Some("pre-existing"),
        &pre,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .unwrap();
    let before = mounts_under(&root);
    assert_eq!(before.len(), 1);
    assert_eq!(before[0].1, pre.display().to_string());
    let rt = Rt::new();
    let hook_runs = || {
        std::fs::read_dir(b.path())
            .unwrap()
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("createRuntimeHook.")
            })
            .count()
    };

    let id = unique_id("hostmntns");
    rt.ok(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(rt.root().join(&id).join("state.json")).unwrap(),
    )
    .unwrap();
    let recorded: Vec<(u64, String)> = state["host_mounts"]
        .as_array()
        .expect("the mounts rt made are in the state")
        .iter()
        .map(|m| {
            (
                m["id"].as_u64().unwrap(),
                m["point"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for p in ["", "/proc", "/dev", "/dev/pts", "/sys"] {
        let p = format!("{}{p}", root.display());
        assert!(
            recorded.iter().any(|(_, r)| *r == p),
            "{p} not recorded: {recorded:?}"
        );
    }
    // The root's own bind copied the mount from before (a new mount, the
    // container's); that one itself is not rt's.
    let mut made = mounts_under(&root);
    made.retain(|m| *m != before[0]);
    assert_eq!(
        recorded, made,
        "every mount under the root but the one from before"
    );
    rt.ok(&["start", &id]);
    rt.wait_status(&id, "stopped");
    assert_eq!(
        rt.state(&id)["exitStatus"],
        0,
        "the container saw its mounts"
    );
    rt.ok(&["delete", &id]);
    assert_eq!(
        mounts_under(&root),
        before,
        "only the mount from before stays"
    );
    assert_eq!(
        hook_runs(),
        1,
        "the createRuntime hook ran once, in the bundle"
    );
    assert_no_leaks_but(&rt, &id, &b, &pre);

    // A failing hook after the mounts: the create undoes them.
    b.edit(|c| c["hooks"]["createRuntime"] = json!([{"path": "/bin/false"}]));
    let id = unique_id("hostmntnsfail");
    let err = rt.fails(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    assert!(err.contains("createRuntime"), "{err}");
    assert_eq!(
        mounts_under(&root),
        before,
        "a failed create leaves no mount"
    );
    assert_no_leaks_but(&rt, &id, &b, &pre);
    drop(guard);
}

/// `assert_no_leaks`, with the one mount under the root that the test
/// made itself.
fn assert_no_leaks_but(rt: &Rt, id: &str, b: &Bundle, mine: &std::path::Path) {
    let mine = format!(" {} ", mine.display());
    let left: Vec<String> = leaks(rt, id, b)
        .into_iter()
        .filter(|l| !(l.starts_with("mount ") && l.contains(&mine)))
        .collect();
    assert!(left.is_empty(), "{id} left behind: {left:#?}");
}

/// A container that turned on a domain controller below its own cgroup
/// (systemd in a container does) can no longer have a process in that
/// cgroup: an exec joins the cgroup its init moved to instead, as under
/// runc (cgroups.bats "runc exec (cgroup v2 + init process in non-root
/// cgroup) succeeds"); before, clone3 failed with EBUSY.
#[test]
fn exec_joins_the_inits_cgroup_once_the_container_delegates() {
    let offered =
        std::fs::read_to_string(format!("{CGROUP2}/cgroup.controllers")).unwrap_or_default();
    // Any domain controller will do: this host's cgroup2 may offer only hugetlb.
    let Some(ctl) = ["memory", "pids", "hugetlb", "io"]
        .into_iter()
        .find(|c| offered.split_whitespace().any(|o| o == *c))
    else {
        panic!("cgroup2 at {CGROUP2} offers no domain controller this test can turn on");
    };
    let rt = Rt::new();
    let mut b = Bundle::busybox(&["sleep", "1000"]);
    b.edit(|c| {
        let nss = c["linux"]["namespaces"].as_array_mut().unwrap();
        if !nss.iter().any(|n| n["type"] == "cgroup") {
            nss.push(json!({"type": "cgroup"}));
        }
        for m in c["mounts"].as_array_mut().unwrap() {
            if m["destination"] == "/sys/fs/cgroup" {
                m["options"] = json!(["nosuid", "noexec", "nodev", "relatime", "rw"]);
            }
        }
    });
    let id = unique_id("delegates");
    rt.detached(&b, &id);
    // The unified hierarchy's line (a hybrid host lists v1's too).
    let own = |rt: &Rt| {
        let all = rt.ok(&["exec", &id, "cat", "/proc/self/cgroup"]);
        all.lines()
            .find(|l| l.starts_with("0::"))
            .unwrap_or("")
            .to_string()
    };
    assert_eq!(own(&rt), "0::/");
    rt.ok(&["exec", &id, "mkdir", "/sys/fs/cgroup/foo"]);
    rt.ok(&[
        "exec",
        &id,
        "sh",
        "-c",
        "echo 1 > /sys/fs/cgroup/foo/cgroup.procs",
    ]);
    assert_eq!(own(&rt), "0::/", "no controller handed down yet");
    let script = format!("echo $$ > /sys/fs/cgroup/foo/cgroup.procs; echo +{ctl} > /sys/fs/cgroup/cgroup.subtree_control");
    rt.ok(&["exec", &id, "sh", "-euc", &script]);
    assert_eq!(own(&rt), "0::/foo", "the init's cgroup");
    // An explicit --cgroup takes no fallback: "/" now hands controllers
    // down and holds no process, and the kernel says so in runc's words.
    let err = rt.fails(&["exec", "--cgroup", "/", &id, "true"]);
    assert!(
        err.contains(" adding pid ")
            && err.contains(" to cgroups")
            && err.contains("/cgroup.procs: device or resource busy"),
        "{err}"
    );
    let explicit = rt.ok(&["exec", "--cgroup", "foo", &id, "cat", "/proc/self/cgroup"]);
    assert!(explicit.lines().any(|l| l == "0::/foo"), "{explicit}");
    rt.ok(&["delete", "-f", &id]);
    assert_no_leaks(&rt, &id, &b);
}

/// `events --stats` prints runc's line with runc's keys in runc's order
/// (events.bats matches its start, `{"type":"stats","id":"ID",`; rt's
/// keys came out sorted, `{"data":...`), and a reader gone before rt
/// writes ends rt quietly by SIGPIPE, as it ends runc (rt panicked with a
/// backtrace; then it exited 141, which a shell shows alike but a caller's
/// wait status does not).
#[test]
fn events_keep_runcs_key_order_and_a_gone_reader_ends_output_quietly() {
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;
    let rt = Rt::new();
    let b = Bundle::busybox(&["sleep", "1000"]);
    let id = unique_id("events");
    rt.detached(&b, &id);
    let line = rt.ok(&["events", "--stats", &id]);
    assert!(
        line.starts_with(&format!(r#"{{"type":"stats","id":"{id}","data":{{"#)),
        "{line}"
    );
    for args in [
        vec!["state", id.as_str()],
        vec!["list"],
        vec!["events", "--stats", &id],
    ] {
        // The read end closed before rt starts: its first write is EPIPE.
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        drop(r);
        let out = rt.cmd(&args).stdout(Stdio::from(w)).output().unwrap();
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGPIPE),
            "{args:?}: {:?} {}",
            out.status,
            stderr(&out)
        );
        assert_eq!(stderr(&out), "", "{args:?}");
    }
    rt.ok(&["delete", "-f", &id]);
    assert_no_leaks(&rt, &id, &b);
}

/// An unknown command gets one line in runc's words (help.bats "runc foo
/// -h" matches "No help topic for 'foo'"), with or without -h.
#[test]
fn an_unknown_command_has_no_help_topic() {
    let rt = Rt::new();
    for args in [&["foo", "-h"][..], &["foo"][..], &["foo", "bar"][..]] {
        let out = rt.run(args);
        let err = stderr(&out);
        assert!(!out.status.success(), "{args:?}: {err}");
        assert!(err.contains("No help topic for 'foo'"), "{args:?}: {err}");
        if is_rt() {
            assert_eq!(out.status.code(), Some(1), "{args:?}");
            assert_one_line_error(&err, &["No help topic for 'foo'"]);
        }
    }
}

/// A cgroup mount over a cgroup2 mount's root (a config that binds the
/// host's /sys, as userns.bats "userns join external namespaces [wrong
/// userns owner]" does on a cgroup v2 host): the kernel refuses a fresh
/// cgroup2 there (EBUSY), and the container gets a bind of its own cgroup
/// instead, as a fresh mount in its cgroup namespace would show it (runc
/// 1.3.5 falls back the same way, and passes that test in the cgroup v2
/// VM; on this hybrid host it runs containers in cgroup v1 mode).
#[test]
fn a_cgroup_mount_over_the_hosts_cgroup2_binds_the_containers_cgroup() {
    let Some(host) = ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
        .into_iter()
        .find(|p| fs_type(p) == Some(libc::CGROUP2_SUPER_MAGIC))
    else {
        panic!("no cgroup2 mount at /sys/fs/cgroup or /sys/fs/cgroup/unified");
    };
    let rt = Rt::new();
    let mut b = Bundle::busybox(&[
        "sh",
        "-c",
        "grep ^0:: /proc/self/cgroup; ls /sys/fs/cgroup | grep -cx rt; head -1 /sys/fs/cgroup/cgroup.procs",
    ]);
    b.edit(|c| {
        let mounts = c["mounts"].as_array_mut().unwrap();
        let at = mounts
            .iter()
            .position(|m| m["type"] == "cgroup")
            .expect("rt spec has a cgroup mount");
        mounts.insert(
            at,
            json!({"destination": "/sys/fs/cgroup", "type": "bind", "source": host, "options": ["rbind"]}),
        );
    });
    let id = unique_id("cgoverhost");
    let (code, out, err) = run_in(&rt, &b, &id);
    assert_eq!(code, 0, "{out} {err}");
    // Its cgroup is the root of what it sees; the host's (where rt keeps
    // containers under rt/) is not there; its init is in it.
    assert_eq!(out, "0::/\n0\n1\n", "{err}");
    assert_no_leaks(&rt, &id, &b);
}

fn fs_type(path: &str) -> Option<i64> {
    let st = nix::sys::statfs::statfs(path).ok()?;
    Some(st.filesystem_type().0 as i64)
}
