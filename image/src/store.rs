//! The content-addressed store: blobs by sha256 (verified as written),
//! layers unpacked once by chain id, image names, and the bundles that
//! use layers.
//!
//! ```text
//! ROOT/blobs/sha256/<hex>     manifests, configs, layer tarballs
//! ROOT/layers/<chain hex>/    a layer unpacked with overlay whiteouts
//! ROOT/images.json            name -> manifest digest
//! ROOT/bundles/<hex>.json     a bundle and the layers it mounts
//! ROOT/sources.json           blob -> registry repositories known to hold it
//! ROOT/tmp/                   work in progress, never trusted
//! ```
//!
//! Everything reaches its final name by a rename from `tmp/`, so a killed
//! process leaves nothing a later one would take for complete.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, BufReader, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::digest::{Digest, HashingReader, HashingWriter};
use crate::error::{Error, IoContext, Result};
use crate::unpack::{self, Compression, Whiteouts};

pub const DEFAULT_ROOT: &str = "/var/lib/rt/images";

/// The store without `--root`: [`DEFAULT_ROOT`] for root; for a rootless
/// caller `$XDG_DATA_HOME/rt/images`, else `~/.local/share/rt/images`.
pub fn default_root() -> Result<PathBuf> {
    if !rt::rootless::detect().is_rootless() {
        return Ok(PathBuf::from(DEFAULT_ROOT));
    }
    let non_empty = |v: &str| std::env::var_os(v).filter(|d| !d.is_empty());
    if let Some(d) = non_empty("XDG_DATA_HOME") {
        return Ok(PathBuf::from(d).join("rt/images"));
    }
    if let Some(h) = non_empty("HOME") {
        return Ok(PathBuf::from(h).join(".local/share/rt/images"));
    }
    Err(Error::NoStore(
        "rootless: neither XDG_DATA_HOME nor HOME is set, so there is no image store of this \
         user's (set one, or pass --root DIR)"
            .into(),
    ))
}

/// What the store records for an image name.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ImageRecord {
    /// The platform manifest's digest.
    pub manifest: Digest,
    /// The index it was chosen from, if the reference named an index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<Digest>,
}

/// A bundle made from the store, and what it uses.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BundleRecord {
    pub dir: PathBuf,
    pub image: String,
    pub manifest: Digest,
    /// Chain ids of the layers its overlay mounts.
    pub layers: Vec<Digest>,
    pub overlay: bool,
}

pub struct Store {
    root: PathBuf,
}

