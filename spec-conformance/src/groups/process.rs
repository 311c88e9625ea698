//! config.md's process: args, env, cwd, user, rlimits, capabilities,
//! oomScoreAdj, noNewPrivileges, hostname and domainname.

use serde_json::json;

use super::bundle;
use crate::case::run_checker;
use crate::report::Report;
use crate::runtime::Runtime;

pub fn run(rt: &Runtime, report: &mut Report) {
    // Root, with every capability set different. execve keeps these sets
    // as they are for root (bounding = permitted = effective, inheritable a
    // subset), so what the program sees is what the runtime set.
    if let Some(mut b) = bundle(report, "process", &["checker", "two words", "x=y"]) {
        let full = [
            "CAP_CHOWN",
            "CAP_DAC_OVERRIDE",
            "CAP_KILL",
            "CAP_NET_BIND_SERVICE",
            "CAP_AUDIT_WRITE",
            "CAP_SETUID",
            "CAP_SETGID",
        ];
        let p = &mut b.config["process"];
        p["env"]
            .as_array_mut()
            .unwrap()
            .push(json!("CONFORMANCE_VAR=hello world"));
        p["cwd"] = json!("/tmp");
        p["capabilities"] = json!({
            "bounding": full, "permitted": full, "effective": full,
            "inheritable": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
            "ambient": ["CAP_NET_BIND_SERVICE"]
        });
        p["rlimits"] = json!([
            { "type": "RLIMIT_NOFILE", "soft": 512, "hard": 1024 },
            { "type": "RLIMIT_CORE", "soft": 0, "hard": 4096 },
            { "type": "RLIMIT_NPROC", "soft": 4096, "hard": 8192 }
        ]);
        p["oomScoreAdj"] = json!(100);
        b.config["hostname"] = json!("conformance-host");
        b.config["domainname"] = json!("conformance.example");
        run_checker(
            rt,
            "process: root with distinct capability sets",
            &b,
            report,
            &[],
        );
    }

    // Another user: execve leaves a non-root process only its ambient
    // capabilities, so every set is the same here.
    if let Some(mut b) = bundle(report, "process", &["/conformance/checker"]) {
        let caps = ["CAP_KILL", "CAP_NET_BIND_SERVICE"];
        let p = &mut b.config["process"];
        p["user"] =
            json!({ "uid": 1000, "gid": 1000, "additionalGids": [10, 2000], "umask": 0o027 });
        p["cwd"] = json!("/tmp");
        p["capabilities"] = json!({
            "bounding": caps, "permitted": caps, "effective": caps,
            "inheritable": caps, "ambient": caps
        });
        run_checker(
            rt,
            "process: unprivileged user with umask and groups",
            &b,
            report,
            &["POSIX-platform User", "capabilities", "Process: cwd"],
        );
    }
}
