//! The library's error type: every variant names what was wrong (the ref,
//! path, digest or entry) so the command line prints one clear line.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    // The io error is part of the message, not a source: printed once.
    #[error("{path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
    #[error("invalid digest {0:?}: expected sha256:<64 hex digits>")]
    BadDigest(String),
    #[error("blob {expected}: content has digest {actual} (corrupt or tampered)")]
    DigestMismatch { expected: String, actual: String },
    #[error("blob {digest}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        digest: String,
        expected: u64,
        actual: u64,
    },
    #[error("layer {digest}: uncompressed content has digest {actual}, the image config says {expected}")]
    DiffIdMismatch {
        digest: String,
        expected: String,
        actual: String,
    },
    #[error("blob {0} is not in the store")]
    MissingBlob(String),
    #[error("invalid reference {reference:?}: {reason}")]
    BadReference { reference: String, reason: String },
    #[error("image {0:?} not found in the store")]
    ImageNotFound(String),
    #[error("image reference {reference:?} is ambiguous: {matches}")]
    Ambiguous { reference: String, matches: String },
    #[error("layer {layer}: entry {entry:?}: {reason}")]
    UnsafeEntry {
        layer: String,
        entry: String,
        reason: String,
    },
    #[error("layer {layer}: {reason}")]
    BadLayer { layer: String, reason: String },
    #[error("unsupported media type {media_type:?} for {digest}")]
    UnsupportedMediaType { media_type: String, digest: String },
    #[error("{what}: invalid JSON: {reason}")]
    BadJson { what: String, reason: String },
    #[error("{path}: {reason}")]
    BadArchive { path: PathBuf, reason: String },
    #[error("{reference}: no manifest for platform {platform} (available: {available})")]
    NoPlatform {
        reference: String,
        platform: String,
        available: String,
    },
    #[error("invalid platform {0:?}: expected os/arch[/variant]")]
    BadPlatform(String),
    #[error("{reference}: {reason}")]
    Registry { reference: String, reason: String },
    #[error("bundle {path}: {reason}")]
    Bundle { path: PathBuf, reason: String },
    /// Where the image store is cannot be known.
    #[error("{0}")]
    NoStore(String),
    /// rt-image's own user namespace (for a user with subuid ranges).
    #[error("rootless: rt-image's user namespace: {0}")]
    UserNamespace(String),
    #[error("image {image}: user {user:?}: {reason}")]
    User {
        image: String,
        user: String,
        reason: String,
    },
    #[error("{path}: {reason}")]
    Auth { path: PathBuf, reason: String },
    /// The registry refused the credentials `login` was given.
    #[error("login to {registry} refused: {reason}")]
    Login { registry: String, reason: String },
    /// What the registry says it stored is not what was sent.
    #[error("{reference}: sent {what} {digest}, the registry reports it as {reported}")]
    RemoteDigest {
        reference: String,
        what: String,
        digest: String,
        reported: String,
    },
    /// A CNI plugin failed: its own message (or its stderr), named.
    #[error("CNI plugin {plugin} ({command} on network {network}): {reason}")]
    Cni {
        plugin: String,
        command: String,
        network: String,
        reason: String,
    },
    /// A container's network: its namespace, its ports, its state.
    #[error("network: {0}")]
    Network(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches a path to an io::Error.
pub(crate) trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|err| Error::Io {
            path: path.into(),
            err,
        })
    }
}

impl<T> IoContext<T> for nix::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::Io {
            path: path.into(),
            err: std::io::Error::from(e),
        })
    }
}

/// An error and its chain of sources on one line ("a: b: c").
pub(crate) fn with_sources(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(&format!(": {inner}"));
        src = inner.source();
    }
    s
}
