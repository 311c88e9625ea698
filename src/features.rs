//! `rt features`: the runtime-spec features document (features.md),
//! describing what this build of rt really does. Each list is taken from
//! the code that implements it, not written out by hand a second time.

use serde_json::{json, Value};

use crate::config::spec::OCI_VERSION;
use crate::config::{mempolicy, mount_options};
use crate::hooks::Kind;

/// The oldest runtime-spec version whose configs rt accepts.
pub const OCI_VERSION_MIN: &str = "1.0.0";

/// runc's features annotation saying checkpoint/restore is built in.
pub const CHECKPOINT_ENABLED: &str = "org.opencontainers.runc.checkpoint.enabled";

/// This build's version and git commit (`rt --version`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const COMMIT: &str = env!("RT_COMMIT");

pub fn document() -> Value {
    let hooks: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
    let mut caps: Vec<String> = caps::all().iter().map(|c| c.to_string()).collect();
    caps.sort();
    json!({
        "ociVersionMin": OCI_VERSION_MIN,
        "ociVersionMax": OCI_VERSION,
        "hooks": hooks,
        "mountOptions": mount_options::names(),
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": caps,
            "cgroup": {
                "v1": false,
                "v2": true,
                // --systemd-cgroup: a transient scope asked of systemd
                // over the system bus.
                "systemd": true,
                "systemdUser": false,
                "rdma": false
            },
            "seccomp": {
                "enabled": true,
                "actions": crate::seccomp::ACTIONS,
                "operators": crate::seccomp::OPERATORS,
                // Filters are built for x86_64; other ABIs are killed.
                "archs": ["SCMP_ARCH_X86_64"],
                "knownFlags": crate::seccomp::FLAGS,
                "supportedFlags": crate::seccomp::FLAGS
            },
            "apparmor": {"enabled": crate::config::apparmor::enabled()},
            "selinux": {"enabled": false},
            // Where /sys/fs/resctrl is mounted; elsewhere a config that
            // asks for it is refused with that reason.
            "intelRdt": {"enabled": true, "schemata": true, "monitoring": true},
            "memoryPolicy": {
                "modes": mempolicy::MODES.map(|(n, _)| n),
                "flags": mempolicy::FLAGS.map(|(n, _)| n)
            },
            "netDevices": {"enabled": true},
            "mountExtensions": {"idmap": {"enabled": true}}
        },
        "annotations": {
            // runc's annotation, which Podman reads to offer checkpoint
            // and restore: this build drives CRIU (`rt checkpoint`,
            // `rt restore`); whether CRIU itself can start on the host
            // is checked when they run, as runc does.
            CHECKPOINT_ENABLED: "true",
            "org.opencontainers.runtime-spec.features.rt.version": VERSION
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::mount_options::MountOptions;

    /// Every mount option the document lists is one the parser takes as
    /// its own (not as filesystem data), idmap and ridmap among them.
    #[test]
    fn every_listed_mount_option_parses() {
        let doc = document();
        let listed: Vec<&str> = doc["mountOptions"]
            .as_array()
            .expect("a list")
            .iter()
            .map(|o| o.as_str().expect("a name"))
            .collect();
        for opt in &listed {
            let o = MountOptions::parse(&[*opt]).unwrap_or_else(|e| panic!("{opt}: {e}"));
            assert!(o.data.is_empty(), "{opt} is passed on as data");
        }
        for opt in ["idmap", "ridmap"] {
            assert!(listed.contains(&opt), "{opt} is listed: {listed:?}");
        }
    }
}
