//! Reliability: races between commands, faults in the middle of a
//! create, and damaged or full state directories. Each test drives the
//! built `rt` as a user or a manager would and then checks that nothing
//! is left: no state directory, cgroup, mount or process.
//!
//! A killed shim is covered by `tests/shim.rs`
//! (`a_killed_shim_leaves_an_unknown_exit_and_delete_still_cleans_up`).

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

/// Runs `rt ARGS...` and fails the test if it takes longer than `limit`
/// (a hang), killing it first.
fn run_within(rt: &Rt, args: &[&str], limit: Duration) -> Output {
    let mut out = tempfile::tempfile().unwrap();
    let mut err = tempfile::tempfile().unwrap();
    let mut child = rt
        .cmd(args)
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(err.try_clone().unwrap())
        .spawn()
        .expect("spawn rt");
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("rt {args:?} hung for more than {limit:?}");
        }
        std::thread::sleep(Duration::from_micros(500));
    };
    Output {
        status,
        stdout: read(&mut out),
        stderr: read(&mut err),
    }
}

fn read(f: &mut fs::File) -> Vec<u8> {
    use std::io::{Read, Seek};
    let mut v = Vec::new();
    f.seek(std::io::SeekFrom::Start(0)).unwrap();
    f.read_to_end(&mut v).unwrap();
    v
}

/// What every rt command must do whatever it races with: exit 0, or exit
/// 1 with one `rt: ` line; never a panic or a signal.
fn assert_clean_exit(what: &str, out: &Output) {
    let err = stderr(out);
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{what} panicked: {err}"
    );
    match out.status.code() {
        Some(0) => {}
        Some(1) => {
            // `list` may warn about a container that vanished mid-read.
            let errors: Vec<&str> = err
                .lines()
                .filter(|l| !l.starts_with("rt: warning: "))
                .collect();
            assert_eq!(errors.len(), 1, "{what}: want one error line: {err:?}");
            assert!(errors[0].starts_with("rt: "), "{what}: {err:?}");
        }
        other => panic!("{what}: exit {other:?} ({}); stderr: {err}", out.status),
    }
}

/// Checks the JSON `rt state` printed: a whole, valid state.
fn assert_valid_state(id: &str, text: &str) {
    let st: Value =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("state of {id}: {e}: {text:?}"));
    assert_eq!(st["id"], id, "{text}");
    let status = st["status"].as_str().expect("status");
    assert!(
        ["creating", "created", "running", "stopped"].contains(&status),
        "{text}"
    );
    let pid = st["pid"].as_i64().expect("pid");
    if status == "created" || status == "running" {
        assert!(pid > 0, "{status} with pid {pid}: {text}");
    }
    assert!(st["bundle"].as_str().is_some_and(|b| !b.is_empty()));
}

/// rt-shim processes watching `<root>/<id>`.
fn shims_of(rt: &Rt, id: &str) -> Vec<i64> {
    let dir = rt.root().join(id);
    let mut found = vec![];
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i64>() else {
            continue;
        };
        let cmdline = fs::read(e.path().join("cmdline")).unwrap_or_default();
        let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
        let is_shim = args
            .first()
            .is_some_and(|a| a.ends_with(b"rt-shim") && alive(pid));
        if is_shim && args.contains(&dir.as_os_str().as_encoded_bytes()) {
            found.push(pid);
        }
    }
    found
}

/// Everything a container can leave, including a shim still running.
fn assert_all_gone(rt: &Rt, id: &str, b: &Bundle) {
    assert_no_leaks(rt, id, b);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !shims_of(rt, id).is_empty() {
        assert!(
            Instant::now() < deadline,
            "{id}: rt-shim left running: {:?}",
            shims_of(rt, id)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn bundle_arg(b: &Bundle) -> &str {
    b.path().to_str().unwrap()
}

fn ppid(pid: i64) -> Option<i64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.split(' ').nth(1)?.parse().ok()
}

fn cgroup_procs(root: &Path, id: &str) -> Vec<i64> {
    fs::read_to_string(format!(
        "{CGROUP2}/{}/cgroup.procs",
        default_cgroup(root, id)
    ))
    .unwrap_or_default()
    .lines()
    .filter_map(|l| l.parse().ok())
    .collect()
}

/// The container's init while a create is under way: the process of its
/// cgroup whose parent is outside it (the creator).
fn init_of(root: &Path, id: &str) -> Option<i64> {
    let procs = cgroup_procs(root, id);
    procs
        .iter()
        .copied()
        .find(|p| ppid(*p).is_some_and(|pp| !procs.contains(&pp)))
}

fn sigkill(pid: i64) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap()),
        nix::sys::signal::Signal::SIGKILL,
    );
}

