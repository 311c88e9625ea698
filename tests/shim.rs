//! The standalone shim: `rt create` and `rt run -d` by hand hand the
//! container to an rt-shim that reaps it, records its exit, keeps its
//! output (`rt logs`), holds its terminal (`rt attach`) and answers
//! `rt wait`; callers that pass --pid-file get runc's behaviour.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use rt_testkit::wait_for_handler;
use serde_json::json;

/// The shim of a container: the parent of its init.
fn shim_of(init: i64) -> i64 {
    let stat = fs::read_to_string(format!("/proc/{init}/stat")).unwrap();
    let rest = stat.rsplit_once(") ").unwrap().1;
    rest.split(' ').nth(1).unwrap().parse().unwrap()
}

fn comm(pid: i64) -> String {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Kills a process by pid when dropped (a test's stray shim).
struct KillOnDrop(i64);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if alive(self.0) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(i32::try_from(self.0).unwrap()),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

#[test]
fn create_hands_the_container_to_a_shim_that_records_its_exit() {
    let rt = Rt::new();
    let b = Bundle::busybox(&["sleep", "1000"]);
    let id = unique_id("shim");
    rt.ok(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    let shim = shim_of(pid);
    let _guard = KillOnDrop(shim);
    assert_eq!(comm(shim), "rt-shim", "the init's parent is its shim");
    // Its own session, so a closing terminal does not reach it.
    let sid = nix::unistd::getsid(Some(nix::unistd::Pid::from_raw(
        i32::try_from(shim).unwrap(),
    )))
    .unwrap();
    assert_eq!(sid.as_raw() as i64, shim);
    // Not in the container's cgroup.
    let cg = fs::read_to_string(format!("/proc/{shim}/cgroup")).unwrap();
    assert!(!cg.contains(&default_cgroup(rt.root(), &id)), "{cg}");

    rt.ok(&["start", &id]);
    rt.ok(&["kill", &id, "KILL"]);
    let waited = rt.ok(&["wait", &id]);
    assert_eq!(waited.trim(), "137");
    let st = rt.state(&id);
    assert_eq!(st["status"], "stopped");
    assert_eq!(st["exitStatus"], 137);
    assert_eq!(st["exitSignal"], "SIGKILL");
    assert!(humantime::parse_rfc3339(st["exitedAt"].as_str().unwrap()).is_ok());
    let list = rt.ok(&["list"]);
    assert!(list.contains("stopped (137)"), "{list}");
    // The shim left once its work was done.
    eventually("the shim to exit", || !alive(shim));
    rt.ok(&["delete", &id]);
    assert!(!rt.root().join(&id).exists());
    assert_no_leaks(&rt, &id, &b);
}

#[test]
fn exit_code_and_wait_after_the_fact() {
    let rt = Rt::new();
    let b = Bundle::busybox(&["sh", "-c", "exit 3"]);
    let id = unique_id("exit3");
    rt.ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    rt.wait_status(&id, "stopped");
    // wait on a container that already exited still answers.
    assert_eq!(rt.ok(&["wait", &id]).trim(), "3");
    assert_eq!(rt.state(&id)["exitStatus"], 3);
    assert!(rt.state(&id).get("exitSignal").is_none());
    rt.ok(&["delete", &id]);
    let err = rt.fails(&["wait", &id]);
    assert_one_line_error(&err, &["does not exist", &id]);
}

#[test]
fn the_shim_outlives_its_caller_and_the_callers_session() {
    let rt = Rt::new();
    // pid 1 of a pid namespace ignores signals it has no handler for.
    let b = Bundle::busybox(&[
        "sh",
        "-c",
        "trap 'exit 143' TERM; while :; do sleep 0.1; done",
    ]);
    let id = unique_id("orphan");
    rt.created(&id);
    // rt run -d from a shell in its own session that exits at once.
    let status = Command::new("setsid")
        .arg("-w")
        .arg("sh")
        .arg("-c")
        .arg(format!(
            "{} --root {} run -d --bundle {} {id} </dev/null >/dev/null 2>&1",
            rt_bin(),
            rt.root().display(),
            b.path().display()
        ))
        .status()
        .unwrap();
    assert!(status.success());
    let st = rt.state(&id);
    assert_eq!(st["status"], "running");
    let shim = shim_of(st["pid"].as_i64().unwrap());
    let _guard = KillOnDrop(shim);
    assert_eq!(comm(shim), "rt-shim");
    let init = st["pid"].as_i64().unwrap();
    assert!(
        wait_for_handler(init, libc::SIGTERM, Duration::from_secs(20)),
        "the shell never trapped TERM"
    );
    rt.ok(&["kill", &id, "TERM"]);
    assert_eq!(rt.ok(&["wait", &id]).trim(), "143");
    rt.ok(&["delete", &id]);
    assert_no_leaks(&rt, &id, &b);
}

#[test]
fn pid_file_or_never_means_runcs_behaviour() {
    let rt = Rt::new();
    let b = Bundle::busybox(&["sleep", "1000"]);
    for (i, flags) in [
        vec![
            "--pid-file".to_string(),
            b.path().join("p").display().to_string(),
        ],
        vec![],
    ]
    .into_iter()
    .enumerate()
    {
        let id = unique_id("noshim");
        let mut args: Vec<String> = vec![];
        if i == 1 {
            args.push("--shim=never".into());
        }
        args.extend([
            "create".into(),
            "--bundle".into(),
            b.path().display().to_string(),
        ]);
        args.extend(flags);
        args.push(id.clone());
        rt.ok(&args);
        let pid = rt.state(&id)["pid"].as_i64().unwrap();
        assert_ne!(comm(shim_of(pid)), "rt-shim", "{args:?}");
        let err = rt.fails(&["wait", &id]);
        assert_one_line_error(&err, &["has no rt-shim"]);
        rt.ok(&["delete", "-f", &id]);
        assert!(rt.state_missing(&id));
    }
    // RT_SHIM=always overrides --pid-file.
    let id = unique_id("always");
    rt.created(&id);
    let out = rt
        .cmd(&[
            "create",
            "--bundle",
            b.path().to_str().unwrap(),
            "--pid-file",
            b.path().join("p2").to_str().unwrap(),
            &id,
        ])
        .env("RT_SHIM", "always")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(out.success());
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    assert_eq!(
        fs::read_to_string(b.path().join("p2")).unwrap().trim(),
        pid.to_string()
    );
    assert_eq!(comm(shim_of(pid)), "rt-shim");
    rt.ok(&["delete", "-f", &id]);
}

#[test]
fn logs_keep_stdout_and_stderr_apart_with_since_and_tail() {
    let rt = Rt::new();
    let b = Bundle::busybox(&[
        "sh",
        "-c",
        "echo one; echo oops >&2; echo two; sleep 1; echo three",
    ]);
    let id = unique_id("logs");
    rt.ok(&[
        "run",
        "-d",
        "--log-output",
        "--bundle",
        b.path().to_str().unwrap(),
        &id,
    ]);
    // -f follows until the container is done.
    let out = rt.run(&["logs", "-f", &id]);
    assert!(out.status.success());
    assert_eq!(stdout(&out), "one\ntwo\nthree\n");
    assert_eq!(stderr(&out), "oops\n");
    let tail = rt.run(&["logs", "--tail", "1", &id]);
    assert_eq!(stdout(&tail), "three\n");
    assert_eq!(stderr(&tail), "");
    let future = humantime::format_rfc3339(std::time::SystemTime::now() + Duration::from_secs(60));
    let none = rt.run(&["logs", "--since", &future.to_string(), &id]);
    assert_eq!(stdout(&none), "");
    let recent = rt.run(&["logs", "--since", "1h", &id]);
    assert_eq!(stdout(&recent), "one\ntwo\nthree\n");
    let stamped = rt.ok(&["logs", "-t", &id]);
    let first = stamped.lines().next().unwrap();
    let (time, text) = first.split_once(' ').unwrap();
    assert!(humantime::parse_rfc3339(time).is_ok(), "{first}");
    assert_eq!(text, "one");
    let err = rt.fails(&["logs", "--since", "last tuesday", &id]);
    assert_one_line_error(&err, &["--since", "last tuesday"]);
    rt.ok(&["delete", &id]);
    assert_no_leaks(&rt, &id, &b);
}

#[test]
fn without_capture_the_output_goes_to_the_callers_descriptors() {
    use std::io::{Read, Seek};
    let rt = Rt::new();
    let b = Bundle::busybox(&["sh", "-c", "echo to-caller"]);
    let id = unique_id("direct");
    // rt's stdout is a file the test keeps: the container writes its line
    // there after `rt run -d` has returned, so it is read once the
    // container has exited (`rt wait`), not when rt did.
    let mut out = tempfile::tempfile().unwrap();
    let st = rt
        .cmd(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id])
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(Stdio::inherit())
        .status()
        .unwrap();
    assert!(st.success(), "rt run -d");
    let waited = rt.ok(&["wait", &id]);
    let mut text = String::new();
    out.rewind().unwrap();
    out.read_to_string(&mut text).unwrap();
    assert_eq!(
        text,
        "to-caller\n",
        "rt wait: {waited:?}; state: {}",
        rt.state(&id)
    );
    let err = rt.fails(&["logs", &id]);
    assert_one_line_error(&err, &["has no log", "--log-output"]);
    rt.ok(&["delete", &id]);
}

#[test]
fn a_terminal_container_is_held_by_the_shim_and_attachable() {
    let rt = Rt::new();
    let mut b = Bundle::busybox(&["sh"]);
    b.edit(|c| c["process"]["terminal"] = json!(true));
    let id = unique_id("tty");
    rt.ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    // `script` gives rt attach a terminal; the input is typed into it.
    let attach = format!("{} --root {} attach {id}", rt_bin(), rt.root().display());
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "(sleep 0.5; printf 'echo hi-$((6*7))\\n'; sleep 0.5; printf 'exit 5\\n'; sleep 2) | script -qec '{attach}' /dev/null; echo \"attach-exit=$?\""
        ))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("hi-42"), "{text}");
    assert!(text.contains("attach-exit=5"), "{text}");
    assert_eq!(rt.ok(&["wait", &id]).trim(), "5");
    // What the terminal showed is in the log too.
    let logs = rt.ok(&["logs", &id]);
    assert!(logs.contains("hi-42"), "{logs}");
    rt.ok(&["delete", &id]);
    let err = rt.fails(&["attach", &id]);
    assert_one_line_error(&err, &["does not exist", &id]);
    assert_no_leaks(&rt, &id, &b);
}

