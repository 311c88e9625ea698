//! `rt update`: a live container's resources changed in its cgroup.

use super::{Container, Op};
use crate::cgroup;
use crate::error::{Error, Result};
use crate::resctrl;
use crate::state::Root;

/// Changes a running container's resources (`rt update`). Resources whose
/// cgroup v2 controller is missing are refused naming the controller, and
/// what cgroup v2 cannot do is refused naming the field: never a silent
/// no-op. Device rules cannot be changed on a live container.
pub fn update(root: &Root, id: &str, r: &oci_spec::runtime::LinuxResources) -> Result<()> {
    let locked = root.lock(id)?;
    let c = Container::from_locked(&locked)?;
    c.status().require(Op::Update, id)?;
    if r.devices().as_ref().is_some_and(|d| !d.is_empty()) {
        return Err(Error::Unsupported(
            "update of linux.resources.devices on a live container".into(),
        ));
    }
    let mount = cgroup::find_mount()?;
    let mut writes = cgroup::check_resources(r, &mount)?;
    let cg = c
        .state
        .cgroup
        .as_ref()
        .ok_or_else(|| Error::InvalidState(format!("container {id} has no cgroup")))?;
    if let Ok(current) = std::fs::read_to_string(cg.dir.join("cpu.max")) {
        cgroup::resources::keep_unchanged_cpu_max(r, &current, &mut writes);
    }
    let check = r
        .memory()
        .as_ref()
        .and_then(|m| m.check_before_update())
        .unwrap_or(false);
    if check {
        cgroup::resources::check_memory_usage(&cg.dir, &writes)?;
    }
    if let Some(unit) = &cg.unit {
        // systemd first, so that it does not undo the files on a reload.
        let sd = cgroup::systemd::Systemd::connect()?;
        sd.set_properties(unit, cgroup::systemd::properties(&writes))?;
    }
    cgroup::resources::apply(&mount, &cg.dir, &writes)
}

/// Writes Intel RDT schema lines ("L3:0=ff", "MB:0=50") into a running
/// container's resctrl group (`rt update --l3-cache-schema/--mem-bw-schema`).
/// A host without resctrl, or a container made without `linux.intelRdt`,
/// is refused in one line.
pub fn update_intel_rdt(root: &Root, id: &str, lines: &[String]) -> Result<()> {
    for l in lines {
        if l.contains('\n') {
            return Err(Error::InvalidArgument {
                arg: format!("intel RDT schema {l:?}"),
                reason: "one schema per line, without line breaks".into(),
            });
        }
    }
    let locked = root.lock(id)?;
    let c = Container::from_locked(&locked)?;
    c.status().require(Op::Update, id)?;
    resctrl::check_mounted("update of the Intel RDT schemata")?;
    let group = c
        .state
        .resctrl
        .as_ref()
        .and_then(|g| g.group())
        .ok_or_else(|| {
            Error::InvalidState(format!(
                "container {id} has no Intel RDT group (it was created without linux.intelRdt)"
            ))
        })?;
    resctrl::write_schemata(group, lines)
}
