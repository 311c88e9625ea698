//! Garbage collection of the store: what no image name and no bundle uses
//! goes. Kept apart from [`crate::store`] because finding what is used means
//! reading images ([`crate::image`]), and the store itself knows only blobs,
//! layers and records.

use std::collections::BTreeSet;
use std::fs;

use crate::digest::Digest;
use crate::error::{IoContext, Result};
use crate::image::Image;
use crate::store::{ImageRecord, Store};

/// What `prune` removed.
#[derive(Debug, Default)]
pub struct PruneReport {
    pub blobs: Vec<Digest>,
    pub layers: Vec<Digest>,
    pub bytes: u64,
}

/// Removes blobs and layers that no image and no bundle uses, and
/// leftovers of interrupted work in `tmp/`.
pub fn prune(store: &Store) -> Result<PruneReport> {
    let mut blobs = BTreeSet::new();
    let mut layers = BTreeSet::new();
    for (name, rec) in store.images()? {
        let img = Image::load(store, &name, &rec)?;
        blobs.insert(img.manifest_digest.clone());
        blobs.extend(rec.index.clone());
        blobs.insert(img.config_digest.clone());
        blobs.extend(img.layers.iter().map(|l| l.digest.clone()));
        layers.extend(img.chain_ids());
    }
    // A bundle keeps its image's blobs too (`commit` builds on them),
    // even when no name points at the image any more.
    for b in store.bundles()? {
        if !b.dir.exists() {
            // Its directory was removed by hand: the record is stale.
            store.remove_bundle(&b.dir)?;
            continue;
        }
        let rec = ImageRecord {
            manifest: b.manifest.clone(),
            index: None,
        };
        if let Ok(img) = Image::load(store, &b.image, &rec) {
            blobs.insert(img.manifest_digest.clone());
            blobs.insert(img.config_digest.clone());
            blobs.extend(img.layers.iter().map(|l| l.digest.clone()));
        }
        layers.extend(b.layers);
    }
    let mut report = PruneReport::default();
    let dir = store.root().join("blobs/sha256");
    for e in fs::read_dir(&dir).at(&dir)? {
        let e = e.at(&dir)?;
        let name = e.file_name();
        let keep = Digest::from_hex(&name.to_string_lossy())
            .map(|d| blobs.contains(&d))
            .unwrap_or(false);
        if !keep {
            report.bytes += e.metadata().map(|m| m.len()).unwrap_or(0);
            fs::remove_file(e.path()).at(e.path())?;
            if let Ok(d) = Digest::from_hex(&name.to_string_lossy()) {
                report.blobs.push(d);
            }
        }
    }
    let dir = store.root().join("layers");
    for e in fs::read_dir(&dir).at(&dir)? {
        let e = e.at(&dir)?;
        let name = e.file_name();
        if name == "empty" {
            continue;
        }
        match Digest::from_hex(&name.to_string_lossy()) {
            Ok(d) if layers.contains(&d) => {}
            Ok(d) => {
                store.remove_layer(&d)?;
                report.layers.push(d);
            }
            Err(_) => fs::remove_dir_all(e.path()).at(e.path())?,
        }
    }
    store.forget_missing_sources()?;
    let dir = store.tmp_dir();
    for e in fs::read_dir(&dir).at(&dir)? {
        let p = e.at(&dir)?.path();
        let r = if p.is_dir() {
            fs::remove_dir_all(&p)
        } else {
            fs::remove_file(&p)
        };
        r.at(&p)?;
    }
    Ok(report)
}
