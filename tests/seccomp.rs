//! `linux.seccomp`: a profile's meaning, checked from inside the
//! container, for the init and for exec'd processes.

mod common;

use common::*;
use serde_json::{json, Value};

/// A deny-list profile: each rule with its own action.
fn deny_list() -> Value {
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
            {"names": ["chmod", "fchmodat", "fchmodat2", "fchmod"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
            {"names": ["sethostname"], "action": "SCMP_ACT_KILL_PROCESS"},
            // Only a zero-length write is refused: argument conditions.
            {"names": ["write"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
             "args": [{"index": 2, "value": 0, "op": "SCMP_CMP_EQ"}]}
        ]
    })
}

const SCRIPT: &str = "grep '^Seccomp:' /proc/self/status; \
    mkdir /dev/shm/d 2>&1; \
    touch /dev/shm/f; chmod 600 /dev/shm/f 2>&1; \
    printf '' > /dev/shm/empty 2>&1 && echo empty-write-ok; \
    echo still-writing; \
    sh -c 'hostname x' ; echo hostname-exit=$?";

fn check(out: &str) {
    assert!(out.contains("Seccomp:\t2"), "filter mode: {out}");
    assert!(
        out.contains("Permission denied"),
        "mkdir gets errno 13: {out}"
    );
    assert!(
        out.contains("Function not implemented"),
        "chmod gets errno 38: {out}"
    );
    assert!(
        out.contains("still-writing"),
        "non-empty writes pass: {out}"
    );
    assert!(
        out.contains("hostname-exit=159"),
        "sethostname kills with SIGSYS (128+31): {out}"
    );
}

#[test]
fn profile_actions_apply_with_and_without_no_new_privs() {
    for nnp in [true, false] {
        let out = sh(
            |c| {
                c["linux"]["seccomp"] = deny_list();
                c["process"]["noNewPrivileges"] = json!(nnp);
            },
            SCRIPT,
        );
        check(&out);
    }
}

#[test]
fn exec_gets_the_container_profile() {
    let rt = Rt::new();
    let mut b = Bundle::busybox(&["sleep", "1000"]);
    b.edit(|c| c["linux"]["seccomp"] = deny_list());
    let id = unique_id("secexec");
    rt.detached(&b, &id);
    let out = rt.run(&["exec", &id, "sh", "-c", SCRIPT]);
    check(&stdout(&out));
    rt.ok(&["delete", "-f", &id]);
    assert_no_leaks(&rt, &id, &b);
}

#[test]
fn an_allow_list_profile_runs_a_shell() {
    // Default ERRNO: only what busybox sh, echo and the runtime's last
    // steps need is allowed; anything else fails with EPERM.
    let allowed = [
        "read",
        "write",
        "openat",
        "open",
        "close",
        "fstat",
        "newfstatat",
        "stat",
        "lstat",
        "mmap",
        "munmap",
        "mprotect",
        "brk",
        "rt_sigaction",
        "rt_sigprocmask",
        "rt_sigreturn",
        "ioctl",
        "execve",
        "exit",
        "exit_group",
        "getpid",
        "getppid",
        "getuid",
        "geteuid",
        "getgid",
        "getegid",
        "arch_prctl",
        "set_tid_address",
        "fcntl",
        "dup2",
        "dup3",
        "capget",
        "capset",
        "prctl",
        "setresuid",
        "setresgid",
        "setgroups",
        "umask",
        "openat2",
        "fchdir",
        "close_range",
        "getcwd",
        "wait4",
        "clone",
        "fork",
        "vfork",
        "uname",
        "getrandom",
        "readlink",
        "readlinkat",
        "access",
        "faccessat",
        "faccessat2",
        "set_robust_list",
        "rseq",
        "prlimit64",
        "statx",
        "getdents64",
        "lseek",
        "pread64",
    ];
    let out = sh(
        |c| {
            c["linux"]["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ERRNO",
                "syscalls": [{"names": &allowed[..], "action": "SCMP_ACT_ALLOW"}]
            });
        },
        "echo allowed; mkdir /dev/shm/d 2>&1; true",
    );
    assert!(out.contains("allowed"), "{out}");
    assert!(
        out.contains("Operation not permitted"),
        "mkdir gets the default EPERM: {out}"
    );
}

