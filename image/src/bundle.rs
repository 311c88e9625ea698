//! `rt-image bundle`: a bundle directory whose `rootfs` is an overlay of
//! the store's shared layers with a private upper directory (or a full
//! copy), and whose config.json comes from the image config.
//!
//! ```text
//! DIR/config.json
//! DIR/rootfs/            the overlay mount (or the copy)
//! DIR/.rt-image/upper/   this bundle's writes
//! DIR/.rt-image/work/    overlayfs's work directory
//! ```

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::error::{Error, IoContext, Result};
use crate::image::Image;
use crate::reference;
use crate::runtime_config::{self, Overrides};
use crate::store::{BundleRecord, Store};
use crate::unpack::Whiteouts;

const META: &str = ".rt-image";

#[derive(Clone, Debug, Default)]
pub struct Options {
    /// A full copy of the layers instead of an overlay.
    pub copy: bool,
    pub overrides: Overrides,
}

/// What `make` made.
#[derive(Debug)]
pub struct Made {
    pub dir: PathBuf,
    pub image: String,
    /// None for an overlay; why it copied otherwise.
    pub copied: Option<String>,
    /// What of the image config the bundle does not do, for the user.
    pub notes: Vec<String>,
}

/// Removes what a failed `make` created (mount first).
struct Cleanup {
    dir: PathBuf,
    created_dir: bool,
    mounted: bool,
    armed: bool,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if self.mounted {
            let _ = umount2(&self.dir.join("rootfs"), MntFlags::MNT_DETACH);
        }
        if self.created_dir {
            let _ = fs::remove_dir_all(&self.dir);
        } else {
            for p in ["rootfs", META, "config.json"] {
                let p = self.dir.join(p);
                let _ = if p.is_dir() {
                    fs::remove_dir_all(&p)
                } else {
                    fs::remove_file(&p)
                };
            }
        }
    }
}

fn bad(dir: &Path, reason: impl Into<String>) -> Error {
    Error::Bundle {
        path: dir.to_path_buf(),
        reason: reason.into(),
    }
}

/// Makes a bundle of image `input` in `dir` (which must not exist or be
/// empty).
pub fn make(store: &Store, input: &str, dir: &Path, opts: &Options) -> Result<Made> {
    let _lock = store.lock()?;
    let images = store.images()?;
    let config_of = |r: &crate::store::ImageRecord| {
        Image::load(store, "", r)
            .ok()
            .map(|i| i.config_digest.to_string())
    };
    let (name, rec) = reference::resolve(&images, input, config_of)?;
    let img = Image::load(store, name, rec)?;
    img.unpack_layers(store)?;
    let shown = reference::familiar(name);

    let created_dir = match fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(bad(dir, "already exists and is not empty"));
            }
            false
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir(dir).at(dir)?;
            true
        }
        Err(e) => {
            return Err(Error::Io {
                path: dir.into(),
                err: e,
            })
        }
    };
    let mut guard = Cleanup {
        dir: dir.to_path_buf(),
        created_dir,
        mounted: false,
        armed: true,
    };
    let dir = dir.canonicalize().at(dir)?;
    guard.dir = dir.clone();
    let rootfs = dir.join("rootfs");
    let meta = dir.join(META);
    for d in [&rootfs, &meta, &meta.join("upper"), &meta.join("work")] {
        fs::create_dir(d).at(d)?;
    }

    let mut copied = opts.copy.then(|| "--copy".to_string());
    let chains = img.chain_ids();
    let rootless = rt::rootless::detect().is_rootless();
    // Rootless, the container mounts the overlay itself (first in its
    // mounts, after its user namespace is made): tried here first, in
    // rt-image's own namespaces, so a kernel that refuses it is said now.
    let mut container_overlay = None;
    if !opts.copy {
        let data = overlay_data(store, &chains, &rootfs, &meta, rootless);
        let mounted = data.and_then(|d| {
            mount_overlay(&rootfs, &d)?;
            Ok(d)
        });
        match mounted {
            Ok(d) if rootless => {
                umount2(&rootfs, MntFlags::MNT_DETACH).at(&rootfs)?;
                container_overlay = Some(d);
            }
            Ok(_) => guard.mounted = true,
            Err(e) if rootless && !in_own_userns() => {
                copied = Some(format!(
                    "overlay unavailable ({e}; without a subuid range and newuidmap rt-image \
                     has no user namespace to try it in)"
                ))
            }
            Err(e) => copied = Some(format!("overlay unavailable ({e})")),
        }
    }
    if copied.is_some() {
        for l in &img.layers {
            store.apply_layer(
                &l.digest,
                l.compression()?,
                &l.diff_id,
                &rootfs,
                Whiteouts::Apply,
            )?;
        }
    }

    let mut spec = runtime_config::build(&img.config, &shown, &rootfs, &opts.overrides)?;
    if let Some(d) = container_overlay {
        let options: Vec<&str> = d.split(',').collect();
        let m = serde_json::json!({
            "destination": "/", "type": "overlay", "source": "overlay", "options": options
        });
        if let Some(mounts) = spec["mounts"].as_array_mut() {
            mounts.insert(0, m);
        }
    }
    let path = dir.join("config.json");
    fs::write(&path, serde_json::to_vec_pretty(&spec).expect("json")).at(&path)?;
    store.add_bundle(&BundleRecord {
        dir: dir.clone(),
        image: name.clone(),
        manifest: img.manifest_digest.clone(),
        layers: if copied.is_some() { Vec::new() } else { chains },
        overlay: copied.is_none(),
    })?;
    guard.armed = false;
    let mut notes = Vec::new();
    let volumes = img
        .config
        .config()
        .as_ref()
        .and_then(|c| c.volumes().clone())
        .unwrap_or_default();
    if !volumes.is_empty() {
        notes.push(format!(
            "the image declares volumes ({}): they stay plain directories of the rootfs, no volume is made",
            volumes.join(", ")
        ));
    }
    Ok(Made {
        dir,
        image: shown,
        copied,
        notes,
    })
}

