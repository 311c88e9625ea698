//! `rt spec`: a default (or rootless) config.json in the bundle.

use anyhow::{anyhow, bail, Context as _, Result};

use crate::one_line;

pub fn spec(bundle: &std::path::Path, rootless: bool) -> Result<()> {
    let path = bundle.join("config.json");
    if path.exists() {
        bail!("{} exists: remove it first", path.display());
    }
    let spec = if rootless {
        rt::config::template::rootless_spec(
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        )
    } else {
        rt::config::template::default_spec()
    };
    let mut text = serde_json::to_string_pretty(&spec)?;
    text.push('\n');
    std::fs::write(&path, text)
        .with_context(|| format!("write {}", path.display()))
        .map_err(|e| anyhow!("{}", one_line(&e)))
}