fn notify_profile(listener: &std::path::Path) -> Value {
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
        "listenerPath": listener,
        "listenerMetadata": "meta-42",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
    })
}

#[test]
fn notify_with_no_agent_listening_fails_cleanly() {
    let rt = Rt::new();
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("nobody.sock");
    let mut b = Bundle::busybox(&["true"]);
    b.edit(|c| c["linux"]["seccomp"] = notify_profile(&sock));
    let id = unique_id("secnotify");
    let err = rt.fails(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    // runc's words, which callers match.
    assert_one_line_error(
        &err,
        &[
            "listenerPath",
            "nobody.sock",
            "failed to connect with seccomp agent",
        ],
    );
    assert_no_leaks(&rt, &id, &b);
}

/// A notified write(2) would wait on an agent that waits on rt's own
/// writes: refused in runc's words, before anything is made.
#[test]
fn a_notified_write_is_refused_in_one_line() {
    let rt = Rt::new();
    let dir = tempfile::tempdir().unwrap();
    let mut b = Bundle::busybox(&["true"]);
    b.edit(|c| {
        let mut p = notify_profile(&dir.path().join("agent.sock"));
        p["syscalls"][0]["names"] = json!(["mkdir", "write"]);
        c["linux"]["seccomp"] = p;
    });
    let id = unique_id("secnotifywrite");
    let err = rt.fails(&["run", "--bundle", b.path().to_str().unwrap(), &id]);
    assert_one_line_error(
        &err,
        &[
            "linux.seccomp",
            "SCMP_ACT_NOTIFY cannot be used for the write syscall",
        ],
    );
    assert_no_leaks(&rt, &id, &b);
}

/// A seccomp agent: takes the listener from rt, checks what came with
/// it, and answers every notified syscall with EROFS until the container
/// is gone. Returns the state rt sent and how many syscalls it answered.
fn agent(listener: std::os::unix::net::UnixListener) -> (Value, usize) {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
    const NOTIF_RECV: libc::c_ulong = 0xc050_2100;
    const NOTIF_SEND: libc::c_ulong = 0xc018_2101;
    #[repr(C)]
    struct Notif {
        id: u64,
        pid: u32,
        flags: u32,
        nr: i32,
        arch: u32,
        ip: u64,
        args: [u64; 6],
    }
    #[repr(C)]
    struct Resp {
        id: u64,
        val: i64,
        error: i32,
        flags: u32,
    }
    let (conn, _) = listener.accept().unwrap();
    let mut buf = vec![0u8; 64 * 1024];
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
    let state: Value = serde_json::from_slice(&buf[..n]).unwrap();
    let fd = fd.expect("the listener came with the state");
    let mut answered = 0;
    loop {
        let mut pfd = [nix::poll::PollFd::new(
            std::os::fd::AsFd::as_fd(&fd),
            nix::poll::PollFlags::POLLIN,
        )];
        nix::poll::poll(&mut pfd, nix::poll::PollTimeout::from(10_000u16)).unwrap();
        let revents = pfd[0].revents().unwrap_or(nix::poll::PollFlags::empty());
        if !revents.contains(nix::poll::PollFlags::POLLIN) {
            break;
        }
        // SAFETY: Notif is plain data; the kernel wants it zeroed.
        let mut notif: Notif = unsafe { std::mem::zeroed() };
        // SAFETY: the ioctl fills a properly sized seccomp_notif.
        if unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_RECV, &mut notif as *mut Notif) } < 0 {
            continue;
        }
        let resp = Resp {
            id: notif.id,
            val: 0,
            error: -libc::EROFS,
            flags: 0,
        };
        // SAFETY: the ioctl reads a properly sized seccomp_notif_resp.
        unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_SEND, &resp as *const Resp) };
        answered += 1;
    }
    (state, answered)
}

