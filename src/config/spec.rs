//! Loading and validating a bundle's config.json.
//!
//! Errors name the JSON path of the offending field (via
//! `serde_path_to_error`) so a user sees `linux.namespaces[2].type: ...`
//! instead of a line and column.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Process, Spec};

use crate::config::mount_plan::MountPlan;
use crate::config::namespace_plan::{Host, NamespacePlan};
use crate::config::process_plan::{self, ProcessPlan};
use crate::error::{Error, Result};

/// The runtime-spec version rt implements and writes into state JSON.
pub const OCI_VERSION: &str = "1.3.0";

/// A bundle: its absolute directory and its parsed, validated config.
#[derive(Debug)]
pub struct Bundle {
    pub dir: PathBuf,
    pub spec: Spec,
    /// The root filesystem, absolute.
    pub rootfs: PathBuf,
    /// What the init's own kernel settings will be (`process` and the
    /// `linux` fields a process gets), computed once, here.
    pub process: ProcessPlan,
    /// The plan of the mounts, computed once, here; rt adds what it makes
    /// for them before the clone, and the init only applies it.
    pub mounts: MountPlan,
    /// The plan of the namespaces, computed once, here; rt opens what it
    /// joins and applies it with the init.
    pub namespaces: NamespacePlan,
}

impl Bundle {
    /// Reads `<dir>/config.json`, parses and validates it.
    pub fn load(dir: &Path) -> Result<Bundle> {
        let dir = std::path::absolute(dir).map_err(|source| Error::Io {
            context: format!("bundle {}", dir.display()),
            source,
        })?;
        let file = dir.join("config.json");
        let data = std::fs::read(&file).map_err(|e| Error::Config {
            file: file.clone(),
            msg: match e.kind() {
                std::io::ErrorKind::NotFound => "no such file (is --bundle right?)".into(),
                _ => e.to_string(),
            },
        })?;
        let spec = parse(&data).map_err(|msg| Error::Config {
            file: file.clone(),
            msg,
        })?;
        let (rootfs, process, mounts, namespaces) =
            validate(&spec, &dir).map_err(|msg| Error::Config {
                file: file.clone(),
                msg,
            })?;
        Ok(Bundle {
            dir,
            spec,
            rootfs,
            process,
            mounts,
            namespaces,
        })
    }
}

/// `linux.resources.hugepageLimits[].pageSize` in any case: runc reads
/// config.json with Go's decoder, which matches keys without regard to
/// case, and configs written for it (runc's own suite among them) spell
/// this one "pagesize". The spelling of the spec wins where both are there.
fn hugepage_size_key_any_case(doc: &mut serde_json::Value) {
    let limits = doc
        .pointer_mut("/linux/resources/hugepageLimits")
        .and_then(|l| l.as_array_mut());
    for limit in limits.into_iter().flatten() {
        let Some(obj) = limit.as_object_mut() else {
            continue;
        };
        if obj.contains_key("pageSize") {
            continue;
        }
        let other = obj
            .keys()
            .find(|k| k.eq_ignore_ascii_case("pageSize"))
            .cloned();
        if let Some(k) = other {
            if let Some(v) = obj.remove(&k) {
                obj.insert("pageSize".into(), v);
            }
        }
    }
}

/// Parses config.json text into a `Spec`; the error names the field.
pub fn parse(data: &[u8]) -> std::result::Result<Spec, String> {
    let mut doc: serde_json::Value =
        serde_json::from_slice(data).map_err(|e| format!("malformed JSON: {e}"))?;
    skip_unknown_capabilities(&mut doc);
    hugepage_size_key_any_case(&mut doc);
    if let Some(p) = doc.get_mut("process") {
        super::sched::spec_flag_names(p);
    }
    let mut spec: Spec = serde_path_to_error::deserialize(doc).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        // A broken document has no field to blame; a field of the wrong
        // shape does.
        let syntax = matches!(
            inner.classify(),
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof
        );
        if syntax || path.is_empty() || path == "." || path == "?" {
            format!("malformed JSON: {inner}")
        } else {
            format!("{path}: {inner}")
        }
    })?;
    empty_namespace_paths_mean_new(&mut spec);
    relative_destinations_from_root(&mut spec);
    Ok(spec)
}