/// Kills a spawned child when dropped (a test that fails half-way).
struct Reap(Option<Child>);

impl Reap {
    fn wait(mut self) -> Output {
        self.0.take().unwrap().wait_with_output().unwrap()
    }
}

impl Drop for Reap {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

// ---------------------------------------------------------------- races

/// 1,000 foreground runs of `true` in a row: none hangs (rt watches the
/// init through a pidfd from the clone on), none fails, nothing is left.
#[test]
fn a_thousand_runs_of_true_back_to_back() {
    let rt = Rt::new();
    let b = Bundle::busybox(&["true"]);
    let start = Instant::now();
    let mut slowest = Duration::ZERO;
    for i in 0..1000 {
        let id = unique_id("k");
        let t = Instant::now();
        let out = run_within(
            &rt,
            &["run", "--bundle", bundle_arg(&b), &id],
            Duration::from_secs(30),
        );
        slowest = slowest.max(t.elapsed());
        assert_eq!(out.status.code(), Some(0), "run {i}: {}", stderr(&out));
        if i % 100 == 0 {
            assert_no_leaks(&rt, &id, &b);
        }
    }
    eprintln!(
        "1000 runs of true: {:?} ({:?} each on average, slowest {slowest:?})",
        start.elapsed(),
        start.elapsed() / 1000
    );
    let left: Vec<_> = fs::read_dir(rt.root()).unwrap().flatten().collect();
    assert!(left.is_empty(), "state left: {left:?}");
    let prefix = format!("k-{}-", std::process::id());
    let cgroups: Vec<_> = fs::read_dir(Path::new(CGROUP2).join("rt"))
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    assert!(cgroups.is_empty(), "cgroups left: {cgroups:?}");
}

/// Two creates of one id at the same moment, 100 times, with and without
/// a shim: exactly one wins, the other says the id exists, and the loser
/// leaves no process, shim, cgroup or state behind.
#[test]
fn two_creates_of_one_id_race_a_hundred_times() {
    let rt = Rt::new();
    let b = Bundle::busybox(&["sleep", "1000"]);
    for round in 0..100 {
        let shim = if round % 2 == 0 {
            "--shim=auto"
        } else {
            "--shim=never"
        };
        let id = unique_id("dup");
        rt.created(&id);
        let create = || {
            run_within(
                &rt,
                &[shim, "create", "--bundle", bundle_arg(&b), &id],
                Duration::from_secs(30),
            )
        };
        let barrier = std::sync::Barrier::new(2);
        let (a, c) = std::thread::scope(|s| {
            let h = s.spawn(|| {
                barrier.wait();
                create()
            });
            barrier.wait();
            let c = create();
            (h.join().unwrap(), c)
        });
        let wins = [&a, &c].iter().filter(|o| o.status.success()).count();
        assert_eq!(wins, 1, "round {round} ({shim}): {a:?} {c:?}");
        let loser = if a.status.success() { &c } else { &a };
        assert_one_line_error(
            &stderr(loser),
            &["container with given ID already exists", &id],
        );
        let pid = rt.state(&id)["pid"].as_i64().unwrap();
        assert_eq!(
            cgroup_procs(rt.root(), &id),
            vec![pid],
            "round {round}: one init"
        );
        let shims = shims_of(&rt, &id);
        assert_eq!(shims.len(), usize::from(round % 2 == 0), "round {round}");
        rt.ok(&["delete", "-f", &id]);
        assert_all_gone(&rt, &id, &b);
    }
}

/// `delete -f` racing `kill`, `state`, `list` and another `delete -f`
/// while containers are created, started and deleted: every command exits
/// 0 or 1 with one clear line, every state printed is whole and valid,
/// and nothing is left.
#[test]
fn delete_force_races_kill_state_and_list() {
    let rt = Rt::new();
    let b = Bundle::busybox(&["sleep", "1000"]);
    let rounds = 30;
    let mut counts = [0usize; 2]; // (ok, refused) over the racers
    for round in 0..rounds {
        let id = unique_id("racer");
        rt.created(&id);
        let done = std::sync::atomic::AtomicBool::new(false);
        let limit = Duration::from_secs(30);
        let results = std::thread::scope(|s| {
            let racers: Vec<_> = [
                vec!["state", id.as_str()],
                vec!["kill", id.as_str(), "KILL"],
                vec!["list", "-f", "json"],
                vec!["delete", "-f", id.as_str()],
            ]
            .into_iter()
            .map(|args| {
                let (rt, done, id) = (&rt, &done, &id);
                s.spawn(move || {
                    let mut n = [0usize; 2];
                    while !done.load(std::sync::atomic::Ordering::Relaxed) {
                        let out = run_within(rt, &args, limit);
                        assert_clean_exit(&format!("round {round}: rt {args:?}"), &out);
                        n[usize::from(!out.status.success())] += 1;
                        if !out.status.success() {
                            continue;
                        }
                        match args[0] {
                            "state" => assert_valid_state(id, &stdout(&out)),
                            "list" => {
                                let v: Value = serde_json::from_slice(&out.stdout)
                                    .unwrap_or_else(|e| panic!("list: {e}: {}", stdout(&out)));
                                // runc's shape: null when there is none.
                                let none = Vec::new();
                                let list = if v.is_null() {
                                    &none
                                } else {
                                    v.as_array().expect("list is an array or null")
                                };
                                for c in list {
                                    assert!(c["status"].is_string(), "{c}");
                                }
                            }
                            _ => {}
                        }
                    }
                    n
                })
            })
            .collect();
            // The lifecycle the racers fall upon.
            let lifecycle: [&[&str]; 3] = [
                &["create", "--bundle", bundle_arg(&b), &id],
                &["start", &id],
                &["delete", "-f", &id],
            ];
            for args in lifecycle {
                let out = run_within(&rt, args, limit);
                assert_clean_exit(&format!("round {round}: rt {args:?}"), &out);
            }
            done.store(true, std::sync::atomic::Ordering::Relaxed);
            racers
                .into_iter()
                .map(|h| h.join().unwrap())
                .collect::<Vec<_>>()
        });
        for n in results {
            counts[0] += n[0];
            counts[1] += n[1];
        }
        rt.ok(&["delete", "-f", &id]);
        assert_all_gone(&rt, &id, &b);
    }
    eprintln!(
        "{rounds} rounds: racing commands {} succeeded, {} refused cleanly",
        counts[0], counts[1]
    );
    assert!(
        counts[0] > 0 && counts[1] > 0,
        "the racers raced: {counts:?}"
    );
}

// --------------------------------------------------------------- faults

/// Where `rt create` is killed.
#[derive(Debug, Clone, Copy)]
enum Stage {
    /// As soon as the init exists in its cgroup (it is making mounts).
    AfterClone,
    /// While a createRuntime hook runs: the mounts are made, the state
    /// still says "creating".
    CreateRuntimeHook,
    /// While a createContainer hook runs in the container, before
    /// pivot_root.
    CreateContainerHook,
}

/// A host hook that writes its pid to `marker` and then waits.
fn pausing_hook(marker: &Path) -> Value {
    json!({
        "path": "/bin/sh",
        "args": ["sh", "-c", format!("echo $$ > {}.tmp; mv {0}.tmp {0}; exec sleep 1000", marker.display())],
    })
}

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Returns whether the kill landed during the create (not after it).
fn kill_create_at(stage: Stage, shim: bool) -> bool {
    let rt = Rt::new();
    let mut b = Bundle::busybox(&["sleep", "1000"]);
    let marks = tempfile::tempdir().unwrap();
    let marker = marks.path().join("hook.pid");
    match stage {
        Stage::AfterClone => {}
        Stage::CreateRuntimeHook => {
            b.edit(|c| c["hooks"] = json!({"createRuntime": [pausing_hook(&marker)]}))
        }
        Stage::CreateContainerHook => {
            b.edit(|c| c["hooks"] = json!({"createContainer": [pausing_hook(&marker)]}))
        }
    }
    let what = format!("{stage:?} with shim={shim}");
    let id = unique_id("killed");
    rt.created(&id);
    let mode = if shim {
        "--shim=always"
    } else {
        "--shim=never"
    };
    // A file, not a pipe: without a shim the init shares rt's stderr, so
    // a pipe would not reach EOF when rt dies.
    let mut err_file = tempfile::tempfile().unwrap();
    let caller = Reap(Some(
        rt.cmd(&[mode, "create", "--bundle", bundle_arg(&b), &id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err_file.try_clone().unwrap())
            .spawn()
            .unwrap(),
    ));
    let limit = Duration::from_secs(20);
    match stage {
        Stage::AfterClone => wait_for("the init", limit, || init_of(rt.root(), &id).is_some()),
        _ => wait_for("the hook", limit, || marker.exists()),
    }
    // The process making the container is the init's parent: rt itself,
    // or with a shim the child rt forked to become it.
    let init = init_of(rt.root(), &id).expect("the init exists");
    let creator = ppid(init).unwrap();
    let caller_pid = caller.0.as_ref().unwrap().id() as i64;
    // Too late if the create already finished: the init was handed to
    // rt-shim (which a kill would then hit: tests/shim.rs covers that) or,
    // without a shim, rt exited and the init was reparented.
    let exe = fs::read_link(format!("/proc/{creator}/exe")).unwrap_or_default();
    let late = if shim {
        exe.ends_with("rt-shim")
    } else {
        creator != caller_pid
    };
    if late {
        assert!(caller.wait().status.success(), "{what}");
        rt.ok(&["delete", "-f", &id]);
        assert_all_gone(&rt, &id, &b);
        return false;
    }
    let hook: Option<i64> = match stage {
        Stage::CreateRuntimeHook => {
            Some(fs::read_to_string(&marker).unwrap().trim().parse().unwrap())
        }
        _ => None,
    };
    if let Stage::CreateRuntimeHook = stage {
        // The state is not written as created before the hooks are done.
        assert_eq!(rt.status(&id), "creating", "{what}");
    }
    sigkill(creator);
    let status = caller.wait().status;
    if shim {
        // The caller survives and says what happened to the container.
        assert_eq!(status.code(), Some(1), "{what}");
        let err = String::from_utf8_lossy(&read(&mut err_file)).into_owned();
        assert_one_line_error(&err, &[&id, "rt delete -f"]);
    }
    if let Some(h) = hook {
        wait_for("the hook to die with rt", limit, || !alive(h));
    }
    // `list` shows what is left as stopped, and `delete` removes it.
    wait_for("the creator to be gone", limit, || !alive(creator));
    let list: Value = serde_json::from_str(&rt.ok(&["list", "-f", "json"])).unwrap();
    let row = list
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["id"] == id.as_str());
    // The create commits by saving its state as created, a few
    // instructions before rt exits (or execs rt-shim): a kill that lands in
    // that gap finds a finished container, whose init waits for `start`.
    // Anything else the kill interrupted must read as stopped.
    let committed = row.is_some_and(|r| r["status"] == "created");
    if committed {
        assert!(alive(init), "{what}: created, but its init is gone");
    } else if let Some(row) = row {
        assert_eq!(row["status"], "stopped", "{what}: {row}");
    }
    rt.ok(&["delete", "-f", &id]);
    assert!(!alive(init), "{what}: the init survived delete");
    assert_all_gone(&rt, &id, &b);
    !committed
}

#[test]
fn sigkill_of_create_after_the_clone() {
    let mut in_time = [0; 2];
    for _ in 0..5 {
        for shim in [false, true] {
            in_time[usize::from(shim)] += usize::from(kill_create_at(Stage::AfterClone, shim));
        }
    }
    // The window is the whole create (mounts, devices, pivot): the kill
    // lands in it nearly every time.
    assert!(
        in_time.iter().all(|&n| n > 0),
        "no kill landed in time: {in_time:?}"
    );
}

#[test]
fn sigkill_of_create_while_a_create_runtime_hook_runs() {
    // The hook holds the create, so the kill is always in time.
    assert!(kill_create_at(Stage::CreateRuntimeHook, false));
    assert!(kill_create_at(Stage::CreateRuntimeHook, true));
}

#[test]
fn sigkill_of_create_while_a_create_container_hook_runs() {
    // The hook holds the create, so the kill is always in time.
    assert!(kill_create_at(Stage::CreateContainerHook, false));
    assert!(kill_create_at(Stage::CreateContainerHook, true));
}

/// `rt create` (no shim: rt is the creator) killed at 40 moments spread
/// over a create, from before the state directory exists to after the
/// init waits for start: `list` never fails, `delete -f` always cleans.
#[test]
fn sigkill_of_create_at_any_moment() {
    let rt = Rt::new();
    let b = Bundle::busybox(&["sleep", "1000"]);
    // How long one create takes here.
    let id = unique_id("timed");
    let t = Instant::now();
    rt.ok(&["--shim=never", "create", "--bundle", bundle_arg(&b), &id]);
    let took = t.elapsed();
    rt.ok(&["delete", "-f", &id]);
    let n = 40;
    let mut left_created = 0;
    for i in 0..n {
        let id = unique_id("anytime");
        rt.created(&id);
        let mut child = Reap(Some(
            rt.cmd(&["--shim=never", "create", "--bundle", bundle_arg(&b), &id])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        ));
        std::thread::sleep(took * i / n);
        let c = child.0.as_mut().unwrap();
        let _ = c.kill();
        let status = c.wait().unwrap();
        child.0 = None;
        if status.success() {
            left_created += 1;
        }
        let out = run_within(&rt, &["list", "-f", "json"], Duration::from_secs(10));
        assert_eq!(out.status.code(), Some(0), "list: {}", stderr(&out));
        let _: Value = serde_json::from_slice(&out.stdout).unwrap();
        let st = rt.run(&["state", &id]);
        assert_clean_exit("state", &st);
        if st.status.success() {
            assert_valid_state(&id, &stdout(&st));
        }
        rt.ok(&["delete", "-f", &id]);
        assert_all_gone(&rt, &id, &b);
    }
    eprintln!("create took {took:?}; {left_created} of {n} finished before the kill");
}

/// The state file truncated, emptied, or replaced with nonsense: every
/// command names the file, `list` carries on, and `delete -f` still
/// removes the container, its init and its shim.
#[test]
fn a_corrupt_state_file_is_named_and_delete_force_cleans_up() {
    let rt = Rt::new();
    let b = Bundle::busybox(&["sleep", "1000"]);
    type Damage = fn(&[u8]) -> Vec<u8>;
    let damage: [(&str, Damage); 4] = [
        ("truncated", |s| s[..s.len() / 2].to_vec()),
        ("empty", |_| vec![]),
        ("garbage", |_| b"\x00\xff not json".to_vec()),
        ("wrong shape", |_| b"[1, 2, 3]".to_vec()),
    ];
    for (how, f) in damage {
        let id = unique_id("corrupt");
        let pid = rt.detached(&b, &id);
        let file = rt.root().join(&id).join("state.json");
        let good = fs::read(&file).unwrap();
        fs::write(&file, f(&good)).unwrap();
        let name = file.to_str().unwrap();
        for args in [
            vec!["state", id.as_str()],
            vec!["kill", id.as_str(), "KILL"],
            vec!["start", id.as_str()],
            vec!["delete", id.as_str()],
            vec!["exec", id.as_str(), "true"],
        ] {
            let err = rt.fails(&args);
            assert_one_line_error(&err, &[name]);
        }
        let out = rt.run(&["list"]);
        assert_eq!(out.status.code(), Some(0), "{how}: {}", stderr(&out));
        assert!(stderr(&out).contains(name), "{how}: list warns about it");
        assert!(alive(pid), "{how}: nothing was done to the container yet");
        rt.ok(&["delete", "-f", &id]);
        assert!(!alive(pid), "{how}: delete -f left the init");
        assert_all_gone(&rt, &id, &b);
    }
}

/// A tmpfs mounted for a test, unmounted when dropped.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn new(options: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        nix::mount::mount(
            Some("tmpfs"),
            dir.path(),
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            Some(options),
        )
        .expect("mount a tmpfs");
        Tmpfs(dir)
    }

    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(self.0.path(), nix::mount::MntFlags::MNT_DETACH);
    }
}

