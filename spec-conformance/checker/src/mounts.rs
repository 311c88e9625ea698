//! config.md's root and mounts, and config-linux.md's rootfs propagation,
//! masked paths and read-only paths, seen through mountinfo and statvfs.

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;

use serde_json::Value;

use crate::process::str_list;
use crate::sys::{self, Mount};
use crate::tap::{ensure, eq, Outcome, Plan};

pub fn plan(cfg: &Value, plan: &mut Plan) {
    root(cfg, plan);
    let mounts = cfg["mounts"].as_array().cloned().unwrap_or_default();
    for (i, m) in mounts.iter().enumerate() {
        let dest = m["destination"].as_str().unwrap_or_default().to_string();
        // A later mount on the same destination hides this one.
        if mounts[i + 1..]
            .iter()
            .any(|l| l["destination"] == dest.as_str())
        {
            continue;
        }
        mount(cfg, m, &dest, plan);
    }
    order(&mounts, plan);
    propagation(cfg, plan);
    paths(cfg, plan);
}

fn root(cfg: &Value, plan: &mut Plan) {
    if let Some(token) = cfg["annotations"]["conformance/rootfs-token"]
        .as_str()
        .map(str::to_string)
    {
        plan.check(
            "config.md, Root: path MUST be the container's root filesystem",
            move || {
                let got = fs::read_to_string("/conformance/token")
                    .map_err(|e| format!("/conformance/token: {e}"))?;
                eq(got.trim().to_string(), token)
            },
        );
    }
    let ro = cfg["root"]["readonly"].as_bool() == Some(true);
    if ro {
        plan.check(
            "config.md, Root: readonly true MUST make the root filesystem read-only",
            || {
                let flag = sys::statvfs("/")?.f_flag & libc::ST_RDONLY != 0;
                // Creating a file is refused for a read-only mount before any
                // permission check, whoever the process runs as.
                let err = fs::File::create("/conformance/write-probe")
                    .err()
                    .and_then(|e| e.raw_os_error());
                ensure(flag && err == Some(libc::EROFS), || {
                    format!("ST_RDONLY {flag}, creating a file gave errno {err:?} (want EROFS)")
                })
            },
        );
    } else {
        plan.check(
            "config.md, Root: readonly false MUST leave the root filesystem writable",
            || {
                ensure(sys::statvfs("/")?.f_flag & libc::ST_RDONLY == 0, || {
                    "/ is mounted read-only".into()
                })
            },
        );
    }
}

/// The mounts that stand for `dest`: the mount itself, or, for a `cgroup`
/// mount that a runtime made as cgroup v1 (a tmpfs holding one mount per
/// hierarchy), those hierarchy mounts.
fn targets(dest: &str, cfg_type: &str) -> Result<Vec<Mount>, String> {
    let all = sys::mountinfo()?;
    let Some(top) = all.iter().rfind(|m| m.mount_point == dest).cloned() else {
        return Err(format!("nothing is mounted at {dest}"));
    };
    if cfg_type == "cgroup" && top.fstype == "tmpfs" {
        let prefix = format!("{dest}/");
        return Ok(all
            .into_iter()
            .filter(|m| m.mount_point.starts_with(&prefix) && m.fstype == "cgroup")
            .collect());
    }
    Ok(vec![top])
}

