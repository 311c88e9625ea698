//! `rt-image push`: a stored image to an OCI or Docker registry, through
//! oci-client (OCI distribution spec, "Push"):
//!
//! - each blob is asked for first (`HEAD /v2/<name>/blobs/<digest>`) and
//!   skipped when the registry has it;
//! - a blob the store knows another repository of the same registry holds
//!   is mounted from there (`POST .../blobs/uploads/?mount=&from=`);
//! - the rest is uploaded in chunks (`POST`, `PATCH`..., `PUT ?digest=`), or
//!   in one `PUT` when the registry does not answer the chunked protocol as
//!   the spec says;
//! - manifests go last, byte for byte as stored (an OCI or Docker schema 2
//!   manifest keeps its media type and digest); an index whose platforms
//!   are all in the store is pushed with every one of them.
//!
//! Nothing in the store changes but the record of which repositories hold
//! which blobs, written when a push succeeds.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::Read;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use sha2::{Digest as _, Sha256};

use crate::auth;
use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::image::{Image, Manifest, OCI_INDEX, OCI_MANIFEST};
use crate::reference;
use crate::store::Store;

/// How much of a blob one upload request carries (oci-client's largest
/// chunk): also how often progress is reported.
const CHUNK: usize = 4 << 20;

#[derive(Clone, Debug)]
pub struct Options {
    /// Talk plain HTTP (a registry on loopback).
    pub plain_http: bool,
    /// Accept any TLS certificate.
    pub insecure: bool,
    /// docker's config.json with credentials (None: anonymous).
    pub docker_config: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            plain_http: false,
            insecure: false,
            docker_config: auth::default_config_path(),
        }
    }
}

