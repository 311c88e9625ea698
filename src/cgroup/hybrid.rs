//! A hybrid host keeps some controllers (cpu, memory, pids, ...) in cgroup
//! v1 hierarchies beside the unified one, and rt manages cgroup v2 only,
//! so it cannot apply a limit of those controllers. By default such a
//! limit is refused, naming it (`super::check_resources`). A node's admin
//! may choose instead, in rt's settings file, that rt runs the container
//! without those limits, with a warning naming each field it skipped:
//!
//! ```json
//! {"cgroupV1Limits": "skip"}
//! ```
//!
//! in `/etc/rt/config.json`, or the file `RT_CONFIG` names (for a manager
//! started with it in its environment, which containerd's shims and the
//! runtime they run inherit). containerd 2.x gives every pod sandbox
//! `cpu.shares` 2 and has no setting to leave it out, so on such a host
//! this is what lets pods run on rt. The file is read only when a
//! container asks for such a limit: nothing here is on the path of a
//! container whose limits the host can apply.
//!
//! [`decide`] is the pure part: given the planned writes, the controllers
//! cgroup v2 lacks here and the setting, which writes remain and which
//! fields are skipped, or the controller to refuse.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::resources::Write;
use crate::error::{Error, Result};

/// rt's settings file, where no `RT_CONFIG` names another.
pub const SETTINGS_FILE: &str = "/etc/rt/config.json";
/// The environment variable naming another settings file.
pub const SETTINGS_ENV: &str = "RT_CONFIG";

/// What rt does with a limit whose controller this host keeps in cgroup v1.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum V1Limits {
    /// Refuse the container, naming the field (the default).
    #[default]
    Refuse,
    /// Run it without those limits, warning once per field.
    Skip,
}

/// rt's settings file.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    pub cgroup_v1_limits: V1Limits,
}

impl Settings {
    /// The settings in `data`, read from `file`; a bad one is one line
    /// naming the file and what is wrong in it.
    pub fn parse(file: &Path, data: &[u8]) -> Result<Settings> {
        serde_json::from_slice(data).map_err(|e| Error::Settings {
            file: file.to_path_buf(),
            msg: e.to_string(),
        })
    }

    /// The file in effect (`RT_CONFIG`'s, else [`SETTINGS_FILE`]) and its
    /// settings. The default file may be absent (the defaults hold); a
    /// file `RT_CONFIG` names must exist.
    pub fn load() -> Result<(PathBuf, Settings)> {
        Settings::load_from(std::env::var_os(SETTINGS_ENV).filter(|v| !v.is_empty()))
    }

    /// [`Settings::load`] with `named` as `RT_CONFIG`'s value.
    pub fn load_from(named: Option<std::ffi::OsString>) -> Result<(PathBuf, Settings)> {
        let file = named
            .clone()
            .map_or_else(|| PathBuf::from(SETTINGS_FILE), PathBuf::from);
        match std::fs::read(&file) {
            Ok(data) => Ok((file.clone(), Settings::parse(&file, &data)?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && named.is_none() => {
                Ok((file, Settings::default()))
            }
            Err(e) => Err(Error::Settings {
                msg: format!("cannot read it ({SETTINGS_ENV} names it): {e}"),
                file,
            }),
        }
    }
}

/// A controller the planned writes need and cgroup v2 does not offer here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    pub controller: String,
    /// Whether a cgroup v1 hierarchy holds it (a hybrid host).
    pub on_v1: bool,
}

/// A limit left out: its `linux.resources` field and controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub field: String,
    pub controller: String,
}

/// What becomes of planned writes some of whose controllers are missing.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Write these; the others' fields are skipped.
    Apply(Vec<Write>, Vec<Skipped>),
    /// Refuse the container for this controller.
    Refuse(String),
}

