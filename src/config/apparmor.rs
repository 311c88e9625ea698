//! AppArmor on the host: whether the kernel enforces it, and whether a
//! profile a config names is loaded. (The init applies the profile: see
//! `init::apparmor`.)

use std::fs;
use std::path::Path;

const ENABLED: &str = "/sys/module/apparmor/parameters/enabled";
const PROFILES: &str = "/sys/kernel/security/apparmor/profiles";

/// Whether AppArmor is enabled in this kernel (and its securityfs is
/// there to load profiles through).
pub fn enabled() -> bool {
    fs::read_to_string(ENABLED).is_ok_and(|s| s.starts_with('Y'))
        && Path::new("/sys/kernel/security/apparmor").is_dir()
}

/// Checks that `profile` can be applied here: AppArmor is enabled and the
/// profile is loaded ("unconfined" always is). The error names the profile.
pub fn check(profile: &str) -> Result<(), String> {
    if !enabled() {
        return Err("AppArmor is not enabled on this host".into());
    }
    if profile == "unconfined" {
        return Ok(());
    }
    // Without the list (securityfs not readable) the kernel still checks
    // when the init writes the profile.
    let Ok(list) = fs::read_to_string(PROFILES) else {
        return Ok(());
    };
    if loaded(&list, profile) {
        Ok(())
    } else {
        Err(format!(
            "profile {profile:?} is not loaded in the kernel (load it with apparmor_parser; \
             aa-status lists the loaded ones)"
        ))
    }
}

/// Whether the profiles file (`name (mode)` lines) lists `profile`.
fn loaded(list: &str, profile: &str) -> bool {
    list.lines()
        .any(|l| l.rsplit_once(" (").map_or(l, |(name, _)| name).trim_end() == profile)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_are_matched_by_whole_name() {
        let list = "docker-default (enforce)\n/usr/bin/man (enforce)\nlsb_release (complain)\n";
        assert!(loaded(list, "docker-default"));
        assert!(loaded(list, "/usr/bin/man"));
        assert!(!loaded(list, "docker"));
        assert!(!loaded(list, "enforce"));
    }
}
