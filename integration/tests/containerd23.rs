//! containerd 2.3 (the LTS line; `../shared/containerd-2.3`, unpacked into
//! the target directory by its `install.sh`) with `containerd-shim-rt-v2`:
//! `-info` as containerd 2.x reads it (beside the Go runc shim's answer
//! for rt), a container run through `io.containerd.rt.v2` started with
//! the bootstrap protocol, and the features CRI shows for the handler.
//! Skipped, in one line, where the folder is absent. Debian's containerd
//! 1.6 (the legacy start) is `containerd_v2.rs`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use rt_integration::*;
use serde_json::Value;

const IMAGE: &str = "localhost/busybox:latest";
const RUNTIME: [&str; 4] = ["--cpu-shares", "0", "--runtime", "io.containerd.rt.v2"];
const FEATURES_TYPE: &str = "types.containerd.io/opencontainers/runtime-spec/1/features/Features";

/// containerd 2.3's binaries, unpacked once per target directory; None
/// (after saying so) where the shared folder is absent.
fn containerd23() -> Option<PathBuf> {
    static INSTALL: Mutex<()> = Mutex::new(());
    // CONTAINERD23_DIR, or where the project's CI machines keep it.
    let shared = std::env::var_os("CONTAINERD23_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/containerd-2.3"),
        PathBuf::from,
    );
    if !shared.join("install.sh").exists() {
        eprintln!("skipped: no containerd 2.3 at {}", shared.display());
        return None;
    }
    let _one = INSTALL.lock().unwrap_or_else(|p| p.into_inner());
    let target = rt_binary().parent().unwrap().join("containerd-2.3");
    let bin = ok(Command::new(shared.join("install.sh")).arg(&target));
    Some(PathBuf::from(bin.trim()))
}

/// containerd 2.3 on scratch paths (config version 3, shim sockets in
/// `<scratch>/s`), containerd-shim-rt-v2 first on its PATH.
struct Containerd23 {
    daemon: Option<Daemon>,
    bin: PathBuf,
    sock: PathBuf,
    ns: String,
}

impl Containerd23 {
    fn start(s: &Scratch, bin: &Path, cri: &str) -> Containerd23 {
        Containerd23::start_with(s, bin, cri, &[])
    }

