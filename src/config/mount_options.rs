//! Parsing the `options` of an OCI mount into mount(2) flags, propagation,
//! recursive attributes for mount_setattr(2), and filesystem data.

use nix::mount::MsFlags;

/// What one mount's options ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// Flags set on the mount.
    pub flags: MsFlags,
    /// Flags an option asked to clear (`rw`, `dev`, `exec`...), and no
    /// later option set again: a bind is remounted for these too.
    pub cleared: MsFlags,
    /// Propagation changes applied after mounting, in order.
    pub propagation: Vec<MsFlags>,
    /// Attributes applied recursively with mount_setattr: (set, clear).
    pub rec_attr_set: u64,
    pub rec_attr_clr: u64,
    /// Options passed to the filesystem as the data string.
    pub data: Vec<String>,
    /// `bind` or `rbind` was given.
    pub bind: bool,
    pub recursive_bind: bool,
    /// `idmap` or `ridmap` was given.
    pub idmap: Idmap,
    /// `tmpcopyup`: a tmpfs gets the content of the directory it covers.
    pub tmpcopyup: bool,
}

/// Whether a bind mount is idmapped, and whether its submounts are too.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Idmap {
    #[default]
    None,
    Single,
    Recursive,
}

// MOUNT_ATTR_* from linux/mount.h.
pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub const MOUNT_ATTR_NODEV: u64 = 0x4;
pub const MOUNT_ATTR_NOEXEC: u64 = 0x8;
pub const MOUNT_ATTR__ATIME: u64 = 0x70;
pub const MOUNT_ATTR_RELATIME: u64 = 0x0;
pub const MOUNT_ATTR_NOATIME: u64 = 0x10;
pub const MOUNT_ATTR_STRICTATIME: u64 = 0x20;
pub const MOUNT_ATTR_NODIRATIME: u64 = 0x80;
pub const MOUNT_ATTR_NOSYMFOLLOW: u64 = 0x200000;

/// What an option rt understands itself does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    /// mount(2) flags set and cleared.
    Flags {
        set: MsFlags,
        clear: MsFlags,
    },
    /// `bind` or `rbind`: MS_BIND (and MS_REC).
    Bind {
        recursive: bool,
    },
    /// A propagation change applied after mounting.
    Propagation(MsFlags),
    /// Attributes set and cleared recursively with mount_setattr.
    Recursive {
        set: u64,
        clear: u64,
    },
    Idmap(Idmap),
    Tmpcopyup,
}

const NONE: MsFlags = MsFlags::empty();
const MS_NOSYMFOLLOW: MsFlags = MsFlags::from_bits_retain(libc::MS_NOSYMFOLLOW);

const fn set(f: MsFlags) -> Effect {
    Effect::Flags {
        set: f,
        clear: NONE,
    }
}

const fn clear(f: MsFlags) -> Effect {
    Effect::Flags {
        set: NONE,
        clear: f,
    }
}

const fn rset(a: u64) -> Effect {
    Effect::Recursive { set: a, clear: 0 }
}

const fn rclear(a: u64) -> Effect {
    Effect::Recursive { set: 0, clear: a }
}

/// An atime mode, recursively: the atime bits cleared, then `mode` set.
const fn ratime(mode: u64) -> Effect {
    Effect::Recursive {
        set: mode,
        clear: MOUNT_ATTR__ATIME,
    }
}

