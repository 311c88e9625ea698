//! config.md's process: args, env, cwd, user, rlimits, oomScoreAdj,
//! noNewPrivileges, hostname and domainname; runtime-linux.md's file
//! descriptors.

use std::fs;

use serde_json::Value;

use crate::sys;
use crate::tap::{ensure, eq, Outcome, Plan};

pub fn plan(cfg: &Value, plan: &mut Plan) {
    let p = &cfg["process"];
    // First, before any other probe has opened anything.
    plan.check(
        "runtime-linux.md, File descriptors: only stdin, stdout and stderr MUST be open for the program",
        || {
            let mut extra = Vec::new();
            let me = fs::read_dir("/proc/self/fd").map_err(|e| format!("/proc/self/fd: {e}"))?;
            for e in me.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if matches!(name.as_str(), "0" | "1" | "2") {
                    continue;
                }
                let target = fs::read_link(e.path()).unwrap_or_default();
                let t = target.to_string_lossy().into_owned();
                // The directory being listed is itself an open descriptor.
                if t.starts_with("/proc/") && t.ends_with("/fd") {
                    continue;
                }
                extra.push(format!("{name} -> {t}"));
            }
            ensure(extra.is_empty(), || format!("also open: {}", extra.join(", ")))
        },
    );

    if let Some(args) = str_list(&p["args"]) {
        let want = args.clone();
        plan.check(
            "config.md, Process: args MUST be the program's argv",
            move || {
                let raw = fs::read("/proc/self/cmdline")
                    .map_err(|e| format!("/proc/self/cmdline: {e}"))?;
                let got: Vec<String> = raw
                    .split(|&b| b == 0)
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect::<Vec<_>>();
                let got = got[..got.len().saturating_sub(1)].to_vec();
                eq(got, want)
            },
        );
        if args.first().is_some_and(|a| !a.contains('/')) {
            plan.check(
                "config.md, Process: args[0] MUST be found as execvp does (through PATH)",
                || {
                    let exe = fs::read_link("/proc/self/exe")
                        .map_err(|e| format!("/proc/self/exe: {e}"))?;
                    eq(
                        exe.to_string_lossy().into_owned(),
                        "/conformance/checker".to_string(),
                    )
                },
            );
        }
    }

    for kv in str_list(&p["env"]).unwrap_or_default() {
        let (k, v) = kv.split_once('=').unwrap_or((&kv, ""));
        let (k, v) = (k.to_string(), v.to_string());
        plan.check(format!("config.md, Process: env MUST set {k}"), move || {
            eq(std::env::var(&k).ok(), Some(v))
        });
    }

    if let Some(cwd) = p["cwd"].as_str().map(str::to_string) {
        plan.check(
            "config.md, Process: cwd MUST be the working directory",
            move || {
                let got = std::env::current_dir().map_err(|e| format!("getcwd: {e}"))?;
                eq(got.to_string_lossy().into_owned(), cwd)
            },
        );
    }

    user(&p["user"], plan);
    rlimits(p, plan);

    if let Some(adj) = p["oomScoreAdj"].as_i64() {
        plan.check(
            "config.md, Linux Process: oomScoreAdj MUST be set for the process",
            move || {
                let s =
                    fs::read_to_string("/proc/self/oom_score_adj").map_err(|e| e.to_string())?;
                eq(s.trim().parse::<i64>().map_err(|e| e.to_string())?, adj)
            },
        );
    }
    if p["noNewPrivileges"].as_bool() == Some(true) {
        plan.check(
            "config.md, Linux Process: noNewPrivileges true MUST set no_new_privs",
            || eq(sys::status_field("NoNewPrivs")?, "1".to_string()),
        );
    }

    if let Some(h) = cfg["hostname"]
        .as_str()
        .filter(|h| !h.is_empty())
        .map(str::to_string)
    {
        plan.check(
            "config.md, Hostname: the container's hostname MUST be hostname",
            move || eq(sys::uname()?.0, h),
        );
    }
    if let Some(d) = cfg["domainname"]
        .as_str()
        .filter(|h| !h.is_empty())
        .map(str::to_string)
    {
        plan.check(
            "config.md, Domainname: the container's domainname MUST be domainname",
            move || eq(sys::uname()?.1, d),
        );
    }
}