    /// [`Containerd23::start`] with `env` added to containerd's
    /// environment (which its shims, and the runtimes they run, inherit).
    fn start_with(s: &Scratch, bin: &Path, cri: &str, env: &[(&str, &Path)]) -> Containerd23 {
        let dir = s.path();
        let sock = dir.join("containerd.sock");
        let disabled = if cri.is_empty() {
            "disabled_plugins = ['io.containerd.grpc.v1.cri']\n"
        } else {
            ""
        };
        let config = dir.join("containerd.toml");
        std::fs::write(
            &config,
            format!(
                "version = 3\nroot = '{0}/root'\nstate = '{0}/state'\n{disabled}\
                 [grpc]\n  address = '{1}'\n[debug]\n  level = 'debug'\n\
                 [plugins.'io.containerd.shim.v1.manager']\n  socket_dir = '{0}/s'\n{cri}",
                dir.display(),
                sock.display()
            ),
        )
        .unwrap();
        let ns = format!(
            "rt23-{}",
            dir.file_name()
                .unwrap()
                .to_string_lossy()
                .replace(|c: char| !c.is_ascii_alphanumeric(), "")
        );
        s.rt_root(Path::new("/run/containerd/rt").join(&ns));
        let path = format!(
            "{}:{}:{}",
            rt_binary().parent().unwrap().display(),
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let ctr = bin.join("ctr");
        let mut cmd = Command::new(bin.join("containerd"));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let daemon = Daemon::start(
            cmd.arg("--config").arg(&config).env("PATH", path),
            &dir.join("containerd.log"),
            Duration::from_secs(30),
            || {
                sock.exists()
                    && Command::new(&ctr)
                        .env("CONTAINERD_ADDRESS", &sock)
                        .arg("version")
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .status()
                        .is_ok_and(|s| s.success())
            },
        );
        Containerd23 {
            daemon: Some(daemon),
            bin: bin.to_path_buf(),
            sock,
            ns,
        }
    }

    fn ctr(&self) -> Command {
        let mut c = Command::new(self.bin.join("ctr"));
        c.env("CONTAINERD_ADDRESS", &self.sock)
            .args(["-n", &self.ns]);
        c
    }
}

impl Drop for Containerd23 {
    fn drop(&mut self) {
        self.daemon.take();
        // The shim's state directory of the namespace (the containers in
        // it go with the Scratch), and the namespace's parent cgroup,
        // which rt shares and leaves.
        let _ = std::fs::remove_dir(Path::new("/run/containerd/rt").join(&self.ns));
        drop(CgroupDir::v2(&self.ns));
    }
}

/// `(field number, bytes)` of the length-delimited fields of a protobuf
/// message (the only kind RuntimeInfo's fields here are).
fn fields(mut b: &[u8]) -> Vec<(u64, Vec<u8>)> {
    fn varint(b: &mut &[u8]) -> u64 {
        let (mut v, mut shift) = (0u64, 0);
        loop {
            let byte = b[0];
            *b = &b[1..];
            v |= u64::from(byte & 0x7f) << shift;
            shift += 7;
            if byte < 0x80 {
                return v;
            }
        }
    }
    let mut out = Vec::new();
    while !b.is_empty() {
        let key = varint(&mut b);
        assert_eq!(key & 7, 2, "a length-delimited field");
        let len = usize::try_from(varint(&mut b)).unwrap();
        out.push((key >> 3, b[..len].to_vec()));
        b = &b[len..];
    }
    out
}

fn field(msg: &[(u64, Vec<u8>)], n: u64) -> Vec<u8> {
    msg.iter()
        .find(|(k, _)| *k == n)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

/// `shim -info` with `stdin`: RuntimeInfo's name, the features' type URL
/// and the features document.
fn info(shim: &Path, stdin: &[u8]) -> (String, String, Value) {
    use std::io::Write;
    let mut child = Command::new(shim)
        .arg("-info")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{} -info: {}",
        shim.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let msg = fields(&out.stdout);
    let features = fields(&field(&msg, 4));
    (
        String::from_utf8(field(&msg, 1)).unwrap(),
        String::from_utf8(field(&features, 1)).unwrap(),
        serde_json::from_slice(&field(&features, 2)).unwrap_or(Value::Null),
    )
}

/// A protobuf field `n` of bytes.
fn pb(n: u8, data: &[u8]) -> Vec<u8> {
    assert!(data.len() < 128, "a one-byte length");
    let mut v = vec![
        (n << 3) | 2,
        u8::try_from(data.len()).expect("a short field"),
    ];
    v.extend_from_slice(data);
    v
}

#[test]
fn info_answers_rts_features_as_the_go_runc_shim_does_for_rt() {
    let Some(bin) = containerd23() else { return };
    let shim = rt_binary().with_file_name("containerd-shim-rt-v2");
    let (name, type_url, ours) = info(&shim, b"");
    assert_eq!(name, "io.containerd.rt.v2");
    assert_eq!(type_url, FEATURES_TYPE);
    let printed: Value =
        serde_json::from_str(&ok(Command::new(rt_binary()).arg("features"))).unwrap();
    assert_eq!(ours, printed, "-info's features are `rt features`");

    // The reference: containerd's Go runc shim, told BinaryName = rt
    // (containerd.runc.v1.Options, field 6, as an Any on stdin).
    let rt = rt_binary().to_string_lossy().into_owned();
    let mut options = pb(1, b"containerd.runc.v1.Options");
    options.extend(pb(2, &pb(6, rt.as_bytes())));
    let (_, runc_type, runc_shims) = info(&bin.join("containerd-shim-runc-v2"), &options);
    assert_eq!(runc_type, type_url);
    assert_eq!(ours, runc_shims, "the runc shim reads the same of rt");

    // What CRI decides user-namespaced pods and rro mounts by.
    assert!(ours["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .contains(&"user".into()));
    assert_eq!(ours["linux"]["mountExtensions"]["idmap"]["enabled"], true);
    assert!(ours["mountOptions"]
        .as_array()
        .unwrap()
        .contains(&"rro".into()));
}

/// The `connecting to shim ID` line of containerd's log.
fn connecting_line(log: &Path, id: &str) -> String {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .find(|l| l.contains(&format!("msg=\"connecting to shim {id}\"")))
        .unwrap_or_else(|| panic!("no shim connection for {id}:\n{}", tail(log)))
        .to_string()
}

#[test]
fn containerd_2_3_starts_rt_v2_through_the_bootstrap_protocol() {
    let Some(bin) = containerd23() else { return };
    require(&["umoci", "skopeo"]);
    let s = Scratch::new("ctd23");
    let c = Containerd23::start(&s, &bin, "");
    let (oci, _) = busybox_image(s.path());
    ok(c.ctr()
        .args(["image", "import", "--base-name", "localhost/busybox"])
        .arg(&oci));

    let out = ok(c
        .ctr()
        .args(["run", "--rm"])
        .args(RUNTIME)
        .args([IMAGE, "c1", "echo", "hello"]));
    assert_eq!(out, "hello\n");
    // BootstrapResult's task API v3, and the socket in the directory the
    // BootstrapParams named (a legacy start gets neither).
    let log = s.path().join("containerd.log");
    let line = connecting_line(&log, "c1");
    assert!(line.contains("version=3"), "{line}");
    let socket_dir = format!("address=\"unix://{}/s/", s.path().display());
    assert!(line.contains(&socket_dir), "{line}");

    ctr_run_exec_pause_ps(&|| c.ctr(), &RUNTIME, IMAGE, "c2");
    ok(c.ctr().args(["task", "kill", "-s", "9", "c2"]));
    ctr_wait_status(&|| c.ctr(), "c2", "STOPPED");
    ok(c.ctr().args(["task", "delete", "c2"]));
    ok(c.ctr().args(["container", "delete", "c2"]));

    // Each shim ends with its last container.
    assert!(
        wait_until(Duration::from_secs(10), || processes_under(s.path())
            .iter()
            .all(|(_, cmd)| !cmd.contains("containerd-shim-rt-v2"))),
        "shims left: {:?}",
        processes_under(s.path())
    );
    drop(c);
    s.assert_clean();
}

/// A container in a user namespace whose root the overlay snapshotter
/// maps (`ctr run --uidmap --gidmap --remap-labels`, what CRI does for a
/// user-namespaced pod): containerd gives the overlay `uidmap=`/`gidmap=`
/// options, which are the mounter's. The image's files belong to the
/// container's root, as with the runc shim, and the idmapped layers go
/// once the overlay holds them.
#[test]
fn an_idmapped_overlay_root_through_rt_v2() {
    let Some(bin) = containerd23() else { return };
    require(&["umoci", "skopeo"]);
    let s = Scratch::new("ctd23idmap");
    let c = Containerd23::start(&s, &bin, "");
    let (oci, _) = busybox_image(s.path());
    ok(c.ctr()
        .args(["image", "import", "--base-name", "localhost/busybox"])
        .arg(&oci));
    let map = "0:100000:65536";
    let out = ok(c.ctr().args(["run", "--rm"]).args(RUNTIME).args([
        "--uidmap",
        map,
        "--gidmap",
        map,
        "--remap-labels",
        IMAGE,
        "m1",
        "sh",
        "-c",
        "cat /proc/self/uid_map; stat -c '%u %g' /bin/busybox; touch /new; stat -c '%u %g' /new",
    ]));
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["0", "100000", "65536"], "{out}");
    assert_eq!(lines[1], ["0", "0"], "the image's files are root's: {out}");
    assert_eq!(lines[2], ["0", "0"], "{out}");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains("rootfs-idmapped-layers"),
        "the idmapped layers are gone"
    );
    drop(c);
    s.assert_clean();
}

#[test]
fn crictl_info_shows_the_rt_v2_handlers_features() {
    let Some(bin) = containerd23() else { return };
    let s = Scratch::new("ctd23cri");
    let rt = rt_binary();
    let runtimes = "[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes";
    let cri = format!(
        "{runtimes}.rt-v2]\n  runtime_type = 'io.containerd.rt.v2'\n\
         {runtimes}.rt]\n  runtime_type = 'io.containerd.runc.v2'\n\
         {runtimes}.rt.options]\n  BinaryName = '{}'\n",
        rt.display()
    );
    let c = Containerd23::start(&s, &bin, &cri);
    let info: Value = serde_json::from_str(&ok(Command::new(bin.join("crictl"))
        .arg("--runtime-endpoint")
        .arg(format!("unix://{}", c.sock.display()))
        .arg("info")))
    .unwrap();
    let handler = |name: &str| {
        info["runtimeHandlers"]
            .as_array()
            .expect("runtimeHandlers")
            .iter()
            .find(|h| h["name"] == name)
            .unwrap_or_else(|| panic!("no handler {name}: {info:#}"))["features"]
            .clone()
    };
    let ours = handler("rt-v2");
    assert_eq!(ours["user_namespaces"], true, "{ours}");
    assert_eq!(ours["recursive_read_only_mounts"], true, "{ours}");
    assert_eq!(ours, handler("rt"), "as through the Go runc shim");
    drop(c);
    s.assert_clean();
}

/// `crictl` of containerd 2.3 on `c`'s socket.
fn crictl(bin: &Path, c: &Containerd23) -> Command {
    let mut cmd = Command::new(bin.join("crictl"));
    let endpoint = format!("unix://{}", c.sock.display());
    cmd.args([
        "--runtime-endpoint",
        &endpoint,
        "--image-endpoint",
        &endpoint,
    ])
    .args(["--timeout", "60s"]);
    cmd
}

/// containerd 2.x gives every pod sandbox `cpu.shares` 2 and has no
/// setting to leave it out (1.6's `disable_cgroup` is gone), so on a
/// hybrid host (cgroup v2 without the cpu controller) a pod starts on rt
/// only when the node's admin lets rt skip the limits cgroup v1 holds
/// there. By default RunPodSandbox is refused, naming the setting; with
/// `"cgroupV1Limits": "skip"` in rt's settings (`RT_CONFIG` in containerd's
/// environment, which its shims and the runtime they run inherit) a pod
/// runs, execs and stops through the CRI on both rt handlers.
#[test]
fn pods_run_on_a_hybrid_host_once_rt_may_skip_cgroup_v1_limits() {
    let Some(bin) = containerd23() else { return };
    if cgroup2_controllers().iter().any(|c| c == "cpu") {
        eprintln!("skipped: cgroup v2 has the cpu controller here (not a hybrid host)");
        return;
    }
    require(&["umoci", "skopeo"]);
    let s = Scratch::new("ctd23hybrid");
    let settings = s.path().join("rt-config.json");
    std::fs::write(&settings, "{}").unwrap();
    let rt_root = s.rt_root(s.path().join("rt-root"));
    s.rt_root(rt_root.join("k8s.io"));
    s.rt_root(PathBuf::from("/run/containerd/rt/k8s.io"));
    let runtimes = "[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes";
    let cri = format!(
        "[plugins.'io.containerd.cri.v1.images'.pinned_images]\n  sandbox = '{}'\n\
         [plugins.'io.containerd.cri.v1.runtime']\n  restrict_oom_score_adj = {}\n\
         {runtimes}.rt-v2]\n  runtime_type = 'io.containerd.rt.v2'\n\
         {runtimes}.rt]\n  runtime_type = 'io.containerd.runc.v2'\n\
         {runtimes}.rt.options]\n  BinaryName = '{}'\n  Root = '{}'\n",
        rt_integration::cri::PAUSE,
        rt_integration::cri::lacks_cap_sys_resource(),
        rt_binary().display(),
        rt_root.display()
    );
    // The pods' cgroups (cgroupfs: /k8s.io/<id>) go with this, whatever
    // is left.
    let _cgroups = CgroupDir::v2("k8s.io");
    let c = Containerd23::start_with(&s, &bin, &cri, &[("RT_CONFIG", &settings)]);
    for archive in rt_integration::cri::node_images(s.path()) {
        ok(c.ctr()
            .args(["-n", "k8s.io", "image", "import"])
            .arg(archive));
    }
    // A pod on the node's network (no CNI here), one busybox container.
    let pod = s.path().join("pod.json");
    let ctr = s.path().join("ctr.json");
    std::fs::write(
        &pod,
        r#"{"metadata": {"name": "hybrid", "uid": "hybrid-uid", "namespace": "default"},
            "linux": {"security_context": {"namespace_options": {"network": 2}}}}"#,
    )
    .unwrap();
    std::fs::write(
        &ctr,
        format!(
            r#"{{"metadata": {{"name": "sleeper"}}, "image": {{"image": "{}"}},
                "command": ["sleep", "1000"],
                "linux": {{"resources": {{"cpu_shares": 256, "cpu_quota": 50000, "cpu_period": 100000}}}}}}"#,
            rt_integration::cri::IMAGE
        ),
    )
    .unwrap();

    for handler in ["rt", "rt-v2"] {
        // The default: refused, in words that name the way out.
        std::fs::write(&settings, "{}").unwrap();
        let out = run(crictl(&bin, &c)
            .args(["runp", "--runtime", handler])
            .arg(&pod));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{handler}: refused by default");
        assert!(
            err.contains("linux.resources.cpu") && err.contains("cgroupV1Limits"),
            "{handler}: {err}"
        );

        std::fs::write(&settings, r#"{"cgroupV1Limits": "skip"}"#).unwrap();
        let sandbox = ok(crictl(&bin, &c)
            .args(["runp", "--runtime", handler])
            .arg(&pod));
        let sandbox = sandbox.trim();
        let id = ok(crictl(&bin, &c)
            .args(["create", sandbox])
            .arg(&ctr)
            .arg(&pod));
        let id = id.trim();
        ok(crictl(&bin, &c).args(["start", id]));
        let hi = ok(crictl(&bin, &c).args(["exec", id, "echo", "hi"]));
        assert_eq!(hi, "hi\n", "{handler}");
        let state = ok(crictl(&bin, &c)
            .args(["inspect", "-o", "go-template"])
            .args(["--template", "{{.status.state}}", id]));
        assert_eq!(state.trim(), "CONTAINER_RUNNING", "{handler}");
        ok(crictl(&bin, &c).args(["stopp", sandbox]));
        ok(crictl(&bin, &c).args(["rmp", sandbox]));
    }
    // containerd-shim-rt-v2 passes the library's warnings on to
    // containerd's log, each skipped field named (the Go runc shim keeps
    // rt's in the bundle's log.json, as it does runc's).
    let log = std::fs::read_to_string(s.path().join("containerd.log")).unwrap();
    for field in ["cpu.shares", "cpu.quota"] {
        assert!(
            log.contains(&format!("linux.resources.{field}: skipped")),
            "rt-v2's warning for {field} in containerd's log:\n{}",
            tail(&s.path().join("containerd.log"))
        );
    }
    drop(c);
    s.assert_clean();
}
