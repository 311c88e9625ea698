//! Parsing the `options` of an OCI mount into mount(2) flags, propagation,
//! recursive attributes for mount_setattr(2), and filesystem data.

use nix::mount::MsFlags;

/// What one mount's options ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// Flags set on the mount.
    pub flags: MsFlags,
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

/// Every option rt understands itself (anything else is passed to the
/// filesystem as data). `rt features` lists these.
pub const KNOWN: &[&str] = &[
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "lazytime",
    "loud",
    "mand",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "nolazytime",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "nosymfollow",
    "private",
    "ratime",
    "rbind",
    "rdev",
    "rdiratime",
    "relatime",
    "remount",
    "rexec",
    "rnoatime",
    "rnodev",
    "rnodiratime",
    "rnoexec",
    "rnosuid",
    "rnosymfollow",
    "ro",
    "rprivate",
    "rrelatime",
    "rro",
    "rrw",
    "rshared",
    "rslave",
    "rstrictatime",
    "rsuid",
    "rsymfollow",
    "runbindable",
    "rw",
    "shared",
    "silent",
    "slave",
    "strictatime",
    "suid",
    "symfollow",
    "sync",
    "tmpcopyup",
    "unbindable",
];

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            flags: MsFlags::empty(),
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
            let (set, clear): (MsFlags, MsFlags) = match opt {
                "defaults" => (MsFlags::empty(), MsFlags::empty()),
                "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
                "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
                "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
                "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
                "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
                "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
                "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
                "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
                "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
                "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
                "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
                "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
                "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
                "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
                "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
                "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
                "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
                "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
                "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
                "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
                "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
                "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
                "lazytime" => (MsFlags::MS_LAZYTIME, MsFlags::empty()),
                "nolazytime" => (MsFlags::empty(), MsFlags::MS_LAZYTIME),
                "silent" => (MsFlags::MS_SILENT, MsFlags::empty()),
                "loud" => (MsFlags::empty(), MsFlags::MS_SILENT),
                "bind" => {
                    o.bind = true;
                    (MsFlags::MS_BIND, MsFlags::empty())
                }
                "rbind" => {
                    o.bind = true;
                    o.recursive_bind = true;
                    (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty())
                }
                "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate"
                | "unbindable" | "runbindable" => {
                    o.propagation.push(propagation(opt).expect("listed above"));
                    continue;
                }
                // Recursive attributes (mount_setattr with AT_RECURSIVE).
                "rro" => {
                    o.rec_attr_set |= MOUNT_ATTR_RDONLY;
                    continue;
                }
                "rrw" => {
                    o.rec_attr_clr |= MOUNT_ATTR_RDONLY;
                    continue;
                }
                "rnosuid" => {
                    o.rec_attr_set |= MOUNT_ATTR_NOSUID;
                    continue;
                }
                "rsuid" => {
                    o.rec_attr_clr |= MOUNT_ATTR_NOSUID;
                    continue;
                }
                "rnodev" => {
                    o.rec_attr_set |= MOUNT_ATTR_NODEV;
                    continue;
                }
                "rdev" => {
                    o.rec_attr_clr |= MOUNT_ATTR_NODEV;
                    continue;
                }
                "rnoexec" => {
                    o.rec_attr_set |= MOUNT_ATTR_NOEXEC;
                    continue;
                }
                "rexec" => {
                    o.rec_attr_clr |= MOUNT_ATTR_NOEXEC;
                    continue;
                }
                "rnodiratime" => {
                    o.rec_attr_set |= MOUNT_ATTR_NODIRATIME;
                    continue;
                }
                "rdiratime" => {
                    o.rec_attr_clr |= MOUNT_ATTR_NODIRATIME;
                    continue;
                }
                "rrelatime" | "rnoatime" | "rstrictatime" => {
                    o.rec_attr_clr |= MOUNT_ATTR__ATIME;
                    o.rec_attr_set |= match opt {
                        "rrelatime" => MOUNT_ATTR_RELATIME,
                        "rnoatime" => MOUNT_ATTR_NOATIME,
                        _ => MOUNT_ATTR_STRICTATIME,
                    };
                    continue;
                }
                "ratime" => {
                    // atime updates as the filesystem default: relatime.
                    o.rec_attr_clr |= MOUNT_ATTR__ATIME;
                    continue;
                }
                "rnosymfollow" => {
                    o.rec_attr_set |= MOUNT_ATTR_NOSYMFOLLOW;
                    continue;
                }
                "rsymfollow" => {
                    o.rec_attr_clr |= MOUNT_ATTR_NOSYMFOLLOW;
                    continue;
                }
                "nosymfollow" => (
                    MsFlags::from_bits_retain(libc::MS_NOSYMFOLLOW),
                    MsFlags::empty(),
                ),
                "symfollow" => (
                    MsFlags::empty(),
                    MsFlags::from_bits_retain(libc::MS_NOSYMFOLLOW),
                ),
                "idmap" => {
                    o.idmap = Idmap::Single;
                    continue;
                }
                "ridmap" => {
                    o.idmap = Idmap::Recursive;
                    continue;
                }
                "tmpcopyup" => {
                    o.tmpcopyup = true;
                    continue;
                }
                _ if opt.is_empty() => return Err("empty mount option".into()),
                _ => {
                    o.data.push(opt.to_string());
                    continue;
                }
            };
            o.flags.insert(set);
            o.flags.remove(clear);
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

/// The propagation flags for a propagation mode name.
pub fn propagation(name: &str) -> Option<MsFlags> {
    Some(match name {
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_option_is_understood_not_passed_as_data() {
        for opt in KNOWN {
            let o = MountOptions::parse(&[*opt]).unwrap_or_else(|e| panic!("{opt}: {e}"));
            assert!(
                o.data.is_empty(),
                "{opt} would go to the filesystem as data"
            );
        }
    }

    #[test]
    fn flags_set_and_clear_in_order() {
        let o = MountOptions::parse(&["nosuid", "ro", "rw", "noexec"]).unwrap();
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC);
        assert!(o.data.is_empty());
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
