//! config-linux.md's namespaces and user namespace mappings.
//!
//! The harness tells the checker, in annotations, the inode of each of the
//! runtime's own namespaces (`conformance/host-ns/<kind>`) and of each
//! namespace the config joins by path (`conformance/join-ns/<kind>`): the
//! checker cannot see the host from inside.

use std::fs;

use serde_json::Value;

use crate::sys;
use crate::tap::{ensure, eq, Outcome, Plan};

/// (config type, name under /proc/self/ns)
const KINDS: [(&str, &str); 8] = [
    ("pid", "pid"),
    ("network", "net"),
    ("mount", "mnt"),
    ("ipc", "ipc"),
    ("uts", "uts"),
    ("user", "user"),
    ("cgroup", "cgroup"),
    ("time", "time"),
];

fn annotation(cfg: &Value, key: &str) -> Option<u64> {
    cfg["annotations"][key]
        .as_str()
        .and_then(|s| s.parse().ok())
}

pub fn plan(cfg: &Value, plan: &mut Plan) {
    let listed = cfg["linux"]["namespaces"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for (kind, proc_name) in KINDS {
        let entry = listed.iter().find(|n| n["type"] == kind);
        let host = annotation(cfg, &format!("conformance/host-ns/{proc_name}"));
        match entry {
            Some(n) if n["path"].as_str().is_some_and(|p| !p.is_empty()) => {
                let want = annotation(cfg, &format!("conformance/join-ns/{proc_name}"));
                plan.check(
                    format!("config-linux.md, Namespaces: the process MUST join the {kind} namespace at path"),
                    move || match want {
                        Some(w) => eq(sys::ns_inode(proc_name)?, w),
                        None => Err("the harness did not say which namespace the path names".into()),
                    },
                );
            }
            Some(_) => plan.check(
                format!("config-linux.md, Namespaces: a new {kind} namespace MUST be created"),
                move || match host {
                    Some(h) => {
                        let got = sys::ns_inode(proc_name)?;
                        ensure(got != h, || {
                            format!("{proc_name} namespace {got} is the runtime's own")
                        })
                    }
                    None => Ok(Outcome::Skip(format!("the host has no {kind} namespaces"))),
                },
            ),
            None => {
                // Only types the host has are reported by the harness.
                let Some(h) = host else { continue };
                plan.check(
                    format!("config-linux.md, Namespaces: an unlisted {kind} namespace MUST be inherited from the runtime"),
                    move || eq(sys::ns_inode(proc_name)?, h),
                );
            }
        }
    }

    let new_user = listed
        .iter()
        .any(|n| n["type"] == "user" && n["path"].as_str().is_none_or(str::is_empty));
    if !new_user {
        return;
    }
    for (key, file) in [("uidMappings", "uid_map"), ("gidMappings", "gid_map")] {
        let Some(maps) = cfg["linux"][key].as_array() else {
            continue;
        };
        let mut want: Vec<(u64, u64, u64)> = maps
            .iter()
            .map(|m| {
                let f = |k: &str| m[k].as_u64().unwrap_or(u64::MAX);
                (f("containerID"), f("hostID"), f("size"))
            })
            .collect();
        want.sort();
        plan.check(
            format!("config-linux.md, User namespace mappings: {key} MUST be the process's {file}"),
            move || {
                let text = fs::read_to_string(format!("/proc/self/{file}"))
                    .map_err(|e| format!("{file}: {e}"))?;
                let mut got: Vec<(u64, u64, u64)> = text
                    .lines()
                    .filter_map(|l| {
                        let v: Vec<u64> = l
                            .split_whitespace()
                            .filter_map(|x| x.parse().ok())
                            .collect();
                        (v.len() == 3).then(|| (v[0], v[1], v[2]))
                    })
                    .collect();
                got.sort();
                eq(got, want)
            },
        );
    }
}