/// The store's exclusive lock, held while anything is changed.
pub struct Lock(#[allow(dead_code)] Flock<File>);

impl Store {
    /// Opens (creating) the store at `root`.
    pub fn open(root: &Path) -> Result<Store> {
        let s = Store {
            root: root.to_path_buf(),
        };
        for d in [
            s.root.clone(),
            s.root.join("blobs/sha256"),
            s.root.join("layers"),
            s.root.join("bundles"),
            s.root.join("tmp"),
        ] {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&d)
                .at(&d)?;
        }
        // Absolute, so overlay options and bundle records name it fully.
        let root = s.root.canonicalize().at(&s.root)?;
        Ok(Store { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Takes the store's lock (blocking while another rt-image holds it).
    pub fn lock(&self) -> Result<Lock> {
        let path = self.root.join("lock");
        let f = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .at(&path)?;
        let lock = Flock::lock(f, FlockArg::LockExclusive)
            .map_err(|(_, e)| e)
            .at(&path)?;
        Ok(Lock(lock))
    }

    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(d.hex())
    }

    pub fn has_blob(&self, d: &Digest) -> bool {
        self.blob_path(d).is_file()
    }

    pub fn read_blob(&self, d: &Digest) -> Result<Vec<u8>> {
        let p = self.blob_path(d);
        fs::read(&p).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Error::MissingBlob(d.to_string()),
            _ => Error::Io { path: p, err: e },
        })
    }

    pub fn blob_size(&self, d: &Digest) -> Option<u64> {
        fs::metadata(self.blob_path(d)).ok().map(|m| m.len())
    }

    /// A writer for a new blob. `expected` is the digest it must have (the
    /// blob is refused otherwise); `None` names it by its content.
    pub fn blob_writer(
        &self,
        expected: Option<&Digest>,
        size: Option<u64>,
    ) -> Result<BlobWriter<'_>> {
        let tmp = self.tmp_dir();
        let file = tempfile::Builder::new()
            .prefix("blob.")
            .tempfile_in(&tmp)
            .at(&tmp)?;
        Ok(BlobWriter {
            store: self,
            out: HashingWriter::new(file),
            expected: expected.cloned(),
            size,
        })
    }

    /// Writes a blob held in memory; returns its digest and whether it was
    /// new to the store.
    pub fn write_blob(&self, data: &[u8], expected: Option<&Digest>) -> Result<(Digest, bool)> {
        let mut w = self.blob_writer(expected, Some(data.len() as u64))?;
        w.write_all(data).at(self.tmp_dir())?;
        w.commit()
    }

    pub fn remove_blob(&self, d: &Digest) -> Result<()> {
        let p = self.blob_path(d);
        match fs::remove_file(&p) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::Io { path: p, err: e }),
            _ => Ok(()),
        }
    }

    pub fn layer_path(&self, chain_id: &Digest) -> PathBuf {
        self.root.join("layers").join(chain_id.hex())
    }

    pub fn has_layer(&self, chain_id: &Digest) -> bool {
        self.layer_path(chain_id).is_dir()
    }

    /// Unpacks layer blob `blob` (of `media_type`) as chain id `chain_id`,
    /// checking that its uncompressed content has digest `diff_id`. It is
    /// unpacked into a temporary directory renamed into place when
    /// complete. Returns false when the layer was there already.
    pub fn unpack_layer(
        &self,
        blob: &Digest,
        media_type: &str,
        diff_id: &Digest,
        chain_id: &Digest,
    ) -> Result<bool> {
        if self.has_layer(chain_id) {
            return Ok(false);
        }
        let compression = Compression::from_media_type(media_type).ok_or_else(|| {
            Error::UnsupportedMediaType {
                media_type: media_type.to_string(),
                digest: blob.to_string(),
            }
        })?;
        let tmp = self.tmp_dir();
        let work = tempfile::Builder::new()
            .prefix("layer.")
            .tempdir_in(&tmp)
            .at(&tmp)?;
        fs::set_permissions(work.path(), fs::Permissions::from_mode(0o755)).at(work.path())?;
        self.apply_layer(blob, compression, diff_id, work.path(), Whiteouts::Overlay)?;
        let dest = self.layer_path(chain_id);
        let work = work.keep();
        fs::rename(&work, &dest).map_err(|e| {
            let _ = fs::remove_dir_all(&work);
            Error::Io {
                path: dest.clone(),
                err: e,
            }
        })?;
        Ok(true)
    }

    /// Unpacks a layer blob into `dest`, verifying its diff id.
    pub fn apply_layer(
        &self,
        blob: &Digest,
        compression: Compression,
        diff_id: &Digest,
        dest: &Path,
        mode: Whiteouts,
    ) -> Result<()> {
        let path = self.blob_path(blob);
        let f = File::open(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Error::MissingBlob(blob.to_string()),
            _ => Error::Io {
                path: path.clone(),
                err: e,
            },
        })?;
        let bad = |e: io::Error| Error::BadLayer {
            layer: blob.to_string(),
            reason: format!("decompressing: {e}"),
        };
        let mut hashing = HashingReader::new(compression.decoder(BufReader::new(f)).map_err(bad)?);
        unpack::unpack(&mut hashing, dest, mode, blob.as_ref())?;
        let (actual, _) = hashing.finish().map_err(bad)?;
        if &actual != diff_id {
            return Err(Error::DiffIdMismatch {
                digest: blob.to_string(),
                expected: diff_id.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok(())
    }

    pub fn remove_layer(&self, chain_id: &Digest) -> Result<()> {
        let p = self.layer_path(chain_id);
        if !p.exists() {
            return Ok(());
        }
        // Renamed away first so a half-removed layer never looks complete.
        let tmp = self.tmp_dir().join(format!("gone.{}", chain_id.hex()));
        fs::rename(&p, &tmp).at(&p)?;
        fs::remove_dir_all(&tmp).at(&tmp)
    }

    /// The empty directory an image with no layers mounts as its lower.
    pub fn empty_layer(&self) -> Result<PathBuf> {
        let p = self.root.join("layers/empty");
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&p)
            .at(&p)?;
        Ok(p)
    }

    fn images_path(&self) -> PathBuf {
        self.root.join("images.json")
    }

    /// Every image name and its record.
    pub fn images(&self) -> Result<BTreeMap<String, ImageRecord>> {
        let p = self.images_path();
        match fs::read(&p) {
            Ok(data) => serde_json::from_slice(&data).map_err(|e| Error::BadJson {
                what: p.display().to_string(),
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(Error::Io { path: p, err: e }),
        }
    }

    fn save_images(&self, images: &BTreeMap<String, ImageRecord>) -> Result<()> {
        let data = serde_json::to_vec_pretty(images).expect("records serialize");
        self.write_atomic(&self.images_path(), &data)
    }

    /// Names an image (replacing what the name pointed to).
    pub fn tag(&self, name: &str, record: ImageRecord) -> Result<()> {
        let mut images = self.images()?;
        images.insert(name.to_string(), record);
        self.save_images(&images)
    }

    /// Removes a name; the blobs stay until `prune`.
    pub fn untag(&self, name: &str) -> Result<()> {
        let mut images = self.images()?;
        if images.remove(name).is_none() {
            return Err(Error::ImageNotFound(name.to_string()));
        }
        self.save_images(&images)
    }

    fn sources_path(&self) -> PathBuf {
        self.root.join("sources.json")
    }

    /// The repositories (`registry/repository`) a blob was pulled from or
    /// pushed to: where a push can mount it from instead of uploading it.
    pub fn blob_sources(&self) -> Result<BTreeMap<Digest, BTreeSet<String>>> {
        let p = self.sources_path();
        match fs::read(&p) {
            Ok(data) => serde_json::from_slice(&data).map_err(|e| Error::BadJson {
                what: p.display().to_string(),
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(Error::Io { path: p, err: e }),
        }
    }

    /// Records that `repository` (`registry/repository`) holds `blobs`.
    pub fn add_blob_sources(&self, repository: &str, blobs: &[Digest]) -> Result<()> {
        let mut all = self.blob_sources()?;
        let mut changed = false;
        for b in blobs {
            changed |= all
                .entry(b.clone())
                .or_default()
                .insert(repository.to_string());
        }
        if !changed {
            return Ok(());
        }
        let data = serde_json::to_vec_pretty(&all).expect("records serialize");
        self.write_atomic(&self.sources_path(), &data)
    }

    /// Forgets where blobs the store no longer has came from.
    pub fn forget_missing_sources(&self) -> Result<()> {
        let mut all = self.blob_sources()?;
        let before = all.len();
        all.retain(|d, _| self.has_blob(d));
        if all.len() == before {
            return Ok(());
        }
        let data = serde_json::to_vec_pretty(&all).expect("records serialize");
        self.write_atomic(&self.sources_path(), &data)
    }

    fn write_atomic(&self, path: &Path, data: &[u8]) -> Result<()> {
        let tmp = self.tmp_dir();
        let mut f = tempfile::NamedTempFile::new_in(&tmp).at(&tmp)?;
        f.write_all(data).at(f.path().to_path_buf())?;
        f.as_file().sync_all().at(path)?;
        f.persist(path).map_err(|e| Error::Io {
            path: path.to_path_buf(),
            err: e.error,
        })?;
        Ok(())
    }

    fn bundle_record_path(&self, dir: &Path) -> PathBuf {
        let key = Digest::of(dir.as_os_str().as_encoded_bytes());
        self.root
            .join("bundles")
            .join(format!("{}.json", key.hex()))
    }

    pub fn add_bundle(&self, b: &BundleRecord) -> Result<()> {
        let data = serde_json::to_vec_pretty(b).expect("records serialize");
        self.write_atomic(&self.bundle_record_path(&b.dir), &data)
    }

    pub fn bundle(&self, dir: &Path) -> Result<Option<BundleRecord>> {
        let p = self.bundle_record_path(dir);
        match fs::read(&p) {
            Ok(data) => serde_json::from_slice(&data)
                .map(Some)
                .map_err(|e| Error::BadJson {
                    what: p.display().to_string(),
                    reason: e.to_string(),
                }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::Io { path: p, err: e }),
        }
    }

    pub fn remove_bundle(&self, dir: &Path) -> Result<()> {
        let p = self.bundle_record_path(dir);
        match fs::remove_file(&p) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::Io { path: p, err: e }),
            _ => Ok(()),
        }
    }

    pub fn bundles(&self) -> Result<Vec<BundleRecord>> {
        let dir = self.root.join("bundles");
        let mut out = Vec::new();
        for e in fs::read_dir(&dir).at(&dir)? {
            let p = e.at(&dir)?.path();
            let data = fs::read(&p).at(&p)?;
            out.push(serde_json::from_slice(&data).map_err(|e| Error::BadJson {
                what: p.display().to_string(),
                reason: e.to_string(),
            })?);
        }
        Ok(out)
    }
}

/// A blob being written: hashed as it goes, named by its digest only when
/// complete and verified. Dropped without `commit`, it leaves nothing.
pub struct BlobWriter<'a> {
    store: &'a Store,
    out: HashingWriter<tempfile::NamedTempFile>,
    expected: Option<Digest>,
    size: Option<u64>,
}

impl BlobWriter<'_> {
    pub fn written(&self) -> u64 {
        self.out.count
    }

    /// Verifies the digest (and size) and moves the blob into place;
    /// returns its digest and whether it was new to the store.
    pub fn commit(self) -> Result<(Digest, bool)> {
        let BlobWriter {
            store,
            out,
            expected,
            size,
        } = self;
        let HashingWriter {
            inner: file,
            hasher,
            count,
        } = out;
        let actual = Digest::from_hasher(hasher);
        if let Some(exp) = &expected {
            if &actual != exp {
                return Err(Error::DigestMismatch {
                    expected: exp.to_string(),
                    actual: actual.to_string(),
                });
            }
            if let Some(size) = size {
                if size != count {
                    return Err(Error::SizeMismatch {
                        digest: exp.to_string(),
                        expected: size,
                        actual: count,
                    });
                }
            }
        }
        let dest = store.blob_path(&actual);
        if dest.exists() {
            return Ok((actual, false));
        }
        file.as_file().sync_all().at(file.path().to_path_buf())?;
        fs::set_permissions(file.path(), fs::Permissions::from_mode(0o644)).at(file.path())?;
        file.persist(&dest).map_err(|e| Error::Io {
            path: dest.clone(),
            err: e.error,
        })?;
        Ok((actual, true))
    }
}

