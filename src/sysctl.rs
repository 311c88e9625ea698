//! `linux.sysctl`: which keys may be set, and writing them through a
//! verified procfs handle.

use std::os::fd::{AsFd, OwnedFd};

use oci_spec::runtime::LinuxNamespaceType;

use crate::error::{Context, Error, Result};
use crate::procfs_handle::ProcFs;

/// Accepts only sysctls that belong to a namespace the container has its
/// own copy of; anything else would change the host.
pub fn check_key(
    key: &str,
    has_ns: &dyn Fn(LinuxNamespaceType) -> bool,
) -> std::result::Result<(), String> {
    if key.is_empty() || key.contains("..") || key.starts_with('/') || key.starts_with('.') {
        return Err(format!("{key:?} is not a sysctl name"));
    }
    const IPC: &[&str] = &[
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    if IPC.contains(&key) || key.starts_with("fs.mqueue.") {
        return if has_ns(LinuxNamespaceType::Ipc) {
            Ok(())
        } else {
            Err(format!("{key:?} needs an ipc namespace"))
        };
    }
    if key.starts_with("net.") {
        return if has_ns(LinuxNamespaceType::Network) {
            Ok(())
        } else {
            Err(format!("{key:?} needs a network namespace"))
        };
    }
    if key == "kernel.hostname" || key == "kernel.domainname" {
        return if has_ns(LinuxNamespaceType::Uts) {
            Ok(())
        } else {
            Err(format!("{key:?} needs a uts namespace"))
        };
    }
    Err(format!(
        "{key:?} is not namespaced: it would change the host"
    ))
}

/// Writes one sysctl through `/proc/sys`, resolved beneath a procfs handle
/// that was checked to be a real procfs.
pub fn write(proc: &ProcFs, key: &str, value: &str) -> Result<()> {
    let rel = format!("sys/{}", key.replace('.', "/"));
    let fd: OwnedFd = proc.open_beneath(&rel, libc::O_WRONLY)?;
    let file = std::fs::File::from(fd);
    nix::unistd::write(file.as_fd(), value.as_bytes())
        .with_ctx(|| format!("write sysctl {key}={value}"))
        .map(|_| ())
        .map_err(|e| match e {
            Error::Sys { context, source } => Error::Sys { context, source },
            other => other,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_namespaced_keys() {
        let all = |_| true;
        let none = |_| false;
        assert!(check_key("net.ipv4.ip_forward", &all).is_ok());
        assert!(check_key("net.ipv4.ip_forward", &none).is_err());
        assert!(check_key("kernel.shmmax", &all).is_ok());
        assert!(check_key("fs.mqueue.msg_max", &all).is_ok());
        assert!(check_key("kernel.domainname", &all).is_ok());
        let e = check_key("kernel.panic", &all).unwrap_err();
        assert!(e.contains("not namespaced"), "{e}");
        assert!(check_key("vm.swappiness", &all).is_err());
        assert!(check_key("net/../../x", &all).is_err());
    }
}
