//! Idmapped bind mounts (`mounts[].uidMappings/gidMappings`, the `idmap`
//! and `ridmap` options): which mounts need one, and the user namespace
//! that carries each mapping. The namespaces are made by rt before the
//! clone, where /proc/<pid> names the helper process for sure; the init
//! gets their descriptors and attaches them with mount_setattr.

use std::os::fd::OwnedFd;

use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;
use oci_spec::runtime::{LinuxIdMapping, Mount, Spec};

use crate::error::{Context, Error, Result};
use crate::mount_options::{Idmap, MountOptions};

/// An idmapped mount the init must make: the mount's index in
/// `spec.mounts`, the user namespace with its mapping, and whether the
/// mapping applies to the submounts of an rbind too.
#[derive(Debug)]
pub struct IdmappedMount {
    pub index: usize,
    pub userns: OwnedFd,
    pub recursive: bool,
}

/// What an idmapped mount maps, and whether through its submounts.
struct Mapping<'a> {
    uid: &'a [LinuxIdMapping],
    gid: &'a [LinuxIdMapping],
    recursive: bool,
}

/// The mappings of mount `m`, or None when it is not idmapped.
fn mappings<'a>(spec: &'a Spec, m: &'a Mount) -> std::result::Result<Option<Mapping<'a>>, String> {
    let opts = MountOptions::parse(m.options().as_deref().unwrap_or(&[]))?;
    let (uid, gid) = (m.uid_mappings().as_deref(), m.gid_mappings().as_deref());
    if opts.idmap == Idmap::None && uid.is_none() && gid.is_none() {
        return Ok(None);
    }
    let bind = m.typ().as_deref() == Some("bind") || opts.bind;
    if !bind {
        return Err("idmapped mounts are made of bind mounts only".into());
    }
    let recursive = opts.idmap == Idmap::Recursive;
    match (uid, gid) {
        (Some(uid), Some(gid)) if !uid.is_empty() && !gid.is_empty() => Ok(Some(Mapping {
            uid,
            gid,
            recursive,
        })),
        (None, None) => {
            // `idmap` alone: the container's own user namespace mapping.
            let linux = spec.linux().as_ref();
            let u = linux.and_then(|l| l.uid_mappings().as_deref());
            let g = linux.and_then(|l| l.gid_mappings().as_deref());
            match (u, g) {
                (Some(uid), Some(gid)) if !uid.is_empty() && !gid.is_empty() => Ok(Some(Mapping {
                    uid,
                    gid,
                    recursive,
                })),
                _ => {
                    Err("idmap needs uidMappings and gidMappings, on the mount or in linux".into())
                }
            }
        }
        _ => Err("an idmapped mount needs both uidMappings and gidMappings".into()),
    }
}

/// Checks every mount's idmapping at config time.
pub fn check(spec: &Spec) -> std::result::Result<(), String> {
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        mappings(spec, m).map_err(|e| format!("mounts[{i}]: {e}"))?;
    }
    Ok(())
}

/// Makes a user namespace for every idmapped mount of the config.
pub fn prepare(spec: &Spec) -> Result<Vec<IdmappedMount>> {
    let mut out = Vec::new();
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        if let Some(map) =
            mappings(spec, m).map_err(|e| Error::Invalid(format!("mounts[{i}]: {e}")))?
        {
            let userns = userns_with(map.uid, map.gid)
                .map_err(|e| Error::Invalid(format!("mounts[{i}]: idmap: {e}")))?;
            out.push(IdmappedMount {
                index: i,
                userns,
                recursive: map.recursive,
            });
        }
    }
    Ok(out)
}

/// A user namespace with these mappings, held by its descriptor: a
/// helper process makes it, rt writes the maps, opens the namespace, and
/// lets the helper exit.
fn userns_with(uid: &[LinuxIdMapping], gid: &[LinuxIdMapping]) -> Result<OwnedFd> {
    let (hold_r, hold_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).ctx("pipe")?;
    let hold_w_raw = std::os::fd::AsRawFd::as_raw_fd(&hold_w);
    let helper = crate::process::clone_into(libc::CLONE_NEWUSER as u64, None, move || {
        // SAFETY: the helper's copy of rt's end, closed once so that rt
        // dropping its own is the EOF the helper waits for; the helper
        // never touches `hold_w` (it leaves with _exit).
        unsafe { libc::close(hold_w_raw) };
        let mut b = [0u8; 1];
        let _ = nix::unistd::read(&hold_r, &mut b);
        // SAFETY: _exit ends the helper without running rt's destructors.
        unsafe { libc::_exit(0) }
    })?;
    let result = (|| {
        crate::process::write_map(helper.pid, "uid_map", uid)?;
        crate::process::write_map(helper.pid, "gid_map", gid)?;
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
