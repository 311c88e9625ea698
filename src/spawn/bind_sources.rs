//! Bind mounts of a container with a user namespace, made ready by rt
//! before the clone: the source opened and cloned (open_tree) with rt's
//! own rights, idmapped there when asked, so that a source only rt can
//! reach works, and an idmap needs no privilege over the host's file
//! system from inside the container. The init attaches each tree with
//! move_mount.

use std::os::fd::AsRawFd;

use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;

use crate::config::mount_plan::MountPlan;
use crate::error::{Context, Result};
use crate::sys::mount::{self, MountAttr};

/// Every bind mount of the plan cloned as rt sees its source, idmapped
/// with its entry's user namespace where it has one; the tree is held by
/// the entry. A source inside the root is left to the init: it may be
/// made by an earlier mount of the container, which only the init's
/// mount namespace has.
pub fn prepare(plan: &mut MountPlan) -> Result<()> {
    for (i, bind) in plan.binds_mut() {
        if bind.source_in_root {
            continue;
        }
        let src = &bind.source;
        let at = |what: &str| format!("mounts[{i}]: {what} {}", src.display());
        let fd = open(src, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
            .with_ctx(|| at("open bind source"))?;
        let tree = mount::open_tree_clone(&fd, bind.recursive)
            .with_ctx(|| at("clone the mount of bind source"))?;
        if let Some(userns) = bind
            .idmap
            .as_ref()
            .and_then(|m| Some((m.userns.as_ref()?, m.recursive)))
        {
            let attr = MountAttr {
                attr_set: mount::MOUNT_ATTR_IDMAP,
                userns_fd: crate::sys::fd::as_u64(userns.0.as_raw_fd()),
                ..Default::default()
            };
            mount::mount_setattr(&tree, userns.1, &attr)
                .with_ctx(|| at("idmap the bind mount of"))?;
        }
        bind.tree = Some(tree);
    }
    Ok(())
}
