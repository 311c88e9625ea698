//! Checkpoint and restore through CRIU: `rt checkpoint` dumps a running
//! container's processes into an image directory, `rt restore` makes a
//! container of them again. What CRIU is asked is planned as data first
//! (`plan.rs`), from the container's recorded state or the bundle and
//! the flags; `rpc.rs` drives `criu swrk` with it; `restore.rs` makes
//! the restored container (state, cgroup, its root where CRIU expects
//! it) and undoes it all when CRIU fails.
//!
//! Before anything is made, CRIU is asked its version and to check the
//! kernel: a CRIU that is missing or cannot start here is one error
//! ([`Error::CriuUnavailable`]) with CRIU's reason, and nothing changed.

pub mod plan;
mod restore;
pub mod rpc;

use std::fs;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;
use serde::{Deserialize, Serialize};

use crate::container::{Container, Op};
use crate::error::{Context, Error, Result};
use crate::state::{validate_id, Root};

pub use plan::{CgroupsMode, Common, DumpFlags, RestoreFlags};
pub use restore::{restore, restore_with_shim, RestoreOptions, RestoreStdio, Restored};
pub use rpc::Criu;

/// The file in the image directory that names the init's stdio as it
/// was (`pipe:[123]`, `/dev/null`), so the restore can hand CRIU new
/// pipes in their place. runc writes the same file.
pub const DESCRIPTORS_FILE: &str = "descriptors.json";

/// `rt checkpoint`'s options.
#[derive(Debug, Clone)]
pub struct CheckpointOptions {
    /// `--criu`: the CRIU binary (default `criu` from PATH).
    pub criu: Option<PathBuf>,
    /// `--image-path` (runc's default: `checkpoint` in the current directory).
    pub image_path: PathBuf,
    /// `--work-path` (default: the image path): CRIU's log goes there.
    pub work_path: Option<PathBuf>,
    pub flags: DumpFlags,
}

/// The init's stdio as it was dumped.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Descriptors(pub Vec<String>);

/// Checkpoints the container `id`. Unless `--leave-running` (or
/// `--pre-dump`), the container is gone afterwards, as with runc: its
/// processes dumped and stopped, its cgroup and state removed.
pub fn checkpoint(root: &Root, id: &str, opts: &CheckpointOptions) -> Result<()> {
    validate_id(id)?;
    refuse_lazy_pages(&opts.flags.common)?;
    if let Some(parent) = &opts.flags.parent_path {
        check_parent(&opts.image_path, parent)?;
    }
    let locked = root.lock(id)?;
    let c = Container::from_locked(&locked)?;
    c.status().require(Op::Checkpoint, id)?;
    let spec = &c.state.config;
    let joined = plan::joined_namespaces(spec)?;
    let criu = Criu::new(opts.criu.as_deref());
    let version = criu.usable()?;
    log::debug!("CRIU {version}");
    let f = &opts.flags;
    if (f.pre_dump || f.parent_path.is_some()) && !criu.has_feature(false, true)? {
        return Err(Error::HostLacks(format!(
            "--pre-dump/--parent-path: CRIU {version} cannot track memory changes on this kernel (no soft-dirty bits)"
        )));
    }
    let pid = c.state.pid;
    let facts = plan::DumpFacts {
        masked_files: masked_files(spec, pid),
        joined: joined
            .iter()
            .map(|(typ, path)| {
                let ino = fs::metadata(path)
                    .with_ctx(|| format!("namespace {}", path.display()))?
                    .ino();
                Ok((*typ, ino))
            })
            .collect::<Result<_>>()?,
        cgroup_dir: c.state.cgroup.as_ref().map(|cg| cg.dir.clone()),
        resolved: resolved_binds(spec, &c.state.bundle, &c.state.rootfs)?,
    };
    let plan = plan::dump(spec, &c.state.bundle, &c.state.rootfs, pid, f, &facts)?;

    let mut made = Made::default();
    let result = dump(&criu, &plan, opts, pid, &mut made);
    if let Err(e) = result {
        return Err(made.undo(e));
    }
    if plan.leave_running {
        return Ok(());
    }
    // CRIU stopped the processes: the container is gone, as runc leaves it.
    drop(locked);
    crate::container::delete(root, id, true)
}

/// Lazy migration (`--lazy-pages`, with a page server and CRIU's
/// lazy-pages daemon) has not been made to work yet: refused, not
/// half-done (runc's checkpoint.bats timed out on it in the VM).
pub(crate) fn refuse_lazy_pages(c: &Common) -> Result<()> {
    if c.lazy_pages {
        return Err(Error::Unsupported("--lazy-pages".into()));
    }
    Ok(())
}

