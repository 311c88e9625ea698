//! Image references: Docker Hub short names normalized the way `docker`
//! does (`alpine` = `docker.io/library/alpine:latest`), and finding an
//! image in the store by name, short name or id prefix.

use std::collections::BTreeMap;

use oci_client::Reference;

use crate::error::{Error, Result};
use crate::store::ImageRecord;

/// Parses a reference the way registries and `docker` read it.
pub fn parse(input: &str) -> Result<Reference> {
    input.parse::<Reference>().map_err(|e| Error::BadReference {
        reference: input.to_string(),
        reason: e.to_string(),
    })
}

/// The full name a reference is stored under.
pub fn normalize(input: &str) -> Result<String> {
    Ok(parse(input)?.whole())
}

/// The short form `docker images` shows (no `docker.io/library/`).
pub fn familiar(full: &str) -> String {
    full.strip_prefix("docker.io/library/")
        .or_else(|| full.strip_prefix("docker.io/"))
        .unwrap_or(full)
        .to_string()
}

/// Finds the stored image `input` names: its full name, the same under
/// `localhost/` (where imported images without a registry live), or a
/// unique prefix (at least 4 hex digits) of its manifest or config digest.
/// `config_of` gives an image's config digest.
pub fn resolve<'a>(
    images: &'a BTreeMap<String, ImageRecord>,
    input: &str,
    config_of: impl Fn(&ImageRecord) -> Option<String>,
) -> Result<(&'a String, &'a ImageRecord)> {
    let hex = input.strip_prefix("sha256:").unwrap_or(input);
    if hex.len() >= 4 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        let want = format!("sha256:{}", hex.to_ascii_lowercase());
        let hits: Vec<_> = images
            .iter()
            .filter(|(_, r)| {
                r.manifest.as_ref().starts_with(&want)
                    || config_of(r).is_some_and(|c| c.starts_with(&want))
            })
            .collect();
        let distinct: std::collections::BTreeSet<_> =
            hits.iter().map(|(_, r)| &r.manifest).collect();
        match distinct.len() {
            0 => {}
            1 => return Ok(hits[0]),
            _ => {
                return Err(Error::Ambiguous {
                    reference: input.to_string(),
                    matches: hits
                        .iter()
                        .map(|(n, _)| familiar(n))
                        .collect::<Vec<_>>()
                        .join(", "),
                })
            }
        }
    }
    let mut candidates = Vec::new();
    if let Ok(full) = normalize(input) {
        candidates.push(full);
    }
    if !input.contains('/') || !input.split('/').next().unwrap_or("").contains(['.', ':']) {
        if let Ok(full) = normalize(&format!("localhost/{input}")) {
            candidates.push(full);
        }
    }
    for c in candidates {
        if let Some(found) = images.get_key_value(&c) {
            return Ok(found);
        }
    }
    Err(Error::ImageNotFound(input.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;

    #[test]
    fn docker_hub_short_names() {
        assert_eq!(
            normalize("alpine:3.20").unwrap(),
            "docker.io/library/alpine:3.20"
        );
        assert_eq!(
            normalize("busybox").unwrap(),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(
            normalize("127.0.0.1:5000/a/b:v1").unwrap(),
            "127.0.0.1:5000/a/b:v1"
        );
        assert_eq!(familiar("docker.io/library/alpine:3.20"), "alpine:3.20");
        assert!(normalize("UPPER/Case").is_err());
    }

    #[test]
    fn resolves_names_and_id_prefixes() {
        let m = Digest::of(b"m");
        let mut images = BTreeMap::new();
        let rec = ImageRecord {
            manifest: m.clone(),
            index: None,
        };
        images.insert("localhost/img:latest".to_string(), rec.clone());
        images.insert("docker.io/library/alpine:3.20".to_string(), rec);
        let none = |_: &ImageRecord| None;
        assert_eq!(
            resolve(&images, "img", none).unwrap().0,
            "localhost/img:latest"
        );
        assert_eq!(
            resolve(&images, "alpine:3.20", none).unwrap().0,
            "docker.io/library/alpine:3.20"
        );
        assert!(
            resolve(&images, &m.hex()[..8], none).is_ok(),
            "one manifest, two names"
        );
        let err = resolve(&images, "nope", none).unwrap_err().to_string();
        assert!(err.contains("\"nope\""), "{err}");
    }
}
