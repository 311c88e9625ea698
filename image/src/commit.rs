//! `rt-image commit BUNDLE REF`: a bundle's upper directory as a new layer
//! on top of its image (what `docker commit` does).
//!
//! overlayfs keeps deletions as 0/0 character devices and opaque
//! directories as the `trusted.overlay.opaque` xattr; in the layer they
//! become the OCI whiteouts `.wh.NAME` and `.wh..wh..opq`.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use serde_json::{json, Value};
use tar::{EntryType, Header};

use crate::digest::{Digest, HashingWriter};
use crate::error::{Error, IoContext, Result};
use crate::image::{Image, Manifest, OCI_CONFIG, OCI_MANIFEST};
use crate::reference;
use crate::store::{ImageRecord, Store};
use crate::txn::Added;
use crate::unpack::Compression;

/// The image a commit stored.
#[derive(Debug)]
pub struct Committed {
    pub name: String,
    pub manifest: Digest,
    pub config: Digest,
    pub layer: Digest,
}

/// Commits the bundle in `dir` as image `name`.
pub fn commit(store: &Store, dir: &Path, name: &str, comment: &str) -> Result<Committed> {
    let full = reference::normalize(name)?;
    let _lock = store.lock()?;
    let dir = dir.canonicalize().at(dir)?;
    let bad = |reason: &str| Error::Bundle {
        path: dir.clone(),
        reason: reason.to_string(),
    };
    let rec = store
        .bundle(&dir)?
        .ok_or_else(|| bad("not a bundle rt-image made"))?;
    if !rec.overlay {
        return Err(bad(
            "a copied bundle has no upper layer to commit: make it without --copy",
        ));
    }
    let base = Image::load(
        store,
        &rec.image,
        &ImageRecord {
            manifest: rec.manifest.clone(),
            index: None,
        },
    )?;
    let mut added = Added::default();
    match write_image(store, &dir, &full, &base, comment, &mut added) {
        Ok(c) => Ok(c),
        Err(e) => {
            added.rollback(store);
            Err(e)
        }
    }
}

fn write_image(
    store: &Store,
    dir: &Path,
    full: &str,
    base: &Image,
    comment: &str,
    added: &mut Added,
) -> Result<Committed> {
    // The layer: tar -> (diff id hash) -> gzip -> blob (its digest).
    let blob = store.blob_writer(None, None)?;
    let gz = flate2::write::GzEncoder::new(blob, flate2::Compression::default());
    let mut diff = HashingWriter::new(gz);
    write_layer(&dir.join(".rt-image/upper"), &mut diff)?;
    let diff_id = Digest::from_hasher(diff.hasher);
    let blob = diff.inner.finish().at(store.root())?;
    let size = blob.written();
    let (layer, new) = blob.commit()?;
    added.blob(layer.clone(), new);

    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let mut config: Value = serde_json::from_slice(&store.read_blob(&base.config_digest)?)
        .map_err(|e| Error::BadJson {
            what: base.config_digest.to_string(),
            reason: e.to_string(),
        })?;
    config["created"] = json!(now);
    config["rootfs"]["diff_ids"]
        .as_array_mut()
        .ok_or_else(|| Error::BadJson {
            what: base.config_digest.to_string(),
            reason: "no rootfs.diff_ids".into(),
        })?
        .push(json!(diff_id.to_string()));
    let entry = json!({"created": now, "created_by": "rt-image commit", "comment": comment});
    match config["history"].as_array_mut() {
        Some(h) => h.push(entry),
        None => config["history"] = json!([entry]),
    }
    let (config_digest, new) =
        store.write_blob(&serde_json::to_vec(&config).expect("json"), None)?;
    added.blob(config_digest.clone(), new);
    let config_size = store.blob_size(&config_digest).unwrap_or(0);

    // An OCI manifest, whatever the base's: Docker layer types mapped over.
    let Manifest::Image(_) = Manifest::parse(
        &store.read_blob(&base.manifest_digest)?,
        None,
        base.manifest_digest.as_ref(),
    )?
    else {
        return Err(Error::BadJson {
            what: base.manifest_digest.to_string(),
            reason: "not an image manifest".into(),
        });
    };
    let mut layers: Vec<Value> = Vec::new();
    for l in &base.layers {
        let mt = match l.compression()? {
            Compression::None => Compression::None.media_type(),
            Compression::Gzip => Compression::Gzip.media_type(),
            Compression::Zstd => Compression::Zstd.media_type(),
        };
        layers.push(json!({"mediaType": mt, "digest": l.digest.to_string(), "size": l.size}));
    }
    layers.push(json!({"mediaType": Compression::Gzip.media_type(), "digest": layer.to_string(), "size": size}));
    let manifest = json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest.to_string(), "size": config_size},
        "layers": layers,
    });
    let (manifest_digest, new) =
        store.write_blob(&serde_json::to_vec(&manifest).expect("json"), None)?;
    added.blob(manifest_digest.clone(), new);

    let img = Image::load(
        store,
        full,
        &ImageRecord {
            manifest: manifest_digest.clone(),
            index: None,
        },
    )?;
    added.layers.extend(img.unpack_layers(store)?);
    store.tag(
        full,
        ImageRecord {
            manifest: manifest_digest.clone(),
            index: None,
        },
    )?;
    Ok(Committed {
        name: full.to_string(),
        manifest: manifest_digest,
        config: config_digest,
        layer,
    })
}

