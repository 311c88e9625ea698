//! Unpacking a layer tarball into a directory, safely.
//!
//! Two ways to treat OCI whiteouts: [`Whiteouts::Overlay`] writes them the
//! way overlayfs reads them (a 0/0 character device for a deleted path, the
//! `trusted.overlay.opaque` xattr for an opaque directory; without root
//! `user.overlay.opaque`, which an overlay mounted with `userxattr` in a
//! user namespace reads, the kernel letting anyone make a 0/0 device since
//! 5.8), so a layer is
//! unpacked once into its own directory and stacked as a lower layer;
//! [`Whiteouts::Apply`] deletes what they name from the directory the
//! layers are applied to in order (a bundle's full copy).
//!
//! Every entry's path is checked before anything is written: absolute
//! paths, `..` and paths through a symlink are refused, so a layer can
//! never write outside its root.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use nix::fcntl::{AtFlags, AT_FDCWD};
use nix::sys::stat::{makedev, mknod, utimensat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchownat, Gid, Uid};
use tar::EntryType;

use crate::error::{Error, IoContext, Result};

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";
const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// What a rootless (`userxattr`) overlay reads instead.
const USER_OVERLAY_OPAQUE_XATTR: &str = "user.overlay.opaque";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Whiteouts {
    /// Keep whiteouts as overlayfs markers (a layer unpacked on its own).
    Overlay,
    /// Delete what whiteouts name (layers applied in order into one tree).
    Apply,
}

/// The compression of a layer blob, from its media type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// The compression a layer media type names; `None` (the Option) for a
    /// media type that is not a layer rt-image can unpack.
    pub fn from_media_type(media_type: &str) -> Option<Compression> {
        match media_type {
            "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar"
            | "application/vnd.docker.image.rootfs.diff.tar" => Some(Compression::None),
            "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => {
                Some(Compression::Gzip)
            }
            "application/vnd.oci.image.layer.v1.tar+zstd"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd" => {
                Some(Compression::Zstd)
            }
            _ => None,
        }
    }

    /// The compression a blob's first bytes show (for docker-archive
    /// layers, whose manifest has no media types).
    pub fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    pub fn media_type(self) -> &'static str {
        match self {
            Compression::None => "application/vnd.oci.image.layer.v1.tar",
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }

    /// A reader of the uncompressed tar stream.
    pub fn decoder<'a>(self, r: impl Read + 'a) -> io::Result<Box<dyn Read + 'a>> {
        Ok(match self {
            Compression::None => Box::new(r),
            Compression::Gzip => Box::new(flate2::read::GzDecoder::new(r)),
            Compression::Zstd => {
                Box::new(zstd::stream::read::Decoder::with_buffer(BufReader::new(r))?)
            }
        })
    }
}

/// Sniffs the compression of a file's content.
pub fn sniff_file(path: &Path) -> Result<Compression> {
    let mut r = BufReader::new(File::open(path).at(path)?);
    let head = r.fill_buf().at(path)?;
    Ok(Compression::sniff(head))
}

/// Unpacks the tar stream `tar` into `dest` (an existing directory).
/// `layer` names the layer in errors.
pub fn unpack(tar: impl Read, dest: &Path, mode: Whiteouts, layer: &str) -> Result<()> {
    Unpacker {
        dest,
        mode,
        layer,
        written: HashSet::new(),
        dirs: Vec::new(),
        rootless: rt::rootless::detect().is_rootless(),
    }
    .run(tar)
}

struct Unpacker<'a> {
    dest: &'a Path,
    mode: Whiteouts,
    layer: &'a str,
    /// Paths this layer wrote: an opaque marker hides only what is below.
    written: HashSet<PathBuf>,
    /// Directories whose mode and mtime are set last (adding entries to a
    /// directory changes its mtime; a read-only mode would block them).
    dirs: Vec<(PathBuf, u32, u64)>,
    /// Without root: files keep the unpacking user as their owner (root
    /// in a rootless container's user namespace) when chown to the
    /// layer's owner is refused, device nodes the kernel refuses are left
    /// out, and so are xattrs only root may set.
    rootless: bool,
}

