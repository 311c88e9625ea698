//! The container's AppArmor profile, applied as runc does: `exec <profile>`
//! written to the init's (or exec'd process's) own attr file, so the
//! kernel switches profiles at the execve. The file is opened through the
//! verified procfs handle early (before seccomp filters and the identity
//! switch), and written right before execve.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use crate::error::{Error, Result};
use crate::rootfs::procfs::ProcFs;

/// The profile to switch to at execve, and the attr file to say it in.
pub struct OnExec {
    file: OwnedFd,
    profile: String,
}

impl AsFd for OnExec {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

/// Opens `attr/apparmor/exec` of this thread (`attr/exec` on kernels
/// before 5.8, which have no per-LSM directory).
pub fn prepare(profile: &str) -> Result<OnExec> {
    let proc = ProcFs::open(Path::new("/proc"))?;
    let flags = libc::O_WRONLY | libc::O_CLOEXEC;
    let file = match proc.open_beneath("thread-self/attr/apparmor/exec", flags) {
        Ok(f) => f,
        Err(e) if e.errno() == Some(nix::errno::Errno::ENOENT) => {
            { proc.open_beneath("thread-self/attr/exec", flags) }
                .map_err(|e| e.in_field(format!("process.apparmorProfile {profile:?}")))?
        }
        Err(e) => return Err(e.in_field(format!("process.apparmorProfile {profile:?}"))),
    };
    Ok(OnExec {
        file,
        profile: profile.to_string(),
    })
}

impl OnExec {
    /// Tells the kernel to switch to the profile at the next execve.
    pub fn apply(&self) -> Result<()> {
        let msg = format!("exec {}", self.profile);
        match nix::unistd::write(&self.file, msg.as_bytes()) {
            Ok(n) if n == msg.len() => Ok(()),
            Ok(_) => Err(Error::InvalidField {
                field: format!("process.apparmorProfile {:?}", self.profile),
                reason: "short write to the attr file".into(),
            }),
            Err(e) => Err(Error::Sys {
                context: format!(
                    "the kernel refused it{}",
                    if e == nix::errno::Errno::ENOENT {
                        " (not loaded)"
                    } else {
                        ""
                    }
                ),
                source: e,
            }
            .in_field(format!("process.apparmorProfile {:?}", self.profile))),
        }
    }
}