/// Whether this is rt-image's own user namespace (crate::userns).
fn in_own_userns() -> bool {
    rt::rootless::detect() == rt::rootless::Mode::NamespacedRoot
}

/// The overlay's mount data: the layers (top first), the bundle's upper
/// and work directories, and `userxattr` without root (the whiteouts are
/// `user.overlay.*` then, see crate::unpack).
fn overlay_data(
    store: &Store,
    chains: &[crate::digest::Digest],
    rootfs: &Path,
    meta: &Path,
    rootless: bool,
) -> Result<String> {
    // overlayfs lists the top layer first.
    let mut lower: Vec<String> = chains
        .iter()
        .rev()
        .map(|c| store.layer_path(c).display().to_string())
        .collect();
    if lower.is_empty() {
        lower.push(store.empty_layer()?.display().to_string());
    }
    for p in &lower {
        if p.contains([':', ',']) {
            return Err(bad(
                rootfs,
                format!("store path {p} has ':' or ',', which overlayfs options cannot carry"),
            ));
        }
    }
    let mut data = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        meta.join("upper").display(),
        meta.join("work").display()
    );
    if rootless {
        data.push_str(",userxattr");
    }
    Ok(data)
}

fn mount_overlay(rootfs: &Path, data: &str) -> Result<()> {
    mount(
        Some("overlay"),
        rootfs,
        Some("overlay"),
        MsFlags::empty(),
        Some(data),
    )
    .at(rootfs)
}

/// Unmounts and removes a bundle `make` made, releasing the network
/// `rt-image run` attached it to.
pub fn remove(store: &Store, dir: &Path) -> Result<()> {
    let _lock = store.lock()?;
    let dir = match dir.canonicalize() {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // Removed by hand: forget the record so its layers can go.
            let abs = std::path::absolute(dir).at(dir)?;
            if store.bundle(&abs)?.is_some() {
                return store.remove_bundle(&abs);
            }
            return Err(Error::Io {
                path: dir.into(),
                err: e,
            });
        }
        Err(e) => {
            return Err(Error::Io {
                path: dir.into(),
                err: e,
            })
        }
    };
    let Some(rec) = store.bundle(&dir)? else {
        return Err(bad(
            &dir,
            format!(
                "not a bundle rt-image made with the store {}",
                store.root().display()
            ),
        ));
    };
    let rootfs = dir.join("rootfs");
    if rec.overlay {
        match umount2(&rootfs, MntFlags::empty()) {
            Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => {}
            Err(nix::Error::EBUSY) => {
                return Err(bad(
                    &dir,
                    "rootfs is busy: is a container still running from it?",
                ))
            }
            Err(e) => return Err(e).at(&rootfs),
        }
    }
    // The container is gone (its rootfs was not busy): its network goes.
    crate::network::detach(&dir)?;
    fs::remove_dir_all(&dir).at(&dir)?;
    store.remove_bundle(&dir)
}
