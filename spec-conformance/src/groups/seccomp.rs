//! config-linux.md's seccomp: a profile with an errno rule, an argument
//! condition and a kill rule, with and without noNewPrivileges (without
//! it the runtime has to install the filter while it still may).

use serde_json::json;

use super::bundle;
use crate::case::run_checker;
use crate::report::Report;
use crate::runtime::Runtime;

pub fn run(rt: &Runtime, report: &mut Report) {
    for nnp in [true, false] {
        let Some(mut b) = bundle(report, "seccomp", &[]) else {
            return;
        };
        b.config["process"]["noNewPrivileges"] = json!(nnp);
        b.config["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [
                { "names": ["getpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": 42 },
                { "names": ["getpgid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 43,
                  "args": [ { "index": 0, "value": 12345, "op": "SCMP_CMP_EQ" } ] },
                { "names": ["getsid"], "action": "SCMP_ACT_KILL" }
            ]
        });
        run_checker(
            rt,
            &format!("seccomp: profile, noNewPrivileges {nnp}"),
            &b,
            report,
            &["Seccomp"],
        );
    }
}
