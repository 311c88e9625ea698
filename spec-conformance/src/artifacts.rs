//! Finding the two binaries the suite needs: the runtime under test and the
//! static checker that runs inside each container.
//!
//! The runtime is `$RUNTIME` (a path, or a name looked up in `PATH`). By
//! default it is the `rt` of this workspace, built with the same profile
//! into the same target directory as the running test or `rt-conformance`
//! binary (the test kit finds it: `$CARGO_TARGET_DIR`, else where our own
//! executable was built); it is built there with cargo if missing.
//!
//! The checker is built on demand with `+crt-static` for
//! x86_64-unknown-linux-gnu into `<target dir>/conformance-checker/`, its
//! own target directory, so the workspace's build is not disturbed and the
//! nested cargo never waits on the lock of the build that runs us.
//! `$CONFORMANCE_CHECKER` names a prebuilt one instead.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const CHECKER_TARGET: &str = "x86_64-unknown-linux-gnu";

fn cargo() -> Command {
    let mut c = rt_testkit::bins::cargo();
    // Flags meant for the outer build must not leak into these.
    c.env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS");
    c
}

/// The runtime under test.
pub fn runtime() -> Result<PathBuf, String> {
    static RT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    RT.get_or_init(|| {
        if let Some(r) = std::env::var_os("RUNTIME").filter(|r| !r.is_empty()) {
            let r = PathBuf::from(r);
            return if r.components().count() > 1 {
                Ok(r)
            } else {
                which(&r).ok_or_else(|| format!("RUNTIME={}: not found in PATH", r.display()))
            };
        }
        rt_testkit::ensure_built("rt", "rt")
    })
    .clone()
}

fn which(name: &Path) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The static checker binary.
pub fn checker() -> Result<PathBuf, String> {
    static CHECKER: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    CHECKER
        .get_or_init(|| {
            if let Some(c) = std::env::var_os("CONFORMANCE_CHECKER").filter(|c| !c.is_empty()) {
                return Ok(PathBuf::from(c));
            }
            let target = rt_testkit::target_dir().join("conformance-checker");
            // Always asked: cargo does nothing when it is up to date, and a
            // stale checker would test yesterday's clauses.
            let mut c = cargo();
            c.args([
                "build",
                "--release",
                "-p",
                "conformance-checker",
                "--target",
                CHECKER_TARGET,
            ])
            .arg("--target-dir")
            .arg(&target)
            .env("RUSTFLAGS", "-C target-feature=+crt-static");
            rt_testkit::bins::run_cargo(&mut c, "the conformance checker")?;
            let bin = target
                .join(CHECKER_TARGET)
                .join("release/conformance-checker");
            if is_dynamic(&bin)? {
                return Err(format!("{} is not statically linked", bin.display()));
            }
            Ok(bin)
        })
        .clone()
}

/// Whether an ELF file asks for a dynamic loader (has a PT_INTERP
/// program header): such a binary cannot run in a busybox root.
fn is_dynamic(path: &Path) -> Result<bool, String> {
    let b = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    if b.len() < 64 || &b[..4] != b"\x7fELF" || b[4] != 2 {
        return Err(format!("{}: not a 64-bit ELF file", path.display()));
    }
    let phoff = usize::try_from(u64::from_le_bytes(b[32..40].try_into().unwrap()))
        .map_err(|_| format!("{}: program headers beyond memory", path.display()))?;
    let (phentsize, phnum) = (u16_at(54), u16_at(56));
    Ok((0..phnum).any(|i| {
        let o = phoff + i * phentsize;
        o + 4 <= b.len() && u32::from_le_bytes(b[o..o + 4].try_into().unwrap()) == 3
    }))
}