#[test]
fn a_seccomp_agent_answers_the_containers_syscalls() {
    let rt = Rt::new();
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("agent.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let agent = std::thread::spawn(move || agent(listener));
    let mut b = Bundle::busybox(&["sh", "-c", "mkdir /tmp/made; echo rc=$?; ls /tmp"]);
    b.edit(|c| c["linux"]["seccomp"] = notify_profile(&sock));
    let id = unique_id("agent");
    let (code, out, err) = run_in(&rt, &b, &id);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("rc=1"),
        "mkdir failed as the agent said: {out}"
    );
    assert!(
        err.contains("Read-only file system"),
        "the agent's errno: {err}"
    );
    assert!(!out.contains("made"), "{out}");
    let (state, answered) = agent.join().unwrap();
    assert!(answered >= 1);
    assert_eq!(state["fds"], json!(["seccompFd"]));
    assert_eq!(state["metadata"], "meta-42");
    assert_eq!(state["state"]["id"], id.as_str());
    assert_eq!(state["state"]["status"], "creating");
    assert!(state["pid"].as_i64().unwrap() > 0);
    assert_no_leaks(&rt, &id, &b);
}

/// A static probe that makes an x32 syscall (`probe x32`) or an i386
/// one (`probe i386`) and prints what came back.
const PROBE_C: &str = r#"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "x32") == 0) {
        long r = syscall(0x40000000 | SYS_getpid);
        printf("x32: %ld %s\n", r, r < 0 ? strerror(errno) : "ok");
    } else if (argc > 2 && strcmp(argv[1], "nr") == 0) {
        long r = syscall(atol(argv[2]), -1, 0, 0, 0);
        printf("nr %s: %s\n", argv[2], r < 0 ? strerror(errno) : "ok");
    } else if (argc > 1 && strcmp(argv[1], "uselib") == 0) {
        long r = syscall(SYS_uselib, "/nonexistent");
        printf("uselib: %s\n", r < 0 ? strerror(errno) : "ok");
    } else {
        long eax = 20; /* getpid in the i386 table */
        __asm__ volatile ("int $0x80" : "+a"(eax) : : "memory");
        printf("i386: %ld\n", eax);
    }
    return 0;
}
"#;

/// Builds the probe into `dir`.
fn build_probe(dir: &std::path::Path) -> std::path::PathBuf {
    let src = dir.join("probe.c");
    std::fs::write(&src, PROBE_C).unwrap();
    let probe = dir.join("probe");
    let built = std::process::Command::new("gcc")
        .args(["-static", "-O1", "-o"])
        .arg(&probe)
        .arg(&src)
        .status()
        .expect("gcc (scripts/deps.sh installs it)");
    assert!(built.success());
    probe
}

#[test]
fn other_architectures_cannot_bypass_the_profile() {
    let dir = tempfile::tempdir().unwrap();
    let probe = build_probe(dir.path());
    // Without a filter both calls return (x32 perhaps ENOSYS where the
    // kernel lacks the ABI): what the container sees below is the filter.
    for abi in ["x32", "i386"] {
        let out = std::process::Command::new(&probe)
            .arg(abi)
            .output()
            .unwrap();
        assert!(out.status.success(), "{abi} on the host: {out:?}");
        assert!(stdout(&out).starts_with(&format!("{abi}: ")));
    }
    for abi in ["x32", "i386"] {
        let mut b = Bundle::busybox(&["/probe", abi]);
        std::fs::copy(&probe, b.rootfs().join("probe")).unwrap();
        // Allow everything but mount: only the architecture handling can
        // refuse the probe.
        b.edit(|c| {
            c["linux"]["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_ERRNO"}]
            })
        });
        let rt = Rt::new();
        let id = unique_id("secarch");
        let (code, out, err) = run_in(&rt, &b, &id);
        assert_eq!(out, "", "the {abi} syscall must not return");
        assert_eq!(code, 128 + libc::SIGSYS, "{abi}: killed by SIGSYS: {err}");
        assert_no_leaks(&rt, &id, &b);
    }
}