/// Every option rt understands itself, and what it does: the parser looks
/// each option up here (anything else is passed to the filesystem as
/// data), and `rt features` lists these names, so the two cannot differ.
const OPTIONS: &[(&str, Effect)] = &[
    ("defaults", set(NONE)),
    ("ro", set(MsFlags::MS_RDONLY)),
    ("rw", clear(MsFlags::MS_RDONLY)),
    ("suid", clear(MsFlags::MS_NOSUID)),
    ("nosuid", set(MsFlags::MS_NOSUID)),
    ("dev", clear(MsFlags::MS_NODEV)),
    ("nodev", set(MsFlags::MS_NODEV)),
    ("exec", clear(MsFlags::MS_NOEXEC)),
    ("noexec", set(MsFlags::MS_NOEXEC)),
    ("sync", set(MsFlags::MS_SYNCHRONOUS)),
    ("async", clear(MsFlags::MS_SYNCHRONOUS)),
    ("dirsync", set(MsFlags::MS_DIRSYNC)),
    ("remount", set(MsFlags::MS_REMOUNT)),
    ("mand", set(MsFlags::MS_MANDLOCK)),
    ("nomand", clear(MsFlags::MS_MANDLOCK)),
    ("atime", clear(MsFlags::MS_NOATIME)),
    ("noatime", set(MsFlags::MS_NOATIME)),
    ("diratime", clear(MsFlags::MS_NODIRATIME)),
    ("nodiratime", set(MsFlags::MS_NODIRATIME)),
    ("relatime", set(MsFlags::MS_RELATIME)),
    ("norelatime", clear(MsFlags::MS_RELATIME)),
    ("strictatime", set(MsFlags::MS_STRICTATIME)),
    ("nostrictatime", clear(MsFlags::MS_STRICTATIME)),
    ("lazytime", set(MsFlags::MS_LAZYTIME)),
    ("nolazytime", clear(MsFlags::MS_LAZYTIME)),
    ("silent", set(MsFlags::MS_SILENT)),
    ("loud", clear(MsFlags::MS_SILENT)),
    ("nosymfollow", set(MS_NOSYMFOLLOW)),
    ("symfollow", clear(MS_NOSYMFOLLOW)),
    ("bind", Effect::Bind { recursive: false }),
    ("rbind", Effect::Bind { recursive: true }),
    ("shared", Effect::Propagation(MsFlags::MS_SHARED)),
    (
        "rshared",
        Effect::Propagation(MsFlags::MS_SHARED.union(MsFlags::MS_REC)),
    ),
    ("slave", Effect::Propagation(MsFlags::MS_SLAVE)),
    (
        "rslave",
        Effect::Propagation(MsFlags::MS_SLAVE.union(MsFlags::MS_REC)),
    ),
    ("private", Effect::Propagation(MsFlags::MS_PRIVATE)),
    (
        "rprivate",
        Effect::Propagation(MsFlags::MS_PRIVATE.union(MsFlags::MS_REC)),
    ),
    ("unbindable", Effect::Propagation(MsFlags::MS_UNBINDABLE)),
    (
        "runbindable",
        Effect::Propagation(MsFlags::MS_UNBINDABLE.union(MsFlags::MS_REC)),
    ),
    // Recursive attributes (mount_setattr with AT_RECURSIVE).
    ("rro", rset(MOUNT_ATTR_RDONLY)),
    ("rrw", rclear(MOUNT_ATTR_RDONLY)),
    ("rnosuid", rset(MOUNT_ATTR_NOSUID)),
    ("rsuid", rclear(MOUNT_ATTR_NOSUID)),
    ("rnodev", rset(MOUNT_ATTR_NODEV)),
    ("rdev", rclear(MOUNT_ATTR_NODEV)),
    ("rnoexec", rset(MOUNT_ATTR_NOEXEC)),
    ("rexec", rclear(MOUNT_ATTR_NOEXEC)),
    ("rnodiratime", rset(MOUNT_ATTR_NODIRATIME)),
    ("rdiratime", rclear(MOUNT_ATTR_NODIRATIME)),
    ("rrelatime", ratime(MOUNT_ATTR_RELATIME)),
    ("rnoatime", ratime(MOUNT_ATTR_NOATIME)),
    ("rstrictatime", ratime(MOUNT_ATTR_STRICTATIME)),
    // atime updates as the filesystem default: relatime.
    ("ratime", ratime(MOUNT_ATTR_RELATIME)),
    ("rnosymfollow", rset(MOUNT_ATTR_NOSYMFOLLOW)),
    ("rsymfollow", rclear(MOUNT_ATTR_NOSYMFOLLOW)),
    ("idmap", Effect::Idmap(Idmap::Single)),
    ("ridmap", Effect::Idmap(Idmap::Recursive)),
    ("tmpcopyup", Effect::Tmpcopyup),
];

fn effect(name: &str) -> Option<Effect> {
    OPTIONS.iter().find(|(n, _)| *n == name).map(|(_, e)| *e)
}

/// The names of every option rt understands itself, sorted: what
/// `rt features` lists.
pub fn names() -> Vec<&'static str> {
    let mut v: Vec<&str> = OPTIONS.iter().map(|(n, _)| *n).collect();
    v.sort_unstable();
    v
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            flags: MsFlags::empty(),
            cleared: MsFlags::empty(),
            propagation: Vec::new(),
            rec_attr_set: 0,
            rec_attr_clr: 0,
            data: Vec::new(),
            bind: false,
            recursive_bind: false,
            idmap: Idmap::None,
            tmpcopyup: false,
        }
    }
}

