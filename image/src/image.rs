//! Images as the store holds them: a manifest (OCI or Docker schema 2), its
//! config and layers; and choosing a platform's manifest from an index.

use oci_spec::image::{ImageConfiguration, ImageIndex, ImageManifest};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::platform::Platform;
use crate::store::{ImageRecord, Store};
use crate::unpack::Compression;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// The manifest media types rt-image accepts, for a registry's `Accept`.
pub const MANIFEST_TYPES: [&str; 4] = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST];

/// What a manifest document is.
#[derive(Debug)]
pub enum Manifest {
    Image(Box<ImageManifest>),
    Index(Box<ImageIndex>),
}

impl Manifest {
    /// Parses a manifest or index, by its media type (the field, or the
    /// one a registry sent) or, lacking both, by its shape.
    pub fn parse(data: &[u8], media_type: Option<&str>, what: &str) -> Result<Manifest> {
        let bad = |reason: String| Error::BadJson {
            what: what.to_string(),
            reason,
        };
        let v: serde_json::Value = serde_json::from_slice(data).map_err(|e| bad(e.to_string()))?;
        let mt = v
            .get("mediaType")
            .and_then(|m| m.as_str())
            .map(str::to_string)
            .or_else(|| media_type.map(str::to_string));
        let is_index = match mt.as_deref() {
            Some(OCI_INDEX | DOCKER_LIST) => true,
            Some(OCI_MANIFEST | DOCKER_MANIFEST) => false,
            Some(other) => {
                return Err(Error::UnsupportedMediaType {
                    media_type: other.to_string(),
                    digest: what.to_string(),
                })
            }
            None => v.get("manifests").is_some(),
        };
        if is_index {
            serde_json::from_value(v)
                .map(|i| Manifest::Index(Box::new(i)))
                .map_err(|e| bad(e.to_string()))
        } else {
            serde_json::from_value(v)
                .map(|m| Manifest::Image(Box::new(m)))
                .map_err(|e| bad(e.to_string()))
        }
    }
}

/// The digest of the index entry for `platform`, and its media type.
pub fn choose_platform(
    index: &ImageIndex,
    platform: &Platform,
    reference: &str,
) -> Result<(Digest, String)> {
    let mut available = Vec::new();
    for m in index.manifests() {
        let Some(p) = m.platform() else { continue };
        let (os, arch) = (p.os().to_string(), p.architecture().to_string());
        if platform.matches(&os, &arch, p.variant().as_deref()) {
            let digest: Digest = m.digest().to_string().parse()?;
            return Ok((digest, m.media_type().to_string()));
        }
        available.push(match p.variant() {
            Some(v) => format!("{os}/{arch}/{v}"),
            None => format!("{os}/{arch}"),
        });
    }
    Err(Error::NoPlatform {
        reference: reference.to_string(),
        platform: platform.to_string(),
        available: if available.is_empty() {
            "none".into()
        } else {
            available.join(", ")
        },
    })
}

/// A layer of an image.
#[derive(Clone, Debug)]
pub struct Layer {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    pub diff_id: Digest,
}

impl Layer {
    pub fn compression(&self) -> Result<Compression> {
        Compression::from_media_type(&self.media_type).ok_or_else(|| Error::UnsupportedMediaType {
            media_type: self.media_type.clone(),
            digest: self.digest.to_string(),
        })
    }
}

/// A stored image, with its manifest and config read and checked.
#[derive(Debug)]
pub struct Image {
    pub name: String,
    pub manifest_digest: Digest,
    pub manifest_media_type: String,
    pub config_digest: Digest,
    pub config: ImageConfiguration,
    pub layers: Vec<Layer>,
}

impl Image {
    pub fn load(store: &Store, name: &str, rec: &ImageRecord) -> Result<Image> {
        let data = store.read_blob(&rec.manifest)?;
        Image::from_manifest(store, name, &rec.manifest, &data)
    }

    /// Reads an image from its manifest (whose config blob must be stored).
    pub fn from_manifest(store: &Store, name: &str, digest: &Digest, data: &[u8]) -> Result<Image> {
        let Manifest::Image(m) = Manifest::parse(data, None, digest.as_ref())? else {
            return Err(Error::BadJson {
                what: digest.to_string(),
                reason: "an index where an image manifest was expected".into(),
            });
        };
        let config_digest: Digest = m.config().digest().to_string().parse()?;
        let config_data = store.read_blob(&config_digest)?;
        Image::assemble(name, digest, &m, &config_digest, &config_data)
    }

    /// Puts an image together from its parsed manifest and config bytes,
    /// checking that the config lists one diff id per layer.
    pub fn assemble(
        name: &str,
        digest: &Digest,
        m: &ImageManifest,
        config_digest: &Digest,
        config_data: &[u8],
    ) -> Result<Image> {
        let config: ImageConfiguration =
            serde_json::from_slice(config_data).map_err(|e| Error::BadJson {
                what: format!("image config {config_digest}"),
                reason: e.to_string(),
            })?;
        let diff_ids = config.rootfs().diff_ids();
        if diff_ids.len() != m.layers().len() {
            return Err(Error::BadJson {
                what: format!("image config {config_digest}"),
                reason: format!(
                    "{} diff ids for {} layers",
                    diff_ids.len(),
                    m.layers().len()
                ),
            });
        }
        let mut layers = Vec::new();
        for (l, diff) in m.layers().iter().zip(diff_ids) {
            layers.push(Layer {
                digest: l.digest().to_string().parse()?,
                media_type: l.media_type().to_string(),
                size: l.size(),
                diff_id: diff.parse()?,
            });
        }
        Ok(Image {
            name: name.to_string(),
            manifest_digest: digest.clone(),
            manifest_media_type: m
                .media_type()
                .as_ref()
                .map(|t| t.to_string())
                .unwrap_or_else(|| OCI_MANIFEST.to_string()),
            config_digest: config_digest.clone(),
            config,
            layers,
        })
    }

    pub fn diff_ids(&self) -> Vec<Digest> {
        self.layers.iter().map(|l| l.diff_id.clone()).collect()
    }

    pub fn chain_ids(&self) -> Vec<Digest> {
        Digest::chain_ids(&self.diff_ids())
    }

    /// Unpacks the layers not unpacked yet; returns the chain ids unpacked
    /// now (the caller's to remove if what it was doing fails).
    pub fn unpack_layers(&self, store: &Store) -> Result<Vec<Digest>> {
        let mut new = Vec::new();
        for (layer, chain) in self.layers.iter().zip(self.chain_ids()) {
            match store.unpack_layer(&layer.digest, &layer.media_type, &layer.diff_id, &chain) {
                Ok(true) => new.push(chain),
                Ok(false) => {}
                Err(e) => {
                    for c in &new {
                        let _ = store.remove_layer(c);
                    }
                    return Err(e);
                }
            }
        }
        Ok(new)
    }

    /// The total size of the layer blobs.
    pub fn size(&self) -> u64 {
        self.layers.iter().map(|l| l.size).sum()
    }
}