/// Writes an overlay upper directory as a layer tarball.
pub fn write_layer(upper: &Path, out: impl Write) -> Result<()> {
    let mut b = tar::Builder::new(out);
    Layer {
        b: &mut b,
        links: HashMap::new(),
    }
    .dir(upper, Path::new(""))?;
    b.finish().at(upper)
}

/// Writes a directory tree as layer entries.
struct Layer<'a, W: Write> {
    b: &'a mut tar::Builder<W>,
    /// (dev, inode) of files with several links -> the first path written.
    links: HashMap<(u64, u64), String>,
}

impl<W: Write> Layer<'_, W> {
    fn dir(&mut self, root: &Path, rel: &Path) -> Result<()> {
        let path = root.join(rel);
        let mut names: Vec<_> = fs::read_dir(&path)
            .at(&path)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<io::Result<_>>()
            .at(&path)?;
        names.sort();
        for n in names {
            let child_rel = rel.join(&n);
            let child = root.join(&child_rel);
            let m = fs::symlink_metadata(&child).at(&child)?;
            let name = child_rel.to_string_lossy().to_string();
            let ft = m.file_type();
            if ft.is_char_device() && m.rdev() == 0 {
                // A deletion.
                let wh = rel.join(format!(".wh.{}", n.to_string_lossy()));
                self.entry(
                    &wh.to_string_lossy(),
                    &m,
                    EntryType::Regular,
                    0,
                    io::empty(),
                    &[],
                )?;
                continue;
            }
            let xattrs = xattrs(&child)?;
            if ft.is_dir() {
                self.entry(&name, &m, EntryType::Directory, 0, io::empty(), &xattrs)?;
                // trusted.* as root, user.* for a rootless (userxattr) overlay.
                let opaque = |n: &str| -> Result<bool> {
                    Ok(xattr::get(&child, n).at(&child)?.as_deref() == Some(b"y"))
                };
                if opaque("trusted.overlay.opaque")? || opaque("user.overlay.opaque")? {
                    let opq = child_rel.join(".wh..wh..opq");
                    self.entry(
                        &opq.to_string_lossy(),
                        &m,
                        EntryType::Regular,
                        0,
                        io::empty(),
                        &[],
                    )?;
                }
                self.dir(root, &child_rel)?;
            } else if ft.is_symlink() {
                let target = fs::read_link(&child).at(&child)?;
                let mut h = header(&m, EntryType::Symlink, 0);
                self.b.append_link(&mut h, &name, &target).at(&child)?;
            } else if ft.is_file() {
                if m.nlink() > 1 {
                    if let Some(first) = self.links.get(&(m.dev(), m.ino())) {
                        let mut h = header(&m, EntryType::Link, 0);
                        self.b.append_link(&mut h, &name, first).at(&child)?;
                        continue;
                    }
                    self.links.insert((m.dev(), m.ino()), name.clone());
                }
                let f = File::open(&child).at(&child)?;
                self.entry(&name, &m, EntryType::Regular, m.len(), f, &xattrs)?;
            } else {
                let kind = if ft.is_char_device() {
                    EntryType::Char
                } else if ft.is_block_device() {
                    EntryType::Block
                } else if ft.is_fifo() {
                    EntryType::Fifo
                } else {
                    continue; // sockets do not belong in images
                };
                let mut h = header(&m, kind, 0);
                if kind != EntryType::Fifo {
                    // Linux's majors are 12 bits and its minors 20.
                    #[allow(clippy::cast_possible_truncation)]
                    let (major, minor) = (
                        nix::sys::stat::major(m.rdev()) as u32,
                        nix::sys::stat::minor(m.rdev()) as u32,
                    );
                    h.set_device_major(major).at(&child)?;
                    h.set_device_minor(minor).at(&child)?;
                }
                self.b.append_data(&mut h, &name, io::empty()).at(&child)?;
            }
        }
        Ok(())
    }

    fn entry(
        &mut self,
        name: &str,
        m: &fs::Metadata,
        kind: EntryType,
        size: u64,
        data: impl io::Read,
        xattrs: &[(String, Vec<u8>)],
    ) -> Result<()> {
        if !xattrs.is_empty() {
            // A PAX header with SCHILY.xattr records, as GNU tar writes them.
            let mut pax = Vec::new();
            for (k, v) in xattrs {
                let body_len = format!(" SCHILY.xattr.{k}=").len() + v.len() + 1;
                let mut len = body_len + 1;
                while len != body_len + len.to_string().len() {
                    len = body_len + len.to_string().len();
                }
                pax.extend_from_slice(format!("{len} SCHILY.xattr.{k}=").as_bytes());
                pax.extend_from_slice(v);
                pax.push(b'\n');
            }
            let mut h = Header::new_ustar();
            h.set_entry_type(EntryType::XHeader);
            h.set_size(pax.len() as u64);
            h.set_mode(0o644);
            let short: String = format!("PaxHeaders/{name}").chars().take(90).collect();
            self.b.append_data(&mut h, short, &pax[..]).at(name)?;
        }
        let mut h = header(m, kind, size);
        self.b.append_data(&mut h, name, data).at(name)
    }
}

