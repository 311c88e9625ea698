//! config-linux.md's control groups: placement, the device allowlist, and
//! the limits a container can see from inside (one case per resource, so a
//! runtime that has some controllers but not others gets precise results).

use serde_json::{json, Value};

use super::bundle;
use crate::case::run_checker;
use crate::report::Report;
use crate::runtime::Runtime;

pub fn run(rt: &Runtime, report: &mut Report) {
    if let Some(mut b) = bundle(report, "cgroup", &[]) {
        let l = &mut b.config["linux"];
        l["devices"] = json!([
            { "path": "/dev/conf-a", "type": "c", "major": 10, "minor": 237, "fileMode": 0o666 },
            { "path": "/dev/conf-b", "type": "c", "major": 10, "minor": 229, "fileMode": 0o666 },
            { "path": "/dev/conf-loop", "type": "b", "major": 7, "minor": 0, "fileMode": 0o666 }
        ]);
        // Later entries win: conf-a loses write, conf-b only gains read,
        // and loop stays under the first deny-all. (None of these is among
        // the devices runtimes allow by default, like /dev/net/tun.)
        l["resources"]["devices"] = json!([
            { "allow": false, "access": "rwm" },
            { "allow": true, "type": "c", "major": 10, "minor": 237, "access": "rwm" },
            { "allow": false, "type": "c", "major": 10, "minor": 237, "access": "w" },
            { "allow": true, "type": "c", "major": 10, "minor": 229, "access": "r" }
        ]);
        b.config["annotations"]["conformance/device-probes"] = json!(
            "/dev/conf-a:r:allow,/dev/conf-a:w:deny,/dev/conf-b:r:allow,/dev/conf-b:w:deny,/dev/conf-loop:r:deny"
        );
        run_checker(
            rt,
            "cgroups: placement and device allowlist",
            &b,
            report,
            &["Control groups", "Device allowlist"],
        );
    }

    if let Some(b) = with_cgroupns(report, Value::Null) {
        run_checker(
            rt,
            "cgroups: cgroup namespace",
            &b,
            report,
            &["cgroup namespace"],
        );
    }

    let resources = [
        (
            "memory limit",
            "Memory:",
            json!({ "memory": { "limit": 67108864 } }),
        ),
        ("pids limit", "PIDs:", json!({ "pids": { "limit": 64 } })),
        (
            "cpu quota",
            "CPU: quota",
            json!({ "cpu": { "quota": 50000, "period": 100000 } }),
        ),
        (
            "cpu shares",
            "CPU: shares",
            json!({ "cpu": { "shares": 512 } }),
        ),
        ("cpuset", "CPU: cpus", json!({ "cpu": { "cpus": "0" } })),
    ];
    for (what, focus, res) in resources {
        if let Some(b) = with_cgroupns(report, res) {
            run_checker(rt, &format!("cgroups: {what}"), &b, report, &[focus]);
        }
    }
}

/// A bundle with a cgroup namespace and the cgroup filesystem mounted, so
/// the container sees its own cgroup at /sys/fs/cgroup; `resources` are
/// added to the default device rules.
fn with_cgroupns(report: &mut Report, resources: Value) -> Option<crate::bundle::Bundle> {
    let mut b = bundle(report, "cgroup", &[])?;
    let l = &mut b.config["linux"];
    l["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "type": "cgroup" }));
    if let Value::Object(r) = resources {
        for (k, v) in r {
            l["resources"][k] = v;
        }
    }
    b.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
        "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]
    }));
    Some(b)
}