/// Docker's and Podman's default profile (Podman's copy, from Debian's
/// containers-common) turned into the OCI profile an engine hands the
/// runtime for a container with `caps`: each rule's `includes` and
/// `excludes` by capability and architecture decide whether it applies.
fn engine_profile_for(caps: &[String]) -> Value {
    let text = std::fs::read_to_string("/usr/share/containers/seccomp.json")
        .expect("Podman's default seccomp profile (scripts/deps.sh --test installs podman)");
    let p: Value = serde_json::from_str(&text).unwrap();
    let arch_ok = |arches: Option<&Value>| {
        arches
            .and_then(Value::as_array)
            .is_none_or(|a| a.iter().any(|x| x == "amd64"))
    };
    let has_caps = |need: Option<&Value>| {
        need.and_then(Value::as_array)
            .is_none_or(|c| c.iter().all(|x| caps.iter().any(|have| x == have.as_str())))
    };
    let any_cap = |c: Option<&Value>| {
        c.and_then(Value::as_array)
            .is_some_and(|c| c.iter().any(|x| caps.iter().any(|have| x == have.as_str())))
    };
    let any_arch = |a: Option<&Value>| {
        a.and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|x| x == "amd64"))
    };
    let syscalls: Vec<Value> = p["syscalls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| {
            let inc = &s["includes"];
            let exc = &s["excludes"];
            arch_ok(inc.get("arches"))
                && has_caps(inc.get("caps"))
                && !any_cap(exc.get("caps"))
                && !any_arch(exc.get("arches"))
        })
        .map(|s| {
            let mut r = json!({"names": s["names"], "action": s["action"]});
            if let Some(a) = s.get("args").filter(|a| !a.is_null()) {
                r["args"] = a.clone();
            }
            if let Some(e) = s.get("errnoRet") {
                r["errnoRet"] = e.clone();
            }
            r
        })
        .collect();
    json!({
        "defaultAction": p["defaultAction"],
        "defaultErrnoRet": p["defaultErrnoRet"],
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": syscalls
    })
}

#[test]
fn the_docker_default_profile_runs_a_shell_and_blocks_what_it_should() {
    let rt = Rt::new();
    let dir = tempfile::tempdir().unwrap();
    let probe = build_probe(dir.path());
    let script = "echo hello; ls / > /dev/null && echo listed; grep -E '^(Seccomp|CapEff):' /proc/self/status; /probe uselib";
    let run = |with_profile: bool| {
        let mut b = Bundle::busybox(&["sh", "-c", script]);
        std::fs::copy(&probe, b.rootfs().join("probe")).unwrap();
        b.edit(|c| {
            if with_profile {
                // Docker's default capability set, and the profile for it.
                let caps: Vec<String> = [
                    "CHOWN",
                    "DAC_OVERRIDE",
                    "FSETID",
                    "FOWNER",
                    "MKNOD",
                    "NET_RAW",
                    "SETGID",
                    "SETUID",
                    "SETFCAP",
                    "SETPCAP",
                    "NET_BIND_SERVICE",
                    "SYS_CHROOT",
                    "KILL",
                    "AUDIT_WRITE",
                ]
                .iter()
                .map(|c| format!("CAP_{c}"))
                .collect();
                for set in ["bounding", "effective", "permitted"] {
                    c["process"]["capabilities"][set] = json!(caps);
                }
                c["linux"]["seccomp"] = engine_profile_for(&caps);
            }
        });
        let id = unique_id("dockerprof");
        let (code, out, err) = run_in(&rt, &b, &id);
        assert_eq!(code, 0, "{err}");
        assert_no_leaks(&rt, &id, &b);
        out
    };
    let out = run(true);
    assert!(out.starts_with("hello\nlisted\n"), "{out}");
    assert!(out.contains("Seccomp:\t2"), "{out}");
    assert!(
        out.contains("CapEff:\t00000000a80425fb"),
        "Docker's 14 capabilities: {out}"
    );
    // The profile refuses uselib(2) with EPERM; this kernel does not even
    // have it (ENOSYS without the profile): the answer is the profile's.
    assert!(out.contains("uselib: Operation not permitted"), "{out}");
    let out = run(false);
    assert!(out.contains("Seccomp:\t0"), "{out}");
    assert!(out.contains("uselib: Function not implemented"), "{out}");
}

