//! `rt exec`: a process in a running container, with runc's flags.

mod common;

use std::fs;
use std::process::{Command, Stdio};

use common::*;
use serde_json::json;

/// A running busybox container and its init's pid.
fn running(rt: &Rt) -> (Bundle, String, i64) {
    let b = Bundle::busybox(&["sleep", "1000"]);
    let id = unique_id("exec");
    let pid = rt.detached(&b, &id);
    (b, id, pid)
}

fn exec(rt: &Rt, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["exec"];
    all.extend(args);
    let out = rt.run(&all);
    (out.status.code().unwrap_or(-1), stdout(&out), stderr(&out))
}

#[test]
fn exec_joins_the_container_and_returns_the_exit_code() {
    let rt = Rt::new();
    let (b, id, pid) = running(&rt);
    let (code, out, err) = exec(
        &rt,
        &[
            &id,
            "sh",
            "-c",
            "for n in pid mnt net uts ipc cgroup; do readlink /proc/self/ns/$n; done; echo $$; exit 5",
        ],
    );
    assert_eq!(code, 5, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    for (i, n) in ["pid", "mnt", "net", "uts", "ipc", "cgroup"]
        .iter()
        .enumerate()
    {
        let init_ns = fs::read_link(format!("/proc/{pid}/ns/{n}")).unwrap();
        assert_eq!(lines[i], init_ns.to_str().unwrap(), "{n} namespace");
    }
    assert_ne!(lines[6], "1", "the exec'd process is not the init");
    // In the container's cgroup.
    let (_, out, _) = exec(&rt, &[&id, "cat", "/proc/self/cgroup"]);
    assert!(out.lines().any(|l| l == "0::/"), "{out}");
    rt.ok(&["delete", "-f", &id]);
    assert_no_leaks(&rt, &id, &b);
}

#[test]
fn exec_flags_shape_the_process() {
    let rt = Rt::new();
    let (b, id, _) = running(&rt);
    let (code, out, err) = exec(
        &rt,
        &[
            "--env",
            "FOO=bar",
            "-e",
            "PATH=/bin",
            "--user",
            "1000:1001",
            "--additional-gids",
            "7",
            "-g",
            "8",
            "--cwd",
            "/tmp",
            "--cap",
            "CAP_NET_RAW",
            "--no-new-privs",
            &id,
            "sh",
            "-c",
            "echo $FOO $PATH; id -u; id -g; id -G; pwd; grep -E 'CapBnd|NoNewPrivs' /proc/self/status",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "bar /bin");
    assert_eq!(lines[1], "1000");
    assert_eq!(lines[2], "1001");
    assert_eq!(lines[3], "1001 7 8");
    assert_eq!(lines[4], "/tmp");
    let bnd = u64::from_str_radix(lines[5].split_whitespace().nth(1).unwrap(), 16).unwrap();
    assert!(
        bnd & (1 << 13) != 0,
        "CAP_NET_RAW (13) in the bounding set: {}",
        lines[5]
    );
    assert!(lines[6].ends_with('1'), "{}", lines[6]);
    rt.ok(&["delete", "-f", &id]);
    assert_no_leaks(&rt, &id, &b);
}

#[test]
fn exec_with_a_process_file_and_detach() {
    let rt = Rt::new();
    let (b, id, _) = running(&rt);
    let dir = tempfile::tempdir().unwrap();
    let process = dir.path().join("process.json");
    fs::write(
        &process,
        serde_json::to_vec(&json!({
            "args": ["sh", "-c", "echo $GREETING > /dev/shm/from-exec; sleep 1000"],
            "env": ["GREETING=hello", "PATH=/bin"],
            "cwd": "/",
            "user": {"uid": 0, "gid": 0}
        }))
        .unwrap(),
    )
    .unwrap();
    let pid_file = dir.path().join("exec.pid");
    // With --process, the command line is ignored.
    rt.ok(&[
        "exec",
        "--process",
        process.to_str().unwrap(),
        "--detach",
        "--pid-file",
        pid_file.to_str().unwrap(),
        &id,
    ]);
    let pid: i64 = fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(alive(pid), "the detached process runs");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let (_, out, _) = exec(&rt, &[&id, "cat", "/dev/shm/from-exec"]);
        if out == "hello\n" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{out}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    rt.ok(&["delete", "-f", &id]);
    assert!(!alive(pid), "delete -f kills exec'd processes too");
    assert_no_leaks(&rt, &id, &b);
}

#[test]
fn exec_errors() {
    let rt = Rt::new();
    // rt's own failures exit 255, as runc's: the process's code is the
    // rest.
    let (code, _, err) = exec(&rt, &["no-such-container", "true"]);
    assert_eq!(code, 255);
    assert_one_line_error(&err, &["container does not exist", "no-such-container"]);

    let (b, id, _) = running(&rt);
    let (code, _, err) = exec(&rt, &[&id, "no-such-program"]);
    assert_eq!(code, 255);
    let (code, _, _) = exec(&rt, &[&id, "sh", "-c", "exit 1"]);
    assert_eq!(code, 1, "the process's own code");
    let (code, _, err2) = exec(&rt, &["--pid-file", "/no/such/dir/pid", &id, "true"]);
    assert_eq!(code, 255, "{err2}");
    assert_one_line_error(&err, &["no-such-program", "executable file not found"]);
    let (_, _, err) = exec(&rt, &[&id]);
    assert_one_line_error(&err, &["no command given"]);
    let (_, _, err) = exec(
        &rt,
        &[
            "--process-label",
            "system_u:system_r:container_t",
            &id,
            "true",
        ],
    );
    assert_one_line_error(&err, &["--process-label", "not supported"]);
    let (_, _, err) = exec(&rt, &["--user", "root", &id, "true"]);
    assert_one_line_error(&err, &["--user", "root"]);
    let (_, _, err) = exec(&rt, &["--cap", "CAP_NOPE", &id, "true"]);
    assert_one_line_error(&err, &["CAP_NOPE"]);
    let (_, _, err) = exec(&rt, &["-t", "-d", &id, "true"]);
    assert_one_line_error(&err, &["--console-socket"]);

    rt.ok(&["kill", &id, "KILL"]);
    rt.wait_status(&id, "stopped");
    let (code, _, err) = exec(&rt, &[&id, "true"]);
    assert_eq!(code, 255);
    assert_one_line_error(&err, &["cannot exec in a stopped container"]);
    rt.ok(&["delete", &id]);
    assert_no_leaks(&rt, &id, &b);
}

#[test]
fn interactive_exec_with_a_terminal() {
    // `script` gives rt a terminal, as a user's shell would; the commands
    // are typed into it.
    let rt = Rt::new();
    let (b, id, _) = running(&rt);
    let cmd = format!(
        "{} --root {} exec -t {} sh",
        rt_bin(),
        rt.root().display(),
        id
    );
    let mut child = Command::new("script")
        .args(["-q", "-e", "-c", &cmd, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script (util-linux) is installed by scripts/deps.sh --test");
    {
        use std::io::Write;
        let stdin = child.stdin.as_mut().unwrap();
        stdin
            .write_all(b"tty; echo sum-$((40+2)); test -t 0 && echo interactive; exit 4\n")
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    assert_eq!(
        out.status.code(),
        Some(4),
        "exit code through the pty: {text}"
    );
    assert!(text.contains("/dev/pts/"), "{text}");
    assert!(text.contains("sum-42"), "{text}");
    assert!(text.contains("interactive"), "{text}");
    rt.ok(&["delete", "-f", &id]);
    assert_no_leaks(&rt, &id, &b);
}
