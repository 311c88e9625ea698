//! What the process sees inside the container: namespaces, the process
//! settings, the root filesystem and its mounts, terminals and inherited
//! descriptors. Each test runs a busybox shell script and checks its
//! output.

mod common;

use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::Stdio;

use common::*;
use serde_json::{json, Value};

fn ns_inode(pid: &str, ns: &str) -> String {
    fs::read_link(format!("/proc/{pid}/ns/{ns}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn new_namespaces_differ_from_the_host() {
    let out = sh(
        |_| {},
        "for n in pid mnt uts ipc net cgroup; do echo $n $(readlink /proc/self/ns/$n); done; echo pid1 $$",
    );
    let mut seen = 0;
    for line in out.lines() {
        let mut w = line.split_whitespace();
        let (n, v) = (w.next().unwrap(), w.next().unwrap());
        if n == "pid1" {
            assert_eq!(v, "1", "the process is pid 1 of its pid namespace");
            continue;
        }
        assert_ne!(v, ns_inode("self", n), "{n} namespace is the host's");
        seen += 1;
    }
    assert_eq!(seen, 6, "{out}");
}

#[test]
fn namespace_not_in_config_is_shared_with_the_host() {
    let out = sh(
        |c| {
            let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
            ns.retain(|n| n["type"] != "network" && n["type"] != "uts");
            // A hostname needs a uts namespace of its own.
            c.as_object_mut().unwrap().remove("hostname");
        },
        "readlink /proc/self/ns/net; readlink /proc/self/ns/uts",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, [ns_inode("self", "net"), ns_inode("self", "uts")]);
}

#[test]
fn joins_a_namespace_by_path() {
    let rt = Rt::new();
    let first = Bundle::busybox(&["sleep", "1000"]);
    let a = unique_id("nsowner");
    let pid = rt.detached(&first, &a).to_string();

    let mut b = Bundle::busybox(&[
        "sh",
        "-c",
        "readlink /proc/self/ns/net; readlink /proc/self/ns/ipc; readlink /proc/self/ns/uts",
    ]);
    b.edit(|c| {
        for n in c["linux"]["namespaces"].as_array_mut().unwrap() {
            if n["type"] == "network" || n["type"] == "ipc" {
                let short = if n["type"] == "network" { "net" } else { "ipc" };
                n["path"] = json!(format!("/proc/{pid}/ns/{short}"));
            }
        }
    });
    let id = unique_id("nsjoin");
    let (code, out, err) = run_in(&rt, &b, &id);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], ns_inode(&pid, "net"));
    assert_eq!(lines[1], ns_inode(&pid, "ipc"));
    assert_ne!(lines[2], ns_inode(&pid, "uts"), "uts was asked new");
    rt.ok(&["delete", "-f", &a]);
    assert_no_leaks(&rt, &a, &first);
    assert_no_leaks(&rt, &id, &b);
}

#[test]
fn joins_a_pid_namespace_by_path() {
    let rt = Rt::new();
    let first = Bundle::busybox(&["sleep", "1000"]);
    let a = unique_id("pidowner");
    let pid = rt.detached(&first, &a).to_string();
    let mut b = Bundle::busybox(&["sh", "-c", "readlink /proc/self/ns/pid; echo $$"]);
    b.edit(|c| {
        for n in c["linux"]["namespaces"].as_array_mut().unwrap() {
            if n["type"] == "pid" {
                n["path"] = json!(format!("/proc/{pid}/ns/pid"));
            }
        }
    });
    let id = unique_id("pidjoin");
    let (code, out, err) = run_in(&rt, &b, &id);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], ns_inode(&pid, "pid"));
    assert_ne!(
        lines[1], "1",
        "a joined pid namespace already has its pid 1"
    );
    rt.ok(&["delete", "-f", &a]);
    assert_no_leaks(&rt, &a, &first);
    assert_no_leaks(&rt, &id, &b);
}

