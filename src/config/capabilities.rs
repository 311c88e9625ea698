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
