//! `linux.memoryPolicy` (runtime-spec 1.3) in set_mempolicy(2)'s terms:
//! checked when the config is loaded, applied by the init before exec.

use oci_spec::runtime::LinuxMemoryPolicy;

use crate::config::ranges;

/// The kernel's MAX_NUMNODES at its largest (NODES_SHIFT 10).
const MAX_NODES: usize = 1 << 10;

/// The modes of set_mempolicy(2) by their spec names (`rt features`
/// lists these).
pub const MODES: [(&str, i32); 7] = [
    ("MPOL_DEFAULT", 0),
    ("MPOL_PREFERRED", 1),
    ("MPOL_BIND", 2),
    ("MPOL_INTERLEAVE", 3),
    ("MPOL_LOCAL", 4),
    ("MPOL_PREFERRED_MANY", 5),
    ("MPOL_WEIGHTED_INTERLEAVE", 6),
];

/// The mode flags, likewise.
pub const FLAGS: [(&str, i32); 3] = [
    ("MPOL_F_NUMA_BALANCING", 1 << 13),
    ("MPOL_F_RELATIVE_NODES", 1 << 14),
    ("MPOL_F_STATIC_NODES", 1 << 15),
];

/// The kernel's value of a spec name in `table`.
fn value_of<T: serde::Serialize>(table: &[(&'static str, i32)], v: &T) -> (&'static str, i32) {
    let name = serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    table
        .iter()
        .find(|(n, _)| *n == name)
        .map(|&(n, v)| (n, v))
        .expect("oci-spec's names are the kernel's")
}

/// What set_mempolicy(2) is given: the mode with its flags, and the node
/// mask in words of 64 nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemPolicy {
    pub mode: i32,
    pub nodemask: Vec<libc::c_ulong>,
}

/// Checks `linux.memoryPolicy` and turns it into set_mempolicy's
/// arguments. The message names the field below `linux.memoryPolicy`.
pub fn plan(p: &LinuxMemoryPolicy) -> Result<MemPolicy, String> {
    let (name, mode) = value_of(&MODES, &p.mode());
    let nodes = match p.nodes().as_deref().map(str::trim) {
        None | Some("") => Vec::new(),
        Some(list) => ranges::parse(list, MAX_NODES).map_err(|e| format!("nodes: {e}"))?,
    };
    // set_mempolicy(2): DEFAULT and LOCAL take no nodes; PREFERRED with
    // none means local allocation; the others need at least one.
    match mode {
        0 | 4 if !nodes.is_empty() => {
            return Err(format!("nodes: {name} takes no nodes"));
        }
        2 | 3 | 5 | 6 if nodes.is_empty() => {
            return Err(format!("nodes: {name} needs at least one node"));
        }
        _ => {}
    }
    const RELATIVE: i32 = 1 << 14;
    const STATIC: i32 = 1 << 15;
    let mut flags = 0;
    for f in p.flags().iter().flatten() {
        flags |= value_of(&FLAGS, f).1;
    }
    if flags & STATIC != 0 && flags & RELATIVE != 0 {
        return Err(
            "flags: MPOL_F_STATIC_NODES and MPOL_F_RELATIVE_NODES exclude each other".into(),
        );
    }
    if flags != 0 && (mode == 0 || mode == 4) {
        return Err(format!("flags: {name} takes no flags"));
    }
    let bits = libc::c_ulong::BITS as usize;
    let mut nodemask = vec![0; nodes.last().map_or(0, |n| n / bits + 1)];
    for n in nodes {
        nodemask[n / bits] |= 1 << (n % bits);
    }
    Ok(MemPolicy {
        mode: mode | flags,
        nodemask,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(json: &str) -> Result<MemPolicy, String> {
        plan(&serde_json::from_str(json).unwrap())
    }

    #[test]
    fn modes_nodes_and_flags() {
        let p = policy(r#"{"mode":"MPOL_INTERLEAVE","nodes":"0,2-3"}"#).unwrap();
        assert_eq!(
            p,
            MemPolicy {
                mode: 3,
                nodemask: vec![0b1101]
            }
        );
        let p =
            policy(r#"{"mode":"MPOL_BIND","nodes":"64","flags":["MPOL_F_STATIC_NODES"]}"#).unwrap();
        assert_eq!(
            p,
            MemPolicy {
                mode: 2 | 1 << 15,
                nodemask: vec![0, 1]
            }
        );
        assert!(policy(r#"{"mode":"MPOL_DEFAULT"}"#)
            .unwrap()
            .nodemask
            .is_empty());
    }

    #[test]
    fn refusals_name_the_field() {
        for (json, want) in [
            (r#"{"mode":"MPOL_BIND"}"#, "nodes: MPOL_BIND needs"),
            (
                r#"{"mode":"MPOL_LOCAL","nodes":"0"}"#,
                "nodes: MPOL_LOCAL takes no nodes",
            ),
            (r#"{"mode":"MPOL_BIND","nodes":"0-"}"#, "nodes: "),
            (
                r#"{"mode":"MPOL_BIND","nodes":"0","flags":["MPOL_F_STATIC_NODES","MPOL_F_RELATIVE_NODES"]}"#,
                "exclude each other",
            ),
            (
                r#"{"mode":"MPOL_DEFAULT","flags":["MPOL_F_STATIC_NODES"]}"#,
                "takes no flags",
            ),
        ] {
            let e = policy(json).unwrap_err();
            assert!(e.contains(want), "{json}: {e}");
        }
    }
}