#[test]
fn user_namespace_with_mappings() {
    let out = sh(
        |c| {
            c["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "user"}));
            c["linux"]["uidMappings"] =
                json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
            c["linux"]["gidMappings"] =
                json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
            // sysfs cannot be mounted from a user namespace without a
            // network namespace of its own; keep it simple.
            c["mounts"]
                .as_array_mut()
                .unwrap()
                .retain(|m| m["destination"] != "/sys" && m["destination"] != "/sys/fs/cgroup");
        },
        "cat /proc/self/uid_map /proc/self/gid_map; id -u; id -g",
    );
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["0", "100000", "65536"]);
    assert_eq!(lines[1], ["0", "100000", "65536"]);
    assert_eq!(lines[2], ["0"]);
    assert_eq!(lines[3], ["0"]);
}

/// A user namespace held by a file and no process, as containerd pins a
/// pod's: a helper's namespace (maps written by the test) bound onto a
/// file, the helper gone. Unmounted when dropped.
struct PinnedUserns {
    dir: tempfile::TempDir,
}

impl PinnedUserns {
    fn new(host: u32) -> PinnedUserns {
        let dir = tempfile::tempdir().unwrap();
        let mut helper = std::process::Command::new("unshare")
            .args(["--user", "sleep", "1000"])
            .spawn()
            .expect("unshare (util-linux)");
        let pid = helper.id();
        let ns = format!("/proc/{pid}/ns/user");
        let mine = std::fs::read_link("/proc/self/ns/user").unwrap();
        assert!(
            rt_testkit::wait_until(std::time::Duration::from_secs(10), || {
                std::fs::read_link(&ns).is_ok_and(|l| l != mine)
            }),
            "unshare made no user namespace"
        );
        let map = format!("0 {host} 65536\n");
        std::fs::write(format!("/proc/{pid}/uid_map"), &map).unwrap();
        std::fs::write(format!("/proc/{pid}/gid_map"), &map).unwrap();
        let file = dir.path().join("user");
        std::fs::write(&file, "").unwrap();
        let bound = nix::mount::mount(
            Some(ns.as_str()),
            &file,
            None::<&str>,
            nix::mount::MsFlags::MS_BIND,
            None::<&str>,
        );
        let _ = helper.kill();
        let _ = helper.wait();
        bound.expect("bind the user namespace onto a file");
        PinnedUserns { dir }
    }

    fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("user")
    }
}

impl Drop for PinnedUserns {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.path(), nix::mount::MntFlags::MNT_DETACH);
    }
}

/// containerd gives a user-namespaced pod's sandbox the path of the user
/// namespace it pinned together with the maps it made it with (and an
/// oomScoreAdj): rt joins it when the maps are the namespace's (read by
/// joining it: no process of its own has them), and refuses the config,
/// naming the field, when they are not.
#[test]
fn joins_a_pinned_user_namespace_given_with_its_maps() {
    let pinned = PinnedUserns::new(100000);
    let rt = Rt::new();
    let mut b = Bundle::busybox(&["cat", "/proc/self/uid_map", "/proc/self/oom_score_adj"]);
    let adj: i64 = fs::read_to_string("/proc/self/oom_score_adj")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let with_maps = |b: &mut Bundle, host: u32| {
        b.edit(|c| {
            c["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "user", "path": pinned.path()}));
            let map = json!([{"containerID": 0, "hostID": host, "size": 65536}]);
            c["linux"]["uidMappings"] = map.clone();
            c["linux"]["gidMappings"] = map;
            c["process"]["oomScoreAdj"] = json!(adj);
            c["mounts"]
                .as_array_mut()
                .unwrap()
                .retain(|m| m["destination"] != "/sys" && m["destination"] != "/sys/fs/cgroup");
        })
    };
    with_maps(&mut b, 100000);
    let id = unique_id("pinned-userns");
    let (code, out, err) = run_in(&rt, &b, &id);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["0", "100000", "65536"], "{out}");
    assert_eq!(lines[1], [adj.to_string()], "{out}");
    assert_no_leaks(&rt, &id, &b);

    let mut wrong = Bundle::busybox(&["true"]);
    with_maps(&mut wrong, 200000);
    let id = unique_id("pinned-userns");
    let err = rt.fails(&["run", "--bundle", wrong.path().to_str().unwrap(), &id]);
    assert_one_line_error(&err, &["linux.uidMappings", "not the maps", "user"]);
    assert_no_leaks(&rt, &id, &wrong);
}

