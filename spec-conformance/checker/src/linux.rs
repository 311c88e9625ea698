//! config-linux.md's sysctl and seccomp.
//!
//! Seccomp is checked through a few probe syscalls the checker itself
//! never needs, so a rule on them cannot stop it from reporting: a profile
//! that names one of them gets that rule's effect checked.

use std::fs;

use serde_json::Value;

use crate::process::str_list;
use crate::sys;
use crate::tap::{ensure, eq, Outcome, Plan};

pub fn plan(cfg: &Value, plan: &mut Plan) {
    if let Some(sysctl) = cfg["linux"]["sysctl"].as_object() {
        for (key, val) in sysctl {
            let (k, v) = (key.clone(), val.as_str().unwrap_or_default().to_string());
            plan.check(
                format!("config-linux.md, Sysctl: {key} MUST be set to {v}"),
                move || {
                    let path = format!("/proc/sys/{}", k.replace('.', "/"));
                    let got = fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
                    let norm = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
                    eq(norm(&got), norm(&v))
                },
            );
        }
    }
    seccomp(cfg, plan);
}

fn seccomp(cfg: &Value, plan: &mut Plan) {
    let sc = &cfg["linux"]["seccomp"];
    if !sc.is_object() {
        return;
    }
    plan.check(
        "config-linux.md, Seccomp: the process MUST run under the seccomp filter",
        || eq(sys::status_field("Seccomp")?, "2".to_string()),
    );
    if sc["defaultAction"] == "SCMP_ACT_ALLOW" {
        plan.check(
            "config-linux.md, Seccomp: a syscall no rule matches MUST get defaultAction (SCMP_ACT_ALLOW)",
            || {
                // SAFETY: getppid cannot fail and touches no memory.
                let r = unsafe { libc::syscall(libc::SYS_getppid) };
                ensure(r >= 0, || format!("getppid failed with errno {}", sys::errno()))
            },
        );
    }
    let default_errno = sc["defaultErrnoRet"].as_i64().unwrap_or(libc::EPERM as i64);
    for rule in sc["syscalls"].as_array().cloned().unwrap_or_default() {
        let names = str_list(&rule["names"]).unwrap_or_default();
        let action = rule["action"].as_str().unwrap_or_default().to_string();
        let errno = rule["errnoRet"].as_i64().unwrap_or(default_errno);
        let args = rule["args"].as_array().cloned().unwrap_or_default();
        for name in names {
            match (name.as_str(), action.as_str(), args.as_slice()) {
                ("getpriority", "SCMP_ACT_ERRNO", []) => plan.check(
                    format!("config-linux.md, Seccomp: SCMP_ACT_ERRNO MUST fail getpriority with errnoRet {errno}"),
                    move || {
                        // SAFETY: a plain syscall with integer arguments.
                        let r = unsafe { libc::syscall(libc::SYS_getpriority, libc::PRIO_PROCESS, 0) };
                        eq((r, sys::errno() as i64), (-1, errno))
                    },
                ),
                ("getpgid", "SCMP_ACT_ERRNO", [arg]) if arg["op"] == "SCMP_CMP_EQ" && arg["index"] == 0 => {
                    let value = arg["value"].as_i64().unwrap_or(0);
                    plan.check(
                        format!("config-linux.md, Seccomp: a rule with args MUST match only calls whose arguments match (getpgid({value}))"),
                        move || {
                            // SAFETY: plain syscalls with integer arguments.
                            let hit = unsafe { libc::syscall(libc::SYS_getpgid, value) };
                            let hit_errno = sys::errno() as i64;
                            // SAFETY: as above.
                            let miss = unsafe { libc::syscall(libc::SYS_getpgid, 0) };
                            ensure(hit == -1 && hit_errno == errno && miss >= 0, || {
                                format!("getpgid({value}) = {hit} errno {hit_errno}, getpgid(0) = {miss}")
                            })
                        },
                    )
                }
                ("getsid", "SCMP_ACT_KILL" | "SCMP_ACT_KILL_PROCESS" | "SCMP_ACT_KILL_THREAD", []) => {
                    let a = action.clone();
                    plan.check(format!("config-linux.md, Seccomp: {a} MUST kill a process that calls getsid"), || {
                        Ok(killed_by_getsid())
                    })
                }
                _ => {}
            }
        }
    }
}

/// Forks a child that calls getsid and reports how it ended.
fn killed_by_getsid() -> Outcome {
    // SAFETY: the checker is single-threaded; the child only makes raw
    // syscalls and exits without returning into Rust code.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: plain syscalls in the forked child.
        unsafe {
            libc::syscall(libc::SYS_getsid, 0);
            libc::_exit(0)
        }
    }
    if pid < 0 {
        return Outcome::Fail(format!("fork: errno {}", sys::errno()));
    }
    let mut status = 0;
    // SAFETY: `status` is a valid int to write into; `pid` is our child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    if libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGSYS {
        Outcome::Pass
    } else {
        Outcome::Fail(format!(
            "child calling getsid ended with wait status {status:#x}, not SIGSYS"
        ))
    }
}
