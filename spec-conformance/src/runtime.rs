//! Driving the runtime under test through runc's command line, the way
//! containerd and runtime-tools do: `--root <private dir> create --bundle B
//! --pid-file F ID`, `start`, `state`, `kill`, `delete`.
//!
//! Like containerd's shim, the harness makes itself a child subreaper, so a
//! container's init (left behind by `create`) becomes its child and is
//! reaped by it: a runtime sees the init stop as soon as it exits.

use std::fs::File;
use std::io::{Read, Seek};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

use nix::sys::wait::waitpid;
use nix::unistd::Pid;
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

pub struct Runtime {
    bin: PathBuf,
    root: tempfile::TempDir,
    version: String,
    ids: std::cell::RefCell<Vec<String>>,
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
        let root = tempfile::Builder::new()
            .prefix("conformance-root.")
            .tempdir()
            .map_err(|e| format!("state root: {e}"))?;
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
        Ok(Runtime {
            bin,
            root,
            version,
            ids: Default::default(),
        })
    }

    pub fn bin(&self) -> &Path {
        &self.bin
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
        self.root.path()
    }

    /// Runs `RUNTIME --root ROOT ARGS...` with stdin closed.
    pub fn run(&self, args: &[&str]) -> Out {
        let out = tempfile::tempfile().and_then(|o| Ok((o.try_clone()?, o)));
        let err = tempfile::tempfile().and_then(|e| Ok((e.try_clone()?, e)));
        match (out, err) {
            (Ok((o, keep_o)), Ok((e, keep_e))) => self.run_with(args, o, e, keep_o, keep_e),
            (Err(e), _) | (_, Err(e)) => Out {
                ok: false,
                stdout: String::new(),
                stderr: format!("temporary file: {e}"),
            },
        }
    }

    /// Runs the command with stdout and stderr going to files (a created
    /// container inherits them and would hold a pipe open), and returns
    /// what was written to `read_out`/`read_err`.
    fn run_with(
        &self,
        args: &[&str],
        out: File,
        err: File,
        mut read_out: File,
        mut read_err: File,
    ) -> Out {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--root").arg(self.root()).args(args);
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                return Out {
                    ok: false,
                    stdout: String::new(),
                    stderr: format!("spawn {}: {e}", self.bin.display()),
                }
            }
        };
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                _ => {
                    // Killed by its own pid, never by name.
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
            }
        };
        let read = |f: &mut File| {
            let mut s = String::new();
            let _ = f.seek(std::io::SeekFrom::Start(0));
            let _ = f.read_to_string(&mut s);
            s
        };
        let (stdout, mut stderr) = (read(&mut read_out), read(&mut read_err));
        if status.is_none() {
            stderr.push_str(&format!("\n{:?} timed out after {COMMAND_TIMEOUT:?}", args));
        }
        Out {
            ok: status.is_some_and(|s| s.success()),
            stdout,
            stderr,
        }
    }

    /// `create --bundle B --pid-file B/pid ID`, with the container's stdout
    /// and stderr going to the bundle's `out` and `err` files. The init is
    /// reaped by a thread of ours once it exits.
    pub fn create(&self, id: &str, bundle: &Bundle) -> Out {
        self.ids.borrow_mut().push(id.to_string());
        let open = |p: PathBuf| File::options().create(true).append(true).read(true).open(p);
        let files = (|| -> std::io::Result<_> {
            let o = open(bundle.out_file())?;
            let e = open(bundle.err_file())?;
            Ok((o.try_clone()?, e.try_clone()?, o, e))
        })();
        let (o, e, ro, re) = match files {
            Ok(f) => f,
            Err(e) => {
                return Out {
                    ok: false,
                    stdout: String::new(),
                    stderr: format!("bundle output files: {e}"),
                }
            }
        };
        let bundle_dir = bundle.path().to_string_lossy().into_owned();
        let pid_file = bundle.pid_file().to_string_lossy().into_owned();
        let out = self.run_with(
            &[
                "create",
                "--bundle",
                &bundle_dir,
                "--pid-file",
                &pid_file,
                id,
            ],
            o,
            e,
            ro,
            re,
        );
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
        let out = self.run(&["state", id]);
        if !out.ok {
            return Err(out.why());
        }
        serde_json::from_str(&out.stdout)
            .map_err(|e| format!("state is not JSON ({e}): {}", out.stdout))
    }

    pub fn status(&self, id: &str) -> Option<String> {
        self.state(id).ok()?["status"].as_str().map(str::to_string)
    }

    /// Waits until `state` reports `want`.
    pub fn wait_status(&self, id: &str, want: &str, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.status(id);
            if got.as_deref() == Some(want) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "status is {got:?} after {timeout:?}, wanted {want}"
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Forgets an id (it was deleted by the test itself).
    pub fn forget(&self, id: &str) {
        self.ids.borrow_mut().retain(|i| i != id);
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        for id in self.ids.borrow().iter() {
            let _ = self.run(&["delete", "--force", id]);
        }
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
