//! `linux.intelRdt` against the resctrl filesystem: the container's
//! resource control group (`closID`, or one named for the container),
//! its schemata, and with `enableMonitoring` a monitoring group of its
//! own. Checked before anything is made (resctrl must be mounted at
//! /sys/fs/resctrl), made before the init runs its program, removed at
//! delete when rt made it. Hosts without resctrl (most VMs, this project's
//! test machines) get one clear error: Intel RDT is never silently
//! skipped.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxIntelRdt;
use serde::{Deserialize, Serialize};

use crate::error::{Context, Error, Result};

/// Where the kernel's resctrl filesystem is mounted (Documentation/
/// filesystems/resctrl.rst); runc and crun look only here too.
pub const ROOT: &str = "/sys/fs/resctrl";
/// RDTGROUP_SUPER_MAGIC.
const RESCTRL_MAGIC: nix::sys::statfs::FsType = nix::sys::statfs::FsType(0x7655821);

/// What create will make, checked: the group, the schemata lines to
/// write into it, whether a monitoring group is wanted.
#[derive(Debug, Clone)]
pub struct Plan {
    group: PathBuf,
    lines: Vec<String>,
    monitor: Option<PathBuf>,
}

/// The groups of a container, as recorded in its state: `created` are
/// the directories rt made (removed at delete, innermost first).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Groups {
    /// The `tasks` files the container's processes are written to.
    pub tasks: Vec<PathBuf>,
    pub created: Vec<PathBuf>,
}

/// The checks of config loading that need no host: `closID` a plain
/// directory name, schemata lines without line breaks.
pub fn validate(rdt: &LinuxIntelRdt) -> std::result::Result<(), String> {
    if let Some(id) = rdt.clos_id() {
        if id.is_empty() || id == "." || id == ".." || id.contains('/') || id.contains('\0') {
            return Err(format!(
                "linux.intelRdt.closID: {id:?} is not a resctrl group name"
            ));
        }
    }
    let fields = [
        ("l3CacheSchema", rdt.l3_cache_schema().as_slice()),
        ("memBwSchema", rdt.mem_bw_schema().as_slice()),
        ("schemata", rdt.schemata().as_deref().unwrap_or_default()),
    ];
    for (field, lines) in fields {
        for l in lines {
            if l.contains('\n') {
                return Err(format!(
                    "linux.intelRdt.{field}: {l:?}: one schema per line, without line breaks"
                ));
            }
        }
    }
    Ok(())
}

/// Checks that resctrl is mounted; `what` names what asked for it.
pub fn check_mounted(what: &str) -> Result<()> {
    let mounted =
        nix::sys::statfs::statfs(ROOT).is_ok_and(|s| s.filesystem_type() == RESCTRL_MAGIC);
    if !mounted {
        return Err(Error::HostLacks(format!(
            "{what}: resctrl is not mounted at {ROOT} (this host has no Intel RDT, \
             or it needs `mount -t resctrl resctrl {ROOT}`)"
        )));
    }
    Ok(())
}

/// Checks that resctrl can take `rdt` for container `id` on this host.
pub fn check(rdt: &LinuxIntelRdt, id: &str) -> Result<Plan> {
    check_mounted("linux.intelRdt")?;
    let root = Path::new(ROOT);
    let group = root.join(rdt.clos_id().as_deref().unwrap_or(id));
    // schemata (1.3) is written last: its lines override the older
    // single-resource fields.
    let mut lines: Vec<String> = Vec::new();
    lines.extend(rdt.l3_cache_schema().iter().cloned());
    lines.extend(rdt.mem_bw_schema().iter().cloned());
    lines.extend(rdt.schemata().iter().flatten().cloned());
    let monitor = rdt
        .enable_monitoring()
        .unwrap_or(false)
        .then(|| group.join("mon_groups").join(id));
    Ok(Plan {
        group,
        lines,
        monitor,
    })
}

impl Groups {
    /// The container's resource control group: its `tasks` file's
    /// directory, or the group of its monitoring group.
    pub fn group(&self) -> Option<&Path> {
        let dir = self.tasks.first()?.parent()?;
        match dir.parent() {
            Some(mon) if mon.file_name().is_some_and(|n| n == "mon_groups") => mon.parent(),
            _ => Some(dir),
        }
    }
}

/// Writes schema lines into a group's `schemata` (`rt update
/// --l3-cache-schema/--mem-bw-schema`), one line per write.
pub fn write_schemata(group: &Path, lines: &[String]) -> Result<()> {
    let schemata = group.join("schemata");
    for line in lines {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .open(&schemata)
            .with_ctx(|| format!("intel RDT: open {}", schemata.display()))?;
        f.write_all(format!("{line}\n").as_bytes())
            .with_ctx(|| format!("intel RDT: write {line:?} to {}", schemata.display()))?;
    }
    Ok(())
}