fn header(m: &fs::Metadata, kind: EntryType, size: u64) -> Header {
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(m.mode() & 0o7777);
    h.set_uid(m.uid() as u64);
    h.set_gid(m.gid() as u64);
    h.set_mtime(u64::try_from(m.mtime()).unwrap_or(0));
    h.set_size(size);
    h
}

/// A path's xattrs, but overlayfs's own.
fn xattrs(path: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    for name in xattr::list(path).at(path)? {
        let n = name.to_string_lossy().to_string();
        if n.starts_with("trusted.overlay.") || n.starts_with("user.overlay.") {
            continue;
        }
        if let Some(v) = xattr::get(path, &name).at(path)? {
            out.push((n, v));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unpack::{unpack, Whiteouts};
    use nix::sys::stat::{makedev, mknod, Mode, SFlag};

    #[test]
    fn overlay_markers_become_oci_whiteouts() {
        let upper = tempfile::tempdir().unwrap();
        let u = upper.path();
        fs::create_dir(u.join("d")).unwrap();
        xattr::set(u.join("d"), "trusted.overlay.opaque", b"y").unwrap();
        fs::write(u.join("d/new"), "n").unwrap();
        mknod(
            &u.join("gone"),
            SFlag::S_IFCHR,
            Mode::empty(),
            makedev(0, 0),
        )
        .unwrap();
        fs::write(u.join("a"), "linked").unwrap();
        fs::hard_link(u.join("a"), u.join("b")).unwrap();
        xattr::set(u.join("a"), "user.rt", b"kept").unwrap();
        let mut tar = Vec::new();
        write_layer(u, &mut tar).unwrap();

        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        fs::create_dir(r.join("d")).unwrap();
        fs::write(r.join("d/old"), "o").unwrap();
        fs::write(r.join("gone"), "g").unwrap();
        unpack(&tar[..], r, Whiteouts::Apply, "commit").unwrap();
        assert!(
            !r.join("d/old").exists(),
            "opaque dir hides the lower content"
        );
        assert_eq!(fs::read_to_string(r.join("d/new")).unwrap(), "n");
        assert!(!r.join("gone").exists(), "whiteout deletes");
        let (a, b) = (
            fs::metadata(r.join("a")).unwrap(),
            fs::metadata(r.join("b")).unwrap(),
        );
        assert_eq!(a.ino(), b.ino(), "hard link kept");
        assert_eq!(
            xattr::get(r.join("a"), "user.rt").unwrap(),
            Some(b"kept".to_vec())
        );
    }
}
