//! Bind mounts of a container with a user namespace, made ready by rt
//! with its own rights, so that a source only rt can reach works, and an
//! idmap needs no privilege over the host's file system from inside the
//! container (creating an idmapped mount takes CAP_SYS_ADMIN over the
//! source's file system, which the init in its user namespace lacks).
//! A source outside the root is opened and cloned (open_tree) before the
//! clone, idmapped there when asked. An idmapped source inside the root
//! may be made by an earlier mount of the container, which only the
//! init's mount namespace has: rt clones and idmaps it when the init
//! reaches that mount and asks, from a short-lived helper that joins the
//! init's mount namespace (`clone_in_init_ns`). The init attaches each
//! tree with move_mount.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use crate::config::mount_plan::{within_root, Bind, MountPlan};
use crate::error::{Context, Error, Result};
use crate::spawn::channel::Channel;
use crate::sys::mount::{self, MountAttr};

/// An idmapped bind whose source lies inside the root, for rt to clone in
/// the init's mount namespace when the init asks for mount `index`.
#[derive(Debug)]
pub struct InRootTree {
    pub index: usize,
    /// The source as a path in the container.
    pub source: PathBuf,
    /// `rbind`: the submounts too.
    pub recursive: bool,
    /// `ridmap`: the submounts idmapped too.
    pub recursive_idmap: bool,
    /// The user namespace that carries the mapping (taken from the plan's
    /// entry: the init does not idmap this one).
    pub userns: OwnedFd,
}

/// Every bind mount of the plan with a source outside the root cloned as
/// rt sees its source, idmapped with its entry's user namespace where it
/// has one; the tree is held by the entry. A source inside the root is
/// left to the init, which binds it in order; an idmapped one is marked
/// `tree_from_rt` and returned, for rt to clone when the init asks.
pub fn prepare(plan: &mut MountPlan, rootfs: &Path) -> Result<Vec<InRootTree>> {
    let mut in_root = Vec::new();
    for (i, bind) in plan.binds_mut() {
        if bind.source_in_root {
            if let Some(req) = in_root_tree(i, bind, rootfs) {
                in_root.push(req);
            }
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
            idmap(&tree, userns.0, userns.1).with_ctx(|| at("idmap the bind mount of"))?;
        }
        bind.tree = Some(tree);
    }
    Ok(in_root)
}

/// An idmapped bind of a source inside the root becomes rt's to clone
/// (`tree_from_rt`), its user namespace moved to the request; any other
/// bind inside the root stays the init's.
fn in_root_tree(index: usize, bind: &mut Bind, rootfs: &Path) -> Option<InRootTree> {
    let map = bind.idmap.as_mut()?;
    let source = within_root(rootfs, &bind.source)?;
    let userns = map.userns.take()?;
    bind.tree_from_rt = true;
    Some(InRootTree {
        index,
        source,
        recursive: bind.recursive,
        recursive_idmap: map.recursive,
        userns,
    })
}

fn idmap(tree: &OwnedFd, userns: &OwnedFd, recursive: bool) -> nix::Result<()> {
    let attr = MountAttr {
        attr_set: mount::MOUNT_ATTR_IDMAP,
        userns_fd: crate::sys::fd::as_u64(userns.as_raw_fd()),
        ..Default::default()
    };
    mount::mount_setattr(tree, recursive, &attr)
}

/// The helper's answer.
#[derive(Debug, Serialize, Deserialize)]
enum Answer {
    /// The tree, attached.
    Tree,
    Failed {
        errno: Option<i32>,
        error: String,
    },
}