impl Unpacker<'_> {
    fn run(mut self, tar: impl Read) -> Result<()> {
        let mut archive = tar::Archive::new(tar);
        let entries = archive.entries().map_err(|e| self.bad(e))?;
        for entry in entries {
            let entry = entry.map_err(|e| self.bad(e))?;
            self.entry(entry)?;
        }
        for (path, mode, mtime) in self.dirs.iter().rev() {
            fs::set_permissions(path, fs::Permissions::from_mode(*mode)).at(path)?;
            set_mtime(path, *mtime)?;
        }
        Ok(())
    }

    fn bad(&self, e: io::Error) -> Error {
        Error::BadLayer {
            layer: self.layer.to_string(),
            reason: format!("reading the tar stream: {e}"),
        }
    }

    fn unsafe_entry(&self, entry: &Path, reason: impl Into<String>) -> Error {
        Error::UnsafeEntry {
            layer: self.layer.to_string(),
            entry: entry.display().to_string(),
            reason: reason.into(),
        }
    }

    /// The entry's path relative to the layer root, or an error for one
    /// that would leave it.
    fn relative(&self, raw: &Path) -> Result<PathBuf> {
        let mut out = PathBuf::new();
        for c in raw.components() {
            match c {
                Component::Normal(p) => out.push(p),
                Component::CurDir => {}
                Component::ParentDir => {
                    return Err(self.unsafe_entry(raw, "'..' would escape the layer root"))
                }
                Component::RootDir | Component::Prefix(_) => {
                    return Err(self.unsafe_entry(raw, "absolute paths are refused"))
                }
            }
        }
        Ok(out)
    }

    /// Makes sure every ancestor of `rel` is a real directory under the
    /// root (creating missing ones), never a symlink that would carry a
    /// write elsewhere.
    fn parents(&self, rel: &Path, create: bool) -> Result<()> {
        let mut cur = self.dest.to_path_buf();
        let mut shown = PathBuf::new();
        let Some(parent) = rel.parent() else {
            return Ok(());
        };
        for c in parent.components() {
            cur.push(c);
            shown.push(c);
            match fs::symlink_metadata(&cur) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(self
                        .unsafe_entry(rel, format!("its parent {} is a symlink", shown.display())))
                }
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(self.unsafe_entry(
                        rel,
                        format!("its parent {} is not a directory", shown.display()),
                    ))
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
                    fs::create_dir(&cur).at(&cur)?;
                }
                Err(e) => return Err(Error::Io { path: cur, err: e }),
            }
        }
        Ok(())
    }

    fn entry<R: Read>(&mut self, mut e: tar::Entry<'_, R>) -> Result<()> {
        let kind = e.header().entry_type();
        if matches!(kind, EntryType::XGlobalHeader | EntryType::XHeader) {
            return Ok(());
        }
        let raw = e.path().map_err(|err| self.bad(err))?.into_owned();
        let rel = self.relative(&raw)?;
        let Some(name) = rel.file_name().map(OsStr::to_owned) else {
            return Ok(()); // the root itself ("./")
        };
        let name_bytes = name.as_bytes();
        if name_bytes.starts_with(WHITEOUT_PREFIX.as_bytes()) {
            return self.whiteout(&rel, name_bytes);
        }
        self.parents(&rel, true)?;
        let full = self.dest.join(&rel);
        let existing = fs::symlink_metadata(&full).ok();
        let header = e.header().clone();
        let mode = header.mode().map_err(|err| self.bad(err))? & 0o7777;
        let mtime = header.mtime().unwrap_or(0);

        // Anything in the way that is not a directory kept for a directory
        // entry goes: a later entry replaces an earlier one.
        let keep_dir =
            kind == EntryType::Directory && existing.as_ref().is_some_and(|m| m.is_dir());
        if let Some(m) = &existing {
            if !keep_dir {
                remove_all(&full, m)?;
            }
        }
        match kind {
            EntryType::Directory => {
                if !keep_dir {
                    fs::create_dir(&full).at(&full)?;
                }
            }
            EntryType::Regular | EntryType::Continuous => {
                let mut f = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                    .open(&full)
                    .at(&full)?;
                io::copy(&mut e, &mut f).map_err(|err| self.bad(err))?;
            }
            EntryType::Symlink => {
                let target = e
                    .link_name()
                    .map_err(|err| self.bad(err))?
                    .ok_or_else(|| self.unsafe_entry(&rel, "symlink without a target"))?;
                std::os::unix::fs::symlink(&target, &full).at(&full)?;
            }
            EntryType::Link => {
                let target = e
                    .link_name()
                    .map_err(|err| self.bad(err))?
                    .ok_or_else(|| self.unsafe_entry(&rel, "hard link without a target"))?
                    .into_owned();
                let target_rel = self.relative(&target)?;
                self.parents(&target_rel, false)?;
                let target_full = self.dest.join(&target_rel);
                match fs::symlink_metadata(&target_full) {
                    Ok(m) if !m.is_dir() => {}
                    _ => {
                        return Err(self.unsafe_entry(
                            &rel,
                            format!(
                                "hard link target {} is not a file in this layer",
                                target.display()
                            ),
                        ))
                    }
                }
                // linkat without AT_SYMLINK_FOLLOW: a symlink target is
                // linked itself, never followed.
                fs::hard_link(&target_full, &full).at(&full)?;
                self.written.insert(rel);
                return Ok(()); // a hard link shares the target's metadata
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let (kind_flag, dev) = match kind {
                    EntryType::Char => (SFlag::S_IFCHR, device(&header)),
                    EntryType::Block => (SFlag::S_IFBLK, device(&header)),
                    _ => (SFlag::S_IFIFO, 0),
                };
                match mknod(&full, kind_flag, Mode::from_bits_truncate(mode), dev) {
                    Ok(()) => {}
                    // A rootless container gets the host's devices bound.
                    Err(nix::Error::EPERM) if self.rootless => return Ok(()),
                    Err(e) => return Err(e).at(&full),
                }
            }
            other => {
                return Err(self.unsafe_entry(&rel, format!("unsupported tar entry type {other:?}")))
            }
        }

        let id = |n: std::io::Result<u64>, what: &str| {
            let n = n.unwrap_or(0);
            u32::try_from(n)
                .map_err(|_| self.unsafe_entry(&rel, format!("{what} {n} is beyond 32 bits")))
        };
        let uid = id(header.uid(), "uid")?;
        let gid = id(header.gid(), "gid")?;
        match fchownat(
            AT_FDCWD,
            &full,
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        ) {
            Ok(()) => {}
            Err(nix::Error::EPERM | nix::Error::EINVAL) if self.rootless => {}
            Err(e) => return Err(e).at(&full),
        }
        if kind != EntryType::Symlink {
            self.xattrs(&mut e, &full)?;
        }
        match kind {
            EntryType::Symlink => set_mtime(&full, mtime)?,
            EntryType::Directory => self.dirs.push((full, mode, mtime)),
            _ => {
                // After chown, which clears setuid/setgid bits.
                fs::set_permissions(&full, fs::Permissions::from_mode(mode)).at(&full)?;
                set_mtime(&full, mtime)?;
            }
        }
        self.written.insert(rel);
        Ok(())
    }

    fn xattrs<R: Read>(&self, e: &mut tar::Entry<'_, R>, full: &Path) -> Result<()> {
        let Some(exts) = e.pax_extensions().map_err(|err| self.bad(err))? else {
            return Ok(());
        };
        for ext in exts {
            let ext = ext.map_err(|err| self.bad(err))?;
            let Ok(key) = ext.key() else { continue };
            let Some(name) = key.strip_prefix("SCHILY.xattr.") else {
                continue;
            };
            // overlayfs's own attributes would change what the mount shows.
            if name.starts_with("trusted.overlay.") || name.starts_with("user.overlay.") {
                continue;
            }
            match xattr::set(full, name, ext.value_bytes()) {
                Ok(()) => {}
                Err(e)
                    if self.rootless
                        && matches!(e.raw_os_error(), Some(libc::EPERM | libc::ENOTSUP)) => {}
                Err(e) => return Err(e).at(full),
            }
        }
        Ok(())
    }

    fn whiteout(&mut self, rel: &Path, name: &[u8]) -> Result<()> {
        let parent_rel = rel.parent().unwrap_or(Path::new("")).to_path_buf();
        let parent = self.dest.join(&parent_rel);
        if self.mode == Whiteouts::Apply && fs::symlink_metadata(&parent).is_err() {
            // Nothing below to hide (but a symlinked ancestor is refused).
            return match self.parents(rel, false) {
                Err(e @ Error::UnsafeEntry { .. }) => Err(e),
                _ => Ok(()),
            };
        }
        self.parents(rel, self.mode == Whiteouts::Overlay)?;
        if name == OPAQUE_MARKER.as_bytes() {
            match self.mode {
                Whiteouts::Overlay => {
                    let name = if self.rootless {
                        USER_OVERLAY_OPAQUE_XATTR
                    } else {
                        OVERLAY_OPAQUE_XATTR
                    };
                    xattr::set(&parent, name, b"y").at(&parent)?;
                }
                Whiteouts::Apply => {
                    if parent.is_dir() {
                        self.clear_lower(&parent_rel)?;
                    }
                }
            }
            return Ok(());
        }
        let hidden = &name[WHITEOUT_PREFIX.len()..];
        if hidden.is_empty() || hidden == b"." || hidden == b".." {
            return Err(self.unsafe_entry(rel, "whiteout of an invalid name"));
        }
        let target = parent.join(OsStr::from_bytes(hidden));
        let existing = fs::symlink_metadata(&target).ok();
        if let Some(m) = &existing {
            remove_all(&target, m)?;
        }
        if self.mode == Whiteouts::Overlay {
            mknod(&target, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0)).at(&target)?;
        }
        Ok(())
    }

    /// Removes from `dir_rel` everything this layer did not write itself
    /// (an opaque directory hides the layers below, not its own layer).
    fn clear_lower(&self, dir_rel: &Path) -> Result<()> {
        let dir = self.dest.join(dir_rel);
        for child in fs::read_dir(&dir).at(&dir)? {
            let child = child.at(&dir)?;
            let rel = dir_rel.join(child.file_name());
            let path = child.path();
            let m = fs::symlink_metadata(&path).at(&path)?;
            if !self.written.contains(&rel) {
                remove_all(&path, &m)?;
            } else if m.is_dir() {
                self.clear_lower(&rel)?;
            }
        }
        Ok(())
    }
}

