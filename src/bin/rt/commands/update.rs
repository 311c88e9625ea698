//! `rt update`: new resource limits, from --resources JSON and runc's flags.

use anyhow::{anyhow, Context as _, Result};
use rt::container;
use rt::state::Root;

use crate::cli::UpdateArgs;

pub fn update(root: &Root, a: &UpdateArgs) -> Result<()> {
    let r = resources(a)?;
    let rdt: Vec<String> = [&a.l3_cache_schema, &a.mem_bw_schema]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    if !rdt.is_empty() {
        container::update_intel_rdt(root, &a.id, &rdt)?;
        if r == oci_spec::runtime::LinuxResources::default() && a.resources.is_none() {
            return Ok(());
        }
    }
    container::update(root, &a.id, &r)?;
    Ok(())
}

/// A memory size as runc takes it: bytes, or a number with a binary unit
/// (k, m, g, t, p; "50M", "1.5g", "64MiB"); -1 is unlimited.
fn ram_bytes(flag: &str, v: &str) -> Result<i64> {
    if v == "-1" {
        return Ok(-1);
    }
    let bad = || anyhow!("--{flag}: {v:?} is not a size in bytes (such as 67108864, 50M or 1g)");
    let t = v.trim();
    let t = t
        .strip_suffix(['b', 'B'])
        .map(|t| t.strip_suffix(['i', 'I']).unwrap_or(t))
        .unwrap_or(t);
    let (num, mult) = match t.chars().last() {
        Some(c) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_lowercase() {
                'k' => 10,
                'm' => 20,
                'g' => 30,
                't' => 40,
                'p' => 50,
                _ => return Err(bad()),
            };
            (t[..t.len() - 1].trim_end(), (1u64 << shift) as f64)
        }
        _ => (t, 1.0),
    };
    if num.is_empty() || !num.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(bad());
    }
    let n: f64 = num.parse().map_err(|_| bad())?;
    let bytes = n * mult;
    if !bytes.is_finite() || bytes > i64::MAX as f64 {
        return Err(bad());
    }
    // Finite, not negative and at most i64::MAX (checked above); a
    // fraction of a byte is dropped.
    #[allow(clippy::cast_possible_truncation)]
    let bytes = bytes as i64;
    Ok(bytes)
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
    if let Some(x) = &a.memory {
        set("memory", "limit", ram_bytes("memory", x)?.into());
    }
    if let Some(x) = &a.memory_reservation {
        set(
            "memory",
            "reservation",
            ram_bytes("memory-reservation", x)?.into(),
        );
    }
    if let Some(x) = &a.memory_swap {
        set("memory", "swap", ram_bytes("memory-swap", x)?.into());
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
    if let Some(x) = a.cpu_burst {
        set("cpu", "burst", x.into());
    }
    if let Some(x) = a.cpu_idle {
        set("cpu", "idle", x.into());
    }
    if let Some(x) = a.cpu_rt_period {
        set("cpu", "realtimePeriod", x.into());
    }
    if let Some(x) = a.cpu_rt_runtime {
        set("cpu", "realtimeRuntime", x.into());
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

#[cfg(test)]
mod tests {
    use super::ram_bytes;

    #[test]
    fn sizes_read_as_runc_reads_them() {
        assert_eq!(ram_bytes("memory", "67108864").unwrap(), 67_108_864);
        assert_eq!(ram_bytes("memory", "50M").unwrap(), 50 << 20);
        assert_eq!(ram_bytes("memory", "50m").unwrap(), 50 << 20);
        assert_eq!(ram_bytes("memory", "1g").unwrap(), 1 << 30);
        assert_eq!(ram_bytes("memory", "64MiB").unwrap(), 64 << 20);
        assert_eq!(ram_bytes("memory", "10kb").unwrap(), 10 << 10);
        assert_eq!(ram_bytes("memory", "1.5k").unwrap(), 1536);
        assert_eq!(ram_bytes("memory", "-1").unwrap(), -1);
        for bad in ["", "M", "ten", "-2", "5x", "1e3"] {
            let e = ram_bytes("memory", bad).unwrap_err().to_string();
            assert!(e.starts_with("--memory: "), "{bad}: {e}");
        }
    }
}
