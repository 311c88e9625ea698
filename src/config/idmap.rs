//! Idmapped bind mounts in the config (`mounts[].uidMappings/gidMappings`,
//! the `idmap` and `ridmap` options): which mounts are idmapped, and with
//! which mapping.

use std::path::Path;

use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Mount, Spec};

use crate::config::mount_options::{Idmap, MountOptions};

/// What an idmapped mount maps, and whether through its submounts.
pub struct Mapping<'a> {
    pub uid: &'a [LinuxIdMapping],
    pub gid: &'a [LinuxIdMapping],
    pub recursive: bool,
    /// `idmap` alone in a container that joins a user namespace by path
    /// (no maps in the config): that namespace's own mapping, used as is
    /// (`uid` and `gid` are then empty).
    pub joined: Option<&'a Path>,
}

/// The mappings of mount `m` (whose options are `opts`), or None when it
/// is not idmapped. (Checked as the mount plan is made.)
pub fn mappings<'a>(
    spec: &'a Spec,
    m: &'a Mount,
    opts: &MountOptions,
) -> std::result::Result<Option<Mapping<'a>>, String> {
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
            joined: None,
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
                    joined: None,
                })),
                _ => match joined_user_namespace(spec) {
                    Some(path) => Ok(Some(Mapping {
                        uid: &[],
                        gid: &[],
                        recursive,
                        joined: Some(path),
                    })),
                    None => Err(
                        "idmap needs uidMappings and gidMappings, on the mount or in linux, or a user namespace joined by path"
                            .into(),
                    ),
                },
            }
        }
        _ => Err("an idmapped mount needs both uidMappings and gidMappings".into()),
    }
}

/// The user namespace the container joins by path, if it does.
fn joined_user_namespace(spec: &Spec) -> Option<&Path> {
    spec.linux()
        .as_ref()?
        .namespaces()
        .as_ref()?
        .iter()
        .find(|n| n.typ() == LinuxNamespaceType::User)?
        .path()
        .as_deref()
        .filter(|p| !p.as_os_str().is_empty())
}
