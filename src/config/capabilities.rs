//! `process.capabilities`: the five sets in the kernel's terms, every
//! name one this kernel interface knows (planned once, in rt, for the
//! init to apply: `init::capabilities`).

use caps::{Capability as Cap, CapsHashSet};
use oci_spec::runtime::{Capabilities, LinuxCapabilities};

/// The five capability sets as the init sets them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CapSets {
    pub bounding: CapsHashSet,
    pub effective: CapsHashSet,
    pub permitted: CapsHashSet,
    pub inheritable: CapsHashSet,
    /// Only those the kernel will raise: in both the permitted and the
    /// inheritable sets (runc warns of the others and goes on).
    pub ambient: CapsHashSet,
    /// The config's other ambient ones, sorted, for rt to warn of.
    pub unraisable_ambient: Vec<Cap>,
}

/// The sets of `c`, or the first unknown name; the message names the
/// set, relative to the process.
pub fn plan(c: &LinuxCapabilities) -> std::result::Result<CapSets, String> {
    let set = |name: &str, s: &Option<Capabilities>| {
        let mut out = CapsHashSet::new();
        for cap in s.iter().flatten() {
            let full = format!("CAP_{cap}");
            let cap: Cap = full
                .parse()
                .map_err(|_| format!("capabilities.{name}: unknown capability {full}"))?;
            out.insert(cap);
        }
        Ok::<_, String>(out)
    };
    let bounding = set("bounding", c.bounding())?;
    let effective = set("effective", c.effective())?;
    let permitted = set("permitted", c.permitted())?;
    let inheritable = set("inheritable", c.inheritable())?;
    let ambient = set("ambient", c.ambient())?;
    let raisable = &permitted & &inheritable;
    let mut unraisable_ambient: Vec<Cap> = ambient.difference(&raisable).copied().collect();
    unraisable_ambient.sort_by_key(|c| c.to_string());
    let ambient = &ambient & &raisable;
    Ok(CapSets {
        bounding,
        effective,
        permitted,
        inheritable,
        ambient,
        unraisable_ambient,
    })
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
        let p = plan(&c).unwrap();
        assert_eq!(p.unraisable_ambient, [Cap::CAP_CHOWN, Cap::CAP_NET_RAW]);
        assert_eq!(p.ambient, [Cap::CAP_KILL].into());
        let none: LinuxCapabilities =
            serde_json::from_value(serde_json::json!({"permitted": ["CAP_KILL"]})).unwrap();
        assert!(plan(&none).unwrap().unraisable_ambient.is_empty());
    }

    #[test]
    fn the_sets_are_planned_with_the_raisable_ambient_ones() {
        let c: LinuxCapabilities = serde_json::from_value(serde_json::json!({
            "bounding": ["CAP_KILL", "CAP_CHOWN"],
            "permitted": ["CAP_KILL", "CAP_CHOWN"],
            "inheritable": ["CAP_KILL"],
            "ambient": ["CAP_KILL", "CAP_CHOWN"]
        }))
        .unwrap();
        let p = plan(&c).unwrap();
        assert_eq!(p.bounding, [Cap::CAP_KILL, Cap::CAP_CHOWN].into());
        assert_eq!(p.ambient, [Cap::CAP_KILL].into());
        assert!(p.effective.is_empty());
    }
}