#[test]
fn time_namespace_with_offsets() {
    let out = sh(
        |c| {
            c["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "time"}));
            c["linux"]["timeOffsets"] = json!({
                "monotonic": {"secs": 86400, "nanosecs": 0},
                "boottime": {"secs": 172800, "nanosecs": 0}
            });
        },
        "cat /proc/self/timens_offsets; cut -d. -f1 /proc/uptime",
    );
    let offsets: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(offsets.contains(&vec!["monotonic", "86400", "0"]), "{out}");
    assert!(offsets.contains(&vec!["boottime", "172800", "0"]), "{out}");
    let host_uptime: f64 = fs::read_to_string("/proc/uptime")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let inside: f64 = out.lines().last().unwrap().parse().unwrap();
    assert!(
        inside >= host_uptime + 172800.0 - 5.0,
        "uptime {inside} vs host {host_uptime}"
    );
}

#[test]
fn process_settings() {
    let out = sh(
        |c| {
            let p = &mut c["process"];
            p["env"] = json!(["PATH=/bin", "FOO=bar baz"]);
            p["cwd"] = json!("/tmp");
            p["user"] = json!({"uid": 1000, "gid": 1001, "additionalGids": [5, 6], "umask": 23});
            p["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "hard": 512, "soft": 256}]);
            p["oomScoreAdj"] = json!(321);
            p["noNewPrivileges"] = json!(true);
            c["hostname"] = json!("box");
            c["domainname"] = json!("example.org");
        },
        "echo \"$FOO\"; pwd; id -u; id -g; id -G; umask; ulimit -n; ulimit -Hn; \
         cat /proc/self/oom_score_adj; grep NoNewPrivs /proc/self/status; hostname; \
         cat /proc/sys/kernel/domainname",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "bar baz");
    assert_eq!(lines[1], "/tmp");
    assert_eq!(lines[2], "1000");
    assert_eq!(lines[3], "1001");
    assert_eq!(lines[4], "1001 5 6");
    assert_eq!(lines[5], "0027");
    assert_eq!(lines[6], "256");
    assert_eq!(lines[7], "512");
    assert_eq!(lines[8], "321");
    assert_eq!(
        lines[9].split_whitespace().collect::<Vec<_>>(),
        ["NoNewPrivs:", "1"]
    );
    assert_eq!(lines[10], "box");
    assert_eq!(lines[11], "example.org");
}

#[test]
fn missing_cwd_is_created_as_runc_does() {
    let out = sh(|c| c["process"]["cwd"] = json!("/no/such/dir"), "pwd");
    assert_eq!(out, "/no/such/dir\n");
}

#[test]
fn args_reach_the_process_verbatim() {
    let out = sh(
        |c| {
            c["process"]["args"] = json!([
                "sh",
                "-c",
                "for a in \"$@\"; do echo \"[$a]\"; done",
                "sh",
                "a b",
                "",
                "*"
            ])
        },
        "unused",
    );
    assert_eq!(out, "[a b]\n[]\n[*]\n");
}

#[test]
fn only_stdio_is_inherited() {
    // The test harness itself holds descriptors; none may reach the container.
    let out = sh(|_| {}, "ls /proc/self/fd");
    let mut fds: Vec<&str> = out.lines().collect();
    fds.sort();
    // 0, 1, 2 and the fd ls holds on the directory it lists.
    assert_eq!(fds, ["0", "1", "2", "3"], "{out}");
}

/// `rt run` with a file open at descriptor 3 and `env` set; returns what
/// the container printed and what it wrote through descriptor 3.
fn run_with_fd3(extra: &[&str], env: &[(&str, &str)]) -> (String, String) {
    let rt = Rt::new();
    let b = Bundle::busybox(&[
        "sh",
        "-c",
        "echo through-fd3 >&3; echo LISTEN_FDS=$LISTEN_FDS LISTEN_PID=$LISTEN_PID; ls /proc/self/fd | sort | tr '\\n' ' '",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let fd: OwnedFd = fs::File::create(dir.path().join("out")).unwrap().into();
    let id = unique_id("fd3");
    let mut args = vec!["run"];
    args.extend(extra);
    args.extend(["--bundle", b.path().to_str().unwrap(), &id]);
    let mut cmd = rt.cmd(&args);
    cmd.envs(env.iter().copied());
    rt.created(&id);
    let raw = fd.as_raw_fd();
    // SAFETY: dup2 in the forked child before exec, on a descriptor this
    // process owns; dup2 is async-signal-safe.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(move || {
            // dup2 onto itself keeps O_CLOEXEC, so clear it by hand then.
            let r = if raw == 3 {
                libc::fcntl(3, libc::F_SETFD, 0)
            } else {
                libc::dup2(raw, 3)
            };
            if r < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_no_leaks(&rt, &id, &b);
    (
        stdout(&out),
        fs::read_to_string(dir.path().join("out")).unwrap(),
    )
}

#[test]
fn preserve_fds_passes_descriptors() {
    let (out, through) = run_with_fd3(&["--preserve-fds", "1"], &[]);
    assert!(
        out.contains("LISTEN_FDS= LISTEN_PID="),
        "no socket activation: {out}"
    );
    // 3 is the passed file, 4 the directory ls reads; nothing beyond.
    assert!(out.ends_with("0 1 2 3 4 "), "{out}");
    assert_eq!(through, "through-fd3\n");

    // Without --preserve-fds the descriptor is closed.
    let rt = Rt::new();
    let b = Bundle::busybox(&["sh", "-c", "ls /proc/self/fd | sort | tr '\\n' ' '"]);
    let id = unique_id("nofd3");
    let (code, out, err) = run_in(&rt, &b, &id);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "0 1 2 3 ");

    // Asking for a descriptor the caller does not have is an error, not
    // one of rt's own files passed in.
    let id = unique_id("closedfd");
    let err = rt.fails(&[
        "run",
        "--preserve-fds",
        "5",
        "--bundle",
        b.path().to_str().unwrap(),
        &id,
    ]);
    assert_one_line_error(&err, &["descriptor", "not open", "--preserve-fds"]);
    assert_no_leaks(&rt, &id, &b);
}

#[test]
fn socket_activation_descriptors_pass_with_listen_fds() {
    // systemd socket activation: LISTEN_FDS names descriptors from 3 up;
    // they reach the container, which is told LISTEN_FDS=n, LISTEN_PID=1.
    let (out, through) = run_with_fd3(&[], &[("LISTEN_FDS", "1")]);
    assert!(out.contains("LISTEN_FDS=1 LISTEN_PID=1"), "{out}");
    assert!(out.ends_with("0 1 2 3 4 "), "{out}");
    assert_eq!(through, "through-fd3\n");
}

#[test]
fn default_mounts_and_devices() {
    let out = sh(
        |_| {},
        "grep -E ' /(proc|dev|dev/pts|dev/shm|dev/mqueue|sys|sys/fs/cgroup) ' /proc/self/mounts | cut -d' ' -f2,3; \
         ls -l /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty | awk '{print $1, $5, $6, $NF}'; \
         for l in fd stdin stdout stderr ptmx; do readlink /dev/$l; done",
    );
    for m in [
        "/proc proc",
        "/dev tmpfs",
        "/dev/pts devpts",
        "/dev/shm tmpfs",
        "/dev/mqueue mqueue",
        "/sys sysfs",
        "/sys/fs/cgroup cgroup2",
    ] {
        assert!(out.lines().any(|l| l == m), "missing mount {m}: {out}");
    }
    for d in [
        "crw-rw-rw- 1, 3 /dev/null",
        "crw-rw-rw- 1, 5 /dev/zero",
        "crw-rw-rw- 1, 7 /dev/full",
        "crw-rw-rw- 1, 8 /dev/random",
        "crw-rw-rw- 1, 9 /dev/urandom",
        "crw-rw-rw- 5, 0 /dev/tty",
    ] {
        assert!(out.lines().any(|l| l == d), "missing device {d}: {out}");
    }
    for l in [
        "/proc/self/fd",
        "/proc/self/fd/0",
        "/proc/self/fd/1",
        "/proc/self/fd/2",
        "pts/ptmx",
    ] {
        assert!(out.lines().any(|x| x == l), "missing symlink to {l}: {out}");
    }
}

#[test]
fn mounts_with_options() {
    let host = tempfile::tempdir().unwrap();
    fs::write(host.path().join("file"), "from host\n").unwrap();
    let out = sh(
        |c| {
            let m = c["mounts"].as_array_mut().unwrap();
            m.push(
                json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
                          "options": ["nosuid", "nodev", "noexec", "size=1m", "mode=700"]}),
            );
            m.push(
                json!({"destination": "/ro", "type": "bind", "source": host.path(),
                          "options": ["rbind", "ro"]}),
            );
            m.push(
                json!({"destination": "/rw", "type": "bind", "source": host.path(),
                          "options": ["bind", "rw", "nosuid"]}),
            );
            m.push(json!({"destination": "/deep/er/dir", "type": "tmpfs", "source": "tmpfs"}));
        },
        "grep -E ' /(scratch|ro|rw|deep/er/dir) ' /proc/self/mounts | cut -d' ' -f2,3,4; \
         stat -c '%a' /scratch; cat /ro/file; \
         touch /ro/x 2>/dev/null && echo ro-writable; echo written > /rw/new",
    );
    let line = |dest: &str| -> String {
        out.lines()
            .find(|l| l.starts_with(&format!("{dest} ")))
            .unwrap_or_else(|| panic!("no mount at {dest}: {out}"))
            .to_string()
    };
    let scratch = line("/scratch");
    assert!(scratch.starts_with("/scratch tmpfs "), "{scratch}");
    for o in ["nosuid", "nodev", "noexec", "size=1024k", "mode=700"] {
        assert!(scratch.contains(o), "{scratch} lacks {o}");
    }
    assert!(
        line("/ro").split(' ').nth(2).unwrap().starts_with("ro,"),
        "{out}"
    );
    let rw = line("/rw");
    assert!(
        rw.split(' ').nth(2).unwrap().starts_with("rw,") && rw.contains("nosuid"),
        "{rw}"
    );
    line("/deep/er/dir");
    assert!(out.contains("\n700\n"), "{out}");
    assert!(out.contains("from host"), "{out}");
    assert!(!out.contains("ro-writable"), "{out}");
    assert_eq!(
        fs::read_to_string(host.path().join("new")).unwrap(),
        "written\n"
    );
}

#[test]
fn readonly_root_and_no_pivot() {
    let rt = Rt::new();
    let mut b = Bundle::busybox(&["sh", "-c", "touch /x 2>/dev/null && echo writable; touch /tmp/y 2>/dev/null && echo tmp-writable; cat /proc/self/mountinfo | awk '$5 == \"/\" {print $6}'"]);
    b.edit(|c| {
        c["root"]["readonly"] = json!(true);
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}));
    });
    for (extra, name) in [(None, "pivot"), (Some("--no-pivot"), "nopivot")] {
        let id = unique_id(name);
        let mut args = vec!["run"];
        args.extend(extra);
        args.extend(["--bundle", b.path().to_str().unwrap(), &id]);
        let out = rt.run(&args);
        assert!(out.status.success(), "{}", stderr(&out));
        let text = stdout(&out);
        assert!(
            !text.contains("\nwritable") && !text.starts_with("writable"),
            "{name}: {text}"
        );
        assert!(text.contains("tmp-writable"), "{name}: {text}");
        assert!(
            text.lines().any(|l| l.starts_with("ro")),
            "{name}: root mounted ro: {text}"
        );
        assert_no_leaks(&rt, &id, &b);
    }
}

