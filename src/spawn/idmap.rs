//! Idmapped bind mounts (`mounts[].uidMappings/gidMappings`, the `idmap`
//! and `ridmap` options): the user namespace that carries each mapping
//! (which mounts need one is the mount plan's, `config/mount_plan.rs`).
//! The namespaces are made by rt before the clone, where /proc/<pid>
//! names the helper process for sure; each is held by its mount's entry,
//! and the init attaches it with mount_setattr.

use std::os::fd::OwnedFd;

use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;
use oci_spec::runtime::LinuxIdMapping;

use crate::config::mount_plan::MountPlan;
use crate::error::{Context, Result};

/// Makes a user namespace for every idmapped mount of the plan, held by
/// the mount's entry.
pub fn prepare(plan: &mut MountPlan) -> Result<()> {
    for (i, bind) in plan.binds_mut() {
        let Some(map) = &mut bind.idmap else { continue };
        let userns = match &map.joined_userns {
            Some(path) => open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
                .with_ctx(|| format!("open user namespace {}", path.display())),
            None => userns_with(&map.uid, &map.gid),
        }
        .map_err(|e| e.in_field("idmap").in_field(format!("mounts[{i}]")))?;
        map.userns = Some(userns);
    }
    Ok(())
}

/// A user namespace with these mappings, held by its descriptor: a
/// helper process makes it, rt writes the maps, opens the namespace, and
/// lets the helper exit. (containerd-shim-rt-v2 idmaps an overlay's lower
/// layers with one.)
pub fn userns_with(uid: &[LinuxIdMapping], gid: &[LinuxIdMapping]) -> Result<OwnedFd> {
    let (hold_r, hold_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).ctx("pipe")?;
    let hold_w_raw = std::os::fd::AsRawFd::as_raw_fd(&hold_w);
    // Rootless, the helper stays dumpable so that rt can write its maps;
    // it runs nothing but a read and _exit.
    let dumpable = crate::rootless::detect().is_rootless();
    let helper = crate::spawn::clone_into(libc::CLONE_NEWUSER as u64, None, dumpable, move || {
        // The helper's copy of rt's end, closed so that rt dropping its
        // own is the EOF the helper waits for; the helper never touches
        // `hold_w` (it leaves with _exit).
        crate::sys::fd::close_in_child(hold_w_raw);
        let mut b = [0u8; 1];
        let _ = nix::unistd::read(&hold_r, &mut b);
        crate::sys::process::exit_now(0)
    })?;
    let result = (|| {
        crate::spawn::write_maps(helper.pid, uid, gid)?;
        open(
            format!("/proc/{}/ns/user", helper.pid).as_str(),
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .ctx("open the idmap user namespace")
    })();
    drop(hold_w);
    let _ = nix::sys::wait::waitpid(helper.pid, None);
    result
}