/// `rt attach` from a terminal that already holds a typed-ahead line and
/// an end of file: the line reaches the container, and the ^D does not
/// arrive as a NUL (echoed "^@") once attach makes the terminal raw.
#[test]
fn attach_passes_typed_ahead_input_on_and_no_nul_for_an_ended_terminal() {
    let rt = Rt::new();
    let mut b = Bundle::busybox(&["sh", "-c", "read line; echo \"line=[$line]\""]);
    b.edit(|c| c["process"]["terminal"] = json!(true));
    let id = unique_id("ttyahead");
    rt.ok(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    // The ^D is taken in with the line, in the same pass.
    let (_master, terminal) = terminal_holding(b"hello\n\x04");
    let out = rt
        .cmd(&["attach", &id])
        .stdin(Stdio::from(terminal))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text} {}", stderr(&out));
    assert!(text.contains("line=[hello]"), "{text:?}");
    assert!(!text.contains("^@") && !text.contains('\0'), "{text:?}");
    assert_eq!(rt.ok(&["wait", &id]).trim(), "0");
    rt.ok(&["delete", &id]);
    assert_no_leaks(&rt, &id, &b);
}

#[test]
fn attach_to_a_container_without_a_terminal_says_so() {
    let rt = Rt::new();
    let b = Bundle::busybox(&["sleep", "1000"]);
    let id = unique_id("noterm");
    rt.detached(&b, &id);
    let err = rt.fails(&["attach", &id]);
    assert_one_line_error(&err, &["no terminal", "rt logs"]);
    rt.ok(&["delete", "-f", &id]);
}