/// The state root on a full filesystem (no space, then no inodes): create
/// fails with one line naming the path and the reason, and nothing of the
/// container is made.
#[test]
fn a_full_state_filesystem_fails_create_cleanly() {
    require_root();
    ensure_shim();
    let b = Bundle::busybox(&["sleep", "1000"]);
    for (opts, fill) in [("size=64k", true), ("nr_inodes=3", false)] {
        let fs_ = Tmpfs::new(opts);
        let root = fs_.path().join("root");
        fs::create_dir(&root).unwrap();
        if fill {
            let mut f = fs::File::create(fs_.path().join("fill")).unwrap();
            let _ = std::io::Write::write_all(&mut f, &vec![0u8; 1 << 20]);
        } else {
            let _ = fs::write(fs_.path().join("a"), "");
        }
        for shim in ["--shim=always", "--shim=never"] {
            let id = unique_id("full");
            let out = std::process::Command::new(rt_bin())
                .args(["--root", root.to_str().unwrap(), shim])
                .args(["create", "--bundle", bundle_arg(&b), &id])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .output()
                .unwrap();
            let what = format!("{opts}, {shim}");
            assert_eq!(out.status.code(), Some(1), "{what}");
            let err = stderr(&out);
            assert_one_line_error(&err, &["No space left on device", root.to_str().unwrap()]);
            assert!(
                !err.contains("(os error 28): No space"),
                "{what}: reason said once: {err}"
            );
            let left: Vec<PathBuf> = fs::read_dir(&root)
                .unwrap()
                .flatten()
                .map(|e| e.path())
                .collect();
            assert!(left.is_empty(), "{what}: left {left:?}");
            assert!(
                !Path::new(CGROUP2).join(default_cgroup(&root, &id)).exists(),
                "{what}"
            );
            assert!(cgroup_procs(&root, &id).is_empty(), "{what}");
        }
    }
}

