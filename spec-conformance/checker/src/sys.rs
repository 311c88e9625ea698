//! What the checker reads about itself: /proc/self/status fields,
//! /proc/self/mountinfo, statvfs flags, and small libc wrappers.

use std::ffi::CString;
use std::fs;
use std::io;

/// A field of /proc/self/status (`Seccomp`, `CapEff`, `Umask`, ...).
pub fn status_field(name: &str) -> Result<String, String> {
    let status =
        fs::read_to_string("/proc/self/status").map_err(|e| format!("/proc/self/status: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')))
        .map(|v| v.trim().to_string())
        .ok_or_else(|| format!("/proc/self/status has no {name} line"))
}

/// One line of /proc/self/mountinfo.
#[derive(Debug, Clone)]
pub struct Mount {
    pub mount_point: String,
    /// Per-mount options (`ro,nosuid,...`).
    pub options: Vec<String>,
    /// Optional fields: `shared:N`, `master:N`, `unbindable`, ...
    pub optional: Vec<String>,
    pub fstype: String,
}

/// Every mount of the checker's mount namespace, in the kernel's order
/// (the order they were made in).
pub fn mountinfo() -> Result<Vec<Mount>, String> {
    let text = fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("/proc/self/mountinfo: {e}"))?;
    let mut mounts = Vec::new();
    for line in text.lines() {
        let (left, right) = line
            .split_once(" - ")
            .ok_or_else(|| format!("mountinfo line without separator: {line}"))?;
        let f: Vec<&str> = left.split(' ').collect();
        if f.len() < 6 {
            return Err(format!("short mountinfo line: {line}"));
        }
        mounts.push(Mount {
            mount_point: unescape(f[4]),
            options: f[5].split(',').map(str::to_string).collect(),
            optional: f[6..].iter().map(|s| s.to_string()).collect(),
            fstype: right.split(' ').next().unwrap_or_default().to_string(),
        });
    }
    Ok(mounts)
}

/// The mount visible at `path` (the last one made there), with its index.
pub fn mount_at(path: &str) -> Result<Option<(usize, Mount)>, String> {
    Ok(mountinfo()?
        .into_iter()
        .enumerate()
        .rfind(|(_, m)| m.mount_point == path))
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn cstr(path: &str) -> Result<CString, String> {
    CString::new(path).map_err(|_| format!("{path:?} contains a NUL byte"))
}

/// statvfs(2) of `path`: the flags are the mount's (ST_RDONLY, ST_NOSUID,
/// ...), sizes are the filesystem's.
pub fn statvfs(path: &str) -> Result<libc::statvfs, String> {
    let c = cstr(path)?;
    // SAFETY: an all-zero statvfs is a valid value of this plain C struct.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated string and `st` a valid, writable
    // statvfs that outlives the call.
    let r = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    if r != 0 {
        return Err(format!("statvfs {path}: {}", io::Error::last_os_error()));
    }
    Ok(st)
}

/// The kernel's errno after a failed call.
pub fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// The inode of a namespace link (`/proc/self/ns/net` -> `net:[4026531992]`).
pub fn ns_inode(kernel_name: &str) -> Result<u64, String> {
    let path = format!("/proc/self/ns/{kernel_name}");
    let link = fs::read_link(&path).map_err(|e| format!("{path}: {e}"))?;
    let s = link.to_string_lossy();
    s.rsplit_once('[')
        .and_then(|(_, r)| r.strip_suffix(']'))
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("{path} -> {s}: not a namespace link"))
}

/// uname(2) as (nodename, domainname).
pub fn uname() -> Result<(String, String), String> {
    // SAFETY: an all-zero utsname is a valid value of this C struct.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid, writable utsname.
    if unsafe { libc::uname(&mut u) } != 0 {
        return Err(format!("uname: {}", io::Error::last_os_error()));
    }
    let s = |f: &[libc::c_char]| {
        let bytes: Vec<u8> = f
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| u8::from_ne_bytes(c.to_ne_bytes()))
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    Ok((s(&u.nodename), s(&u.domainname)))
}