/// The config's id maps against those of the user namespace joined at
/// `path`: a /proc/<pid>/ns/user, or a file that holds the namespace (the
/// pinned namespace containerd gives a user-namespaced pod, with the maps
/// it made it with).
fn maps_match_joined(l: &oci_spec::runtime::Linux, path: &Path) -> std::result::Result<(), String> {
    use std::os::fd::AsFd;
    let ns = std::fs::File::open(path).map_err(|e| {
        format!(
            "linux.namespaces: open the user namespace {}: {e}",
            path.display()
        )
    })?;
    let (uid_map, gid_map) = crate::sys::ns::user_namespace_maps(ns.as_fd()).map_err(|e| {
        format!(
            "linux.uidMappings: read the maps of the user namespace joined at {}: {e}",
            path.display()
        )
    })?;
    let sets = [
        ("uidMappings", uid_map, l.uid_mappings()),
        ("gidMappings", gid_map, l.gid_mappings()),
    ];
    for (field, text, want) in sets {
        let Some(want) = want else { continue };
        let mut have: Vec<(u32, u32, u32)> = text
            .lines()
            .filter_map(|line| {
                let f: Vec<u32> = line
                    .split_whitespace()
                    .filter_map(|x| x.parse().ok())
                    .collect();
                (f.len() == 3).then(|| (f[0], f[1], f[2]))
            })
            .collect();
        let mut want: Vec<(u32, u32, u32)> = want
            .iter()
            .map(|m| (m.container_id(), m.host_id(), m.size()))
            .collect();
        have.sort_unstable();
        want.sort_unstable();
        if have != want {
            return Err(format!(
                "linux.{field}: not the maps of the user namespace joined at {}",
                path.display()
            ));
        }
    }
    Ok(())
}

/// A relative mount destination is taken relative to `/`, with a warning,
/// as runc does (deprecated; configs of older tools still write them).
fn relative_destinations_from_root(spec: &mut Spec) {
    let Some(mounts) = spec.mounts_mut().as_mut() else {
        return;
    };
    for (i, m) in mounts.iter_mut().enumerate() {
        let dest = m.destination();
        if dest.is_relative() {
            let abs = Path::new("/").join(dest);
            log::warn!(
                "mounts[{i}].destination: {} is not absolute (deprecated): taken as {}",
                dest.display(),
                abs.display()
            );
            m.set_destination(abs);
        }
    }
}

/// Capability names neither rt nor this kernel knows (a newer kernel's,
/// in a config written for it) are dropped with a warning, as runc 1.3
/// does, instead of failing the whole config.
fn skip_unknown_capabilities(doc: &mut serde_json::Value) {
    let Some(sets) = doc
        .get_mut("process")
        .and_then(|p| p.get_mut("capabilities"))
        .and_then(|c| c.as_object_mut())
    else {
        return;
    };
    let supported = caps::runtime::thread_all_supported();
    for (set, names) in sets.iter_mut() {
        let Some(names) = names.as_array_mut() else {
            continue;
        };
        names.retain(|n| {
            let Some(name) = n.as_str() else { return true };
            let known = serde_json::from_value::<oci_spec::runtime::Capability>(n.clone()).is_ok()
                && name
                    .parse::<caps::Capability>()
                    .is_ok_and(|c| supported.contains(&c));
            if !known {
                log::warn!(
                    "process.capabilities.{set}: {name} is not a capability this kernel or rt knows; skipped"
                );
            }
            known
        });
    }
}

/// A namespace with `"path": ""` is a new one, as runc takes it (configs
/// that join some namespaces of another container write it for the rest).
fn empty_namespace_paths_mean_new(spec: &mut Spec) {
    let Some(nss) = spec
        .linux_mut()
        .as_mut()
        .and_then(|l| l.namespaces_mut().as_mut())
    else {
        return;
    };
    for ns in nss.iter_mut() {
        if ns.path().as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
            ns.set_path(None);
        }
    }
}

/// What `validate` returns: the absolute root filesystem path, the
/// init's process plan, the plan of the mounts and of the namespaces.
pub type Validated = (PathBuf, ProcessPlan, MountPlan, NamespacePlan);

