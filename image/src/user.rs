//! The image config's `User` (`user`, `uid`, `user:group`, `uid:gid`...)
//! resolved against the image's own /etc/passwd and /etc/group, read
//! inside the root filesystem so a symlink there cannot point at the host's.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;

use crate::error::{Error, IoContext, Result};

#[derive(Debug, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

struct Passwd {
    name: String,
    uid: u32,
    gid: u32,
}

struct Group {
    name: String,
    gid: u32,
    members: Vec<String>,
}

/// Reads a file inside `rootfs`; `None` when it does not exist.
fn read_in_root(root: &OwnedFd, path: &str) -> Result<Option<String>> {
    let fd = rt::rootfs::resolve::try_open_in_root(
        root.as_fd(),
        Path::new(path),
        libc::O_RDONLY | libc::O_CLOEXEC,
    )
    .map_err(|e| Error::Io {
        path: path.into(),
        err: std::io::Error::other(e.to_string()),
    })?;
    let Some(fd) = fd else { return Ok(None) };
    let mut s = String::new();
    File::from(fd).read_to_string(&mut s).at(path)?;
    Ok(Some(s))
}

fn passwd(text: &str) -> Vec<Passwd> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(Passwd {
                name: f.first()?.to_string(),
                uid: f.get(2)?.parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
            })
        })
        .collect()
}

fn groups(text: &str) -> Vec<Group> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(Group {
                name: f.first()?.to_string(),
                gid: f.get(2)?.parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .filter(|s| !s.is_empty())
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// Resolves `spec` (the config's `User`) for image `image` whose root
/// filesystem is `rootfs`, the way Docker does: a name must exist in
/// /etc/passwd; a uid need not (its group is then 0); the user's groups
/// in /etc/group become additional gids.
pub fn resolve(rootfs: &Path, spec: &str, image: &str) -> Result<User> {
    let err = |reason: String| Error::User {
        image: image.to_string(),
        user: spec.to_string(),
        reason,
    };
    let root: OwnedFd = open(
        rootfs,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .at(rootfs)?;
    let users = passwd(&read_in_root(&root, "/etc/passwd")?.unwrap_or_default());
    let all_groups = groups(&read_in_root(&root, "/etc/group")?.unwrap_or_default());
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let user_part = if user_part.is_empty() { "0" } else { user_part };
    let (uid, mut gid, name) = match user_part.parse::<u32>() {
        Ok(uid) => match users.iter().find(|p| p.uid == uid) {
            Some(p) => (uid, p.gid, Some(p.name.clone())),
            None => (uid, 0, None),
        },
        Err(_) => match users.iter().find(|p| p.name == user_part) {
            Some(p) => (p.uid, p.gid, Some(p.name.clone())),
            None => {
                return Err(err(format!(
                    "no user {user_part:?} in the image's /etc/passwd"
                )))
            }
        },
    };
    if let Some(g) = group_part.filter(|g| !g.is_empty()) {
        gid = match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => match all_groups.iter().find(|x| x.name == g) {
                Some(x) => x.gid,
                None => return Err(err(format!("no group {g:?} in the image's /etc/group"))),
            },
        };
    }
    let mut additional_gids: Vec<u32> = match &name {
        Some(n) => all_groups
            .iter()
            .filter(|g| g.members.iter().any(|m| m == n) && g.gid != gid)
            .map(|g| g.gid)
            .collect(),
        None => Vec::new(),
    };
    additional_gids.dedup();
    Ok(User {
        uid,
        gid,
        additional_gids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn rootfs() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir(d.path().join("etc")).unwrap();
        fs::write(
            d.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nwww:x:33:33::/var/www:/bin/false\n",
        )
        .unwrap();
        fs::write(
            d.path().join("etc/group"),
            "root:x:0:\nwww:x:33:\nadm:x:4:www,root\n",
        )
        .unwrap();
        d
    }

    #[test]
    fn resolves_like_docker() {
        let d = rootfs();
        let r = |s| resolve(d.path(), s, "img");
        let u = |uid, gid, add: &[u32]| User {
            uid,
            gid,
            additional_gids: add.to_vec(),
        };
        assert_eq!(r("").unwrap(), u(0, 0, &[4]));
        assert_eq!(r("www").unwrap(), u(33, 33, &[4]));
        assert_eq!(r("www:adm").unwrap(), u(33, 4, &[]));
        assert_eq!(r("1000").unwrap(), u(1000, 0, &[]));
        assert_eq!(r("1000:7").unwrap(), u(1000, 7, &[]));
        let e = r("nobody").unwrap_err().to_string();
        assert!(e.contains("\"nobody\"") && e.contains("/etc/passwd"), "{e}");
        let e = r("www:nogroup").unwrap_err().to_string();
        assert!(e.contains("\"nogroup\"") && e.contains("/etc/group"), "{e}");
    }

    #[test]
    fn a_symlinked_passwd_stays_inside_the_root() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir(d.path().join("etc")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", d.path().join("etc/passwd")).unwrap();
        // /etc/passwd resolved in the root points at itself: no host users.
        assert!(resolve(d.path(), "root", "img").is_err());
    }
}
