//! Bind mounts of a container with a user namespace, made ready by rt
//! before the clone: the source opened and cloned (open_tree) with rt's
//! own rights, idmapped there when asked, so that a source only rt can
//! reach works, and an idmap needs no privilege over the host's file
//! system from inside the container. The init attaches each tree with
//! move_mount.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;
use oci_spec::runtime::Spec;

use crate::config::mount_options::MountOptions;
use crate::error::{Context, Error, Result};
use crate::spawn::idmap::IdmappedMount;
use crate::sys::mount::{self, MountAttr};

/// A detached mount tree for `mounts[index]`.
#[derive(Debug)]
pub struct PreparedBind {
    pub index: usize,
    pub tree: OwnedFd,
}

/// Every bind mount of `spec`, cloned as rt sees its source (relative
/// sources are in `bundle`), idmapped with `idmaps`' namespace where the
/// mount has one.
/// A source inside `rootfs` is left to the init: it may be made by an
/// earlier mount of the container, which only the init's mount namespace
/// has.
pub fn prepare(
    spec: &Spec,
    bundle: &Path,
    rootfs: &Path,
    idmaps: &[IdmappedMount],
) -> Result<Vec<PreparedBind>> {
    let mut out = Vec::new();
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        let opts =
            MountOptions::parse(m.options().as_deref().unwrap_or(&[])).map_err(Error::Invalid)?;
        if !(m.typ().as_deref() == Some("bind") || opts.bind) {
            continue;
        }
        let Some(src) = m.source() else { continue };
        let src = if src.is_absolute() {
            src.clone()
        } else {
            bundle.join(src)
        };
        if crate::config::in_root::within_root(rootfs, &src).is_some() {
            continue;
        }
        let at = |what: &str| format!("mounts[{i}]: {what} {}", src.display());
        let fd = open(&src, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
            .with_ctx(|| at("open bind source"))?;
        let tree = mount::open_tree_clone(&fd, opts.recursive_bind)
            .with_ctx(|| at("clone the mount of bind source"))?;
        if let Some(idm) = idmaps.iter().find(|x| x.index == i) {
            let attr = MountAttr {
                attr_set: mount::MOUNT_ATTR_IDMAP,
                userns_fd: idm.userns.as_raw_fd() as u64,
                ..Default::default()
            };
            mount::mount_setattr(&tree, idm.recursive, &attr)
                .with_ctx(|| at("idmap the bind mount of"))?;
        }
        out.push(PreparedBind { index: i, tree });
    }
    Ok(out)
}