impl MountOptions {
    pub fn parse<S: AsRef<str>>(options: &[S]) -> Result<MountOptions, String> {
        let mut o = MountOptions::default();
        for opt in options {
            let opt = opt.as_ref();
            match effect(opt) {
                Some(Effect::Flags { set, clear }) => {
                    o.flags.insert(set);
                    o.flags.remove(clear);
                    o.cleared.insert(clear);
                    o.cleared.remove(set);
                }
                Some(Effect::Bind { recursive }) => {
                    o.bind = true;
                    o.flags.insert(MsFlags::MS_BIND);
                    if recursive {
                        o.recursive_bind = true;
                        o.flags.insert(MsFlags::MS_REC);
                    }
                }
                Some(Effect::Propagation(p)) => o.propagation.push(p),
                Some(Effect::Recursive { set, clear }) => {
                    o.rec_attr_clr |= clear;
                    o.rec_attr_set |= set;
                }
                Some(Effect::Idmap(i)) => o.idmap = i,
                Some(Effect::Tmpcopyup) => o.tmpcopyup = true,
                None if opt.is_empty() => return Err("empty mount option".into()),
                None => o.data.push(opt.to_string()),
            }
        }
        Ok(o)
    }

    pub fn data_string(&self) -> Option<String> {
        if self.data.is_empty() {
            None
        } else {
            Some(self.data.join(","))
        }
    }
}

/// The atime flags (the kernel takes them together).
const ATIME: MsFlags = MsFlags::MS_NOATIME
    .union(MsFlags::MS_RELATIME)
    .union(MsFlags::MS_STRICTATIME)
    .union(MsFlags::MS_NODIRATIME);

/// The flags the kernel locks on a mount inherited into another user
/// namespace (MNT_LOCK_*): a remount there must keep them.
const LOCKABLE: MsFlags = MsFlags::MS_RDONLY
    .union(MsFlags::MS_NODEV)
    .union(MsFlags::MS_NOEXEC)
    .union(MsFlags::MS_NOSUID)
    .union(ATIME);

/// statvfs(3)'s `f_flag` bits and the mount flags they report (the
/// kernel's calculate_f_flags), for the lockable ones.
const STATVFS_FLAGS: &[(u64, MsFlags)] = &[
    (libc::ST_RDONLY, MsFlags::MS_RDONLY),
    (libc::ST_NOSUID, MsFlags::MS_NOSUID),
    (libc::ST_NODEV, MsFlags::MS_NODEV),
    (libc::ST_NOEXEC, MsFlags::MS_NOEXEC),
    (libc::ST_NOATIME, MsFlags::MS_NOATIME),
    (libc::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
    (libc::ST_RELATIME, MsFlags::MS_RELATIME),
];

/// The lockable mount flags a source's statvfs reports.
pub fn lockable_flags_of(f_flag: u64) -> MsFlags {
    STATVFS_FLAGS
        .iter()
        .filter(|(st, _)| f_flag & st != 0)
        .fold(MsFlags::empty(), |acc, (_, ms)| acc | *ms)
}

/// A bind is remounted with the flags asked for alone, the others cleared
/// (what users of `mount --bind -o` mean, and runc's behaviour), whenever
/// an option set or cleared one.
pub fn bind_needs_remount(asked: MsFlags, cleared: MsFlags) -> bool {
    !(asked - (MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT)).is_empty()
        || !cleared.is_empty()
}

/// When that remount is refused (a source's flags locked in a user
/// namespace), the flags of a second try: the asked ones plus the
/// source's lockable ones. Refused where that would not be what was
/// asked: a lockable flag the source has and an option cleared, or an
/// atime mode other than the source's (the kernel would keep the source's
/// silently).
pub fn bind_remount_retry(
    asked: MsFlags,
    cleared: MsFlags,
    source: MsFlags,
) -> Result<MsFlags, LockedFlags> {
    let source = source & LOCKABLE;
    let kept_cleared = source & cleared;
    if !kept_cleared.is_empty() {
        return Err(LockedFlags::Cleared {
            locked: names_setting(kept_cleared),
            asked: names_clearing(kept_cleared),
        });
    }
    // strictatime is the mode without flags (statvfs reports none), so the
    // asked mode is compared with MS_STRICTATIME taken out.
    let asked_mode = (asked & ATIME) - MsFlags::MS_STRICTATIME;
    if !(asked & ATIME).is_empty() && asked_mode != source & ATIME {
        return Err(LockedFlags::Atime {
            locked: names_setting(source & ATIME),
            asked: names_setting(asked & ATIME),
        });
    }
    Ok(asked | source)
}

/// Why a bind's remount cannot keep what its source's user namespace
/// locks and still be what the options asked: the flags by their option
/// names, for the one line the refusal gets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LockedFlags {
    /// The source has flags (`locked`) the options clear (`asked`).
    #[error(
        "the source is {} and a user namespace locks that; the options ask for {}",
        locked.join(","),
        asked.join(",")
    )]
    Cleared {
        locked: Vec<&'static str>,
        asked: Vec<&'static str>,
    },
    /// The options ask for an atime mode other than the source's (none
    /// named: strictatime, the mode statvfs reports no flag for).
    #[error(
        "the source's atime mode is {} and a user namespace locks it; the options ask for {}",
        if locked.is_empty() { "strictatime".to_string() } else { locked.join(",") },
        asked.join(",")
    )]
    Atime {
        locked: Vec<&'static str>,
        asked: Vec<&'static str>,
    },
}

