//! `process.capabilities`: every name in the five sets is a capability
//! this kernel interface knows.

use caps::Capability as Cap;
use oci_spec::runtime::LinuxCapabilities;

/// Validates the names without applying them (for create-time checks);
/// the message names the set, relative to the process.
pub fn check(c: &LinuxCapabilities) -> std::result::Result<(), String> {
    for (name, s) in [
        ("bounding", c.bounding()),
        ("effective", c.effective()),
        ("permitted", c.permitted()),
        ("inheritable", c.inheritable()),
        ("ambient", c.ambient()),
    ] {
        for cap in s.iter().flatten() {
            let full = format!("CAP_{cap}");
            if full.parse::<Cap>().is_err() {
                return Err(format!("capabilities.{name}: unknown capability {full}"));
            }
        }
    }
    Ok(())
}

/// The ambient capabilities the kernel will not raise: those not in both
/// the permitted and inheritable sets. runc warns of each and goes on.
pub fn unraisable_ambient(c: &LinuxCapabilities) -> Vec<String> {
    let has = |set: &Option<oci_spec::runtime::Capabilities>, cap| {
        set.as_ref().is_some_and(|s| s.contains(cap))
    };
    c.ambient()
        .iter()
        .flatten()
        .filter(|cap| !has(c.permitted(), cap) || !has(c.inheritable(), cap))
        .map(|cap| format!("CAP_{cap}"))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ambient_outside_permitted_and_inheritable_is_named() {
        let c: LinuxCapabilities = serde_json::from_value(serde_json::json!({
            "permitted": ["CAP_KILL", "CAP_CHOWN"],
            "inheritable": ["CAP_KILL", "CAP_NET_RAW"],
            "ambient": ["CAP_KILL", "CAP_CHOWN", "CAP_NET_RAW"]
        }))
        .unwrap();
        assert_eq!(unraisable_ambient(&c), ["CAP_CHOWN", "CAP_NET_RAW"]);
        let none: LinuxCapabilities =
            serde_json::from_value(serde_json::json!({"permitted": ["CAP_KILL"]})).unwrap();
        assert!(unraisable_ambient(&none).is_empty());
    }
}
