//! Configs a runtime must refuse, and runtime.md's Errors clause: a
//! refused create leaves the environment as if it had never run (no
//! container, no state, no cgroup, no mounts).

use std::fs;

use serde_json::{json, Value};

use super::{bundle, cgroup_dirs};
use crate::case::known;
use crate::report::{Outcome, Report};
use crate::runtime::Runtime;

/// Where runc 1.1.5 is known to be wrong in this group.
const RUNC_DEVIATIONS: &[(&str, &str)] = &[(
    "config.md, POSIX process: duplicated rlimit types MUST generate an error",
    "runc 1.1.5 does not look for duplicated rlimits (the last one wins)",
)];

type Edit = fn(&mut Value);

const CASES: &[(&str, &str, Edit)] = &[
    (
        "duplicate namespace",
        "config-linux.md, Namespaces: duplicated namespace types MUST generate an error",
        |c| c["linux"]["namespaces"].as_array_mut().unwrap().push(json!({ "type": "pid" })),
    ),
    (
        "namespace path of another type",
        "config-linux.md, Namespaces: a path that is not a namespace of that type MUST generate an error",
        |c| {
            c["linux"]["namespaces"] = json!([
                { "type": "pid" }, { "type": "mount" }, { "type": "ipc" }, { "type": "uts" },
                { "type": "network", "path": "/proc/self/ns/uts" }
            ])
        },
    ),
    (
        "namespace path that does not exist",
        "config-linux.md, Namespaces: a namespace path that does not exist MUST generate an error",
        |c| {
            c["linux"]["namespaces"] = json!([
                { "type": "pid" }, { "type": "mount" }, { "type": "ipc" }, { "type": "uts" },
                { "type": "network", "path": "/proc/self/ns/conformance-missing" }
            ])
        },
    ),
    (
        "duplicate rlimit",
        "config.md, POSIX process: duplicated rlimit types MUST generate an error",
        |c| {
            c["process"]["rlimits"]
                .as_array_mut()
                .unwrap()
                .push(json!({ "type": "RLIMIT_NOFILE", "soft": 100, "hard": 100 }))
        },
    ),
    (
        "unknown rlimit",
        "config.md, POSIX process: an rlimit type that cannot be mapped to the kernel MUST generate an error",
        |c| {
            c["process"]["rlimits"]
                .as_array_mut()
                .unwrap()
                .push(json!({ "type": "RLIMIT_CONFORMANCE", "soft": 1, "hard": 1 }))
        },
    ),
    (
        "unknown filesystem type",
        "runtime.md, Create: a mount the runtime cannot make MUST generate an error",
        |c| {
            c["mounts"].as_array_mut().unwrap().push(json!({
                "destination": "/mnt", "type": "conformancefs", "source": "none"
            }))
        },
    ),
    (
        "missing root",
        "runtime.md, Create: a root path that does not exist MUST generate an error",
        |c| c["root"]["path"] = json!("no-such-rootfs"),
    ),
    (
        "missing program",
        "runtime.md, Create: a program that cannot be run MUST generate an error (at create or start)",
        |c| c["process"]["args"] = json!(["/conformance/no-such-program"]),
    ),
];

pub fn run(rt: &Runtime, report: &mut Report) {
    for (case, clause, edit) in CASES {
        report.case(&format!("errors: {case}"));
        let Some(mut b) = bundle(report, "err", &[]) else {
            return;
        };
        edit(&mut b.config);
        if let Err(e) = b.write() {
            report.add(*clause, Outcome::Fail(e));
            continue;
        }
        let id = b.id.clone();
        let created = rt.create(&id, &b);
        // A program that cannot be run may also be reported by start.
        let refused = !created.ok || (*case == "missing program" && !rt.start(&id).ok);
        let outcome = if refused {
            Outcome::Pass
        } else {
            Outcome::Fail("the runtime accepted it".into())
        };
        report.add(*clause, known(rt, clause, outcome, RUNC_DEVIATIONS));
        if created.ok {
            continue; // a container exists by design; nothing more to check
        }
        let state = rt.state(&id);
        let in_root: Vec<_> = fs::read_dir(rt.root())
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.contains(&id))
                    .collect()
            })
            .unwrap_or_default();
        let cgs = cgroup_dirs(
            b.config["linux"]["cgroupsPath"]
                .as_str()
                .unwrap_or_default(),
        );
        let mounts = b.mounts_left();
        report.ensure(
            format!("runtime.md, Errors: a refused create MUST leave the environment unchanged ({case})"),
            state.is_err() && in_root.is_empty() && cgs.is_empty() && mounts.is_empty(),
            || format!("state {:?}, state root {in_root:?}, cgroups {cgs:?}, mounts {mounts:?}", state.ok()),
        );
    }
}