/// Checks what the runtime spec requires and what rt can honour.
pub fn validate(spec: &Spec, bundle: &Path) -> std::result::Result<Validated, String> {
    let version = spec.version();
    if version.is_empty() {
        return Err("ociVersion: missing".into());
    }
    if !(version.starts_with("1.") || version == "1") {
        return Err(format!(
            "ociVersion: {version:?} is not supported (rt implements runtime-spec 1.x)"
        ));
    }

    let root = spec.root().as_ref().ok_or("root: missing")?;
    let rootfs = if root.path().is_absolute() {
        root.path().clone()
    } else {
        bundle.join(root.path())
    };
    match std::fs::metadata(&rootfs) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(format!(
                "root.path: {} is not a directory",
                rootfs.display()
            ))
        }
        Err(_) => return Err(format!("root.path: {} does not exist", rootfs.display())),
    }

    let process = spec.process().as_ref().ok_or("process: missing")?;
    let mut plan = check_process(process).map_err(|e| format!("process.{e}"))?;

    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        if !m.destination().is_absolute() {
            return Err(format!(
                "mounts[{i}].destination: {:?} must be an absolute path",
                m.destination()
            ));
        }
    }
    let mounts = MountPlan::new(spec, bundle, &rootfs)?;

    let linux = spec.linux().as_ref();
    let nss = linux.and_then(|l| l.namespaces().as_ref());
    let has_ns = |t: LinuxNamespaceType| nss.into_iter().flatten().any(|n| n.typ() == t);
    let namespaces = NamespacePlan::new(spec, Host::detect())?;
    if let Some(l) = linux {
        let maps = l.uid_mappings().is_some() || l.gid_mappings().is_some();
        let joined_user = nss
            .into_iter()
            .flatten()
            .find(|n| n.typ() == LinuxNamespaceType::User)
            .and_then(|n| n.path().as_ref());
        if let (true, Some(path)) = (maps, joined_user) {
            // runc 1.1.5 wants the maps even when joining: they must be
            // the joined namespace's own.
            maps_match_joined(l, path)?;
        }
        if let Some(prop) = l.rootfs_propagation() {
            if !matches!(
                prop.as_str(),
                "shared"
                    | "slave"
                    | "private"
                    | "unbindable"
                    | "rshared"
                    | "rslave"
                    | "rprivate"
                    | "runbindable"
            ) {
                return Err(format!(
                    "linux.rootfsPropagation: {prop:?} is not a propagation mode"
                ));
            }
        }
        if let Some(rdt) = l.intel_rdt() {
            crate::resctrl::validate(rdt)?;
        }
        plan.personality = process_plan::personality(Some(l))?;
        plan.memory_policy = process_plan::memory_policy(Some(l))?;
        if let Some(devices) = l.net_devices() {
            crate::config::netdev::check(devices, has_ns(LinuxNamespaceType::Network))?;
        }
        if l.mount_label().as_ref().is_some_and(|s| !s.is_empty()) {
            return Err("linux.mountLabel: SELinux is not enabled on this host".into());
        }
        if let Some(sysctl) = l.sysctl() {
            for key in sysctl.keys() {
                crate::config::sysctl::check_key(key, &|t| has_ns(t))
                    .map_err(|e| format!("linux.sysctl: {e}"))?;
                let ns = crate::config::sysctl::namespace_of(key);
                let joined = nss
                    .into_iter()
                    .flatten()
                    .find(|n| Some(n.typ()) == ns)
                    .and_then(|n| n.path().as_ref());
                if let (Some(ns), Some(path)) = (ns, joined) {
                    let own = Path::new("/proc/self/ns").join(crate::config::namespaces::name(ns));
                    crate::config::sysctl::check_joined(key, path, &own)
                        .map_err(|e| format!("linux.sysctl: {e}"))?;
                }
            }
        }
    }
    if let Some(h) = spec.hooks() {
        crate::hooks::validate(h)?;
    }
    Ok((rootfs, plan, mounts, namespaces))
}

