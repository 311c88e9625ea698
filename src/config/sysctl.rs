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

/// The namespace a namespaced key belongs to (after `check_key` accepted it).
pub fn namespace_of(key: &str) -> Option<LinuxNamespaceType> {
    let all = |_| true;
    check_key(key, &all).ok()?;
    Some(if key.starts_with("net.") {
        LinuxNamespaceType::Network
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        LinuxNamespaceType::Uts
    } else {
        LinuxNamespaceType::Ipc
    })
}

/// A sysctl written into a namespace joined by path is refused when that
/// namespace is rt's own (the host's, for rt run on the host): the write
/// would change the host (runc: "not allowed in host network namespace").
pub fn check_joined(
    key: &str,
    joined: &std::path::Path,
    own: &std::path::Path,
) -> std::result::Result<(), String> {
    let id = |p: &std::path::Path| {
        nix::sys::stat::stat(p)
            .map(|st| (st.st_dev, st.st_ino))
            .map_err(|e| format!("{key:?}: stat {}: {e}", p.display()))
    };
    if id(joined)? == id(own)? {
        return Err(format!(
            "{key:?} is not allowed: the namespace joined at {} is the host's",
            joined.display()
        ));
    }
    Ok(())
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

    #[test]
    fn keys_belong_to_their_namespace() {
        assert_eq!(
            namespace_of("net.ipv4.ip_forward"),
            Some(LinuxNamespaceType::Network)
        );
        assert_eq!(namespace_of("kernel.shmmax"), Some(LinuxNamespaceType::Ipc));
        assert_eq!(
            namespace_of("fs.mqueue.msg_max"),
            Some(LinuxNamespaceType::Ipc)
        );
        assert_eq!(
            namespace_of("kernel.domainname"),
            Some(LinuxNamespaceType::Uts)
        );
        assert_eq!(namespace_of("kernel.panic"), None);
    }

    #[test]
    fn the_runtimes_own_namespace_is_refused() {
        let own = std::path::Path::new("/proc/self/ns/net");
        let e = check_joined("net.ipv4.ip_forward", own, own).unwrap_err();
        assert!(e.contains("is the host's"), "{e}");
        let other = std::path::Path::new("/proc/self/ns/ipc");
        assert!(check_joined("net.ipv4.ip_forward", other, own).is_ok());
    }
}
