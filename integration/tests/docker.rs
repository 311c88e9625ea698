//! rt under Docker (Debian's docker.io 20.10): a dockerd of the test's
//! own on scratch paths, over a containerd of its own, with rt added as a
//! runtime (`--add-runtime rt=...`), driven with Debian's client
//! (`/usr/bin/docker`; another client sits at /usr/local/bin/docker).
//!
//! No flags beyond the scratch paths are needed on this hybrid host:
//! Docker's cgroupfs driver asks for `/<parent>/<id>` and rt makes it on
//! cgroup v2, while the limits Docker sets by default (none) need no v1
//! controller. A limit asked for (`--memory`, `--cpu-shares`,
//! `--pids-limit`) needs a controller this host binds to cgroup v1, and
//! is refused by rt in one line naming it.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use rt_integration::*;

const DOCKERD: &str = "/usr/sbin/dockerd";
const DOCKER: &str = "/usr/bin/docker";
const IMAGE: &str = "localhost/busybox:latest";

/// dockerd on `s`'s paths over the containerd at `containerd`, with rt
/// as runtime `rt` and `cgroup_parent` as the parent of every
/// container's cgroup; its default `bridge` network on the bridge device
/// `bridge` (the test's own), or no bridge network at all.
fn dockerd(s: &Path, containerd: &Path, cgroup_parent: &str, bridge: Option<&str>) -> Daemon {
    let sock = s.join("docker.sock");
    // Containers still running when dockerd stops (a failed test) get
    // 1 s, not 10, before SIGKILL (with each one's --stop-timeout 1).
    std::fs::write(s.join("daemon.json"), r#"{"shutdown-timeout": 1}"#).unwrap();
    Daemon::start(
        Command::new(DOCKERD)
            .arg("--config-file")
            .arg(s.join("daemon.json"))
            .arg("--containerd")
            .arg(containerd)
            .arg("--data-root")
            .arg(s.join("docker"))
            .arg("--exec-root")
            .arg(s.join("docker-exec"))
            .arg("--pidfile")
            .arg(s.join("dockerd.pid"))
            .arg("-H")
            .arg(format!("unix://{}", sock.display()))
            .args(["--bridge", bridge.unwrap_or("none")])
            .args(["--iptables=false", "--ip6tables=false"])
            .args(["--ip-masq=false", "--cgroup-parent", cgroup_parent])
            .arg("--add-runtime")
            .arg(format!("rt={}", rt_binary().display())),
        &s.join("dockerd.log"),
        Duration::from_secs(60),
        || {
            sock.exists()
                && Command::new(DOCKER)
                    .env("DOCKER_HOST", format!("unix://{}", sock.display()))
                    .env("DOCKER_CONFIG", s.join("client"))
                    .arg("version")
                    .output()
                    .is_ok_and(|o| o.status.success())
        },
    )
}

/// Debian's docker client, talking to the dockerd on `s`'s socket.
fn docker_client(s: &Path) -> Command {
    let mut c = Command::new(DOCKER);
    c.env(
        "DOCKER_HOST",
        format!("unix://{}", s.join("docker.sock").display()),
    )
    .env("DOCKER_CONFIG", s.join("client"));
    c
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn docker_with_rt() {
    require(&["containerd", "ctr", DOCKERD, DOCKER, "umoci", "skopeo"]);
    // A cgroup parent of this test's own, removed when the test ends.
    let parent = format!("rt-it-docker-{}", std::process::id());
    let cgroup = CgroupDir::v2(&parent);
    let parent_dir = cgroup.0.clone();
    let scratch = Scratch::new("docker");
    let s = scratch.path();
    let (_, archive) = busybox_image(s);
    // Docker's runc shim keeps every runtime's state here (rt's too).
    scratch.rt_root(s.join("docker-exec/runtime-runc/moby"));
    let (ctd, ctd_sock) = containerd(s, false, "");
    let dockerd = dockerd(s, &ctd_sock, &format!("/{parent}"), None);
    let docker = || docker_client(s);
    ok(docker().args(["load", "-q", "-i"]).arg(&archive));

    let out = ok(docker().args(["run", "--rm", "--runtime", "rt", IMAGE, "echo", "hi"]));
    assert_eq!(out, "hi\n");

    // run -d, then exec: output and exit code come back.
    let started = |name: &str, args: &[&str]| {
        let id = ok(docker()
            .args(["run", "-d", "--runtime", "rt", "--stop-timeout", "1"])
            .args(["--name", name, IMAGE])
            .args(args));
        id.trim().to_string()
    };
    let s1 = started("s1", &["sleep", "1000"]);
    let runtime = ok(docker().args(["inspect", "-f", "{{.HostConfig.Runtime}}", "s1"]));
    assert_eq!(runtime, "rt\n");
    assert!(
        parent_dir.join(&s1).is_dir(),
        "rt made the container's cgroup"
    );
    let out = run(docker().args(["exec", "s1", "sh", "-c", "echo in-s1; exit 3"]));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "in-s1\n");
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));

    // pause/unpause reach rt's pause/resume (cgroup.freeze), top its ps.
    ok(docker().args(["pause", "s1"]));
    let status = ok(docker().args(["inspect", "-f", "{{.State.Status}}", "s1"]));
    assert_eq!(status, "paused\n");
    ok(docker().args(["unpause", "s1"]));
    let status = ok(docker().args(["inspect", "-f", "{{.State.Status}}", "s1"]));
    assert_eq!(status, "running\n");
    let top = ok(docker().args(["top", "s1"]));
    assert!(
        top.lines()
            .nth(1)
            .is_some_and(|l| l.ends_with("sleep 1000")),
        "{top}"
    );

    // logs: stdout and stderr kept apart.
    started(
        "l1",
        &["sh", "-c", "echo to-out; echo to-err >&2; sleep 1000"],
    );
    assert!(
        wait_until(Duration::from_secs(10), || {
            let o = run(docker().args(["logs", "l1"]));
            String::from_utf8_lossy(&o.stdout) == "to-out\n" && stderr(&o) == "to-err\n"
        }),
        "{:?}",
        run(docker().args(["logs", "l1"]))
    );

    // `docker update --memory` reaches `rt update --resources -`, which
    // names the controller a hybrid host keeps on cgroup v1, or sets
    // memory.max where cgroup v2 has it. (Without --memory-swap, Docker
    // itself refuses before asking the runtime.)
    let out = run(docker().args(["update", "--memory", "64m", "--memory-swap", "-1", "l1"]));
    let l1 = ok(docker().args(["inspect", "-f", "{{.Id}}", "l1"]));
    if cgroup2_controllers().iter().any(|c| c == "memory") {
        assert!(out.status.success(), "{}", stderr(&out));
        let max = std::fs::read_to_string(parent_dir.join(l1.trim()).join("memory.max"));
        assert_eq!(max.unwrap(), "67108864\n");
    } else {
        assert!(!out.status.success());
        let err = stderr(&out);
        assert!(
            err.contains(
                "linux.resources.memory: the memory controller is not available in cgroup v2"
            ) && err.contains("bound to cgroup v1"),
            "{err}"
        );
    }
    // The container runs on, unchanged.
    let out = ok(docker().args(["exec", "l1", "echo", "still-here"]));
    assert_eq!(out, "still-here\n");

    // stop: sleep as pid 1 ignores SIGTERM, so Docker sends SIGKILL after
    // --time seconds (exit code 137).
    let t = Instant::now();
    ok(docker().args(["stop", "--time", "2", "s1"]));
    let took = t.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(8),
        "stop --time 2 took {took:?}"
    );
    let code = ok(docker().args(["inspect", "-f", "{{.State.ExitCode}}", "s1"]));
    assert_eq!(code, "137\n");
    // A container that exits on SIGTERM stops at once, with its own code.
    started(
        "n1",
        &[
            "sh",
            "-c",
            "trap 'exit 7' TERM; while :; do sleep 0.1; done",
        ],
    );
    // Stopped once the shell's trap is in place: a TERM before it is
    // dropped (sh is pid 1), and the stop would end in a KILL.
    let pid: i64 = ok(docker().args(["inspect", "-f", "{{.State.Pid}}", "n1"]))
        .trim()
        .parse()
        .unwrap();
    assert!(
        rt_testkit::wait_for_handler(pid, libc::SIGTERM, Duration::from_secs(20)),
        "n1's shell never trapped TERM"
    );
    let t = Instant::now();
    ok(docker().args(["stop", "--time", "10", "n1"]));
    let took = t.elapsed();
    assert!(took < Duration::from_secs(5), "stop of n1 took {took:?}");
    let code = ok(docker().args(["inspect", "-f", "{{.State.ExitCode}}", "n1"]));
    assert_eq!(code, "7\n");

    // rm: stopped ones, then a running one with -f.
    ok(docker().args(["rm", "s1", "n1"]));
    ok(docker().args(["rm", "-f", "l1"]));
    let left = ok(docker().args(["ps", "-aq"]));
    assert_eq!(left, "");
    assert!(!parent_dir.join(&s1).exists(), "rt removed the cgroup");

    drop(dockerd);
    drop(ctd);
    scratch.assert_clean();
}

