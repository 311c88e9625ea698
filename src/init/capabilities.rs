//! `process.capabilities`: the five capability sets, as the process plan
//! has them (`config::capabilities::plan`), applied with `caps`.

use caps::{CapSet, Capability as Cap, CapsHashSet};

use crate::config::capabilities::CapSets;
use crate::error::{Error, Result};

fn caps_err(what: &str, e: caps::errors::CapsError) -> Error {
    Error::InvalidField {
        field: "process.capabilities".into(),
        reason: format!("{what}: {e}"),
    }
}

/// Drops everything outside the bounding set. Done while still root, since
/// it needs CAP_SETPCAP.
pub fn drop_bounding(c: &CapSets) -> Result<()> {
    for cap in caps::all() {
        if !c.bounding.contains(&cap) && caps::has_cap(None, CapSet::Bounding, cap).unwrap_or(false)
        {
            caps::drop(None, CapSet::Bounding, cap)
                .map_err(|e| caps_err("drop from bounding set", e))?;
        }
    }
    Ok(())
}

/// Sets permitted, inheritable and effective exactly as given, then the
/// ambient set. Never raises inheritable or ambient beyond the config.
/// With `hold_admin`, CAP_SYS_ADMIN stays permitted and effective beyond
/// the config (to install a seccomp filter without no_new_privs), for
/// [`release_admin`] to drop right before the exec; returns whether it
/// was held.
pub fn apply(c: &CapSets, hold_admin: bool) -> Result<bool> {
    let mut permitted = c.permitted.clone();
    let mut effective = c.effective.clone();
    let hold = hold_admin && !effective.contains(&Cap::CAP_SYS_ADMIN);
    if hold {
        permitted.insert(Cap::CAP_SYS_ADMIN);
        effective.insert(Cap::CAP_SYS_ADMIN);
    }
    let inheritable = &c.inheritable;
    // capset never grows the permitted set. Only when it fails (not on
    // every create): name what rt itself lacks (a host whose bounding set
    // has no CAP_SYS_RESOURCE, and `docker run --privileged` asking for
    // every capability) instead of a bare EPERM.
    let why =
        |what: &str, e| lacking(&(&permitted | &effective)).unwrap_or_else(|| caps_err(what, e));
    // Effective must be a subset of permitted; order matters for capset.
    caps::set(None, CapSet::Effective, &(&effective & &permitted))
        .map_err(|e| why("set effective", e))?;
    caps::set(None, CapSet::Inheritable, inheritable).map_err(|e| why("set inheritable", e))?;
    caps::set(None, CapSet::Permitted, &permitted).map_err(|e| why("set permitted", e))?;
    caps::set(None, CapSet::Effective, &effective).map_err(|e| why("set effective", e))?;
    caps::clear(None, CapSet::Ambient).map_err(|e| caps_err("clear ambient", e))?;
    // Only those permitted and inheritable are planned (rt warned of the
    // others before the init, as runc does, and skips them).
    for cap in &c.ambient {
        caps::raise(None, CapSet::Ambient, *cap).map_err(|e| caps_err("raise ambient", e))?;
    }
    Ok(hold)
}

/// Without capabilities in the config: CAP_SYS_ADMIN made effective for
/// the seccomp filter if it is permitted and not already effective;
/// returns whether [`release_admin`] must drop it again.
pub fn raise_admin_for_seccomp() -> bool {
    let has = |set| caps::has_cap(None, set, Cap::CAP_SYS_ADMIN).unwrap_or(false);
    if has(CapSet::Effective) || !has(CapSet::Permitted) {
        return false;
    }
    caps::raise(None, CapSet::Effective, Cap::CAP_SYS_ADMIN).is_ok()
}

/// Drops the CAP_SYS_ADMIN held for the seccomp filter: the only syscalls
/// rt makes after the filter are these (capget, capset) and the exec.
/// `permitted` says whether the config keeps it permitted.
pub fn release_admin(permitted: bool) -> Result<()> {
    let fail = |e: caps::errors::CapsError| Error::InvalidField {
        field: "linux.seccomp".into(),
        reason: format!(
            "without noNewPrivileges rt installs the filter while it holds CAP_SYS_ADMIN \
                 and drops that capability afterwards, which the profile refuses (it must \
                 allow capget and capset): {e}"
        ),
    };
    caps::drop(None, CapSet::Effective, Cap::CAP_SYS_ADMIN).map_err(fail)?;
    if !permitted {
        caps::drop(None, CapSet::Permitted, Cap::CAP_SYS_ADMIN).map_err(fail)?;
    }
    Ok(())
}

/// The error for capabilities asked for that this process does not hold,
/// if any.
fn lacking(wanted: &CapsHashSet) -> Option<Error> {
    let held = caps::read(None, CapSet::Permitted).ok()?;
    let mut missing: Vec<String> = wanted.difference(&held).map(|c| c.to_string()).collect();
    if missing.is_empty() {
        return None;
    }
    missing.sort();
    let them = if missing.len() == 1 { "it" } else { "them" };
    Some(Error::InvalidField {
        field: "process.capabilities".into(),
        reason: format!(
            "{} asked for, but rt itself does not have {them} \
             (its capability bounding set or user lacks {them})",
            missing.join(", "),
        ),
    })
}