fn user(u: &Value, plan: &mut Plan) {
    if let Some(uid) = u["uid"].as_u64() {
        plan.check(
            "config.md, POSIX-platform User: uid MUST be the process's user id",
            move || {
                // SAFETY: getuid and geteuid cannot fail and touch no memory.
                let (r, e) = unsafe { (libc::getuid(), libc::geteuid()) };
                eq((r as u64, e as u64), (uid, uid))
            },
        );
    }
    if let Some(gid) = u["gid"].as_u64() {
        plan.check(
            "config.md, POSIX-platform User: gid MUST be the process's group id",
            move || {
                // SAFETY: getgid and getegid cannot fail and touch no memory.
                let (r, e) = unsafe { (libc::getgid(), libc::getegid()) };
                eq((r as u64, e as u64), (gid, gid))
            },
        );
    }
    if let Some(extra) = u["additionalGids"].as_array() {
        let want: Vec<u64> = extra.iter().filter_map(Value::as_u64).collect();
        plan.check(
            "config.md, POSIX-platform User: additionalGids MUST be added to the process",
            move || {
                let groups = groups()?;
                let missing: Vec<u64> = want
                    .iter()
                    .copied()
                    .filter(|g| !groups.contains(g))
                    .collect();
                ensure(missing.is_empty(), || {
                    format!("groups {groups:?} lack {missing:?}")
                })
            },
        );
    }
    if let Some(umask) = u["umask"].as_u64() {
        plan.check(
            "config.md, POSIX-platform User: umask MUST be the process's umask",
            move || eq(sys::status_field("Umask")?, format!("{umask:04o}")),
        );
    }
}

fn groups() -> Result<Vec<u64>, String> {
    let mut buf = vec![0 as libc::gid_t; 65536];
    let len = libc::c_int::try_from(buf.len()).unwrap_or(libc::c_int::MAX);
    // SAFETY: `buf` has room for the `len` entries we say it has.
    let n = unsafe { libc::getgroups(len, buf.as_mut_ptr()) };
    if n < 0 {
        return Err(format!("getgroups: errno {}", sys::errno()));
    }
    Ok(buf[..usize::try_from(n).unwrap_or(0)]
        .iter()
        .map(|&g| g as u64)
        .collect())
}

fn rlimits(p: &Value, plan: &mut Plan) {
    for r in p["rlimits"].as_array().cloned().unwrap_or_default() {
        let name = r["type"].as_str().unwrap_or_default().to_string();
        let (soft, hard) = (r["soft"].as_u64(), r["hard"].as_u64());
        plan.check(
            format!("config.md, POSIX process: rlimits {name} soft and hard MUST be set"),
            move || {
                let Some(res) = resource(&name) else {
                    return Ok(Outcome::Skip(format!("{name} is not a Linux rlimit")));
                };
                // SAFETY: an all-zero rlimit is a valid value.
                let mut rl: libc::rlimit = unsafe { std::mem::zeroed() };
                // SAFETY: `rl` is a valid, writable rlimit.
                if unsafe { libc::getrlimit(res, &mut rl) } != 0 {
                    return Err(format!("getrlimit: errno {}", sys::errno()));
                }
                let conv = |v: libc::rlim_t| {
                    if v == libc::RLIM_INFINITY {
                        u64::MAX
                    } else {
                        v
                    }
                };
                eq(
                    (Some(conv(rl.rlim_cur)), Some(conv(rl.rlim_max))),
                    (soft, hard),
                )
            },
        );
    }
}

fn resource(name: &str) -> Option<libc::__rlimit_resource_t> {
    Some(match name {
        "RLIMIT_AS" => libc::RLIMIT_AS,
        "RLIMIT_CORE" => libc::RLIMIT_CORE,
        "RLIMIT_CPU" => libc::RLIMIT_CPU,
        "RLIMIT_DATA" => libc::RLIMIT_DATA,
        "RLIMIT_FSIZE" => libc::RLIMIT_FSIZE,
        "RLIMIT_LOCKS" => libc::RLIMIT_LOCKS,
        "RLIMIT_MEMLOCK" => libc::RLIMIT_MEMLOCK,
        "RLIMIT_MSGQUEUE" => libc::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => libc::RLIMIT_NICE,
        "RLIMIT_NOFILE" => libc::RLIMIT_NOFILE,
        "RLIMIT_NPROC" => libc::RLIMIT_NPROC,
        "RLIMIT_RSS" => libc::RLIMIT_RSS,
        "RLIMIT_RTPRIO" => libc::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => libc::RLIMIT_RTTIME,
        "RLIMIT_SIGPENDING" => libc::RLIMIT_SIGPENDING,
        "RLIMIT_STACK" => libc::RLIMIT_STACK,
        _ => return None,
    })
}

/// A JSON array of strings, if that is what `v` is.
pub fn str_list(v: &Value) -> Option<Vec<String>> {
    v.as_array().map(|a| {
        a.iter()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect()
    })
}
