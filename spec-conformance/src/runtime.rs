//! Driving the runtime under test through runc's command line, the way
//! containerd and runtime-tools do: `--root <private dir> create --bundle B
//! --pid-file F ID`, `start`, `state`, `kill`, `delete`.
//!
//! Like containerd's shim, the harness makes itself a child subreaper, so a
//! container's init (left behind by `create`) becomes its child and is
//! reaped by it: a runtime sees the init stop as soon as it exits.

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Once;
use std::time::Duration;

use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use rt_testkit::runtime::read_from_start;
use rt_testkit::Ran;
use serde_json::Value;

use crate::bundle::Bundle;

/// How long one runtime command may take before it is killed.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// What a finished command printed and how it ended.
#[derive(Debug, Clone)]
pub struct Out {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// The first line of stderr (or the whole of it), for messages.
    pub fn why(&self) -> String {
        let s = self.stderr.trim();
        if s.is_empty() {
            "no error message".into()
        } else {
            s.lines().last().unwrap_or(s).to_string()
        }
    }

    /// Whether the runtime refused because it does not implement something.
    pub fn unsupported(&self) -> bool {
        !self.ok && self.stderr.contains("not supported by rt")
    }
}

impl Out {
    /// What `args` ran to: a timeout is said at the end of stderr.
    fn of(args: &[&str], ran: Ran) -> Out {
        let mut stderr = ran.stderr();
        if ran.timed_out {
            stderr.push_str(&format!("\n{args:?} timed out after {COMMAND_TIMEOUT:?}"));
        }
        Out {
            ok: ran.success(),
            stdout: ran.stdout(),
            stderr,
        }
    }

    fn failed(stderr: String) -> Out {
        Out {
            ok: false,
            stdout: String::new(),
            stderr,
        }
    }
}

/// The runtime under test with a private state root (the kit's runner),
/// each command killed after [`COMMAND_TIMEOUT`].
pub struct Runtime {
    kit: rt_testkit::Runtime,
    version: String,
}

impl Runtime {
    /// The runtime named by `$RUNTIME` (rt by default) with a fresh private
    /// state root.
    pub fn new() -> Result<Runtime, String> {
        static SUBREAPER: Once = Once::new();
        SUBREAPER.call_once(|| {
            if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
                eprintln!("warning: cannot become a child subreaper: {e}");
            }
        });
        let bin = crate::artifacts::runtime()?;
        let v = Command::new(&bin)
            .arg("--version")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("{}: {e}", bin.display()))?;
        let version = String::from_utf8_lossy(&v.stdout)
            .lines()
            .next()
            .unwrap_or_default()
            .to_string();
        let kit = rt_testkit::Runtime::new(bin, "conformance-root.")
            .map_err(|e| format!("state root: {e}"))?
            .with_timeout(COMMAND_TIMEOUT);
        Ok(Runtime { kit, version })
    }

    pub fn bin(&self) -> &Path {
        self.kit.bin()
    }

    /// The first line of `--version` ("runc version 1.1.5+ds1").
    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn is_runc(&self) -> bool {
        self.version.starts_with("runc ")
    }

    /// The private `--root` state directory.
    pub fn root(&self) -> &Path {
        self.kit.root()
    }

    /// Runs `RUNTIME --root ROOT ARGS...` with stdin closed.
    pub fn run(&self, args: &[&str]) -> Out {
        match self.kit.run(args) {
            Ok(ran) => Out::of(args, ran),
            Err(e) => Out::failed(format!("spawn {}: {e}", self.bin().display())),
        }
    }

    /// `create --bundle B --pid-file B/pid ID`, with the container's stdout
    /// and stderr going to the bundle's `out` and `err` files. The init is
    /// reaped by a thread of ours once it exits.
    pub fn create(&self, id: &str, bundle: &Bundle) -> Out {
        self.kit.created(id);
        let open = |p| File::options().create(true).append(true).read(true).open(p);
        let (mut o, mut e) = match (open(bundle.out_file()), open(bundle.err_file())) {
            (Ok(o), Ok(e)) => (o, e),
            (Err(err), _) | (_, Err(err)) => {
                return Out::failed(format!("bundle output files: {err}"))
            }
        };
        let bundle_dir = bundle.path().to_string_lossy().into_owned();
        let pid_file = bundle.pid_file().to_string_lossy().into_owned();
        let args = [
            "create",
            "--bundle",
            &bundle_dir,
            "--pid-file",
            &pid_file,
            id,
        ];
        let (status, timed_out) = match self.kit.run_to(&args, &o, &e) {
            Ok(ended) => ended,
            Err(err) => return Out::failed(format!("spawn {}: {err}", self.bin().display())),
        };
        let ran = Ran {
            status,
            timed_out,
            stdout: read_from_start(&mut o).unwrap_or_default(),
            stderr: read_from_start(&mut e).unwrap_or_default(),
        };
        let out = Out::of(&args, ran);
        if out.ok {
            if let Some(pid) = bundle.pid() {
                reap_in_background(pid);
            }
        }
        out
    }

    pub fn start(&self, id: &str) -> Out {
        self.run(&["start", id])
    }

    pub fn kill(&self, id: &str, signal: &str) -> Out {
        self.run(&["kill", id, signal])
    }

    pub fn delete(&self, id: &str) -> Out {
        self.run(&["delete", id])
    }

    /// `state ID` parsed, or why not.
    pub fn state(&self, id: &str) -> Result<Value, String> {
        self.kit.state(id)
    }

    pub fn status(&self, id: &str) -> Option<String> {
        self.kit.status(id).ok()
    }

    /// Waits until `state` reports `want`.
    pub fn wait_status(&self, id: &str, want: &str, timeout: Duration) -> Result<(), String> {
        self.kit.wait_status(id, want, timeout)
    }

    /// Forgets an id (it was deleted by the test itself).
    pub fn forget(&self, id: &str) {
        self.kit.forget(id);
    }
}

/// Waits for a container's init in a thread of its own: as subreaper we
/// are its parent once `create` has returned. A pid that is not our child
/// (a runtime that keeps a monitor process) is left to its parent.
fn reap_in_background(pid: i32) {
    std::thread::spawn(move || {
        let _ = waitpid(Pid::from_raw(pid), None);
    });
}