fn mount(cfg: &Value, m: &Value, dest: &str, plan: &mut Plan) {
    let opts = str_list(&m["options"]).unwrap_or_default();
    let ty = m["type"].as_str().unwrap_or_default().to_string();
    let bind = opts.iter().any(|o| o == "bind" || o == "rbind");
    let d = dest.to_string();
    plan.check(
        format!("config.md, Mounts: {dest} MUST be mounted"),
        move || {
            ensure(sys::mount_at(&d)?.is_some(), || {
                format!("nothing is mounted at {d}")
            })
        },
    );
    if !bind && !ty.is_empty() && ty != "none" {
        let (d, t) = (dest.to_string(), ty.clone());
        plan.check(
            format!("config.md, Mounts: {dest} MUST have type {ty}"),
            move || {
                let got = sys::mount_at(&d)?
                    .map(|(_, m)| m.fstype)
                    .unwrap_or_default();
                let ok = got == t
                    || (t == "cgroup"
                        && (got == "cgroup2" || (got == "tmpfs" && !targets(&d, &t)?.is_empty())));
                ensure(ok, || format!("type is {got:?}"))
            },
        );
    }
    for opt in &opts {
        let flag = match opt.as_str() {
            "ro" => Some((libc::ST_RDONLY, true)),
            "rw" => Some((libc::ST_RDONLY, false)),
            "nosuid" => Some((libc::ST_NOSUID, true)),
            "nodev" => Some((libc::ST_NODEV, true)),
            "noexec" => Some((libc::ST_NOEXEC, true)),
            "noatime" => Some((libc::ST_NOATIME, true)),
            "nodiratime" => Some((libc::ST_NODIRATIME, true)),
            "relatime" => Some((libc::ST_RELATIME, true)),
            _ => None,
        };
        let (d, t) = (dest.to_string(), ty.clone());
        let name = format!("config.md, Mounts: option {opt} MUST apply to {dest}");
        if let Some((bit, set)) = flag {
            plan.check(name, move || {
                for t in targets(&d, &t)? {
                    let got = sys::statvfs(&t.mount_point)?.f_flag & bit != 0;
                    if got != set {
                        return Ok(Outcome::Fail(format!(
                            "{} has options {}",
                            t.mount_point,
                            t.options.join(",")
                        )));
                    }
                }
                Ok(Outcome::Pass)
            });
        } else if opt == "strictatime" {
            plan.check(name, move || {
                let f = sys::statvfs(&d)?.f_flag;
                ensure(f & (libc::ST_NOATIME | libc::ST_RELATIME) == 0, || {
                    format!("statvfs flags {f:#x}")
                })
            });
        } else if let Some(want) = propagation_field(opt.trim_start_matches('r')) {
            plan.check(
                format!("config.md, Mounts: propagation {opt} MUST apply to {dest}"),
                move || {
                    let m = sys::mount_at(&d)?.ok_or("not mounted")?.1;
                    ensure(has_propagation(&m, want), || {
                        format!("optional fields {:?}", m.optional)
                    })
                },
            );
        } else if let (Some(mode), "tmpfs") = (opt.strip_prefix("mode="), ty.as_str()) {
            // (devpts also takes mode=, but for the ptys it makes, not
            // for its root.)
            let Ok(mode) = u32::from_str_radix(mode, 8) else {
                continue;
            };
            plan.check(
                format!("config.md, Mounts: data {opt} MUST apply to {dest}"),
                move || {
                    let m = fs::metadata(&d).map_err(|e| format!("{d}: {e}"))?;
                    eq(
                        format!("{:o}", m.permissions().mode() & 0o7777),
                        format!("{mode:o}"),
                    )
                },
            );
        } else if let (Some(size), "tmpfs") = (opt.strip_prefix("size="), ty.as_str()) {
            let Some(bytes) = parse_size(size) else {
                continue;
            };
            plan.check(
                format!("config.md, Mounts: data {opt} MUST apply to {dest}"),
                move || {
                    let st = sys::statvfs(&d)?;
                    eq(st.f_blocks * st.f_frsize, bytes)
                },
            );
        }
    }
    if bind {
        let key = format!("conformance/bind-token{dest}");
        if let Some(token) = cfg["annotations"][&key].as_str().map(str::to_string) {
            let d = dest.to_string();
            let src = m["source"].as_str().unwrap_or_default();
            plan.check(
                format!("config.md, Mounts: bind source {src} MUST appear at {dest}"),
                move || {
                    let path = format!("{d}/conformance-token");
                    let mut s = String::new();
                    fs::File::open(&path)
                        .and_then(|mut f| f.read_to_string(&mut s))
                        .map_err(|e| format!("{path}: {e}"))?;
                    eq(s.trim().to_string(), token)
                },
            );
        }
    }
}

