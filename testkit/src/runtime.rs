//! A runtime with runc's command line (rt, or any other), run the way
//! containerd and runtime-tools run it: `RUNTIME --root <private dir>
//! ARGS...`, stdin closed, stdout and stderr through files.
//!
//! Files, not pipes: a container `create` makes inherits the runtime's
//! stdout and stderr, and would hold a pipe open long after the runtime
//! exits. Every id a `create` or `run` names is remembered and deleted
//! with `delete --force` when the [`Runtime`] is dropped, so a failing
//! assertion leaves nothing running.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Seek};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

/// How a command run through files ended and what it wrote.
#[derive(Debug)]
pub struct Ran {
    pub status: ExitStatus,
    /// It ran longer than it was allowed and was killed (by its pid).
    pub timed_out: bool,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Ran {
    pub fn success(&self) -> bool {
        !self.timed_out && self.status.success()
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// The last line of stderr, or "no error message", for messages.
    pub fn why(&self) -> String {
        let err = self.stderr();
        let s = err.trim();
        if s.is_empty() {
            "no error message".into()
        } else {
            s.lines().last().unwrap_or(s).to_string()
        }
    }

    pub fn into_output(self) -> Output {
        Output {
            status: self.status,
            stdout: self.stdout,
            stderr: self.stderr,
        }
    }
}

/// Everything in `f` from its start.
pub fn read_from_start(f: &mut File) -> io::Result<Vec<u8>> {
    let mut v = Vec::new();
    f.rewind()?;
    f.read_to_end(&mut v)?;
    Ok(v)
}

/// Runs `cmd` with stdin closed and stdout and stderr going to `out` and
/// `err`; after `timeout` (if any) kills it by its pid. Returns its status
/// and whether it timed out.
pub fn run_to_files(
    cmd: &mut Command,
    out: &File,
    err: &File,
    timeout: Option<Duration>,
) -> io::Result<(ExitStatus, bool)> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(err.try_clone()?)
        .spawn()?;
    let Some(timeout) = timeout else {
        return Ok((child.wait()?, false));
    };
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok((status, false));
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            return Ok((child.wait()?, true));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Runs `cmd` to its end (or `timeout`) with stdin closed, its output
/// through temporary files.
pub fn run_captured(cmd: &mut Command, timeout: Option<Duration>) -> io::Result<Ran> {
    let mut out = tempfile::tempfile()?;
    let mut err = tempfile::tempfile()?;
    let (status, timed_out) = run_to_files(cmd, &out, &err, timeout)?;
    Ok(Ran {
        status,
        timed_out,
        stdout: read_from_start(&mut out)?,
        stderr: read_from_start(&mut err)?,
    })
}

/// A runtime binary with a private state root.
pub struct Runtime {
    bin: PathBuf,
    root: tempfile::TempDir,
    timeout: Option<Duration>,
    ids: Mutex<Vec<String>>,
}

impl Runtime {
    /// `bin` with a fresh state root named `PREFIX…` in the temporary
    /// directory; its commands run without a time limit.
    pub fn new(bin: impl Into<PathBuf>, root_prefix: &str) -> io::Result<Runtime> {
        Ok(Runtime {
            bin: bin.into(),
            root: tempfile::Builder::new().prefix(root_prefix).tempdir()?,
            timeout: None,
            ids: Default::default(),
        })
    }

    /// Kills a command that runs longer than `timeout`.
    pub fn with_timeout(mut self, timeout: Duration) -> Runtime {
        self.timeout = Some(timeout);
        self
    }

    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// The private `--root` state directory.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// A command for `RUNTIME --root ROOT ARGS...`; the caller sets stdio,
    /// and says with [`Runtime::created`] what it creates.
    pub fn cmd<S: AsRef<OsStr>>(&self, args: &[S]) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--root").arg(self.root()).args(args);
        c
    }

    /// Runs `RUNTIME --root ROOT ARGS...` with its output in `out` and
    /// `err` (a container `create` makes writes there too).
    pub fn run_to<S: AsRef<OsStr>>(
        &self,
        args: &[S],
        out: &File,
        err: &File,
    ) -> io::Result<(ExitStatus, bool)> {
        self.track(args);
        run_to_files(&mut self.cmd(args), out, err, self.timeout)
    }

    /// Runs `RUNTIME --root ROOT ARGS...` to its end, output captured.
    pub fn run<S: AsRef<OsStr>>(&self, args: &[S]) -> io::Result<Ran> {
        self.track(args);
        run_captured(&mut self.cmd(args), self.timeout)
    }

    /// `state ID` parsed, or why not (the runtime's last line of stderr).
    pub fn state(&self, id: &str) -> Result<Value, String> {
        let out = self.run(&["state", id]).map_err(|e| e.to_string())?;
        if !out.success() {
            return Err(out.why());
        }
        serde_json::from_slice(&out.stdout)
            .map_err(|e| format!("state is not JSON ({e}): {}", out.stdout()))
    }

    /// The `status` of `state ID`, or why there is none.
    pub fn status(&self, id: &str) -> Result<String, String> {
        let state = self.state(id)?;
        state["status"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("state has no status: {state}"))
    }

    /// Waits until `state ID` reports `want` (a container being made by
    /// another command may not exist yet); else says what it saw last.
    pub fn wait_status(&self, id: &str, want: &str, timeout: Duration) -> Result<(), String> {
        crate::retry(timeout, || match self.status(id) {
            Ok(s) if s == want => Ok(()),
            Ok(s) => Err(s),
            Err(why) => Err(format!("absent ({why})")),
        })
        .map_err(|got| format!("status {got} after {timeout:?}, wanted {want}"))
    }

    /// Remembers the id a `create` or `run` names (its last argument).
    fn track<S: AsRef<OsStr>>(&self, args: &[S]) {
        let args: Vec<String> = args
            .iter()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .collect();
        let cmd = args.iter().find(|a| !a.starts_with('-'));
        if matches!(cmd.map(String::as_str), Some("create" | "run")) {
            if let Some(id) = args.last() {
                self.created(id);
            }
        }
    }

    /// Records an id created by a command spawned through [`Runtime::cmd`].
    pub fn created(&self, id: &str) {
        let mut ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        if !ids.iter().any(|i| i == id) {
            ids.push(id.to_string());
        }
    }

    /// Forgets an id (the test deleted it itself).
    pub fn forget(&self, id: &str) {
        let mut ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        ids.retain(|i| i != id);
    }

    /// Deletes (`delete --force`) every id remembered and forgets them;
    /// returns them.
    pub fn delete_all(&self) -> Vec<String> {
        let ids = std::mem::take(&mut *self.ids.lock().unwrap_or_else(|e| e.into_inner()));
        for id in &ids {
            let _ = run_captured(&mut self.cmd(&["delete", "--force", id]), self.timeout);
        }
        ids
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.delete_all();
    }
}
