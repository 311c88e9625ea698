//! `rt-image pull`: an image from an OCI or Docker registry into the
//! store, through oci-client. Async stays inside this module (a private
//! current-thread tokio runtime); the rest of rt-image, and rt itself, are
//! synchronous.

use std::io::Write;
use std::path::PathBuf;

use futures_util::StreamExt;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};

use crate::auth;
use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::image::{choose_platform, Image, Manifest, MANIFEST_TYPES};
use crate::platform::Platform;
use crate::reference;
use crate::store::{ImageRecord, Store};
use crate::txn::Added;

#[derive(Clone, Debug)]
pub struct Options {
    pub platform: Platform,
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
            platform: Platform::host(),
            plain_http: false,
            insecure: false,
            docker_config: auth::default_config_path(),
        }
    }
}

/// What a pull reports as it goes (the command line draws it).
#[derive(Debug)]
pub enum Event<'a> {
    /// The manifest for the platform was found.
    Resolved {
        reference: &'a str,
        digest: &'a Digest,
    },
    /// A layer blob the store has already: not downloaded.
    Exists { digest: &'a Digest },
    /// A download starts (size from the manifest).
    Start { digest: &'a Digest, size: u64 },
    /// Bytes of a download arrived.
    Progress { digest: &'a Digest, bytes: u64 },
    /// A download is complete and verified.
    Done { digest: &'a Digest },
    /// A layer is being unpacked.
    Unpacking { digest: &'a Digest },
}

/// The image a pull stored.
#[derive(Debug)]
pub struct Pulled {
    pub name: String,
    pub manifest: Digest,
    pub config: Digest,
    /// Layer blobs downloaded (the others were in the store already).
    pub downloaded: Vec<Digest>,
}

/// Pulls `input` into the store. On any failure nothing it wrote stays.
pub fn pull(
    store: &Store,
    input: &str,
    opts: &Options,
    progress: &mut dyn FnMut(Event),
) -> Result<Pulled> {
    let r = reference::parse(input)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .at("tokio runtime")?;
    let auth = auth::for_registry(opts.docker_config.as_deref(), r.resolve_registry())?;
    let client = Client::new(ClientConfig {
        protocol: if opts.plain_http {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        },
        accept_invalid_certificates: opts.insecure,
        platform_resolver: None,
        ..Default::default()
    });
    let _lock = store.lock()?;
    let mut added = Added::default();
    let p = Puller {
        store,
        client,
        auth,
        input,
        reference: r,
        opts,
    };
    match rt.block_on(p.run(&mut added, progress)) {
        Ok(v) => Ok(v),
        Err(e) => {
            added.rollback(store);
            Err(e)
        }
    }
}

struct Puller<'a> {
    store: &'a Store,
    client: Client,
    auth: RegistryAuth,
    input: &'a str,
    reference: Reference,
    opts: &'a Options,
}

impl Puller<'_> {
    fn err(&self, reason: impl Into<String>) -> Error {
        Error::Registry {
            reference: self.input.to_string(),
            reason: reason.into(),
        }
    }

    fn registry_err(&self, what: &str, e: OciDistributionError) -> Error {
        let reason = match e {
            OciDistributionError::RegistryError { envelope, .. } => envelope
                .errors
                .iter()
                .map(|x| format!("{:?}: {}", x.code, x.message))
                .collect::<Vec<_>>()
                .join("; "),
            OciDistributionError::UnauthorizedError { .. } => match &self.auth {
                RegistryAuth::Anonymous => format!(
                    "not authorized (no credentials for {} in {}: docker login)",
                    self.reference.resolve_registry(),
                    self.opts
                        .docker_config
                        .as_deref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_else(|| "the docker config".into())
                ),
                _ => "not authorized with the credentials of the docker config".to_string(),
            },
            OciDistributionError::ImageManifestNotFoundError(_) => {
                "manifest unknown (no such tag or digest)".to_string()
            }
            OciDistributionError::ServerError { code, message, .. } => {
                format!("HTTP {code}: {message}")
            }
            OciDistributionError::RequestError(e) => {
                format!(
                    "cannot reach the registry: {}",
                    crate::error::with_sources(&e)
                )
            }
            other => other.to_string(),
        };
        self.err(format!("{what}: {reason}"))
    }

    /// Fetches a manifest or index and checks it against its digest.
    async fn manifest(&self, r: &Reference) -> Result<(Vec<u8>, Digest)> {
        let what = match r.digest() {
            Some(d) => format!("manifest {d}"),
            None => format!("manifest {}", r.tag().unwrap_or("latest")),
        };
        let (data, _) = self
            .client
            .pull_manifest_raw(r, &self.auth, &MANIFEST_TYPES)
            .await
            .map_err(|e| self.registry_err(&what, e))?;
        let actual = Digest::of(&data);
        if let Some(want) = r.digest() {
            if want != actual.as_ref() {
                return Err(Error::DigestMismatch {
                    expected: want.to_string(),
                    actual: actual.to_string(),
                });
            }
        }
        Ok((data.to_vec(), actual))
    }

    async fn run(&self, added: &mut Added, progress: &mut dyn FnMut(Event)) -> Result<Pulled> {
        let r = &self.reference;
        // Basic credentials, or a bearer token got with them (or
        // anonymously), kept by the client for the requests that follow.
        self.client
            .auth(r, &self.auth, RegistryOperation::Pull)
            .await
            .map_err(|e| self.registry_err("authentication", e))?;
        let (mut data, mut digest) = self.manifest(r).await?;
        let mut index = None;
        let mut index_data = None;
        if let Manifest::Index(idx) = Manifest::parse(&data, None, digest.as_ref())? {
            let (d, _) = choose_platform(&idx, &self.opts.platform, self.input)?;
            index = Some(digest);
            index_data = Some(data);
            (data, digest) = self.manifest(&r.clone_with_digest(d.to_string())).await?;
        }
        let Manifest::Image(m) = Manifest::parse(&data, None, digest.as_ref())? else {
            return Err(self.err(format!("{digest}: an index inside an index")));
        };
        progress(Event::Resolved {
            reference: self.input,
            digest: &digest,
        });
        // Refuse what cannot be unpacked before downloading it.
        for l in m.layers() {
            if crate::unpack::Compression::from_media_type(l.media_type().as_ref()).is_none() {
                return Err(Error::UnsupportedMediaType {
                    media_type: l.media_type().to_string(),
                    digest: l.digest().to_string(),
                });
            }
        }
        if let (Some(i), Some(d)) = (&index, &index_data) {
            let (_, new) = self.store.write_blob(d, Some(i))?;
            added.blob(i.clone(), new);
        }
        let (_, new) = self.store.write_blob(&data, Some(&digest))?;
        added.blob(digest.clone(), new);

        let config: Digest = m.config().digest().to_string().parse()?;
        if !self.store.has_blob(&config) {
            self.blob(&config, m.config().size(), added, &mut |_| {})
                .await?;
        }
        let mut downloaded = Vec::new();
        for l in m.layers() {
            let d: Digest = l.digest().to_string().parse()?;
            if self.store.has_blob(&d) {
                progress(Event::Exists { digest: &d });
                continue;
            }
            progress(Event::Start {
                digest: &d,
                size: l.size(),
            });
            self.blob(&d, l.size(), added, progress).await?;
            progress(Event::Done { digest: &d });
            downloaded.push(d);
        }

        let config_data = self.store.read_blob(&config)?;
        let img = Image::assemble(&r.whole(), &digest, &m, &config, &config_data)?;
        for (l, chain) in img.layers.iter().zip(img.chain_ids()) {
            if !self.store.has_layer(&chain) {
                progress(Event::Unpacking { digest: &l.digest });
                self.store
                    .unpack_layer(&l.digest, &l.media_type, &l.diff_id, &chain)?;
                added.layers.push(chain);
            }
        }
        // Where the blobs came from: a push to another repository of the
        // registry can mount them from there.
        let mut blobs = vec![config.clone()];
        blobs.extend(img.layers.iter().map(|l| l.digest.clone()));
        let _ = self.store.add_blob_sources(
            &format!("{}/{}", r.resolve_registry(), r.repository()),
            &blobs,
        );
        let name = r.whole();
        self.store.tag(
            &name,
            ImageRecord {
                manifest: digest.clone(),
                index,
            },
        )?;
        Ok(Pulled {
            name,
            manifest: digest,
            config,
            downloaded,
        })
    }

    /// Downloads a blob into the store, verified against its digest and
    /// size as it is written.
    async fn blob(
        &self,
        d: &Digest,
        size: u64,
        added: &mut Added,
        progress: &mut dyn FnMut(Event),
    ) -> Result<()> {
        let desc = OciDescriptor {
            digest: d.to_string(),
            size: i64::try_from(size).unwrap_or(i64::MAX),
            ..Default::default()
        };
        let mut stream = self
            .client
            .pull_blob_stream(&self.reference, &desc)
            .await
            .map_err(|e| self.registry_err(&format!("blob {d}"), e))?;
        let mut w = self.store.blob_writer(Some(d), Some(size))?;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| self.err(format!("blob {d}: {e}")))?;
            w.write_all(&chunk).at(self.store.root().join("tmp"))?;
            progress(Event::Progress {
                digest: d,
                bytes: chunk.len() as u64,
            });
        }
        let (d, new) = w.commit()?;
        added.blob(d, new);
        Ok(())
    }
}
