//! containerd's `uidmap=`/`gidmap=` options of an overlay root (what its
//! overlay snapshotter gives a user-namespaced container, as
//! `CONTAINER:HOST:SIZE` ranges separated by commas): they are for the
//! mounter, not the kernel. Each lower layer is cloned as a mount
//! idmapped with those maps (a user namespace carries them) and the
//! overlay is made over the clones, which are detached once it holds
//! them; the upper layer stays as it is, as with containerd's runc shim.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::fcntl::{open, OFlag};
use nix::mount::{umount2, MntFlags};
use nix::sys::stat::Mode;
use oci_spec::runtime::{LinuxIdMapping, LinuxIdMappingBuilder};
use rt::sys::mount::{mount_setattr, move_mount, open_tree_clone, MountAttr, MOUNT_ATTR_IDMAP};

/// An overlay's options without `uidmap=`/`gidmap=`, and the maps they
/// gave (None when they gave none).
pub struct Split {
    pub options: Vec<String>,
    pub maps: Option<(Vec<LinuxIdMapping>, Vec<LinuxIdMapping>)>,
}

pub fn split(options: &[String]) -> Result<Split, String> {
    let (mut uid, mut gid) = (None, None);
    let mut rest = Vec::new();
    for o in options {
        if let Some(v) = o.strip_prefix("uidmap=") {
            uid = Some(parse(v).map_err(|e| format!("{o}: {e}"))?);
        } else if let Some(v) = o.strip_prefix("gidmap=") {
            gid = Some(parse(v).map_err(|e| format!("{o}: {e}"))?);
        } else {
            rest.push(o.clone());
        }
    }
    let maps = match (uid, gid) {
        (None, None) => None,
        (Some(u), Some(g)) => Some((u, g)),
        _ => return Err("uidmap= and gidmap= come together".into()),
    };
    Ok(Split {
        options: rest,
        maps,
    })
}

/// `CONTAINER:HOST:SIZE[,CONTAINER:HOST:SIZE...]`.
fn parse(v: &str) -> Result<Vec<LinuxIdMapping>, String> {
    v.split(',')
        .map(|range| {
            let n: Vec<u32> = range
                .split(':')
                .map(|x| x.parse::<u32>())
                .collect::<Result<_, _>>()
                .map_err(|_| format!("{range:?} is not CONTAINER:HOST:SIZE"))?;
            let [c, h, s] = n[..] else {
                return Err(format!("{range:?} is not CONTAINER:HOST:SIZE"));
            };
            LinuxIdMappingBuilder::default()
                .container_id(c)
                .host_id(h)
                .size(s)
                .build()
                .map_err(|e| e.to_string())
        })
        .collect()
}

/// The idmapped clones of an overlay's lower layers, mounted under a
/// directory of their own until the overlay holds them.
pub struct Lowers {
    dir: PathBuf,
    points: Vec<PathBuf>,
}

impl Lowers {
    /// Clones every `lowerdir=` layer of `options` under `dir` idmapped
    /// with `maps`; returns the options naming the clones instead.
    pub fn idmap(
        dir: &Path,
        options: &[String],
        maps: &(Vec<LinuxIdMapping>, Vec<LinuxIdMapping>),
    ) -> rt::Result<(Lowers, Vec<String>)> {
        let userns = rt::spawn::idmap::userns_with(&maps.0, &maps.1)?;
        let attr = MountAttr {
            attr_set: MOUNT_ATTR_IDMAP,
            userns_fd: rt::sys::fd::as_u64(std::os::fd::AsRawFd::as_raw_fd(&userns)),
            ..Default::default()
        };
        let sys = |context: String| move |source| rt::Error::Sys { context, source };
        std::fs::create_dir_all(dir).map_err(|source| rt::Error::Io {
            context: dir.display().to_string(),
            source,
        })?;
        let mut lowers = Lowers {
            dir: dir.to_path_buf(),
            points: Vec::new(),
        };
        let mut out = Vec::with_capacity(options.len());
        for o in options {
            let Some(list) = o.strip_prefix("lowerdir=") else {
                out.push(o.clone());
                continue;
            };
            let mut clones = Vec::new();
            for layer in list.split(':') {
                let point = dir.join(lowers.points.len().to_string());
                std::fs::create_dir(&point).map_err(|source| rt::Error::Io {
                    context: point.display().to_string(),
                    source,
                })?;
                let src = open(
                    layer,
                    OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(sys(format!("open the layer {layer}")))?;
                let tree =
                    open_tree_clone(src.as_fd(), false).map_err(sys(format!("clone {layer}")))?;
                mount_setattr(tree.as_fd(), false, &attr).map_err(sys(format!("idmap {layer}")))?;
                let to = open(
                    &point,
                    OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(sys(format!("open {}", point.display())))?;
                move_mount(tree.as_fd(), to.as_fd()).map_err(sys(format!("attach {layer}")))?;
                clones.push(point.display().to_string());
                lowers.points.push(point);
            }
            out.push(format!("lowerdir={}", clones.join(":")));
        }
        Ok((lowers, out))
    }
}

impl Drop for Lowers {
    /// The clones go once the overlay is made (it keeps what it needs),
    /// or when making it failed.
    fn drop(&mut self) {
        for p in &self.points {
            let _ = umount2(p, MntFlags::MNT_DETACH);
            let _ = std::fs::remove_dir(p);
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_maps_leave_the_options_for_the_mounter() {
        let o = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let s = split(&o(&[
            "index=off",
            "lowerdir=/a:/b",
            "uidmap=0:65536:65536",
            "gidmap=0:65536:1,1:70000:10",
        ]))
        .unwrap();
        assert_eq!(s.options, o(&["index=off", "lowerdir=/a:/b"]));
        let (u, g) = s.maps.unwrap();
        assert_eq!(
            (u[0].container_id(), u[0].host_id(), u[0].size()),
            (0, 65536, 65536)
        );
        assert_eq!(g.len(), 2);
        assert_eq!(
            (g[1].container_id(), g[1].host_id(), g[1].size()),
            (1, 70000, 10)
        );
        assert!(split(&o(&["lowerdir=/a"])).unwrap().maps.is_none());
        let err = split(&o(&["uidmap=0:1"])).err().unwrap();
        assert!(err.contains("uidmap=0:1"), "{err}");
        assert!(split(&o(&["uidmap=0:1:1"])).is_err(), "gidmap= missing");
    }
}
