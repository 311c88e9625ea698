//! `linux.netDevices` (runtime-spec 1.3) as config: the names, on the host
//! and in the container, must be names the kernel takes, no two devices
//! may end with the same name, and the container needs a network
//! namespace of its own to receive them.

use std::collections::{HashMap, HashSet};

use oci_spec::runtime::LinuxNetDevice;

/// The kernel's IFNAMSIZ, with its terminating NUL.
const IFNAMSIZ: usize = 16;

/// dev_valid_name() of the kernel: 1 to 15 bytes, not "." or "..", no
/// '/', ':' or white space.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() >= IFNAMSIZ {
        return Err(format!("{name:?} must be 1 to {} bytes", IFNAMSIZ - 1));
    }
    if name == "." || name == ".." {
        return Err(format!("{name:?} is not an interface name"));
    }
    if name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace())
    {
        return Err(format!(
            "{name:?}: an interface name has no '/', ':' or white space"
        ));
    }
    Ok(())
}

/// The checks of config loading; `has_netns` says whether
/// linux.namespaces has a network namespace (the host's is refused at
/// create, where a joined one can be compared with rt's own).
pub fn check(devices: &HashMap<String, LinuxNetDevice>, has_netns: bool) -> Result<(), String> {
    if devices.is_empty() {
        return Ok(());
    }
    if !has_netns {
        return Err(
            "linux.netDevices: needs a network namespace in linux.namespaces \
             (moving a device into the host's own namespace means nothing)"
                .into(),
        );
    }
    let mut names = HashSet::new();
    let mut hosts: Vec<&String> = devices.keys().collect();
    hosts.sort();
    for host in hosts {
        check_name(host).map_err(|e| format!("linux.netDevices: {e}"))?;
        let name = container_name(host, &devices[host]);
        check_name(name).map_err(|e| format!("linux.netDevices.{host}.name: {e}"))?;
        if !names.insert(name) {
            return Err(format!(
                "linux.netDevices.{host}.name: {name:?} is the name of another device too"
            ));
        }
    }
    Ok(())
}

/// The device's name in the container: `name`, or its host name.
pub fn container_name<'a>(host: &'a str, d: &'a LinuxNetDevice) -> &'a str {
    d.name()
        .as_deref()
        .filter(|n| !n.is_empty())
        .unwrap_or(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_as_the_kernel_takes_them() {
        assert!(check_name("eth0").is_ok());
        assert!(check_name("a23456789012345").is_ok());
        for bad in ["", ".", "..", "a/b", "a:b", "a b", "a234567890123456"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn two_devices_one_name() {
        let d: HashMap<String, LinuxNetDevice> =
            serde_json::from_str(r#"{"a": {"name": "eth0"}, "eth0": {}}"#).unwrap();
        let e = check(&d, true).unwrap_err();
        assert!(e.contains("another device"), "{e}");
        assert!(check(&d, false).unwrap_err().contains("network namespace"));
    }
}