#[test]
fn a_profile_denying_keyctl_without_no_new_privs_still_runs() {
    // Docker's own default profile denies keyctl and Docker sets no
    // noNewPrivileges, so the filter goes in before the capabilities are
    // dropped: the container's fresh session keyring must be joined
    // before that, or the container cannot start.
    let out = sh(
        |c| {
            c["process"]["noNewPrivileges"] = json!(false);
            c["linux"]["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["keyctl", "add_key", "request_key"],
                              "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
            });
        },
        "grep '^Seccomp:' /proc/self/status",
    );
    // Joining the keyring after the filter failed with EPERM, so the
    // container did not start at all.
    assert_eq!(out, "Seccomp:\t2\n", "the profile is on");
}

/// An allow-list profile of the kind Docker shipped in 2017 and many
/// users still copy (test data): defaultAction as given, and only
/// syscalls of that era, so none of openat2, close_range, clone3,
/// faccessat2, rseq...
fn classic_profile(default: &str) -> Value {
    let mut p: Value =
        serde_json::from_str(include_str!("data/seccomp-classic-2017.json")).unwrap();
    p["defaultAction"] = json!(default);
    p
}

/// Removes `names` from the classic profile's allow list.
fn without(mut p: Value, names: &[&str]) -> Value {
    let list = p["syscalls"][0]["names"].as_array_mut().unwrap();
    list.retain(|n| !names.iter().any(|x| n == x));
    p
}

/// `grep` of the seccomp mode and capabilities of the init and of the
/// exec'd shell.
const STATUS: &str = "grep -E '^(Seccomp|CapEff|CapPrm):' /proc/1/status /proc/self/status";

/// `rt spec`'s capabilities (AUDIT_WRITE, KILL, NET_BIND_SERVICE): no
/// CAP_SYS_ADMIN left over from installing the filter.
const SPEC_CAPS: &str = "0000000020000420";

