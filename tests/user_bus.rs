//! The user-bus bridge (src/cgroup/user_bus.rs) against a real
//! dbus-daemon of this user: libdbus talks through rt's own EXTERNAL
//! handshake, a wrong identity is refused in one line naming the bus, and
//! a bus that is not there is named too. (Rootless Podman's case itself,
//! root of a user namespace that is another user outside, needs systemd:
//! integration/host/checks.sh covers it.)

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use dbus::Message;
use rt::cgroup::user_bus::{connect, find};

/// A session dbus-daemon on a socket in a temporary directory, killed by
/// its pid when dropped.
struct Daemon {
    child: Child,
    dir: tempfile::TempDir,
}

impl Daemon {
    fn start() -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("bus");
        let mut child = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--nopidfile", "--print-address=1"])
            .arg(format!("--address=unix:path={}", sock.display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon (Debian's dbus-daemon; scripts/deps.sh --test)");
        // The address is printed once the daemon listens; the socket file
        // alone exists from bind(2) on, before listen(2), when a connect
        // is still refused.
        let out = child.stdout.take().unwrap();
        let d = Daemon { child, dir };
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line).unwrap();
        assert!(line.starts_with("unix:"), "dbus-daemon printed {line:?}");
        d
    }

    fn address(&self) -> String {
        format!("unix:path={}", self.dir.path().join("bus").display())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn me() -> u32 {
    nix::unistd::geteuid().as_raw()
}

#[test]
fn libdbus_talks_through_the_bridge() {
    let d = Daemon::start();
    let bus = find(Some(&d.address()), None, me()).unwrap();
    let conn = connect(&bus, me()).unwrap();
    let name = conn.unique_name().to_string();
    assert!(name.starts_with(":1."), "{name}");
    // A call and its reply cross the bridge both ways: the daemon lists
    // the name it gave this connection.
    let m = Message::new_method_call(
        "org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus",
        "ListNames",
    )
    .unwrap();
    let reply = conn
        .channel()
        .send_with_reply_and_block(m, Duration::from_secs(5))
        .unwrap();
    let names: Vec<String> = reply.read1().unwrap();
    assert!(names.contains(&name), "{names:?}");
}

#[test]
fn another_identity_is_refused_in_one_line() {
    let d = Daemon::start();
    let other = me() + 4242;
    let bus = find(Some(&d.address()), None, other).unwrap();
    let e = connect(&bus, other)
        .err()
        .expect("authenticated as another uid");
    let e = e.to_string();
    assert!(
        e.contains(&d.address()) && e.contains("rejected") && e.contains(&other.to_string()),
        "{e}"
    );
    assert_eq!(e.lines().count(), 1, "{e}");
}

#[test]
fn a_missing_bus_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let bus = find(None, dir.path().to_str(), me()).unwrap();
    let e = connect(&bus, me()).err().expect("connected to nothing");
    let e = e.to_string();
    let want = format!("unix:path={}", Path::new(dir.path()).join("bus").display());
    assert!(e.contains(&want), "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");
}