/// A bridge device of the test's own with `addr` (CIDR), removed when
/// dropped.
struct Bridge(String);

impl Bridge {
    fn new(name: &str, addr: &str) -> Bridge {
        let _ = run(Command::new("ip").args(["link", "del", name]));
        ok(Command::new("ip").args(["link", "add", name, "type", "bridge"]));
        let b = Bridge(name.to_string());
        ok(Command::new("ip").args(["addr", "add", addr, "dev", name]));
        ok(Command::new("ip").args(["link", "set", name, "up"]));
        b
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = run(Command::new("ip").args(["link", "del", &self.0]));
    }
}

/// Docker's default network mode, `bridge`, with rt as with runc side by
/// side: a web server's page reached from the host by the container's IP
/// and through a port published on 127.0.0.1, and from a second
/// container by the first one's IP. The bridge device is the test's own
/// and dockerd writes no iptables rules (the host's tables stay as they
/// are): the published port goes through Docker's userland proxy, which
/// is what answers a connection to 127.0.0.1 by default anyway.
#[test]
fn docker_bridge_network_with_rt_as_with_runc() {
    require(&[
        "containerd",
        "ctr",
        DOCKERD,
        DOCKER,
        "umoci",
        "skopeo",
        "ip",
        "runc",
    ]);
    let parent = format!("rt-it-dockernet-{}", std::process::id());
    let _cgroup = CgroupDir::v2(&parent);
    let scratch = Scratch::new("docker-net");
    let s = scratch.path();
    let (_, archive) = busybox_image(s);
    scratch.rt_root(s.join("docker-exec/runtime-rt/moby"));
    let bridge = Bridge::new(
        &format!("rtit{}", std::process::id() % 100_000),
        "10.213.7.1/24",
    );
    let (ctd, ctd_sock) = containerd(s, false, "");
    let dockerd = dockerd(s, &ctd_sock, &format!("/{parent}"), Some(&bridge.0));
    let docker = || docker_client(s);
    ok(docker().args(["load", "-q", "-i"]).arg(&archive));
    for runtime in ["runc", "rt"] {
        let name = format!("web-{runtime}");
        let port = free_port();
        ok(docker()
            .args(["run", "-d", "--runtime", runtime, "--stop-timeout", "1"])
            .args([
                "--name",
                &name,
                "-p",
                &format!("127.0.0.1:{port}:80"),
                IMAGE,
            ])
            .args(["sh", "-c", SERVE_PAGE, &name]));
        let ip = ok(docker().args(["inspect", "-f", "{{.NetworkSettings.IPAddress}}", &name]));
        let ip = ip.trim();
        assert!(
            ip.starts_with("10.213.7."),
            "{runtime}: IP {ip:?} on the bridge"
        );
        let page = format!("hello from {name}\n");
        assert_eq!(
            http_get(&format!("{ip}:80"), Duration::from_secs(20)).unwrap(),
            page,
            "{runtime}: by the container's IP"
        );
        assert_eq!(
            http_get(&format!("127.0.0.1:{port}"), Duration::from_secs(20)).unwrap(),
            page,
            "{runtime}: through the published port"
        );
        let out = ok(docker()
            .args(["run", "--rm", "--runtime", runtime, IMAGE])
            .args(["sh", "-c", NC_GET, ip]));
        assert_eq!(out, page, "{runtime}: from a second container");
        ok(docker().args(["rm", "-f", &name]));
    }
    assert_eq!(ok(docker().args(["ps", "-aq"])), "");
    drop(dockerd);
    drop(ctd);
    drop(bridge);
    scratch.assert_clean();
}
