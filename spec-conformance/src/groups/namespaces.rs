//! config-linux.md's namespaces (new, inherited, joined by path), user
//! namespace mappings, and sysctl.

use std::process::{Child, Command, Stdio};

use serde_json::json;

use super::{bundle, eventually};
use crate::bundle::{ns_inode, BUSYBOX};
use crate::case::run_checker;
use crate::report::{Outcome, Report};
use crate::runtime::Runtime;

pub fn run(rt: &Runtime, report: &mut Report) {
    if let Some(mut b) = bundle(report, "ns", &[]) {
        b.config["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({ "type": "cgroup" }));
        run_checker(
            rt,
            "namespaces: every kind new",
            &b,
            report,
            &["Namespaces"],
        );
    }

    if let Some(mut b) = bundle(report, "ns", &[]) {
        b.config["linux"]["namespaces"] = json!([{ "type": "mount" }]);
        b.config.as_object_mut().unwrap().remove("hostname");
        run_checker(
            rt,
            "namespaces: only mount, the rest inherited",
            &b,
            report,
            &["Namespaces"],
        );
    }

    joined(rt, report);

    if let Some(mut b) = bundle(report, "userns", &[]) {
        let l = &mut b.config["linux"];
        l["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({ "type": "user" }));
        l["uidMappings"] = json!([{ "containerID": 0, "hostID": 100000, "size": 65536 }]);
        l["gidMappings"] = json!([{ "containerID": 0, "hostID": 200000, "size": 65536 }]);
        run_checker(
            rt,
            "namespaces: user namespace with mappings",
            &b,
            report,
            &["Namespaces", "User namespace mappings"],
        );
    }

    if let Some(mut b) = bundle(report, "sysctl", &[]) {
        b.config["linux"]["sysctl"] = json!({
            "net.ipv4.ip_forward": "1",
            "net.core.somaxconn": "256",
            "net.ipv4.ping_group_range": "0 2147483647",
            "kernel.shmmax": "65536",
            "kernel.msgmax": "4096"
        });
        run_checker(
            rt,
            "sysctl: network and ipc namespace keys",
            &b,
            report,
            &["Sysctl"],
        );
    }
}

/// A process holding new network, uts and ipc namespaces for a container
/// to join; killed (by its pid) when dropped.
struct Holder(Child);

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn joined(rt: &Runtime, report: &mut Report) {
    let Some(mut b) = bundle(report, "nsjoin", &[]) else {
        return;
    };
    let child = Command::new(BUSYBOX)
        .args(["unshare", "-n", "-u", "-i", BUSYBOX, "sleep", "600"])
        .stdin(Stdio::null())
        .spawn();
    let holder = match child {
        Ok(c) => Holder(c),
        Err(e) => {
            report.add(
                "harness: starting a namespace holder",
                Outcome::Fail(e.to_string()),
            );
            return;
        }
    };
    let pid = holder.0.id();
    let own = ns_inode("/proc/self/ns/net").unwrap_or(0);
    // busybox unshare execs sleep once the namespaces exist.
    if !eventually(5, || {
        ns_inode(&format!("/proc/{pid}/ns/net")).is_ok_and(|i| i != own)
    }) {
        report.add(
            "harness: starting a namespace holder",
            Outcome::Fail("no new namespaces".into()),
        );
        return;
    }
    let mut nss = vec![json!({ "type": "pid" }), json!({ "type": "mount" })];
    for (kind, proc_name) in [("network", "net"), ("uts", "uts"), ("ipc", "ipc")] {
        let path = format!("/proc/{pid}/ns/{proc_name}");
        if let Ok(ino) = ns_inode(&path) {
            b.config["annotations"][format!("conformance/join-ns/{proc_name}")] =
                json!(ino.to_string());
        }
        nss.push(json!({ "type": kind, "path": path }));
    }
    b.config["linux"]["namespaces"] = json!(nss);
    b.config.as_object_mut().unwrap().remove("hostname");
    run_checker(
        rt,
        "namespaces: network, uts and ipc joined by path",
        &b,
        report,
        &["Namespaces"],
    );
    drop(holder);
}