#[test]
fn masked_and_readonly_paths() {
    let out = sh(
        |_| {},
        "cat /proc/keys 2>&1 | wc -c; ls /sys/firmware 2>/dev/null | wc -l; \
         echo 1 > /proc/sys/kernel/sysrq 2>/dev/null && echo sysrq-writable; \
         grep ' /proc/sys ' /proc/self/mounts | cut -d' ' -f4 | cut -d, -f1",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0].trim(), "0", "/proc/keys is masked with /dev/null");
    assert_eq!(lines[1].trim(), "0", "/sys/firmware is an empty tmpfs");
    assert!(!out.contains("sysrq-writable"), "{out}");
    assert_eq!(lines.last().unwrap().trim(), "ro", "{out}");
}

#[test]
fn rootfs_propagation_private() {
    let out = sh(
        |c| c["linux"]["rootfsPropagation"] = json!("private"),
        "awk '$5 == \"/\" {print $7}' /proc/self/mountinfo",
    );
    assert!(!out.contains("shared:"), "root is not shared: {out}");
    assert!(!out.contains("master:"), "root is not a slave: {out}");
}

#[test]
fn sysctl_is_written_in_the_container() {
    let out = sh(
        |c| c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1", "kernel.shmmax": "123456"}),
        "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax",
    );
    assert_eq!(out, "1\n123456\n");
}