/// The names of the options that set exactly one of `flags` each (the
/// table's own names, in its order).
fn names_setting(flags: MsFlags) -> Vec<&'static str> {
    names_where(|set, clear| clear.is_empty() && !set.is_empty() && flags.contains(set))
}

/// The names of the options that clear one of `flags` and set nothing.
fn names_clearing(flags: MsFlags) -> Vec<&'static str> {
    names_where(|set, clear| set.is_empty() && !clear.is_empty() && flags.contains(clear))
}

fn names_where(pick: impl Fn(MsFlags, MsFlags) -> bool) -> Vec<&'static str> {
    OPTIONS
        .iter()
        .filter_map(|(name, e)| match e {
            Effect::Flags { set, clear } if pick(*set, *clear) => Some(*name),
            _ => None,
        })
        .collect()
}

/// The propagation flags for a propagation mode name (the same table's
/// propagation entries).
pub fn propagation(name: &str) -> Option<MsFlags> {
    match effect(name) {
        Some(Effect::Propagation(p)) => Some(p),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_option_is_understood_not_passed_as_data() {
        let names = names();
        for opt in &names {
            let o = MountOptions::parse(&[*opt]).unwrap_or_else(|e| panic!("{opt}: {e}"));
            assert!(
                o.data.is_empty(),
                "{opt} would go to the filesystem as data"
            );
        }
        for opt in ["idmap", "ridmap", "tmpcopyup", "rro", "rbind"] {
            assert!(names.contains(&opt), "{opt} is listed");
        }
        let mut dedup = names.clone();
        dedup.dedup();
        assert_eq!(dedup, names, "each name once");
        assert!(names.windows(2).all(|w| w[0] < w[1]), "sorted");
    }

    #[test]
    fn propagation_modes_come_from_the_same_table() {
        assert_eq!(
            propagation("rslave"),
            Some(MsFlags::MS_SLAVE | MsFlags::MS_REC)
        );
        assert_eq!(propagation("unbindable"), Some(MsFlags::MS_UNBINDABLE));
        assert_eq!(propagation("ro"), None);
        assert_eq!(propagation("bogus"), None);
    }

    #[test]
    fn flags_set_and_clear_in_order() {
        let o = MountOptions::parse(&["nosuid", "ro", "rw", "noexec"]).unwrap();
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC);
        assert!(o.data.is_empty());
    }

    #[test]
    fn a_cleared_flag_is_remembered_until_set_again() {
        let o = MountOptions::parse(&["bind", "dev", "rw", "ro"]).unwrap();
        assert_eq!(o.cleared, MsFlags::MS_NODEV);
        assert!(
            bind_needs_remount(o.flags, o.cleared),
            "dev alone asks for a remount"
        );
        let o = MountOptions::parse(&["rbind"]).unwrap();
        assert!(
            !bind_needs_remount(o.flags, o.cleared),
            "a plain bind keeps the source's flags"
        );
        let o = MountOptions::parse(&["bind", "nosuid"]).unwrap();
        assert!(bind_needs_remount(o.flags, o.cleared));
    }

    #[test]
    fn a_refused_bind_remount_is_retried_with_the_sources_locked_flags() {
        let parse = |opts: &[&str]| {
            let o = MountOptions::parse(opts).unwrap();
            (o.flags, o.cleared)
        };
        let ro = lockable_flags_of(libc::ST_RDONLY);
        assert_eq!(ro, MsFlags::MS_RDONLY);
        // A read-only source, "bind,nosuid,nodev": stays read-only.
        let (asked, cleared) = parse(&["bind", "nosuid", "nodev"]);
        assert_eq!(
            bind_remount_retry(asked, cleared, ro),
            Ok(asked | MsFlags::MS_RDONLY)
        );
        // "rw" asked of it: refused, not silently read-only, and the
        // refusal names both sides by their options.
        let (asked, cleared) = parse(&["bind", "rw", "nosuid"]);
        let refused = bind_remount_retry(asked, cleared, ro).unwrap_err();
        assert_eq!(
            refused,
            LockedFlags::Cleared {
                locked: vec!["ro"],
                asked: vec!["rw"]
            }
        );
        assert_eq!(
            refused.to_string(),
            "the source is ro and a user namespace locks that; the options ask for rw"
        );
        let (asked, cleared) = parse(&["bind", "dev", "exec"]);
        let nodev_noexec = lockable_flags_of(libc::ST_NODEV | libc::ST_NOEXEC);
        assert_eq!(
            bind_remount_retry(asked, cleared, nodev_noexec),
            Err(LockedFlags::Cleared {
                locked: vec!["nodev", "noexec"],
                asked: vec!["dev", "exec"]
            })
        );
        // An atime mode other than the source's: refused; the same: kept.
        let noatime = lockable_flags_of(libc::ST_NOATIME);
        let (asked, cleared) = parse(&["bind", "strictatime"]);
        let refused = bind_remount_retry(asked, cleared, noatime).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "the source's atime mode is noatime and a user namespace locks it; the options ask for strictatime"
        );
        let (asked, cleared) = parse(&["bind", "noatime", "ro"]);
        assert_eq!(bind_remount_retry(asked, cleared, noatime | ro), Ok(asked));
        // A strictatime source (no atime flag in statvfs): strictatime
        // asked is its own mode; relatime asked is not, and says so.
        let strict = lockable_flags_of(libc::ST_RDONLY);
        let (asked, cleared) = parse(&["bind", "strictatime", "nosuid"]);
        assert_eq!(
            bind_remount_retry(asked, cleared, strict),
            Ok(asked | MsFlags::MS_RDONLY)
        );
        let (asked, cleared) = parse(&["bind", "relatime"]);
        assert_eq!(
            bind_remount_retry(asked, cleared, strict)
                .unwrap_err()
                .to_string(),
            "the source's atime mode is strictatime and a user namespace locks it; the options ask for relatime"
        );
        // nosymfollow is not lockable: cleared by "symfollow" regardless.
        let (asked, cleared) = parse(&["bind", "ro", "symfollow"]);
        let nodev = lockable_flags_of(libc::ST_NODEV | 0x2000);
        assert_eq!(nodev, MsFlags::MS_NODEV);
        assert_eq!(
            bind_remount_retry(asked, cleared, nodev),
            Ok(MsFlags::MS_BIND | MsFlags::MS_RDONLY | MsFlags::MS_NODEV)
        );
    }

    #[test]
    fn data_and_propagation() {
        let o = MountOptions::parse(&["nosuid", "mode=755", "size=65536k", "rslave"]).unwrap();
        assert_eq!(o.data_string().as_deref(), Some("mode=755,size=65536k"));
        assert_eq!(o.propagation, vec![MsFlags::MS_SLAVE | MsFlags::MS_REC]);
    }

    #[test]
    fn binds() {
        let o = MountOptions::parse(&["rbind", "ro"]).unwrap();
        assert!(o.bind && o.recursive_bind);
        assert!(o
            .flags
            .contains(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY));
        let o = MountOptions::parse(&["bind"]).unwrap();
        assert!(o.bind && !o.recursive_bind);
    }

    #[test]
    fn recursive_attributes() {
        let o = MountOptions::parse(&["rro", "rnosuid", "rnoatime"]).unwrap();
        assert_eq!(
            o.rec_attr_set,
            MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOATIME
        );
        assert_eq!(o.rec_attr_clr, MOUNT_ATTR__ATIME);
        assert!(o.flags.is_empty());
    }

    #[test]
    fn refused_and_idmap() {
        assert_eq!(
            MountOptions::parse(&["rbind", "ridmap"]).unwrap().idmap,
            Idmap::Recursive
        );
        assert!(MountOptions::parse(&["tmpcopyup"]).unwrap().tmpcopyup);
        assert!(MountOptions::parse(&[""]).is_err());
    }
}