/// The init killed between create and start: start says so, state says
/// stopped, and a plain delete cleans up.
#[test]
fn an_init_killed_before_start() {
    let rt = Rt::new();
    let b = Bundle::busybox(&["sleep", "1000"]);
    for shim in ["--shim=always", "--shim=never"] {
        let id = unique_id("prekill");
        rt.ok(&[shim, "create", "--bundle", bundle_arg(&b), &id]);
        let pid = rt.state(&id)["pid"].as_i64().unwrap();
        sigkill(pid);
        wait_for("the init to die", Duration::from_secs(10), || !alive(pid));
        let err = rt.fails(&["start", &id]);
        assert_one_line_error(&err, &["stopped"]);
        assert_eq!(rt.status(&id), "stopped", "{shim}");
        rt.ok(&["delete", &id]);
        assert_all_gone(&rt, &id, &b);
    }
}

/// A hook that hangs, with children of its own: at its timeout the hook
/// and what it started are killed, the operation fails (or, for
/// poststop, warns) in about the timeout, and nothing is left.
#[test]
fn a_hanging_hook_is_killed_at_its_timeout_with_its_children() {
    let rt = Rt::new();
    let marks = tempfile::tempdir().unwrap();
    let pids = marks.path().join("pids");
    let hook = json!({
        "path": "/bin/sh",
        "args": ["sh", "-c", format!("echo $$ >> {p}; sleep 1000 & echo $! >> {p}; wait", p = pids.display())],
        "timeout": 1
    });
    let hook_pids = || -> Vec<i64> {
        fs::read_to_string(&pids)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.parse().ok())
            .collect()
    };
    let all_dead = |what: &str| {
        let p = hook_pids();
        assert_eq!(p.len(), 2, "{what}: the hook and its child ran: {p:?}");
        wait_for(
            "the hook's processes to die",
            Duration::from_secs(5),
            || p.iter().all(|&p| !alive(p)),
        );
        fs::remove_file(&pids).unwrap();
    };

    // createRuntime: create fails, nothing is left.
    let mut b = Bundle::busybox(&["sleep", "1000"]);
    b.edit(|c| c["hooks"] = json!({ "createRuntime": [hook.clone()] }));
    let id = unique_id("hang");
    let t = Instant::now();
    let err = rt.fails(&["create", "--bundle", bundle_arg(&b), &id]);
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert_one_line_error(
        &err,
        &["error running createRuntime hook #0:", "timed out after 1s"],
    );
    all_dead("createRuntime");
    assert_all_gone(&rt, &id, &b);

    // poststop: a warning; delete still succeeds.
    let mut b = Bundle::busybox(&["sleep", "1000"]);
    b.edit(|c| c["hooks"] = json!({ "poststop": [hook.clone()] }));
    let id = unique_id("hangstop");
    rt.detached(&b, &id);
    let t = Instant::now();
    let out = rt.run(&["delete", "-f", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    all_dead("poststop");
    assert_all_gone(&rt, &id, &b);
}