/// What a push reports as it goes (the command line draws it).
#[derive(Debug)]
pub enum Event<'a> {
    /// The repository the push goes to (`registry/name`).
    Target { repository: &'a str },
    /// Platforms of the image's index the store does not hold: the index
    /// cannot be pushed, only the image's own platform.
    PartialIndex {
        index: &'a Digest,
        missing: &'a [String],
    },
    /// A blob the registry has already.
    Exists { digest: &'a Digest },
    /// A blob mounted from another repository of the registry.
    Mounted { digest: &'a Digest, from: &'a str },
    /// An upload starts.
    Start { digest: &'a Digest, size: u64 },
    /// Bytes of an upload were sent.
    Progress { digest: &'a Digest, bytes: u64 },
    /// An upload is complete and the registry has it under its digest.
    Done { digest: &'a Digest },
    /// A platform's manifest was pushed (by digest, under an index).
    Platform {
        platform: &'a str,
        digest: &'a Digest,
        size: u64,
    },
}

/// What a push did.
#[derive(Debug)]
pub struct Pushed {
    /// The full reference pushed to.
    pub reference: String,
    /// The digest of what the tag now names (a manifest or an index).
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    pub uploaded: Vec<Digest>,
    pub existing: Vec<Digest>,
    pub mounted: Vec<Digest>,
}

/// One manifest to push, with the image it describes.
struct Part {
    image: Image,
    data: Vec<u8>,
    platform: Option<String>,
}

/// Pushes stored image `src` to `dest` (by default the name it is stored
/// under). Nothing in the store changes if it fails.
pub fn push(
    store: &Store,
    src: &str,
    dest: Option<&str>,
    opts: &Options,
    progress: &mut dyn FnMut(Event),
) -> Result<Pushed> {
    let _lock = store.lock()?;
    let images = store.images()?;
    let config_of = |r: &crate::store::ImageRecord| {
        Image::load(store, "", r)
            .ok()
            .map(|i| i.config_digest.to_string())
    };
    let (name, rec) = reference::resolve(&images, src, config_of)?;
    let dest = dest.map(str::to_string).unwrap_or_else(|| name.clone());
    let target = reference::parse(&dest)?;
    if target.digest().is_some() {
        return Err(Error::BadReference {
            reference: dest,
            reason: "a push names a tag, not a digest".into(),
        });
    }
    let main = {
        let data = store.read_blob(&rec.manifest)?;
        let image = Image::from_manifest(store, name, &rec.manifest, &data)?;
        Part {
            image,
            data,
            platform: None,
        }
    };
    let mut parts = Vec::new();
    let mut index = None;
    let mut missing = Vec::new();
    if let Some(i) = rec.index.as_ref().filter(|i| store.has_blob(i)) {
        let data = store.read_blob(i)?;
        let Manifest::Index(idx) = Manifest::parse(&data, None, i.as_ref())? else {
            return Err(Error::BadJson {
                what: i.to_string(),
                reason: "an image manifest where an index was expected".into(),
            });
        };
        for m in idx.manifests() {
            let platform = m
                .platform()
                .as_ref()
                .map(|p| match p.variant() {
                    Some(v) => format!("{}/{}/{v}", p.os(), p.architecture()),
                    None => format!("{}/{}", p.os(), p.architecture()),
                })
                .unwrap_or_else(|| m.digest().to_string());
            let d: Digest = m.digest().to_string().parse()?;
            let held = store
                .read_blob(&d)
                .ok()
                .and_then(|data| {
                    Image::from_manifest(store, name, &d, &data)
                        .ok()
                        .map(|image| (image, data))
                })
                .filter(|(image, _)| image.layers.iter().all(|l| store.has_blob(&l.digest)));
            match held {
                Some((image, data)) => parts.push(Part {
                    image,
                    data,
                    platform: Some(platform),
                }),
                None => missing.push(platform),
            }
        }
        if missing.is_empty() {
            let media_type = idx
                .media_type()
                .as_ref()
                .map(|t| t.to_string())
                .unwrap_or_else(|| OCI_INDEX.to_string());
            index = Some((i.clone(), data, media_type));
        } else {
            progress(Event::PartialIndex {
                index: i,
                missing: &missing,
            });
            parts.clear();
        }
    }
    if index.is_none() {
        parts = vec![main];
    }
    // Everything must be here before the first request.
    for p in &parts {
        for l in &p.image.layers {
            if !store.has_blob(&l.digest) {
                return Err(Error::MissingBlob(l.digest.to_string()));
            }
        }
    }

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .at("tokio runtime")?;
    let auth = auth::for_registry(opts.docker_config.as_deref(), target.resolve_registry())?;
    let client = |monolithic: bool| {
        Client::new(ClientConfig {
            protocol: if opts.plain_http {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            accept_invalid_certificates: opts.insecure,
            use_monolithic_push: monolithic,
            platform_resolver: None,
            ..Default::default()
        })
    };
    let repository = format!("{}/{}", target.resolve_registry(), target.repository());
    let sources = store.blob_sources()?;
    let pusher = Pusher {
        store,
        chunked: client(false),
        monolithic: client(true),
        auth,
        input: dest.clone(),
        target,
        opts,
        sources,
        repository,
    };
    let pushed = rt.block_on(pusher.run(parts, index, progress))?;
    let mut blobs: Vec<Digest> = pushed.uploaded.clone();
    blobs.extend(pushed.existing.iter().cloned());
    blobs.extend(pushed.mounted.iter().cloned());
    // Best effort: the push itself succeeded, and a missing record only
    // costs a later push to another repository a mount.
    let _ = store.add_blob_sources(&pusher.repository, &blobs);
    Ok(pushed)
}

struct Pusher<'a> {
    store: &'a Store,
    chunked: Client,
    monolithic: Client,
    auth: RegistryAuth,
    input: String,
    target: Reference,
    opts: &'a Options,
    sources: std::collections::BTreeMap<Digest, BTreeSet<String>>,
    /// `registry/repository` of the target.
    repository: String,
}

/// How an upload ended when it did not.
enum Failed {
    Registry(OciDistributionError),
    /// The store's copy of the blob does not have its digest.
    Corrupt(Error),
}

impl Pusher<'_> {
    fn err(&self, reason: impl Into<String>) -> Error {
        Error::Registry {
            reference: self.input.clone(),
            reason: reason.into(),
        }
    }

    fn registry_err(&self, what: &str, e: OciDistributionError) -> Error {
        let registry = self.target.resolve_registry();
        let config = self
            .opts
            .docker_config
            .as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "the docker config".into());
        let denied = |code: u16, detail: String| {
            match (code, &self.auth) {
            (401, RegistryAuth::Anonymous) => format!(
                "not authorized (HTTP 401{detail}): no credentials for {registry} in {config}: rt-image login {registry}"
            ),
            (401, _) => format!(
                "not authorized (HTTP 401{detail}) with the credentials for {registry} in {config}: rt-image login {registry}"
            ),
            (403, _) => format!("denied (HTTP 403{detail}): the registry refuses this push"),
            (c, _) => format!("HTTP {c}{detail}"),
        }
        };
        let reason = match e {
            OciDistributionError::ServerError { code, message, .. } => denied(
                code,
                envelope(&message)
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default(),
            ),
            OciDistributionError::UnauthorizedError { .. } => denied(401, String::new()),
            OciDistributionError::AuthenticationFailure(m) => {
                let m = envelope(&m).unwrap_or(m);
                match &self.auth {
                    RegistryAuth::Anonymous => format!(
                        "the token service refuses anonymous access ({m}): no credentials for {registry} in {config}: rt-image login {registry}"
                    ),
                    _ => format!(
                        "the token service refuses the credentials for {registry} in {config} ({m}): rt-image login {registry}"
                    ),
                }
            }
            OciDistributionError::RegistryError { envelope, .. } => envelope
                .errors
                .iter()
                .map(|x| format!("{:?}: {}", x.code, x.message))
                .collect::<Vec<_>>()
                .join("; "),
            OciDistributionError::RequestError(e) => match e.status() {
                Some(s) => denied(s.as_u16(), String::new()),
                None => {
                    // The URL (with the upload's state token) says nothing
                    // the reference does not.
                    let e = e.without_url();
                    format!(
                        "connection to the registry failed: {}",
                        crate::error::with_sources(&e)
                    )
                }
            },
            other => other.to_string(),
        };
        self.err(format!("{what}: {reason}"))
    }

    async fn run(
        &self,
        parts: Vec<Part>,
        index: Option<(Digest, Vec<u8>, String)>,
        progress: &mut dyn FnMut(Event<'_>),
    ) -> Result<Pushed> {
        progress(Event::Target {
            repository: &self.repository,
        });
        for c in [&self.chunked, &self.monolithic] {
            c.auth(&self.target, &self.auth, RegistryOperation::Push)
                .await
                .map_err(|e| self.registry_err("authentication", e))?;
        }
        let mut done = BTreeSet::new();
        let mut pushed = Pushed {
            reference: self.target.whole(),
            digest: index
                .as_ref()
                .map(|(d, _, _)| d.clone())
                .unwrap_or_else(|| parts[0].image.manifest_digest.clone()),
            media_type: String::new(),
            size: 0,
            uploaded: Vec::new(),
            existing: Vec::new(),
            mounted: Vec::new(),
        };
        for p in &parts {
            for l in &p.image.layers {
                self.blob(&l.digest, l.size, &mut done, &mut pushed, progress)
                    .await?;
            }
            let c = &p.image.config_digest;
            let size = self.store.blob_size(c).unwrap_or(0);
            self.blob(c, size, &mut done, &mut pushed, progress).await?;
        }
        if let Some((digest, data, media_type)) = index {
            for p in &parts {
                let d = &p.image.manifest_digest;
                let r = self.target.clone_with_digest(d.to_string());
                self.manifest(&r, d, &p.data, &p.image.manifest_media_type)
                    .await?;
                progress(Event::Platform {
                    platform: p.platform.as_deref().unwrap_or(""),
                    digest: d,
                    size: p.data.len() as u64,
                });
            }
            self.manifest(&self.target, &digest, &data, &media_type)
                .await?;
            pushed.size = data.len() as u64;
            pushed.media_type = media_type;
        } else {
            let p = &parts[0];
            let mt = if p.image.manifest_media_type.is_empty() {
                OCI_MANIFEST
            } else {
                &p.image.manifest_media_type
            };
            self.manifest(&self.target, &p.image.manifest_digest, &p.data, mt)
                .await?;
            pushed.size = p.data.len() as u64;
            pushed.media_type = mt.to_string();
        }
        Ok(pushed)
    }

    async fn manifest(
        &self,
        r: &Reference,
        d: &Digest,
        data: &[u8],
        media_type: &str,
    ) -> Result<()> {
        let what = format!("manifest {d}");
        let ct = reqwest::header::HeaderValue::from_str(media_type).map_err(|_| {
            Error::UnsupportedMediaType {
                media_type: media_type.to_string(),
                digest: d.to_string(),
            }
        })?;
        let location = self
            .chunked
            .push_manifest_raw(r, data.to_vec(), ct)
            .await
            .map_err(|e| self.registry_err(&what, e))?;
        self.check_location(&location, "/manifests/", "manifest", d)
    }

    /// A registry names what it stored in the `Location` it answers with
    /// (`.../blobs/<digest>`, `.../manifests/<digest>`): it must be what
    /// was sent.
    fn check_location(&self, location: &str, kind: &str, what: &str, d: &Digest) -> Result<()> {
        let path = location.split(['?', '#']).next().unwrap_or("");
        let Some((_, named)) = path.rsplit_once(kind) else {
            return Ok(());
        };
        if named.contains(':') && named != d.as_ref() {
            return Err(Error::RemoteDigest {
                reference: self.input.clone(),
                what: what.to_string(),
                digest: d.to_string(),
                reported: named.to_string(),
            });
        }
        Ok(())
    }

    async fn blob(
        &self,
        d: &Digest,
        size: u64,
        done: &mut BTreeSet<Digest>,
        pushed: &mut Pushed,
        progress: &mut dyn FnMut(Event<'_>),
    ) -> Result<()> {
        if !done.insert(d.clone()) {
            return Ok(());
        }
        let what = format!("blob {d}");
        let exists = self
            .chunked
            .blob_exists(&self.target, d.as_ref())
            .await
            .map_err(|e| self.registry_err(&what, e))?;
        if exists {
            progress(Event::Exists { digest: d });
            pushed.existing.push(d.clone());
            return Ok(());
        }
        let registry = format!("{}/", self.target.resolve_registry());
        for src in self.sources.get(d).into_iter().flatten() {
            let Some(repo) = src.strip_prefix(&registry) else {
                continue;
            };
            if repo == self.target.repository() {
                continue;
            }
            let from = Reference::with_tag(
                self.target.registry().to_string(),
                repo.to_string(),
                "latest".to_string(),
            );
            // A registry that cannot mount (202: an upload starts instead,
            // or no access to the source) just gets the blob uploaded.
            if self
                .chunked
                .mount_blob(&self.target, &from, d.as_ref())
                .await
                .is_ok()
            {
                progress(Event::Mounted {
                    digest: d,
                    from: repo,
                });
                pushed.mounted.push(d.clone());
                return Ok(());
            }
        }
        progress(Event::Start { digest: d, size });
        let location = match self.upload(&self.chunked, d, size, progress).await {
            Err(Failed::Registry(OciDistributionError::SpecViolationError(_))) => {
                self.upload(&self.monolithic, d, size, progress).await
            }
            other => other,
        };
        let location = location.map_err(|f| match f {
            Failed::Registry(e) => self.registry_err(&what, e),
            Failed::Corrupt(e) => e,
        })?;
        self.check_location(&location, "/blobs/", "blob", d)?;
        progress(Event::Done { digest: d });
        pushed.uploaded.push(d.clone());
        Ok(())
    }

    /// Streams a stored blob to the registry, checking on the way that it
    /// still has its digest (a changed file never completes an upload).
    async fn upload(
        &self,
        client: &Client,
        d: &Digest,
        size: u64,
        progress: &mut dyn FnMut(Event<'_>),
    ) -> std::result::Result<String, Failed> {
        let path = self.store.blob_path(d);
        let file = File::open(&path).at(&path).map_err(Failed::Corrupt)?;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
        let corrupt: Arc<Mutex<Option<Error>>> = Arc::default();
        let stream = blob_stream(file, d.clone(), size, tx, corrupt.clone());
        let upload = client.push_blob_stream(&self.target, stream, d.as_ref(), Some(size));
        tokio::pin!(upload);
        let result = loop {
            tokio::select! {
                r = &mut upload => break r,
                Some(n) = rx.recv() => progress(Event::Progress { digest: d, bytes: n }),
            }
        };
        while let Ok(n) = rx.try_recv() {
            progress(Event::Progress {
                digest: d,
                bytes: n,
            });
        }
        if let Some(e) = corrupt.lock().expect("not poisoned").take() {
            return Err(Failed::Corrupt(e));
        }
        result.map_err(Failed::Registry)
    }
}

/// A blob file as a stream of chunks for oci-client, hashed as it is read;
/// at the end, a digest or size other than the expected one ends the
/// stream with an error (recorded in `corrupt`) instead of completing it.
fn blob_stream(
    file: File,
    expected: Digest,
    size: u64,
    sent: tokio::sync::mpsc::UnboundedSender<u64>,
    corrupt: Arc<Mutex<Option<Error>>>,
) -> impl futures_util::Stream<Item = oci_client::errors::Result<bytes::Bytes>> + Send + 'static {
    struct St {
        file: File,
        hasher: Option<Sha256>,
        count: u64,
    }
    let st = St {
        file,
        hasher: Some(Sha256::new()),
        count: 0,
    };
    futures_util::stream::unfold(st, move |mut st| {
        let expected = expected.clone();
        let sent = sent.clone();
        let corrupt = corrupt.clone();
        async move {
            let hasher = st.hasher.as_mut()?;
            let mut buf = vec![0u8; CHUNK];
            let mut n = 0;
            while n < buf.len() {
                match st.file.read(&mut buf[n..]) {
                    Ok(0) => break,
                    Ok(k) => n += k,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        st.hasher = None;
                        return Some((Err(OciDistributionError::IoError(e)), st));
                    }
                }
            }
            if n > 0 {
                hasher.update(&buf[..n]);
                st.count += n as u64;
                buf.truncate(n);
                let _ = sent.send(n as u64);
                return Some((Ok(bytes::Bytes::from(buf)), st));
            }
            let actual = Digest::from_hasher(st.hasher.take()?);
            let bad = if actual != expected {
                Some(Error::DigestMismatch {
                    expected: expected.to_string(),
                    actual: actual.to_string(),
                })
            } else if st.count != size {
                Some(Error::SizeMismatch {
                    digest: expected.to_string(),
                    expected: size,
                    actual: st.count,
                })
            } else {
                None
            };
            let e = bad?;
            let msg = e.to_string();
            *corrupt.lock().expect("not poisoned") = Some(e);
            Some((Err(OciDistributionError::GenericError(Some(msg))), st))
        }
    })
}

/// The first error of a registry's JSON error envelope, as `CODE: message`.
pub(crate) fn envelope(body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let e = v.get("errors")?.as_array()?.first()?;
    let code = e.get("code").and_then(|c| c.as_str()).unwrap_or("");
    let msg = e.get("message").and_then(|c| c.as_str()).unwrap_or("");
    Some(format!("{code}: {msg}"))
}
