//! `rt list`: the containers of the root, as ids, JSON or runc's table.

use anyhow::Result;
use rt::container;
use rt::state::Root;

use crate::cli::ListFormat;

pub fn list(root: &Root, format: ListFormat, quiet: bool) -> Result<()> {
    let all = container::list(root)?;
    if quiet {
        for c in &all {
            outln!("{}", c.state.id)?;
        }
        return Ok(());
    }
    if format == ListFormat::Json {
        // runc's shape: the state's fields in its order, and `null` (a
        // nil list) when there is no container.
        let v: Vec<container::OciState> = all
            .iter()
            .map(|c| {
                let mut s = c.state.clone();
                s.owner = c.owner.clone();
                s
            })
            .collect();
        if v.is_empty() {
            outln!("null")?;
        } else {
            outln!("{}", serde_json::to_string(&v)?)?;
        }
        return Ok(());
    }
    let rows: Vec<[String; 6]> = all
        .iter()
        .map(|c| {
            [
                c.state.id.clone(),
                c.state.pid.to_string(),
                match &c.state.exit {
                    Some(e) => match e.status {
                        Some(code) => format!("{} ({code})", c.state.status),
                        None => format!("{} (?)", c.state.status),
                    },
                    None => c.state.status.to_string(),
                },
                c.state.bundle.display().to_string(),
                c.state.created.clone(),
                c.owner.clone(),
            ]
        })
        .collect();
    let header = ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from);
    let mut widths = header.clone().map(|h| h.len());
    for r in &rows {
        for (w, f) in widths.iter_mut().zip(r) {
            *w = (*w).max(f.len());
        }
    }
    // runc's tabwriter: each column its widest cell plus 3 spaces, and
    // at least 12 wide.
    for r in std::iter::once(&header).chain(rows.iter()) {
        let line: String = r
            .iter()
            .zip(widths)
            .map(|(f, w)| format!("{f:<width$}", width = (w + 3).max(12)))
            .collect();
        outln!("{}", line.trim_end())?;
    }
    Ok(())
}
