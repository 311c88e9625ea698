//! What one pull or import added to the store, removed again if it fails
//! so a bad input leaves nothing behind.

use crate::digest::Digest;
use crate::store::Store;

#[derive(Default)]
pub struct Added {
    pub blobs: Vec<Digest>,
    pub layers: Vec<Digest>,
}

impl Added {
    pub fn blob(&mut self, d: Digest, new: bool) -> Digest {
        if new {
            self.blobs.push(d.clone());
        }
        d
    }

    /// Removes everything recorded (best effort: the error being reported
    /// is the one that matters).
    pub fn rollback(self, store: &Store) {
        for l in &self.layers {
            let _ = store.remove_layer(l);
        }
        for b in &self.blobs {
            let _ = store.remove_blob(b);
        }
    }
}
