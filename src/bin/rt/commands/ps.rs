//! `rt ps`: the container's processes, as pids or as ps(1)'s rows.

use anyhow::{anyhow, bail, Context as _, Result};
use rt::container;
use rt::state::Root;

use crate::cli::ListFormat;

/// runc's `ps`: json is the array of pids (what containerd parses);
/// table is ps(1)'s output, header and the container's rows.
pub fn ps(root: &Root, id: &str, format: ListFormat, ps_args: &[String]) -> Result<()> {
    let pids = container::pids(root, id)?;
    if format == ListFormat::Json {
        outln!("{}", serde_json::to_string(&pids)?)?;
        return Ok(());
    }
    let args: Vec<String> = if ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        ps_args.to_vec()
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .context("run ps")?;
    if !out.status.success() {
        bail!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .ok_or_else(|| anyhow!("ps {}: its output has no PID column", args.join(" ")))?;
    outln!("{header}")?;
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(col)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            outln!("{line}")?;
        }
    }
    Ok(())
}