#[test]
fn a_killed_shim_leaves_an_unknown_exit_and_delete_still_cleans_up() {
    let rt = Rt::new();
    let b = Bundle::busybox(&["sleep", "1000"]);
    let id = unique_id("shimkill");
    let pid = rt.detached(&b, &id);
    let shim = shim_of(pid);
    assert_eq!(comm(shim), "rt-shim");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(shim).unwrap()),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    eventually("the shim to die", || !alive(shim));
    rt.ok(&["kill", &id, "KILL"]);
    rt.wait_status(&id, "stopped");
    let st = rt.state(&id);
    assert!(st["exitStatus"].is_null(), "{st}");
    let err = rt.fails(&["wait", &id]);
    assert_one_line_error(&err, &["rt-shim is gone", &id]);
    rt.ok(&["delete", &id]);
    assert_no_leaks(&rt, &id, &b);
}

#[test]
fn a_missing_shim_binary_fails_create_cleanly() {
    let rt = Rt::new();
    let b = Bundle::busybox(&["true"]);
    let id = unique_id("noshimbin");
    // An rt with no rt-shim beside it or in PATH.
    let dir = tempfile::tempdir().unwrap();
    let lone = dir.path().join("rt");
    fs::copy(rt_bin(), &lone).unwrap();
    // Another test thread forking while the copy was open for writing
    // holds it a moment longer (ETXTBSY): try again then.
    let mut tries = 0;
    let out = loop {
        match Command::new(&lone)
            .arg("--root")
            .arg(rt.root())
            .args(["create", "--bundle", b.path().to_str().unwrap(), &id])
            .env("PATH", "/usr/bin:/bin")
            .stdin(Stdio::null())
            .output()
        {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 50 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            r => break r.unwrap(),
        }
    };
    assert!(!out.status.success());
    assert_one_line_error(&stderr(&out), &["rt-shim was not found", "--shim=never"]);
    assert_no_leaks(&rt, &id, &b);
    assert!(!Path::new(&rt.root().join(&id)).exists());
}