impl Write for BlobWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let d = tempfile::Builder::new()
            .prefix("rt-image-store.")
            .tempdir()
            .unwrap();
        let s = Store::open(d.path()).unwrap();
        (d, s)
    }

    fn tmp_is_empty(s: &Store) -> bool {
        fs::read_dir(s.tmp_dir()).unwrap().next().is_none()
    }

    #[test]
    fn blobs_are_verified_as_written() {
        let (_d, s) = store();
        let good = Digest::of(b"hello");
        let (d, new) = s.write_blob(b"hello", Some(&good)).unwrap();
        assert_eq!((d.clone(), new), (good.clone(), true));
        assert_eq!(s.read_blob(&good).unwrap(), b"hello");
        assert!(!s.write_blob(b"hello", Some(&good)).unwrap().1);

        let claimed = Digest::of(b"something else");
        let err = s.write_blob(b"tampered", Some(&claimed)).unwrap_err();
        assert!(err.to_string().contains(&claimed.to_string()), "{err}");
        assert!(!s.has_blob(&claimed));
        assert!(!s.has_blob(&Digest::of(b"tampered")));
        assert!(tmp_is_empty(&s), "a refused blob leaves no temp file");
    }

    #[test]
    fn a_dropped_writer_leaves_nothing() {
        let (_d, s) = store();
        let mut w = s.blob_writer(None, None).unwrap();
        w.write_all(b"half").unwrap();
        drop(w);
        assert!(tmp_is_empty(&s));
        assert_eq!(
            fs::read_dir(s.root().join("blobs/sha256")).unwrap().count(),
            0
        );
    }

    #[test]
    fn layers_unpack_once_and_check_their_diff_id() {
        let (_d, s) = store();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(2);
        h.set_mode(0o644);
        b.append_data(&mut h, "etc/x", &b"hi"[..]).unwrap();
        let tar = b.into_inner().unwrap();
        let diff = Digest::of(&tar);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        let gz = gz.finish().unwrap();
        let (blob, _) = s.write_blob(&gz, None).unwrap();
        let gzip = Compression::Gzip.media_type();

        let wrong = Digest::of(b"not the diff id");
        let err = s.unpack_layer(&blob, gzip, &wrong, &wrong).unwrap_err();
        assert!(err.to_string().contains(&wrong.to_string()), "{err}");
        assert!(!s.has_layer(&wrong) && tmp_is_empty(&s));

        assert!(s.unpack_layer(&blob, gzip, &diff, &diff).unwrap());
        assert_eq!(fs::read(s.layer_path(&diff).join("etc/x")).unwrap(), b"hi");
        assert!(
            !s.unpack_layer(&blob, gzip, &diff, &diff).unwrap(),
            "already there"
        );

        let err = s
            .unpack_layer(&blob, "text/plain", &diff, &Digest::of(b"c"))
            .unwrap_err();
        assert!(err.to_string().contains("text/plain"), "{err}");
    }
}