/// Checks a `process` (the config's, or `rt exec --process`'s): what the
/// spec requires of it and what rt can honour, and plans its own kernel
/// settings (without the `linux` ones). Messages name the field relative
/// to the process ("args: ...").
pub fn check_process(process: &Process) -> std::result::Result<ProcessPlan, String> {
    check_user(process.user())?;
    match process.args() {
        Some(args) if !args.is_empty() && !args[0].is_empty() => {}
        _ => return Err("args: must name a program to run".into()),
    }
    if !process.cwd().is_absolute() {
        return Err(format!("cwd: {:?} must be an absolute path", process.cwd()));
    }
    for (i, e) in process.env().iter().flatten().enumerate() {
        if !e.contains('=') {
            return Err(format!("env[{i}]: {e:?} is not of the form KEY=value"));
        }
    }
    if let Some(p) = process
        .apparmor_profile()
        .as_deref()
        .filter(|s| !s.is_empty())
    {
        crate::config::apparmor::check(p).map_err(|e| format!("apparmorProfile: {e}"))?;
    }
    if process
        .selinux_label()
        .as_ref()
        .is_some_and(|s| !s.is_empty())
    {
        return Err("selinuxLabel: SELinux is not enabled on this host".into());
    }
    let plan = ProcessPlan::of_process(process)?;
    // Said here, by rt: the init's stderr may be the container's.
    for cap in plan.capabilities.iter().flat_map(|c| &c.unraisable_ambient) {
        log::warn!(
            "can't raise ambient capability {cap}: not in both the permitted and inheritable sets"
        );
    }
    Ok(plan)
}