#[test]
fn the_shim_keeps_none_of_the_callers_other_descriptors() {
    // A caller that reads a pipe to its end (runc's checkpoint.bats, a
    // script's `$(...)`) must not wait on the container: the init gets
    // only its stdio and preserved fds, and the shim none of the caller's.
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let rt = Rt::new();
    let b = Bundle::busybox(&["sleep", "1000"]);
    let id = unique_id("shimfd");
    // Close-on-exec here, so no other test's child gets it; dup2'd to fd
    // 250 (inherited) in rt's child only.
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    let raw = w.as_raw_fd();
    let mut cmd = rt.cmd(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: dup2 is async-signal-safe; only the child's table changes.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(raw, 250) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    assert!(cmd.status().unwrap().success(), "rt run -d");
    drop(w);
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    let _guard = KillOnDrop(shim_of(pid));
    let mut fds = [nix::poll::PollFd::new(
        std::os::fd::AsFd::as_fd(&r),
        nix::poll::PollFlags::POLLIN,
    )];
    // POLLHUP once no writer is left: at once with the fix (the bound is
    // only there so a failure ends).
    let n = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(10_000u16)).unwrap();
    let holders = holders_of_pipe(&r);
    rt.ok(&["delete", "-f", &id]);
    assert_eq!(n, 1, "the write end is still open in: {holders:?}");
}

/// The processes that hold the other end of the pipe `r` (for the
/// failure message).
fn holders_of_pipe(r: &std::os::fd::OwnedFd) -> Vec<String> {
    use std::os::fd::AsRawFd;
    let me = fs::read_link(format!("/proc/self/fd/{}", r.as_raw_fd())).unwrap();
    let mut out = vec![];
    for p in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = p.file_name().to_string_lossy().parse::<i64>() else {
            continue;
        };
        let Ok(fds) = fs::read_dir(p.path().join("fd")) else {
            continue;
        };
        let holds = fds
            .flatten()
            .any(|f| fs::read_link(f.path()).is_ok_and(|l| l == me));
        if holds && pid != i64::from(std::process::id()) {
            out.push(format!("{pid} {}", comm(pid)));
        }
    }
    out
}