/// The idmapped tree of `req`'s source as the init's mount namespace has
/// it now: a helper process joins that namespace (setns, which also puts
/// its root and cwd at the namespace's root), opens the root `rootfs`,
/// resolves the source in it (RESOLVE_IN_ROOT: a symlink never leads out
/// of the root), clones it (open_tree), idmaps the clone with rt's
/// rights and sends it back (SCM_RIGHTS); it leaves at once.
/// `init` must be rt's unreaped child, so that its pid names it.
pub fn clone_in_init_ns(init: Pid, rootfs: &Path, req: &InRootTree) -> Result<OwnedFd> {
    let what = format!("mounts[{}]", req.index);
    let mntns = open(
        format!("/proc/{init}/ns/mnt").as_str(),
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_ctx(|| format!("{what}: open the init's mount namespace"))?;
    let (ours, theirs) = Channel::pair()?;
    let ours_raw = ours.as_raw_fd();
    let rel = req
        .source
        .strip_prefix("/")
        .unwrap_or(&req.source)
        .to_path_buf();
    let helper = crate::spawn::clone_into(0, None, false, move || {
        // The helper keeps only its own end, so that a helper that dies
        // is EOF for rt; it leaves with _exit and never drops `ours`.
        crate::sys::fd::close_in_child(ours_raw);
        let made = (|| -> Result<OwnedFd> {
            nix::sched::setns(mntns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNS)
                .ctx("join the init's mount namespace")?;
            let root = open(
                rootfs,
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .with_ctx(|| format!("open root {}", rootfs.display()))?;
            let rel = if rel.as_os_str().is_empty() {
                ".".into()
            } else {
                rel.to_string_lossy().into_owned()
            };
            let src = crate::sys::openat2::openat2_beneath(
                root.as_fd(),
                &rel,
                libc::O_PATH,
                libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS,
            )
            .with_ctx(|| format!("open bind source /{rel} in the container root"))?;
            let tree = mount::open_tree_clone(&src, req.recursive)
                .with_ctx(|| format!("clone the mount of bind source /{rel}"))?;
            idmap(&tree, &req.userns, req.recursive_idmap)
                .with_ctx(|| format!("idmap the bind mount of /{rel}"))?;
            Ok(tree)
        })();
        let code = match made {
            Ok(tree) => i32::from(
                theirs
                    .send_with_fd(&Answer::Tree, Some(tree.as_fd()))
                    .is_err(),
            ),
            Err(e) => {
                let _ = theirs.send(&Answer::Failed {
                    errno: e.errno().map(|n| n as i32),
                    error: e.to_string(),
                });
                1
            }
        };
        crate::sys::process::exit_now(code)
    })?;
    let got = ours.recv_with_fd::<Answer>();
    let _ = nix::sys::wait::waitpid(helper.pid, None);
    match got? {
        Some((Answer::Tree, Some(tree))) => Ok(tree),
        Some((Answer::Failed { errno, error }, _)) => Err(match errno {
            Some(n) => Error::Sys {
                context: format!("{what}: {error}"),
                source: nix::errno::Errno::from_raw(n),
            },
            None => Error::Init(format!("{what}: {error}")),
        }),
        _ => Err(Error::Protocol(format!(
            "{what}: the helper cloning the idmapped bind source in the init's mount namespace exited without an answer"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::mount_plan::Idmapping;

    fn bind(source: &str, in_root: bool, idmapped: bool) -> Bind {
        Bind {
            source: source.into(),
            recursive: true,
            remount_flags: nix::mount::MsFlags::empty(),
            cleared_flags: nix::mount::MsFlags::empty(),
            source_in_root: in_root,
            idmap: idmapped.then(|| Idmapping {
                uid: vec![],
                gid: vec![],
                recursive: false,
                joined_userns: None,
                // Any descriptor stands for the namespace here.
                userns: Some(std::fs::File::open("/dev/null").unwrap().into()),
            }),
            tree: None,
            tree_from_rt: false,
        }
    }

    #[test]
    fn only_an_idmapped_bind_inside_the_root_is_left_to_rt_in_the_init_ns() {
        let root = Path::new("/b/rootfs");
        let mut b = bind("/b/rootfs/mnt/x", true, true);
        let req = in_root_tree(4, &mut b, root).expect("an idmapped in-root source is rt's");
        assert_eq!(req.index, 4);
        assert_eq!(req.source, Path::new("/mnt/x"));
        assert!(req.recursive);
        assert!(b.tree_from_rt);
        assert!(
            b.idmap.as_ref().unwrap().userns.is_none(),
            "the user namespace moved to the request: the init does not idmap it"
        );
        // Bound by the init itself, as before.
        let mut plain = bind("/b/rootfs/mnt/x", true, false);
        assert!(in_root_tree(5, &mut plain, root).is_none());
        assert!(!plain.tree_from_rt);
    }
}