fn device(h: &tar::Header) -> libc::dev_t {
    let major = h.device_major().ok().flatten().unwrap_or(0);
    let minor = h.device_minor().ok().flatten().unwrap_or(0);
    makedev(major as u64, minor as u64)
}

/// Removes a path without following symlinks.
fn remove_all(path: &Path, m: &fs::Metadata) -> Result<()> {
    if m.is_dir() {
        fs::remove_dir_all(path).at(path)
    } else {
        fs::remove_file(path).at(path)
    }
}

fn set_mtime(path: &Path, mtime: u64) -> Result<()> {
    let t = TimeSpec::new(i64::try_from(mtime).unwrap_or(i64::MAX), 0);
    utimensat(AT_FDCWD, path, &t, &t, UtimensatFlags::NoFollowSymlink).at(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

    /// A tar built entry by entry.
    struct Tar(tar::Builder<Vec<u8>>);

    impl Tar {
        fn new() -> Tar {
            Tar(tar::Builder::new(Vec::new()))
        }
        fn header(kind: EntryType, mode: u32) -> tar::Header {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_mode(mode);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(1_000_000);
            h.set_size(0);
            h
        }
        fn dir(mut self, path: &str) -> Tar {
            let mut h = Self::header(EntryType::Directory, 0o755);
            self.0.append_data(&mut h, path, io::empty()).unwrap();
            self
        }
        fn file(mut self, path: &str, data: &str) -> Tar {
            let mut h = Self::header(EntryType::Regular, 0o644);
            h.set_size(data.len() as u64);
            self.0.append_data(&mut h, path, data.as_bytes()).unwrap();
            self
        }
        fn link(mut self, kind: EntryType, path: &str, target: &str) -> Tar {
            let mut h = Self::header(kind, 0o777);
            self.0.append_link(&mut h, path, target).unwrap();
            self
        }
        /// A raw header: the builder refuses `..` and absolute paths, which
        /// is exactly what a hostile layer would contain.
        fn raw_file(mut self, path: &str, data: &str) -> Tar {
            let mut h = Self::header(EntryType::Regular, 0o644);
            h.set_size(data.len() as u64);
            let name = &mut h.as_old_mut().name;
            name[..path.len()].copy_from_slice(path.as_bytes());
            h.set_cksum();
            self.0.append(&h, data.as_bytes()).unwrap();
            self
        }
        fn bytes(self) -> Vec<u8> {
            self.0.into_inner().unwrap()
        }
    }

    fn tmp() -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix("rt-image-unpack.")
            .tempdir()
            .unwrap()
    }

    fn read(p: &Path) -> String {
        fs::read_to_string(p).unwrap()
    }

    #[test]
    fn files_dirs_symlinks_hardlinks_and_modes() {
        let d = tmp();
        let t = Tar::new()
            .dir("etc")
            .file("etc/hostname", "box\n")
            .link(EntryType::Link, "etc/hostname2", "etc/hostname")
            .link(EntryType::Symlink, "etc/abs", "/etc/hostname")
            .file("deep/er/file", "x");
        unpack(&t.bytes()[..], d.path(), Whiteouts::Overlay, "test").unwrap();
        let p = d.path();
        assert_eq!(read(&p.join("etc/hostname")), "box\n");
        let a = fs::metadata(p.join("etc/hostname")).unwrap();
        let b = fs::metadata(p.join("etc/hostname2")).unwrap();
        assert_eq!(
            (a.ino(), a.nlink()),
            (b.ino(), 2),
            "a hard link shares the inode"
        );
        assert_eq!(a.mode() & 0o7777, 0o644);
        assert_eq!(a.mtime(), 1_000_000);
        assert_eq!(
            fs::read_link(p.join("etc/abs")).unwrap(),
            Path::new("/etc/hostname")
        );
        assert_eq!(read(&p.join("deep/er/file")), "x");
    }

    #[test]
    fn whiteouts_and_opaque_dirs_for_overlay() {
        let d = tmp();
        let t = Tar::new()
            .dir("etc")
            .file("etc/.wh.passwd", "")
            .dir("var")
            .file("var/.wh..wh..opq", "")
            .file("var/new", "n");
        unpack(&t.bytes()[..], d.path(), Whiteouts::Overlay, "test").unwrap();
        let w = fs::symlink_metadata(d.path().join("etc/passwd")).unwrap();
        assert!(
            w.file_type().is_char_device() && w.rdev() == 0,
            "0/0 whiteout"
        );
        assert!(!d.path().join("etc/.wh.passwd").exists());
        assert_eq!(
            xattr::get(d.path().join("var"), OVERLAY_OPAQUE_XATTR).unwrap(),
            Some(b"y".to_vec())
        );
        assert!(!d.path().join("var/.wh..wh..opq").exists());
    }

    #[test]
    fn whiteouts_and_opaque_dirs_applied_in_order() {
        let d = tmp();
        let lower = Tar::new()
            .file("etc/passwd", "root")
            .file("etc/group", "root")
            .file("var/old/a", "a")
            .file("var/keep", "k");
        unpack(&lower.bytes()[..], d.path(), Whiteouts::Apply, "lower").unwrap();
        let upper = Tar::new()
            .file("etc/.wh.passwd", "")
            .file("var/mine", "m") // written before the marker: kept
            .file("var/.wh..wh..opq", "")
            .file("var/after", "z");
        unpack(&upper.bytes()[..], d.path(), Whiteouts::Apply, "upper").unwrap();
        let nothing_below = Tar::new().file("no/such/.wh.file", "");
        unpack(&nothing_below.bytes()[..], d.path(), Whiteouts::Apply, "x").unwrap();
        let p = d.path();
        assert!(!p.join("etc/passwd").exists());
        assert_eq!(read(&p.join("etc/group")), "root");
        assert!(!p.join("var/old").exists() && !p.join("var/keep").exists());
        assert_eq!(read(&p.join("var/mine")), "m");
        assert_eq!(read(&p.join("var/after")), "z");
    }

    #[test]
    fn escapes_are_refused() {
        for (t, what) in [
            (Tar::new().raw_file("../evil", "x"), "'..'"),
            (Tar::new().raw_file("/evil", "x"), "absolute"),
            (Tar::new().raw_file("a/../../evil", "x"), "'..'"),
            (
                Tar::new()
                    .link(EntryType::Symlink, "out", "/tmp")
                    .file("out/evil", "x"),
                "symlink",
            ),
            (
                Tar::new()
                    .link(EntryType::Symlink, "up", "..")
                    .file("up/evil", "x"),
                "symlink",
            ),
            (
                Tar::new().link(EntryType::Link, "h", "../../etc/shadow"),
                "'..'",
            ),
        ] {
            let parent = tmp();
            let d = parent.path().join("root");
            fs::create_dir(&d).unwrap();
            let err = unpack(&t.bytes()[..], &d, Whiteouts::Overlay, "sha256:bad")
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(what) && err.contains("sha256:bad"),
                "{what}: {err}"
            );
            assert!(
                !parent.path().join("evil").exists(),
                "{what}: wrote outside"
            );
            assert!(!Path::new("/tmp/evil").exists());
        }
    }

    #[test]
    fn devices_and_fifos() {
        let d = tmp();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = Tar::header(EntryType::Char, 0o666);
        h.set_device_major(1).unwrap();
        h.set_device_minor(3).unwrap();
        b.append_data(&mut h, "dev/null", io::empty()).unwrap();
        let mut h = Tar::header(EntryType::Fifo, 0o600);
        b.append_data(&mut h, "fifo", io::empty()).unwrap();
        unpack(
            &b.into_inner().unwrap()[..],
            d.path(),
            Whiteouts::Apply,
            "t",
        )
        .unwrap();
        let m = fs::symlink_metadata(d.path().join("dev/null")).unwrap();
        assert!(m.file_type().is_char_device());
        assert_eq!(m.rdev(), makedev(1, 3));
        assert!(fs::symlink_metadata(d.path().join("fifo"))
            .unwrap()
            .file_type()
            .is_fifo());
    }
}
