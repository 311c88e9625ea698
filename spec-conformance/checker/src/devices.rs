//! config-linux.md's devices, default devices and device allowlist, and
//! runtime-linux.md's /dev symbolic links.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use serde_json::Value;

use crate::sys;
use crate::tap::{ensure, eq, Outcome, Plan};

/// (path, major, minor) of the character devices every container gets.
const DEFAULT: [(&str, u32, u32); 6] = [
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

pub fn plan(cfg: &Value, plan: &mut Plan) {
    for d in cfg["linux"]["devices"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        device(&d, plan);
    }
    for (path, major, minor) in DEFAULT {
        plan.check(
            format!("config-linux.md, Default Devices: the runtime MUST supply {path}"),
            move || {
                let m = fs::metadata(path).map_err(|e| format!("{path}: {e}"))?;
                let rdev = m.rdev();
                eq(
                    (
                        m.file_type().is_char_device(),
                        libc::major(rdev),
                        libc::minor(rdev),
                    ),
                    (true, major, minor),
                )
            },
        );
    }
    plan.check(
        "config-linux.md, Default Devices: /dev/ptmx MUST be a bind-mount or symlink of /dev/pts/ptmx",
        || {
            let l = fs::symlink_metadata("/dev/ptmx").map_err(|e| format!("/dev/ptmx: {e}"))?;
            if l.file_type().is_symlink() {
                let t = fs::read_link("/dev/ptmx").map_err(|e| e.to_string())?;
                let t = t.to_string_lossy().into_owned();
                return ensure(t == "pts/ptmx" || t == "/dev/pts/ptmx", || format!("/dev/ptmx -> {t}"));
            }
            let p = fs::metadata("/dev/pts/ptmx").map_err(|e| format!("/dev/pts/ptmx: {e}"))?;
            ensure((l.dev(), l.ino()) == (p.dev(), p.ino()), || "/dev/ptmx is another file".into())
        },
    );
    if cfg["process"]["terminal"].as_bool() == Some(true) {
        plan.check(
            "config-linux.md, Default Devices: /dev/console MUST be set up when terminal is true",
            || {
                let m = fs::metadata("/dev/console").map_err(|e| format!("/dev/console: {e}"))?;
                ensure(m.file_type().is_char_device(), || {
                    "not a character device".into()
                })
            },
        );
    }
    for (link, target) in [
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
    ] {
        plan.check(
            format!("runtime-linux.md, Dev symbolic links: {link} MUST be a symlink to {target}"),
            move || {
                let t = fs::read_link(link).map_err(|e| format!("{link}: {e}"))?;
                eq(t.to_string_lossy().into_owned(), target.to_string())
            },
        );
    }
    allowlist(cfg, plan);
}

fn device(d: &Value, plan: &mut Plan) {
    let path = d["path"].as_str().unwrap_or_default().to_string();
    let ty = d["type"].as_str().unwrap_or_default().to_string();
    let p = path.clone();
    let t = ty.clone();
    plan.check(
        format!("config-linux.md, Devices: {path} MUST be created with type {ty}"),
        move || {
            let m = fs::symlink_metadata(&p).map_err(|e| format!("{p}: {e}"))?;
            let ft = m.file_type();
            let got = if ft.is_char_device() {
                "c"
            } else if ft.is_block_device() {
                "b"
            } else if ft.is_fifo() {
                "p"
            } else {
                "other"
            };
            // `u` (unbuffered) is a character device too.
            let want = if t == "u" { "c" } else { t.as_str() };
            eq(got, want)
        },
    );
    if ty != "p" {
        let (major, minor) = (
            d["major"].as_u64().unwrap_or(0),
            d["minor"].as_u64().unwrap_or(0),
        );
        let p = path.clone();
        plan.check(
            format!("config-linux.md, Devices: {path} MUST have major {major} and minor {minor}"),
            move || {
                let rdev = fs::symlink_metadata(&p)
                    .map_err(|e| format!("{p}: {e}"))?
                    .rdev();
                eq(
                    (libc::major(rdev) as u64, libc::minor(rdev) as u64),
                    (major, minor),
                )
            },
        );
    }
    if let Some(mode) = d["fileMode"].as_u64() {
        let p = path.clone();
        plan.check(
            format!("config-linux.md, Devices: {path} MUST have fileMode {mode:o}"),
            move || {
                let m = fs::symlink_metadata(&p).map_err(|e| format!("{p}: {e}"))?;
                eq(format!("{:o}", m.mode() & 0o7777), format!("{mode:o}"))
            },
        );
    }
    for (key, get) in [
        ("uid", MetadataExt::uid as fn(&fs::Metadata) -> u32),
        ("gid", MetadataExt::gid),
    ] {
        let Some(want) = d[key].as_u64() else {
            continue;
        };
        let p = path.clone();
        plan.check(
            format!("config-linux.md, Devices: {path} MUST be owned by {key} {want}"),
            move || {
                let m = fs::symlink_metadata(&p).map_err(|e| format!("{p}: {e}"))?;
                eq(get(&m) as u64, want)
            },
        );
    }
}

/// The harness works out what the allowlist means for a few devices and
/// passes it as `conformance/device-probes`: `path:r|w:allow|deny`, comma
/// separated. The device cgroup answers an open before the driver does, so
/// EPERM means denied and anything else (even ENXIO) means allowed.
fn allowlist(cfg: &Value, plan: &mut Plan) {
    let Some(probes) = cfg["annotations"]["conformance/device-probes"].as_str() else {
        return;
    };
    for probe in probes.split(',') {
        let f: Vec<String> = probe.split(':').map(str::to_string).collect();
        if f.len() != 3 {
            continue;
        }
        let (path, mode, expect) = (f[0].clone(), f[1].clone(), f[2].clone());
        plan.check(
            format!("config-linux.md, Device allowlist: entries MUST apply in order ({path} {mode} {expect})"),
            move || {
                let flags = if mode == "w" { libc::O_WRONLY } else { libc::O_RDONLY };
                let c = std::ffi::CString::new(path.clone()).map_err(|e| e.to_string())?;
                // SAFETY: `c` is NUL-terminated; the descriptor is closed below.
                let fd = unsafe { libc::open(c.as_ptr(), flags | libc::O_NONBLOCK | libc::O_CLOEXEC) };
                let err = if fd < 0 { sys::errno() } else { 0 };
                if fd >= 0 {
                    // SAFETY: `fd` was just opened here and is not used after.
                    unsafe { libc::close(fd) };
                }
                if err == libc::ENOENT {
                    return Ok(Outcome::Fail(format!("{path} does not exist")));
                }
                let denied = err == libc::EPERM;
                ensure(denied == (expect == "deny"), || {
                    format!("open for {mode} gave errno {err} ({})", if denied { "denied" } else { "allowed" })
                })
            },
        );
    }
}