/// Pure: skipping happens only when the setting says so and every missing
/// controller is one cgroup v1 holds (a controller the kernel lacks
/// altogether is refused whatever the setting). Each skipped field is
/// named once.
pub fn decide(writes: Vec<Write>, missing: &[Missing], setting: V1Limits) -> Decision {
    if let Some(m) = missing.iter().find(|m| !m.on_v1) {
        return Decision::Refuse(m.controller.clone());
    }
    if setting == V1Limits::Refuse {
        if let Some(m) = missing.first() {
            return Decision::Refuse(m.controller.clone());
        }
    }
    let (mut kept, mut skipped) = (vec![], Vec::<Skipped>::new());
    for w in writes {
        match w
            .controller()
            .filter(|c| missing.iter().any(|m| m.controller == *c))
        {
            Some(c) => {
                if !skipped.iter().any(|s| s.field == w.field) {
                    skipped.push(Skipped {
                        field: w.field.clone(),
                        controller: c.to_string(),
                    });
                }
            }
            None => kept.push(w),
        }
    }
    Decision::Apply(kept, skipped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::resources::plan;
    use oci_spec::runtime::LinuxResources;

    fn missing(c: &str, on_v1: bool) -> Missing {
        Missing {
            controller: c.into(),
            on_v1,
        }
    }

    fn writes(json: &str) -> Vec<Write> {
        let r: LinuxResources = serde_json::from_str(json).unwrap();
        plan(&r).unwrap()
    }

    const POD: &str = r#"{"cpu":{"shares":2,"quota":50000,"period":100000},
        "memory":{"limit":67108864},"hugepageLimits":[{"pageSize":"2MB","limit":0}]}"#;

    #[test]
    fn skip_leaves_out_the_v1_controllers_writes_naming_each_field() {
        let m = [missing("cpu", true), missing("memory", true)];
        let Decision::Apply(kept, skipped) = decide(writes(POD), &m, V1Limits::Skip) else {
            panic!("skipped")
        };
        let files: Vec<&str> = kept.iter().map(|w| w.file.as_str()).collect();
        // What cgroup v2 has here stays: the hugetlb limits only.
        assert!(files.contains(&"hugetlb.2MB.max"), "{files:?}");
        assert!(files.iter().all(|f| f.starts_with("hugetlb.")), "{files:?}");
        let fields: Vec<&str> = skipped.iter().map(|s| s.field.as_str()).collect();
        assert_eq!(fields, ["memory.limit", "cpu.shares", "cpu.quota"]);
        assert_eq!(skipped[0].controller, "memory");
    }

    #[test]
    fn the_default_refuses_naming_the_controller() {
        let m = [missing("cpu", true)];
        assert_eq!(
            decide(writes(POD), &m, V1Limits::Refuse),
            Decision::Refuse("cpu".into())
        );
        assert_eq!(
            decide(writes(POD), &m, V1Limits::default()),
            Decision::Refuse("cpu".into())
        );
    }

    #[test]
    fn a_controller_no_hierarchy_holds_is_refused_even_with_skip() {
        let m = [missing("cpu", true), missing("rdma", false)];
        assert_eq!(
            decide(writes(POD), &m, V1Limits::Skip),
            Decision::Refuse("rdma".into())
        );
    }

    #[test]
    fn unified_keys_are_named_as_given() {
        let w = writes(r#"{"unified":{"memory.high":"100","pids.max":"5"}}"#);
        let Decision::Apply(kept, skipped) = decide(w, &[missing("memory", true)], V1Limits::Skip)
        else {
            panic!("skipped")
        };
        assert_eq!(kept.len(), 1);
        assert_eq!(skipped[0].field, "unified.memory.high");
    }

    #[test]
    fn settings_parse_and_say_what_is_wrong_in_one_line() {
        let f = Path::new("/etc/rt/config.json");
        let s = Settings::parse(f, br#"{"cgroupV1Limits": "skip"}"#).unwrap();
        assert_eq!(s.cgroup_v1_limits, V1Limits::Skip);
        let s = Settings::parse(f, b"{}").unwrap();
        assert_eq!(s.cgroup_v1_limits, V1Limits::Refuse);
        for (bad, says) in [
            (
                &br#"{"cgroupV1Limit": "skip"}"#[..],
                "unknown field `cgroupV1Limit`",
            ),
            (
                br#"{"cgroupV1Limits": "ignore"}"#,
                "unknown variant `ignore`",
            ),
            (b"{", "EOF"),
        ] {
            let e = Settings::parse(f, bad).unwrap_err().to_string();
            assert!(
                e.starts_with("rt settings /etc/rt/config.json: ") && e.contains(says),
                "{e}"
            );
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn a_named_settings_file_must_exist_the_default_may_not() {
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("config.json");
        let named = Some(file.clone().into_os_string());
        let e = Settings::load_from(named.clone()).unwrap_err().to_string();
        assert!(e.contains("config.json") && e.contains(SETTINGS_ENV), "{e}");
        std::fs::write(&file, r#"{"cgroupV1Limits": "skip"}"#).unwrap();
        let (f, s) = Settings::load_from(named).unwrap();
        assert_eq!((f, s.cgroup_v1_limits), (file, V1Limits::Skip));
        // Without RT_CONFIG, the default file (absent on a test machine, or
        // an admin's) is read.
        if !Path::new(SETTINGS_FILE).exists() {
            let (f, s) = Settings::load_from(None).unwrap();
            assert_eq!(
                (f, s.cgroup_v1_limits),
                (SETTINGS_FILE.into(), V1Limits::Refuse)
            );
        }
    }
}