impl Plan {
    /// Makes the groups (recording each directory made in `groups` as it
    /// is made, for the undo) and writes the schemata. An existing
    /// `closID` group is joined as it is: rt does not rewrite another
    /// container's schemata, it checks that they are the ones asked for.
    pub fn make(&self, groups: &mut Groups) -> Result<()> {
        if mkdir(&self.group)? {
            groups.created.push(self.group.clone());
            let schemata = self.group.join("schemata");
            for line in &self.lines {
                // One line per write: the kernel parses each write alone,
                // and a refused line is named.
                let mut f = fs::OpenOptions::new()
                    .write(true)
                    .open(&schemata)
                    .with_ctx(|| format!("linux.intelRdt: open {}", schemata.display()))?;
                f.write_all(format!("{line}\n").as_bytes()).with_ctx(|| {
                    format!("linux.intelRdt: write {line:?} to {}", schemata.display())
                })?;
            }
        } else if !self.lines.is_empty() {
            let path = self.group.join("schemata");
            let have = fs::read_to_string(&path)
                .with_ctx(|| format!("linux.intelRdt: read {}", path.display()))?;
            for line in &self.lines {
                if !have.lines().any(|h| same_schema(h, line)) {
                    return Err(Error::InvalidField {
                        field: "linux.intelRdt".into(),
                        reason: format!(
                            "the existing group {} does not have the schema {line:?}",
                            self.group.display()
                        ),
                    });
                }
            }
        }
        groups.tasks = vec![self.group.join("tasks")];
        if let Some(mon) = &self.monitor {
            if mkdir(mon)? {
                groups.created.push(mon.clone());
            }
            // A task in a monitoring group is in its parent group too.
            groups.tasks = vec![mon.join("tasks")];
        }
        Ok(())
    }
}

/// Puts `pid` into the container's groups.
pub fn join(groups: &Groups, pid: i32) -> Result<()> {
    for tasks in &groups.tasks {
        fs::write(tasks, pid.to_string())
            .with_ctx(|| format!("linux.intelRdt: write pid {pid} to {}", tasks.display()))?;
    }
    Ok(())
}

/// Removes the groups rt made, innermost first (the kernel moves their
/// remaining tasks to the parent group).
pub fn remove(groups: &Groups) -> Result<()> {
    for dir in groups.created.iter().rev() {
        match fs::remove_dir(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e).with_ctx(|| format!("linux.intelRdt: remove {}", dir.display()))
            }
        }
    }
    Ok(())
}

/// Whether rt made the directory (false: it was there).
fn mkdir(dir: &Path) -> Result<bool> {
    match fs::create_dir(dir) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e).with_ctx(|| format!("linux.intelRdt: mkdir {}", dir.display())),
    }
}

/// Schema lines compared as the kernel prints them: no spaces, the
/// resource name in upper case ("L3:0=ff;1=ff").
fn same_schema(have: &str, want: &str) -> bool {
    let norm = |s: &str| -> String {
        s.chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_uppercase()
    };
    norm(have) == norm(want)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_group_of_the_recorded_tasks() {
        let g = |t: &str| Groups {
            tasks: vec![PathBuf::from(t)],
            created: vec![],
        };
        assert_eq!(
            g("/sys/fs/resctrl/web/tasks").group(),
            Some(Path::new("/sys/fs/resctrl/web"))
        );
        assert_eq!(
            g("/sys/fs/resctrl/web/mon_groups/c1/tasks").group(),
            Some(Path::new("/sys/fs/resctrl/web"))
        );
        assert_eq!(Groups::default().group(), None);
    }

    #[test]
    fn closid_and_lines_are_checked() {
        let rdt = |j: &str| -> LinuxIntelRdt { serde_json::from_str(j).unwrap() };
        assert!(validate(&rdt(r#"{"closID":"web"}"#)).is_ok());
        for bad in [
            r#"{"closID":"../x"}"#,
            r#"{"closID":""}"#,
            r#"{"closID":".."}"#,
        ] {
            assert!(validate(&rdt(bad)).unwrap_err().contains("closID"), "{bad}");
        }
        let e = validate(&rdt(r#"{"schemata":["L3:0=f\nMB:0=50"]}"#)).unwrap_err();
        assert!(e.contains("linux.intelRdt.schemata"), "{e}");
    }

    #[test]
    fn schemata_compare_as_the_kernel_prints_them() {
        assert!(same_schema("L3:0=ff;1=ff", "l3:0=ff; 1=ff"));
        assert!(!same_schema("L3:0=ff;1=ff", "L3:0=f0;1=ff"));
    }
}
