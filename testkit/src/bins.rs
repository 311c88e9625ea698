//! The workspace's built binaries: rt, rt-shim, containerd-shim-rt-v2,
//! rt-image.
//!
//! They are looked for in the target directory: `$CARGO_TARGET_DIR` when
//! set (relative to the workspace root, as cargo run from there reads it),
//! else the one the running test or program was built into, else the
//! workspace's `target/`; in the profile the running binary was built
//! with (`debug` or `release`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// The workspace root: the testkit crate's parent directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit lives inside the workspace")
        .to_path_buf()
}

/// The profile directory the running executable is in (`<target>/debug`):
/// a test binary is in its `deps/`, an example in `examples/`, a program
/// directly in it.
fn exe_profile_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let mut dir = exe.parent()?.to_path_buf();
    if dir
        .file_name()
        .is_some_and(|n| n == "deps" || n == "examples")
    {
        dir.pop();
    }
    Some(dir)
}

/// The target directory (see the module's doc).
pub fn target_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        return workspace_root().join(d);
    }
    exe_profile_dir()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// `release` when the running executable was built with it, else `debug`.
pub fn profile() -> &'static str {
    if exe_profile_dir().is_some_and(|d| d.file_name().is_some_and(|n| n == "release")) {
        "release"
    } else {
        "debug"
    }
}

/// `name` in the target directory, in this profile or else the other one.
pub fn find_binary(name: &str) -> Option<PathBuf> {
    let other = if profile() == "release" {
        "debug"
    } else {
        "release"
    };
    let target = target_dir();
    [profile(), other]
        .iter()
        .map(|p| target.join(p).join(name))
        .find(|p| p.exists())
        .map(|p| p.canonicalize().unwrap_or(p))
}

/// `name`, already built; panics saying how to build it.
pub fn built_binary(name: &str) -> PathBuf {
    find_binary(name)
        .unwrap_or_else(|| panic!("{name} is not built: run `cargo build --workspace` first"))
}

/// The binary `bin` of `package` in this profile, built now (once, with
/// cargo, into the same target directory) if it is not there: a lone
/// `cargo test -p rt` does not build the shim crate's binaries.
pub fn ensure_built(package: &str, bin: &str) -> Result<PathBuf, String> {
    ensure_built_in(&target_dir().join(profile()), package, bin)
}

/// [`ensure_built`] into the profile directory `dir` (`<target>/debug`),
/// for a binary wanted beside another one (rt looks for rt-shim beside
/// itself).
pub fn ensure_built_in(dir: &Path, package: &str, bin: &str) -> Result<PathBuf, String> {
    // One build at a time: test threads that all want it wait for the first.
    static BUILDING: Mutex<()> = Mutex::new(());
    let _one = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
    let path = dir.join(bin);
    if path.exists() {
        return Ok(path);
    }
    let target = dir
        .parent()
        .ok_or_else(|| format!("{}: not a profile directory", dir.display()))?;
    let mut c = cargo();
    c.args(["build", "-q", "-p", package, "--bin", bin, "--target-dir"])
        .arg(target);
    if dir.file_name().is_some_and(|n| n == "release") {
        c.arg("--release");
    }
    run_cargo(&mut c, bin)?;
    Ok(path)
}

/// The cargo that runs us (`$CARGO`), in the workspace root.
pub fn cargo() -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(workspace_root());
    c
}

/// Runs a `cargo build` of `what`; its stderr is the error if it fails.
pub fn run_cargo(c: &mut Command, what: &str) -> Result<(), String> {
    let out = c
        .output()
        .map_err(|e| format!("running cargo to build {what}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "building {what} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}
