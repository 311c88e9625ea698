//! Records the git commit for `rt --version` (runc prints one too, and
//! containerd shows it), and relinks rt when its function order changes.
use std::process::Command;

fn main() {
    let commit = std::env::var("RT_COMMIT").ok().or_else(|| {
        Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    });
    println!(
        "cargo:rustc-env=RT_COMMIT={}",
        commit.as_deref().unwrap_or("unknown")
    );
    println!("cargo:rerun-if-env-changed=RT_COMMIT");
    // scripts/release.sh links rt in this order: a new order relinks it.
    println!("cargo:rerun-if-changed=src/bin/rt/hot.order");
    for f in [".git/HEAD", ".git/refs/heads"] {
        if std::path::Path::new(f).exists() {
            println!("cargo:rerun-if-changed={f}");
        }
    }
}
