//! `rt update`: new resource limits, from --resources JSON and runc's flags.

use anyhow::{anyhow, Context as _, Result};
use rt::container;
use rt::state::Root;

use crate::cli::UpdateArgs;

pub fn update(root: &Root, a: &UpdateArgs) -> Result<()> {
    container::update(root, &a.id, &resources(a)?)?;
    Ok(())
}

/// The resources `update` asks for: the --resources JSON, with runc's
/// flags on top.
fn resources(a: &UpdateArgs) -> Result<oci_spec::runtime::LinuxResources> {
    use std::io::Read;
    let mut v: serde_json::Value = match &a.resources {
        Some(p) => {
            let mut text = String::new();
            if p.as_os_str() == "-" {
                std::io::stdin().read_to_string(&mut text)?;
            } else {
                text = std::fs::read_to_string(p)
                    .with_context(|| format!("--resources {}", p.display()))?;
            }
            serde_json::from_str(&text)
                .map_err(|e| anyhow!("--resources: not linux.resources JSON: {e}"))?
        }
        None => serde_json::json!({}),
    };
    let mut set = |section: &str, key: &str, val: serde_json::Value| {
        v[section][key] = val;
    };
    if let Some(x) = a.memory {
        set("memory", "limit", x.into());
    }
    if let Some(x) = a.memory_reservation {
        set("memory", "reservation", x.into());
    }
    if let Some(x) = a.memory_swap {
        set("memory", "swap", x.into());
    }
    if let Some(x) = a.cpu_shares {
        set("cpu", "shares", x.into());
    }
    if let Some(x) = a.cpu_quota {
        set("cpu", "quota", x.into());
    }
    if let Some(x) = a.cpu_period {
        set("cpu", "period", x.into());
    }
    if let Some(x) = &a.cpuset_cpus {
        set("cpu", "cpus", x.clone().into());
    }
    if let Some(x) = &a.cpuset_mems {
        set("cpu", "mems", x.clone().into());
    }
    if let Some(x) = a.pids_limit {
        set("pids", "limit", x.into());
    }
    if let Some(x) = a.blkio_weight {
        set("blockIO", "weight", x.into());
    }
    serde_json::from_value(v).map_err(|e| anyhow!("--resources: {e}"))
}
