//! `rt-image tag SRC DEST`: another name for a stored image.

use crate::error::Result;
use crate::image::Image;
use crate::reference;
use crate::store::{ImageRecord, Store};

/// Names the image `src` finds `dest` too (replacing what `dest` named);
/// returns both full names.
pub fn tag(store: &Store, src: &str, dest: &str) -> Result<(String, String)> {
    let full = reference::normalize(dest)?;
    let _lock = store.lock()?;
    let images = store.images()?;
    let config_of = |r: &ImageRecord| {
        Image::load(store, "", r)
            .ok()
            .map(|i| i.config_digest.to_string())
    };
    let (name, rec) = reference::resolve(&images, src, config_of)?;
    // What it names must be whole, or the new name would name nothing.
    Image::load(store, name, rec)?;
    store.tag(&full, rec.clone())?;
    Ok((name.clone(), full))
}
