//! `linux.sysctl` keys: only those that belong to a namespace the
//! container has its own copy of.

use oci_spec::runtime::LinuxNamespaceType;

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