/// tmpfs sizes: bytes, or with a k, m or g suffix.
fn parse_size(s: &str) -> Option<u64> {
    let (num, mul) = match s.chars().last()? {
        'k' | 'K' => (&s[..s.len() - 1], 1 << 10),
        'm' | 'M' => (&s[..s.len() - 1], 1 << 20),
        'g' | 'G' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>().ok().map(|n| n * mul)
}

/// The mountinfo optional field a propagation mode shows as ("" for
/// private: no field at all).
fn propagation_field(mode: &str) -> Option<&'static str> {
    Some(match mode {
        "shared" => "shared:",
        "slave" => "master:",
        "private" => "",
        "unbindable" => "unbindable",
        _ => return None,
    })
}

fn has_propagation(m: &Mount, field: &str) -> bool {
    if field.is_empty() {
        !m.optional
            .iter()
            .any(|o| o.starts_with("shared:") || o.starts_with("master:") || o == "unbindable")
    } else {
        m.optional.iter().any(|o| o.starts_with(field))
    }
}

/// Mounts nested under an earlier one must come after it.
fn order(mounts: &[Value], plan: &mut Plan) {
    let dests: Vec<String> = mounts
        .iter()
        .map(|m| m["destination"].as_str().unwrap_or_default().to_string())
        .collect();
    for (i, outer) in dests.iter().enumerate() {
        for inner in &dests[i + 1..] {
            let prefix = format!("{}/", outer.trim_end_matches('/'));
            if !inner.starts_with(&prefix) {
                continue;
            }
            let (o, n) = (outer.clone(), inner.clone());
            plan.check(
                format!("config.md, Mounts: the runtime MUST mount entries in the listed order ({outer} before {inner})"),
                move || {
                    let a = sys::mount_at(&o)?.ok_or(format!("{o} not mounted"))?.0;
                    let b = sys::mount_at(&n)?.ok_or(format!("{n} not mounted"))?.0;
                    ensure(a < b, || format!("{n} was mounted before {o}"))
                },
            );
        }
    }
}

fn propagation(cfg: &Value, plan: &mut Plan) {
    let Some(mode) = cfg["linux"]["rootfsPropagation"]
        .as_str()
        .map(str::to_string)
    else {
        return;
    };
    let Some(field) = propagation_field(mode.trim_start_matches('r')) else {
        return;
    };
    plan.check(
        format!("config-linux.md, Rootfs Mount Propagation: {mode} MUST apply to the root mount"),
        move || {
            let m = sys::mount_at("/")?.ok_or("nothing mounted at /")?.1;
            ensure(has_propagation(&m, field), || {
                format!("/ has optional fields {:?}", m.optional)
            })
        },
    );
}

fn paths(cfg: &Value, plan: &mut Plan) {
    for p in str_list(&cfg["linux"]["maskedPaths"]).unwrap_or_default() {
        plan.check(
            format!("config-linux.md, Masked Paths: {p} MUST be masked so it cannot be read"),
            move || {
                let meta = match fs::metadata(&p) {
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        return Ok(Outcome::Skip(format!("{p} does not exist on this kernel")))
                    }
                    r => r.map_err(|e| format!("{p}: {e}"))?,
                };
                if meta.is_dir() {
                    let n = fs::read_dir(&p).map_err(|e| format!("{p}: {e}"))?.count();
                    ensure(n == 0, || format!("{p} lists {n} entries"))
                } else {
                    let mut buf = Vec::new();
                    match fs::File::open(&p).and_then(|mut f| f.read_to_end(&mut buf)) {
                        Ok(n) => ensure(n == 0, || format!("read {n} bytes from {p}")),
                        Err(_) => Ok(Outcome::Pass), // cannot be opened: cannot be read
                    }
                }
            },
        );
    }
    for p in str_list(&cfg["linux"]["readonlyPaths"]).unwrap_or_default() {
        plan.check(
            format!("config-linux.md, Readonly Paths: {p} MUST be read-only"),
            move || {
                if fs::symlink_metadata(&p).is_err() {
                    return Ok(Outcome::Skip(format!("{p} does not exist on this kernel")));
                }
                ensure(sys::statvfs(&p)?.f_flag & libc::ST_RDONLY != 0, || {
                    format!("{p} is writable")
                })
            },
        );
    }
}
