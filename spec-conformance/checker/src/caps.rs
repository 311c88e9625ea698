//! config.md's capabilities: every set the config names, compared with the
//! Cap* lines of /proc/self/status.
//!
//! The harness only writes capability sets that execve(2) leaves as they
//! are (for root: bounding = permitted = effective, inheritable a subset;
//! for other users: every set equal), so the sets the program sees are the
//! ones the runtime had to set. Ambient capabilities the kernel cannot
//! grant (not in both permitted and inheritable) are allowed to be missing:
//! the spec asks for a warning there, not an error.

use serde_json::Value;

use crate::process::str_list;
use crate::sys;
use crate::tap::{eq, Plan};

const NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The bit mask of a list of capability names (unknown names are left out:
/// a runtime cannot grant them).
fn mask(names: &[String]) -> u64 {
    names
        .iter()
        .filter_map(|n| NAMES.iter().position(|k| k == n))
        .fold(0, |m, bit| m | (1u64 << bit))
}

/// The names of the bits set in `m`, for readable failures.
fn names(m: u64) -> Vec<&'static str> {
    (0..NAMES.len())
        .filter(|b| m & (1 << b) != 0)
        .map(|b| NAMES[b])
        .collect()
}

fn status_mask(field: &str) -> Result<u64, String> {
    let v = sys::status_field(field)?;
    u64::from_str_radix(&v, 16).map_err(|e| format!("{field}: {v}: {e}"))
}

pub fn plan(cfg: &Value, plan: &mut Plan) {
    let caps = &cfg["process"]["capabilities"];
    if !caps.is_object() {
        return;
    }
    let set = |k: &str| str_list(&caps[k]).map(|v| mask(&v));
    for (key, field) in [
        ("bounding", "CapBnd"),
        ("effective", "CapEff"),
        ("permitted", "CapPrm"),
        ("inheritable", "CapInh"),
    ] {
        let Some(want) = set(key) else { continue };
        plan.check(
            format!("config.md, Linux Process: capabilities.{key} MUST be the process's {field}"),
            move || eq(names(status_mask(field)?), names(want)),
        );
    }
    if let Some(amb) = set("ambient") {
        let grantable = amb & set("permitted").unwrap_or(0) & set("inheritable").unwrap_or(0);
        plan.check(
            "config.md, Linux Process: capabilities.ambient MUST be the process's CapAmb (those the kernel can grant)",
            move || eq(names(status_mask("CapAmb")?), names(grantable)),
        );
    }
}