/// `--parent-path` names an earlier (pre-)dump relative to the image
/// directory, as CRIU reads it: an absolute path, or one that is not a
/// directory there, is refused before anything is asked of CRIU.
fn check_parent(images: &Path, parent: &Path) -> Result<()> {
    let bad = |reason: String| Error::InvalidArgument {
        arg: format!("--parent-path {}", parent.display()),
        reason,
    };
    if parent.is_absolute() {
        return Err(bad("must be relative to --image-path".into()));
    }
    // As CRIU will find it: the image directory need not exist yet, so
    // `..` is taken lexically (runc joins the two the same way), from the
    // current directory when the image path is relative.
    let joined = std::path::absolute(images.join(parent))
        .map_err(|e| bad(format!("{}: {e}", images.display())))?;
    let there = crate::config::mount_plan::lexical_clean(&joined);
    match fs::metadata(&there) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(bad(format!("{} is not a directory", there.display()))),
        Err(e) => Err(bad(format!("{}: {e}", there.display()))),
    }
}

/// The directories a checkpoint made, removed again if it fails.
#[derive(Default)]
struct Made {
    dirs: Vec<PathBuf>,
}

impl Made {
    fn undo(self, cause: Error) -> Error {
        let mut failed = Vec::new();
        for d in self.dirs.iter().rev() {
            if let Err(e) = fs::remove_dir_all(d) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    failed.push(format!("remove {}: {e}", d.display()));
                }
            }
        }
        Error::after_cleanup(cause, failed)
    }
}

fn dump(
    criu: &Criu,
    plan: &plan::DumpPlan,
    opts: &CheckpointOptions,
    pid: i32,
    made: &mut Made,
) -> Result<()> {
    let images = open_dir(&opts.image_path, "--image-path", made)?;
    let work_path = opts.work_path.as_deref().unwrap_or(&opts.image_path);
    let work = open_dir(work_path, "--work-path", made)?;
    let descriptors = Descriptors(
        (0..3)
            .map(|fd| {
                fs::read_link(format!("/proc/{pid}/fd/{fd}"))
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            })
            .collect(),
    );
    let data = serde_json::to_vec(&descriptors).map_err(|source| Error::Json {
        what: "encode descriptors".into(),
        source,
    })?;
    crate::state::write_atomic(&opts.image_path.join(DESCRIPTORS_FILE), &data, 0o600)?;
    let req = rpc::request(
        plan.request_type(),
        Some(plan.to_opts(images.as_raw_fd(), work.as_raw_fd())),
    );
    criu.call(req, &mut |_| Ok(()))
        .map_err(|e| with_log(e, &work_path.join(plan.log_file)))?;
    Ok(())
}

/// A failed CRIU request, with the first error of its log and where the
/// log is (when it is kept).
pub(crate) fn with_log(e: Error, log: &Path) -> Error {
    match e {
        Error::Criu { request, reason } => {
            let first = fs::read_to_string(log)
                .ok()
                .and_then(|l| rpc::first_error(&l));
            let reason = match first {
                Some(line) if !reason.contains(&line) => {
                    format!("{line} ({reason}; log {})", log.display())
                }
                _ => format!("{reason} (log {})", log.display()),
            };
            Error::Criu { request, reason }
        }
        e => e,
    }
}

/// Opens `path` as a directory, making it (0700) if it does not exist;
/// what it made is recorded in `made`.
fn open_dir(path: &Path, flag: &str, made: &mut Made) -> Result<OwnedFd> {
    let mut missing = Vec::new();
    let mut p = Some(path);
    while let Some(d) = p.filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        missing.push(d.to_path_buf());
        p = d.parent();
    }
    if let Some(top) = missing.last() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
            .with_ctx(|| format!("{flag} {}", path.display()))?;
        made.dirs.push(top.clone());
    }
    open(
        path,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_ctx(|| format!("{flag} {}", path.display()))
}

/// The bind destinations that resolve elsewhere in the root (through a
/// symlink), each with where it resolves, read from the root as the
/// mounts were made (inside it: a symlink never leads out).
fn resolved_binds(
    spec: &oci_spec::runtime::Spec,
    bundle: &Path,
    rootfs: &Path,
) -> Result<Vec<(String, String)>> {
    let root = open(
        rootfs,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_ctx(|| format!("open the container's root {}", rootfs.display()))?;
    let mut out = Vec::new();
    for (dest, _) in plan::bind_mounts(spec, bundle, rootfs)? {
        let at = crate::rootfs::resolve_in_root(root.as_fd(), Path::new(&dest))?;
        let at = at.display().to_string();
        if at != dest {
            out.push((dest, at));
        }
    }
    Ok(out)
}

/// The masked paths of the config that are files in the running
/// container (each a bind of /dev/null there).
fn masked_files(spec: &oci_spec::runtime::Spec, pid: i32) -> Vec<String> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.masked_paths().clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|m| {
            let inside = format!("/proc/{pid}/root/{}", m.trim_start_matches('/'));
            fs::metadata(inside).is_ok_and(|md| !md.is_dir())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relative_image_path_finds_its_parent_from_the_current_directory() {
        // A directory under the current one, named relatively: CRIU would
        // find `img/../pre` from there, and so must the check.
        let d = tempfile::tempdir_in(".").unwrap();
        let name = d.path().file_name().unwrap();
        fs::create_dir(d.path().join("pre")).unwrap();
        let images = Path::new(name).join("img");
        check_parent(&images, Path::new("../pre")).unwrap();
        let e = check_parent(&images, Path::new("../gone")).unwrap_err();
        assert!(e.to_string().contains("--parent-path ../gone"), "{e}");
    }
}