/// The kernel reads an id of 4294967295 ((uid_t)-1) as "leave unchanged":
/// setresuid(-1, -1, -1) keeps rt's uid 0, so such a user would run as
/// root. No user namespace can map it either, so it is never a real id.
fn check_user(user: &oci_spec::runtime::User) -> std::result::Result<(), String> {
    const UNCHANGED: u32 = u32::MAX;
    let bad = |field: &str, id: u32| {
        format!("user.{field}: {id} is not a valid id (the kernel reads it as \"leave unchanged\", which would keep root)")
    };
    if user.uid() == UNCHANGED {
        return Err(bad("uid", user.uid()));
    }
    if user.gid() == UNCHANGED {
        return Err(bad("gid", user.gid()));
    }
    if let Some(i) = user
        .additional_gids()
        .iter()
        .flatten()
        .position(|g| *g == UNCHANGED)
    {
        return Err(bad(&format!("additionalGids[{i}]"), UNCHANGED));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle_with(config: &str) -> (tempfile::TempDir, Result<Bundle>) {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("rootfs")).unwrap();
        std::fs::write(d.path().join("config.json"), config).unwrap();
        let b = Bundle::load(d.path());
        (d, b)
    }

    const MINIMAL: &str = r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},
        "process":{"cwd":"/","args":["sh"],"user":{"uid":0,"gid":0}}}"#;

    fn err_of(config: &str) -> String {
        bundle_with(config).1.unwrap_err().to_string()
    }

    #[test]
    fn a_hugepage_size_key_in_any_case_is_read() {
        let doc = |limits: &str| {
            format!(
                r#"{{"ociVersion":"1.0.2","linux":{{"resources":{{"hugepageLimits":{limits}}}}}}}"#
            )
        };
        let sizes = |limits: &str| -> Vec<String> {
            let spec = parse(doc(limits).as_bytes()).unwrap();
            let r = spec.linux().as_ref().unwrap().resources().as_ref().unwrap();
            r.hugepage_limits()
                .iter()
                .flatten()
                .map(|h| h.page_size().to_string())
                .collect()
        };
        assert_eq!(sizes(r#"[{"pagesize":"2MB","limit":2097152}]"#), ["2MB"]);
        assert_eq!(sizes(r#"[{"PageSize":"1GB","limit":0}]"#), ["1GB"]);
        assert_eq!(
            sizes(r#"[{"pageSize":"2MB","pagesize":"1GB","limit":0}]"#),
            ["2MB"]
        );
    }

    #[test]
    fn an_id_of_minus_one_is_refused() {
        for (user, field) in [
            (
                r#"{"uid":4294967295,"gid":0}"#,
                "process.user.uid: 4294967295",
            ),
            (
                r#"{"uid":1,"gid":4294967295}"#,
                "process.user.gid: 4294967295",
            ),
            (
                r#"{"uid":1,"gid":1,"additionalGids":[2,4294967295]}"#,
                "process.user.additionalGids[1]: 4294967295",
            ),
        ] {
            let config = MINIMAL.replace(r#"{"uid":0,"gid":0}"#, user);
            let e = err_of(&config);
            assert!(e.contains(field), "{e}");
            assert!(e.contains("not a valid id"), "{e}");
        }
        let ok = MINIMAL.replace(r#"{"uid":0,"gid":0}"#, r#"{"uid":4294967294,"gid":1}"#);
        assert!(bundle_with(&ok).1.is_ok());
    }

    #[test]
    fn minimal_config_loads() {
        let (d, b) = bundle_with(MINIMAL);
        let b = b.unwrap();
        assert_eq!(b.rootfs, d.path().join("rootfs"));
    }

    #[test]
    fn any_1x_version_is_accepted_others_are_not() {
        for v in ["1.0.0", "1.1.0", "1.2.1", "1.9.0-dev"] {
            let c = MINIMAL.replace("1.0.2", v);
            assert!(bundle_with(&c).1.is_ok(), "{v}");
        }
        let e = err_of(&MINIMAL.replace("1.0.2", "2.0.0"));
        assert!(e.contains("ociVersion") && e.contains("2.0.0"), "{e}");
        let e = err_of(&MINIMAL.replace("\"ociVersion\":\"1.0.2\",", ""));
        assert!(e.contains("ociVersion: missing"), "{e}");
    }

    #[test]
    fn errors_name_the_field() {
        let e = err_of(&MINIMAL.replace("\"args\":[\"sh\"]", "\"args\":\"sh\""));
        assert!(e.contains("process.args"), "{e}");
        let c = MINIMAL.replace(
            "\"root\"",
            "\"linux\":{\"namespaces\":[{\"type\":\"pid\"},{\"type\":\"bogus\"}]},\"root\"",
        );
        let e = err_of(&c);
        assert!(
            e.contains("linux.namespaces[1].type") && e.contains("bogus"),
            "{e}"
        );
        let e = err_of("{\"ociVersion\": ");
        assert!(e.contains("malformed JSON"), "{e}");
    }

    #[test]
    fn missing_rootfs_and_config_are_named() {
        let d = tempfile::tempdir().unwrap();
        let e = Bundle::load(d.path()).unwrap_err().to_string();
        assert!(
            e.contains("config.json") && e.contains("no such file"),
            "{e}"
        );
        std::fs::write(d.path().join("config.json"), MINIMAL).unwrap();
        let e = Bundle::load(d.path()).unwrap_err().to_string();
        assert!(
            e.contains("root.path") && e.contains("does not exist"),
            "{e}"
        );
    }

    #[test]
    fn semantic_checks() {
        let e = err_of(&MINIMAL.replace("\"args\":[\"sh\"]", "\"args\":[]"));
        assert!(e.contains("process.args"), "{e}");
        let e = err_of(&MINIMAL.replace("\"cwd\":\"/\"", "\"cwd\":\"tmp\""));
        assert!(e.contains("process.cwd"), "{e}");
        let c = MINIMAL.replace(
            "\"root\"",
            "\"linux\":{\"namespaces\":[{\"type\":\"pid\"},{\"type\":\"pid\"}]},\"root\"",
        );
        assert!(err_of(&c).contains("duplicate"));
        // A relative destination is taken from / (runc's reading).
        let c = MINIMAL.replace(
            "\"root\"",
            "\"mounts\":[{\"destination\":\"proc\",\"type\":\"proc\"}],\"root\"",
        );
        let spec = parse(c.as_bytes()).unwrap();
        assert_eq!(
            spec.mounts().as_ref().unwrap()[0].destination(),
            Path::new("/proc")
        );
        let c = MINIMAL.replace("\"root\"", "\"hostname\":\"x\",\"root\"");
        assert!(err_of(&c).contains("uts namespace"));
        let c = MINIMAL.replace(
            "\"root\"",
            "\"linux\":{\"namespaces\":[{\"type\":\"user\"}]},\"root\"",
        );
        assert!(err_of(&c).contains("uidMappings"));
    }
}