/// Receives the pty master a `--console-socket` caller gets.
fn recv_master(listener: &UnixListener) -> OwnedFd {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let (conn, _) = listener.accept().unwrap();
    let mut buf = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .unwrap();
    for c in msg.cmsgs().unwrap() {
        if let ControlMessageOwned::ScmRights(fds) = c {
            use std::os::fd::FromRawFd;
            // SAFETY: the descriptor was just received with SCM_RIGHTS and
            // nothing else owns it.
            return unsafe { OwnedFd::from_raw_fd(fds[0]) };
        }
    }
    panic!("no descriptor on the console socket");
}

#[test]
fn terminal_with_console_socket() {
    let rt = Rt::new();
    let mut b = Bundle::busybox(&[
        "sh",
        "-c",
        "tty; test -t 0 && echo stdin-is-tty; ls -l /dev/console | awk '{print $5 $6}'; stty size",
    ]);
    b.edit(|c| {
        c["process"]["terminal"] = json!(true);
        c["process"]["consoleSize"] = json!({"height": 33, "width": 101});
    });
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let id = unique_id("tty");
    let create = std::thread::scope(|s| {
        let h = s.spawn(|| recv_master(&listener));
        let out = rt.run(&[
            "create",
            "--console-socket",
            sock.to_str().unwrap(),
            "--bundle",
            b.path().to_str().unwrap(),
            &id,
        ]);
        (out, h.join().unwrap())
    });
    let (out, master) = create;
    assert!(out.status.success(), "{}", stderr(&out));
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes one c_uint through the pointer, which lives
    // for the call; the descriptor is owned by `master`.
    let r = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut n) };
    assert_eq!(r, 0, "the descriptor is a pty master");
    rt.ok(&["start", &id]);
    rt.wait_status(&id, "stopped");
    let mut f = fs::File::from(master);
    let mut text = Vec::new();
    // Reading the master after the slave closed ends with EIO.
    let _ = std::io::Read::read_to_end(&mut f, &mut text);
    let text = String::from_utf8_lossy(&text).replace('\r', "");
    assert!(text.contains("/dev/pts/0"), "{text}");
    assert!(text.contains("stdin-is-tty"), "{text}");
    assert!(text.contains("136,0"), "/dev/console is the pty: {text}");
    assert!(text.contains("33 101"), "console size applied: {text}");
    rt.ok(&["delete", &id]);
    assert_no_leaks(&rt, &id, &b);
}

