//! `rt-image import`: OCI image layouts (a directory or a tar of one) and
//! docker-archive tarballs (`docker save`), with no registry.

use std::fs::{self, File};
use std::io::{self, BufReader};
use std::path::{Path, PathBuf};

use oci_spec::image::ImageIndex;
use serde::Deserialize;

use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::image::{choose_platform, Image, Manifest, OCI_CONFIG, OCI_MANIFEST};
use crate::platform::Platform;
use crate::reference;
use crate::store::{ImageRecord, Store};
use crate::txn::Added;
use crate::unpack;

/// An image an import stored.
#[derive(Debug)]
pub struct Imported {
    pub names: Vec<String>,
    pub manifest: Digest,
    pub config: Digest,
}

/// Imports every image in `path`. `name` names the image (when the
/// archive holds one). Nothing is kept if anything fails.
pub fn import(
    store: &Store,
    path: &Path,
    name: Option<&str>,
    platform: &Platform,
) -> Result<Vec<Imported>> {
    let meta = fs::metadata(path).at(path)?;
    let _lock = store.lock()?;
    let extracted;
    let dir = if meta.is_dir() {
        path.to_path_buf()
    } else {
        extracted = extract(store, path)?;
        extracted.path().to_path_buf()
    };
    let src = Source {
        root: dir.canonicalize().at(&dir)?,
        archive: path.to_path_buf(),
    };
    let mut added = Added::default();
    let r = if src.root.join("oci-layout").is_file() {
        oci_layout(store, &src, path, name, platform, &mut added)
    } else if src.root.join("manifest.json").is_file() {
        docker_archive(store, &src, path, name, &mut added)
    } else {
        Err(src.bad("neither an OCI image layout (oci-layout, index.json) nor a docker-archive (manifest.json)"))
    };
    match r {
        Ok(v) => Ok(v),
        Err(e) => {
            added.rollback(store);
            Err(e)
        }
    }
}

/// Extracts an archive into the store's tmp directory (removed on drop).
fn extract(store: &Store, path: &Path) -> Result<tempfile::TempDir> {
    let tmp = store.tmp_dir();
    let dir = tempfile::Builder::new()
        .prefix("import.")
        .tempdir_in(&tmp)
        .at(&tmp)?;
    let compression = unpack::sniff_file(path)?;
    let f = File::open(path).at(path)?;
    let r = compression.decoder(BufReader::new(f)).at(path)?;
    // The tar crate's unpack refuses `..` and writes through no symlink
    // out of the directory.
    tar::Archive::new(r)
        .unpack(dir.path())
        .map_err(|e| Error::BadArchive {
            path: path.to_path_buf(),
            reason: format!("not a readable tar archive: {e}"),
        })?;
    Ok(dir)
}

struct Source {
    root: PathBuf,
    archive: PathBuf,
}

impl Source {
    fn bad(&self, reason: impl Into<String>) -> Error {
        Error::BadArchive {
            path: self.archive.clone(),
            reason: reason.into(),
        }
    }

    /// A file of the layout or archive, refusing one that resolves out of
    /// it (a symlink to a host file).
    fn file(&self, rel: &str) -> Result<PathBuf> {
        let p = self
            .root
            .join(rel)
            .canonicalize()
            .map_err(|e| self.bad(format!("{rel}: {e}")))?;
        if !p.starts_with(&self.root) || !p.is_file() {
            return Err(self.bad(format!("{rel}: not a file inside the archive")));
        }
        Ok(p)
    }

    fn read(&self, rel: &str) -> Result<Vec<u8>> {
        let p = self.file(rel)?;
        fs::read(&p).at(p)
    }

    fn blob_rel(d: &Digest) -> String {
        format!("blobs/sha256/{}", d.hex())
    }

    /// Copies a file into the store as a blob, verified against `expected`.
    fn copy_blob(
        &self,
        store: &Store,
        rel: &str,
        expected: Option<&Digest>,
        added: &mut Added,
    ) -> Result<(Digest, u64)> {
        let p = self.file(rel)?;
        let mut f = File::open(&p).at(&p)?;
        let mut w = store.blob_writer(expected, None)?;
        io::copy(&mut f, &mut w).at(&p)?;
        let size = w.written();
        let (d, new) = w.commit()?;
        Ok((added.blob(d, new), size))
    }
}

/// The name an image without a full one in the archive is stored under:
/// `localhost/<file stem>:<tag>`.
fn default_name(path: &Path, tag: &str) -> Result<String> {
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy().to_string())
        .unwrap_or_default();
    let stem = [".tar.gz", ".tgz", ".tar", ".oci"]
        .iter()
        .find_map(|ext| file.strip_suffix(ext))
        .unwrap_or(&file)
        .to_ascii_lowercase();
    reference::normalize(&format!("localhost/{stem}:{tag}")).map_err(|_| Error::BadArchive {
        path: path.to_path_buf(),
        reason: format!("cannot name the image after {file:?}: give --name"),
    })
}

const NAME_ANNOTATIONS: [&str; 2] = [
    "io.containerd.image.name",
    "org.opencontainers.image.ref.name",
];

