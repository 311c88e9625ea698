//! `process.rlimits`, set with setrlimit before the identity changes.

use oci_spec::runtime::PosixRlimitType;

use crate::error::{Error, Result};

pub(super) fn set_rlimit(typ: PosixRlimitType, soft: u64, hard: u64) -> Result<()> {
    let res = rlimit_resource(typ);
    if let Err(e) = crate::sys::process::setrlimit(res, soft, hard) {
        return Err(Error::Invalid(format!(
            "process.rlimits: set {typ:?} to soft {soft} hard {hard}: {e}{}",
            if e == nix::Error::EPERM {
                " (raising a hard limit needs CAP_SYS_RESOURCE)"
            } else {
                ""
            }
        )));
    }
    Ok(())
}

pub fn rlimit_resource(t: PosixRlimitType) -> libc::c_int {
    use PosixRlimitType::*;
    (match t {
        RlimitCpu => libc::RLIMIT_CPU,
        RlimitFsize => libc::RLIMIT_FSIZE,
        RlimitData => libc::RLIMIT_DATA,
        RlimitStack => libc::RLIMIT_STACK,
        RlimitCore => libc::RLIMIT_CORE,
        RlimitRss => libc::RLIMIT_RSS,
        RlimitNproc => libc::RLIMIT_NPROC,
        RlimitNofile => libc::RLIMIT_NOFILE,
        RlimitMemlock => libc::RLIMIT_MEMLOCK,
        RlimitAs => libc::RLIMIT_AS,
        RlimitLocks => libc::RLIMIT_LOCKS,
        RlimitSigpending => libc::RLIMIT_SIGPENDING,
        RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        RlimitNice => libc::RLIMIT_NICE,
        RlimitRtprio => libc::RLIMIT_RTPRIO,
        RlimitRttime => libc::RLIMIT_RTTIME,
    }) as libc::c_int
}