#[test]
fn terminal_without_console_socket_is_refused_for_create_without_a_shim() {
    let rt = Rt::new();
    let mut b = Bundle::busybox(&["sh"]);
    b.edit(|c| c["process"]["terminal"] = json!(true));
    let id = unique_id("notty");
    let err = rt.fails(&[
        "--shim=never",
        "create",
        "--bundle",
        b.path().to_str().unwrap(),
        &id,
    ]);
    assert_one_line_error(&err, &["console-socket"]);
    assert_no_leaks(&rt, &id, &b);
}

#[test]
fn cgroup_placement() {
    let rt = Rt::new();
    let b = Bundle::busybox(&["sleep", "1000"]);
    let id = unique_id("cg");
    let pid = rt.detached(&b, &id);
    let cg = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let rel = default_cgroup(rt.root(), &id);
    assert!(cg.lines().any(|l| l == format!("0::/{rel}")), "{cg}");
    let procs = fs::read_to_string(Path::new(CGROUP2).join(&rel).join("cgroup.procs")).unwrap();
    assert_eq!(procs.trim(), pid.to_string());
    rt.ok(&["delete", "-f", &id]);
    assert_no_leaks(&rt, &id, &b);
    let root_dir = Path::new(CGROUP2).join(rel.rsplit_once('/').unwrap().0); // goes with the last
    assert!(!root_dir.exists(), "{} left", root_dir.display());

    // An absolute cgroupsPath is used as given.
    let mut b = Bundle::busybox(&["cat", "/proc/self/cgroup"]);
    let path = format!("/rt-test/{}", unique_id("abs"));
    b.edit(|c| c["linux"]["cgroupsPath"] = Value::String(path.clone()));
    let id = unique_id("cgabs");
    let (code, out, err) = run_in(&rt, &b, &id);
    assert_eq!(code, 0, "{err}");
    // With a cgroup namespace the process sees itself at its root.
    assert!(out.lines().any(|l| l == "0::/"), "{out}");
    assert!(!Path::new(CGROUP2)
        .join(path.trim_start_matches('/'))
        .exists());
    let _ = fs::remove_dir(Path::new(CGROUP2).join("rt-test"));
}