#[test]
fn an_old_allow_list_profile_runs_create_and_exec_with_and_without_no_new_privs() {
    for default in ["SCMP_ACT_ERRNO", "SCMP_ACT_KILL_PROCESS"] {
        for nnp in [false, true] {
            let what = format!("defaultAction {default}, noNewPrivileges {nnp}");
            let rt = Rt::new();
            let mut b = Bundle::busybox(&["sleep", "1000"]);
            b.edit(|c| {
                c["linux"]["seccomp"] = classic_profile(default);
                c["process"]["noNewPrivileges"] = json!(nnp);
                c["process"]["cwd"] = json!("/");
            });
            let id = unique_id("classic");
            let out = rt.run(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
            assert!(out.status.success(), "{what}: create: {}", stderr(&out));
            rt.created(&id);
            let out = rt.run(&["exec", &id, "sh", "-c", STATUS]);
            assert!(out.status.success(), "{what}: exec: {}", stderr(&out));
            let out = stdout(&out);
            for who in ["/proc/1/status", "/proc/self/status"] {
                for want in [
                    "Seccomp:\t2".to_string(),
                    format!("CapEff:\t{SPEC_CAPS}"),
                    format!("CapPrm:\t{SPEC_CAPS}"),
                ] {
                    assert!(
                        out.contains(&format!("{who}:{want}")),
                        "{what}: {who} should have {want:?}: {out}"
                    );
                }
            }
            rt.ok(&["delete", "-f", &id]);
            assert_no_leaks(&rt, &id, &b);
        }
    }
}

#[test]
fn a_profile_that_does_not_allow_seccomp_itself_is_installed_whole() {
    // The default filter goes in last: the rule filters before it need
    // seccomp(2), which this allow list leaves out.
    let mut p = without(
        classic_profile("SCMP_ACT_ERRNO"),
        &["seccomp", "mkdir", "mkdirat"],
    );
    p["syscalls"]
        .as_array_mut()
        .unwrap()
        .push(json!({"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}));
    let out = sh(
        |c| c["linux"]["seccomp"] = p,
        "mkdir /tmp/d 2>&1; grep ^Seccomp: /proc/self/status",
    );
    assert!(out.contains("Permission denied"), "the rule's errno: {out}");
    assert!(out.contains("Seccomp:\t2"), "{out}");
}

#[test]
fn syscalls_newer_than_the_profile_get_enosys() {
    // pidfd_open (434) is newer than every syscall the 2017 profile
    // names: ENOSYS, so a program falls back to what it replaces, even
    // with KILL_PROCESS as the default. uselib (134) is old and left out
    // on purpose: the default action.
    let dir = tempfile::tempdir().unwrap();
    let probe = build_probe(dir.path());
    for (default, old) in [
        ("SCMP_ACT_ERRNO", "nr 134: Operation not permitted"),
        ("SCMP_ACT_KILL_PROCESS", "killed"),
    ] {
        let rt = Rt::new();
        let mut b = Bundle::busybox(&["sh", "-c", "/probe nr 434; /probe nr 134 || echo killed"]);
        std::fs::copy(&probe, b.rootfs().join("probe")).unwrap();
        b.edit(|c| c["linux"]["seccomp"] = classic_profile(default));
        let id = unique_id("enosys");
        let (code, out, err) = run_in(&rt, &b, &id);
        assert_eq!(code, 0, "{default}: {err}");
        assert!(
            out.contains("nr 434: Function not implemented"),
            "{default}: {out}"
        );
        assert!(out.contains(old), "{default}: {out}");
        assert_no_leaks(&rt, &id, &b);
    }
}

#[test]
fn an_agent_answers_with_an_old_allow_list_profile_without_no_new_privs() {
    let rt = Rt::new();
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("agent.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let agent = std::thread::spawn(move || agent(listener));
    let mut p = without(classic_profile("SCMP_ACT_ERRNO"), &["mkdir", "mkdirat"]);
    p["listenerPath"] = json!(sock);
    p["syscalls"]
        .as_array_mut()
        .unwrap()
        .push(json!({"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}));
    let mut b = Bundle::busybox(&[
        "sh",
        "-c",
        &format!("mkdir /tmp/made; echo rc=$?; {STATUS}"),
    ]);
    b.edit(|c| {
        c["linux"]["seccomp"] = p;
        c["process"]["noNewPrivileges"] = json!(false);
    });
    let id = unique_id("oldagent");
    let (code, out, err) = run_in(&rt, &b, &id);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("rc=1"),
        "mkdir failed as the agent said: {out}"
    );
    assert!(
        err.contains("Read-only file system"),
        "the agent's errno: {err}"
    );
    assert!(
        out.contains(&format!("/proc/self/status:CapEff:\t{SPEC_CAPS}")),
        "no CAP_SYS_ADMIN left: {out}"
    );
    let (_, answered) = agent.join().unwrap();
    assert!(answered >= 1);
    assert_no_leaks(&rt, &id, &b);
}
