//! `rt checkpoint` and the flags it shares with `rt restore`: runc's
//! flags turned into the library's options (every value checked, one
//! line naming the flag when it is bad).

use std::path::{Path, PathBuf};

use anyhow::Result;
use rt::checkpoint::{plan, CgroupsMode, CheckpointOptions, Common, DumpFlags};
use rt::state::Root;

use crate::cli::{CheckpointArgs, CriuArgs};

/// runc's default image directory: `checkpoint` in the current directory.
pub const DEFAULT_IMAGE_PATH: &str = "checkpoint";

/// The shared flags, checked.
pub fn common(a: &CriuArgs) -> Result<Common> {
    Ok(Common {
        tcp_established: a.tcp_established,
        ext_unix_sk: a.ext_unix_sk,
        shell_job: a.shell_job,
        file_locks: a.file_locks,
        auto_dedup: a.auto_dedup,
        lazy_pages: a.lazy_pages,
        cgroups_mode: CgroupsMode::parse(&a.manage_cgroups_mode)?,
        empty_ns: plan::parse_empty_ns(a.empty_ns.as_slice())?,
    })
}

/// An absolute image or work path (CRIU runs elsewhere).
pub fn absolute(p: &Path, flag: &str) -> Result<PathBuf> {
    std::path::absolute(p).map_err(|e| anyhow::anyhow!("{flag} {}: {e}", p.display()))
}

/// `--image-path` (default `./checkpoint`) and `--work-path`, absolute.
pub fn image_and_work_paths(a: &CriuArgs) -> Result<(PathBuf, Option<PathBuf>)> {
    let image = a
        .image_path
        .as_deref()
        .unwrap_or(Path::new(DEFAULT_IMAGE_PATH));
    let work = a
        .work_path
        .as_deref()
        .map(|p| absolute(p, "--work-path"))
        .transpose()?;
    Ok((absolute(image, "--image-path")?, work))
}

pub fn checkpoint(root: &Root, a: &CheckpointArgs, criu: Option<&Path>) -> Result<()> {
    let (image_path, work_path) = image_and_work_paths(&a.criu)?;
    let opts = CheckpointOptions {
        criu: criu.map(Path::to_path_buf),
        image_path,
        work_path,
        flags: DumpFlags {
            common: common(&a.criu)?,
            leave_running: a.leave_running,
            tcp_skip_in_flight: a.tcp_skip_in_flight,
            link_remap: a.link_remap,
            pre_dump: a.pre_dump,
            parent_path: a.parent_path.clone(),
            status_fd: (a.status_fd >= 0).then_some(a.status_fd),
            page_server: a
                .page_server
                .as_deref()
                .map(plan::parse_page_server)
                .transpose()?,
        },
    };
    rt::checkpoint::checkpoint(root, &a.id, &opts)?;
    Ok(())
}