#[test]
fn device_nodes_need_a_cgroup_rule_to_be_used() {
    // As with runc: a node in linux.devices is made, but with the default
    // deny-all rule opening it is refused unless a rule allows it. 7:0 is
    // the first loop device, which no default rule covers.
    let with_rules = |rules: Value| {
        sh(
            |c| {
                c["linux"]["devices"] = json!([{"path": "/dev/xloop", "type": "b",
                    "major": 7, "minor": 0, "fileMode": 432, "uid": 0, "gid": 0}]);
                c["linux"]["resources"]["devices"] = rules;
            },
            "head -c1 /dev/xloop >/dev/null 2>&1 && echo read-ok || echo read-denied",
        )
    };
    let deny = json!([{"allow": false, "access": "rwm"}]);
    assert_eq!(with_rules(deny.clone()), "read-denied\n");
    let mut read = deny.as_array().unwrap().clone();
    read.push(json!({"allow": true, "type": "b", "major": 7, "minor": 0, "access": "r"}));
    assert_eq!(with_rules(Value::Array(read)), "read-ok\n");
}

#[test]
fn scheduler_io_priority_and_personality() {
    // /proc/self/stat: field 19 is the nice value, 41 the policy.
    let out = sh(
        |c| {
            c["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 7});
            c["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_IDLE", "priority": 0});
            c["linux"]["personality"] = json!({"domain": "LINUX32"});
        },
        "awk '{print $19, $41}' /proc/self/stat; ionice; uname -m",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "7 3", "nice 7, SCHED_BATCH (3): {out}");
    assert_eq!(lines[1], "idle", "{out}");
    assert_eq!(lines[2], "i686", "LINUX32 personality: {out}");
    // A realtime policy needs CAP_SYS_NICE, which the container drops
    // after its scheduler is set.
    let out = sh(
        |c| c["process"]["scheduler"] = json!({"policy": "SCHED_FIFO", "priority": 10}),
        "awk '{print $18, $41}' /proc/self/stat",
    );
    assert_eq!(
        out.trim(),
        "-11 1",
        "rt priority 10 (prio -11), SCHED_FIFO: {out}"
    );
}

/// A read-only tmpfs on /dev still gets /dev/pts, the devices and the
/// links in it, and ends read-only (runc's mounts.bats "ro /dev mount").
#[test]
fn a_read_only_dev_tmpfs_is_filled_then_read_only() {
    let out = sh(
        |c| {
            for m in c["mounts"].as_array_mut().unwrap() {
                if m["destination"] == "/dev" {
                    m["options"].as_array_mut().unwrap().push(json!("ro"));
                }
            }
        },
        "grep '^tmpfs /dev ' /proc/mounts | cut -d' ' -f4 | cut -d, -f1; \
         grep -c ' /dev/pts devpts ' /proc/mounts; \
         test -c /dev/null && test -L /dev/fd && echo devices; \
         touch /dev/x 2>/dev/null || echo refused",
    );
    assert_eq!(out, "ro\n1\ndevices\nrefused\n");
}