fn oci_layout(
    store: &Store,
    src: &Source,
    path: &Path,
    name: Option<&str>,
    platform: &Platform,
    added: &mut Added,
) -> Result<Vec<Imported>> {
    let data = src.read("index.json")?;
    let index: ImageIndex =
        serde_json::from_slice(&data).map_err(|e| src.bad(format!("index.json: {e}")))?;
    // (names, manifest, index it came from)
    let mut found: Vec<(Vec<String>, Digest, Option<Digest>)> = Vec::new();
    let mut unnamed = 0;
    for desc in index.manifests() {
        let digest: Digest = desc.digest().to_string().parse()?;
        let annotated = desc
            .annotations()
            .as_ref()
            .and_then(|a| NAME_ANNOTATIONS.iter().find_map(|k| a.get(*k).cloned()));
        let names = match (&annotated, name) {
            (_, Some(n)) => vec![reference::normalize(n)?],
            (Some(a), None) if a.contains('/') || a.contains(':') => vec![reference::normalize(a)?],
            (Some(tag), None) => vec![default_name(path, tag)?],
            (None, None) => {
                unnamed += 1;
                vec![default_name(path, "latest")?]
            }
        };
        let mt = desc.media_type().to_string();
        let (manifest, from_index) = match Manifest::parse(
            &src.read(&Source::blob_rel(&digest))?,
            Some(&mt),
            digest.as_ref(),
        )? {
            Manifest::Index(idx) => {
                let (m, _) = choose_platform(&idx, platform, &names[0])?;
                (m, Some(digest))
            }
            Manifest::Image(_) => {
                if let Some(p) = desc.platform() {
                    if !platform.matches(
                        &p.os().to_string(),
                        &p.architecture().to_string(),
                        p.variant().as_deref(),
                    ) {
                        continue;
                    }
                }
                (digest, None)
            }
        };
        found.push((names, manifest, from_index));
    }
    if found.is_empty() {
        return Err(src.bad(format!("index.json lists no image for {platform}")));
    }
    if found.len() > 1 && (name.is_some() || unnamed > 1) {
        return Err(src.bad(format!(
            "holds {} images: {}",
            found.len(),
            if name.is_some() {
                "--name names only one"
            } else {
                "several have no name"
            }
        )));
    }
    let mut out = Vec::new();
    for (names, manifest, idx) in found {
        if let Some(i) = &idx {
            src.copy_blob(store, &Source::blob_rel(i), Some(i), added)?;
        }
        src.copy_blob(store, &Source::blob_rel(&manifest), Some(&manifest), added)?;
        let data = store.read_blob(&manifest)?;
        let Manifest::Image(m) = Manifest::parse(&data, None, manifest.as_ref())? else {
            return Err(src.bad(format!("{manifest}: nested index")));
        };
        let config: Digest = m.config().digest().to_string().parse()?;
        src.copy_blob(store, &Source::blob_rel(&config), Some(&config), added)?;
        for l in m.layers() {
            let d: Digest = l.digest().to_string().parse()?;
            src.copy_blob(store, &Source::blob_rel(&d), Some(&d), added)?;
        }
        out.push(finish(store, names, manifest, idx, added)?);
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerArchiveEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

fn docker_archive(
    store: &Store,
    src: &Source,
    path: &Path,
    name: Option<&str>,
    added: &mut Added,
) -> Result<Vec<Imported>> {
    let data = src.read("manifest.json")?;
    let entries: Vec<DockerArchiveEntry> =
        serde_json::from_slice(&data).map_err(|e| src.bad(format!("manifest.json: {e}")))?;
    if entries.is_empty() {
        return Err(src.bad("manifest.json lists no image"));
    }
    if entries.len() > 1 && name.is_some() {
        return Err(src.bad(format!(
            "holds {} images: --name names only one",
            entries.len()
        )));
    }
    let mut out = Vec::new();
    for e in entries {
        // The config's file name is its digest (`<hex>.json`, or
        // `blobs/sha256/<hex>` in newer archives): check it when it is.
        let base = e.config.rsplit('/').next().unwrap_or("");
        let expected = Digest::from_hex(base.strip_suffix(".json").unwrap_or(base)).ok();
        let (config, config_size) = src.copy_blob(store, &e.config, expected.as_ref(), added)?;
        let mut layers = Vec::new();
        for l in &e.layers {
            let compression = unpack::sniff_file(&src.file(l)?)?;
            let (d, size) = src.copy_blob(store, l, None, added)?;
            layers.push(serde_json::json!({
                "mediaType": compression.media_type(), "digest": d.to_string(), "size": size
            }));
        }
        // A docker archive has no manifest: write the OCI one it implies.
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config.to_string(), "size": config_size},
            "layers": layers,
        });
        let (manifest, new) =
            store.write_blob(&serde_json::to_vec(&manifest).expect("json"), None)?;
        added.blob(manifest.clone(), new);
        let names = match (name, &e.repo_tags) {
            (Some(n), _) => vec![reference::normalize(n)?],
            (None, Some(tags)) if !tags.is_empty() => tags
                .iter()
                .map(|t| reference::normalize(t))
                .collect::<Result<_>>()?,
            _ => vec![default_name(path, "latest")?],
        };
        out.push(finish(store, names, manifest, None, added)?);
    }
    Ok(out)
}

/// Checks the stored image, unpacks its layers and names it.
fn finish(
    store: &Store,
    names: Vec<String>,
    manifest: Digest,
    index: Option<Digest>,
    added: &mut Added,
) -> Result<Imported> {
    let img = Image::load(
        store,
        &names[0],
        &ImageRecord {
            manifest: manifest.clone(),
            index: index.clone(),
        },
    )?;
    for l in &img.layers {
        l.compression()?;
    }
    let new = img.unpack_layers(store)?;
    added.layers.extend(new);
    for n in &names {
        store.tag(
            n,
            ImageRecord {
                manifest: manifest.clone(),
                index: index.clone(),
            },
        )?;
    }
    Ok(Imported {
        names,
        manifest,
        config: img.config_digest,
    })
}
