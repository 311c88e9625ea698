//! Host paths that name a place in the container: runc takes a mount
//! destination or bind source written as the root's host path
//! (`/bundle/rootfs/mnt`) as that place in the container (`/mnt`).

use std::path::{Component, Path, PathBuf};

/// `path` as a path in the container when it names a place inside the
/// host path of the root `rootfs`, compared as written (no file is
/// looked at): `/b/rootfs/mnt` -> `/mnt`. runc takes such a mount
/// destination or source as the place in the container it names.
pub fn within_root(rootfs: &Path, path: &Path) -> Option<PathBuf> {
    let clean = |p: &Path| -> PathBuf {
        let mut out = PathBuf::from("/");
        for c in p.components() {
            match c {
                Component::Normal(s) => out.push(s),
                Component::ParentDir => {
                    out.pop();
                }
                _ => {}
            }
        }
        out
    };
    if !rootfs.is_absolute() || !path.is_absolute() {
        return None;
    }
    let rest = clean(path).strip_prefix(clean(rootfs)).ok()?.to_path_buf();
    Some(Path::new("/").join(rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_path_inside_the_root_is_the_containers_path() {
        let r = Path::new("/b/rootfs");
        let at = |p: &str| within_root(r, Path::new(p));
        assert_eq!(at("/b/rootfs/mnt/x"), Some("/mnt/x".into()));
        assert_eq!(at("/b/rootfs"), Some("/".into()));
        assert_eq!(at("/b/./rootfs//mnt/../etc"), Some("/etc".into()));
        assert_eq!(at("/b/rootfs2/mnt"), None, "a sibling is not inside");
        assert_eq!(at("/mnt"), None);
        assert_eq!(at("/b/rootfs/../x"), None, "it leaves the root");
        assert_eq!(
            within_root(Path::new("rootfs"), Path::new("/b/rootfs/m")),
            None
        );
    }
}
