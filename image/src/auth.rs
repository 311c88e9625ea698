//! Registry credentials from `~/.docker/config.json` (what `docker login`
//! writes). Registries that ask for a bearer token get one with these
//! credentials (or anonymously) through oci-client's token flow.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use oci_client::secrets::RegistryAuth;
use serde::Deserialize;

use crate::error::{Error, Result};

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default)]
    creds_store: Option<String>,
    #[serde(default)]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

/// Where `docker` keeps its config: `$DOCKER_CONFIG/config.json`, else
/// `~/.docker/config.json`.
pub fn default_config_path() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(d).join("config.json"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker/config.json"))
}

/// The keys `docker login` may have stored a registry's entry under.
fn keys(registry: &str) -> Vec<String> {
    let mut k = vec![
        registry.to_string(),
        format!("https://{registry}"),
        format!("http://{registry}"),
        format!("https://{registry}/v1/"),
        format!("https://{registry}/v2/"),
    ];
    if matches!(
        registry,
        "docker.io" | "index.docker.io" | "registry-1.docker.io"
    ) {
        k.splice(
            0..0,
            [
                "https://index.docker.io/v1/".to_string(),
                "docker.io".into(),
                "index.docker.io".into(),
            ],
        );
    }
    k
}

/// The credentials for `registry` in the docker config at `path` (none
/// when the file does not exist: anonymous).
pub fn for_registry(path: Option<&Path>, registry: &str) -> Result<RegistryAuth> {
    let Some(path) = path else {
        return Ok(RegistryAuth::Anonymous);
    };
    let bad = |reason: String| Error::Auth {
        path: path.to_path_buf(),
        reason,
    };
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(RegistryAuth::Anonymous),
        Err(e) => return Err(bad(e.to_string())),
    };
    let cfg: DockerConfig =
        serde_json::from_slice(&data).map_err(|e| bad(format!("invalid JSON: {e}")))?;
    let entry = keys(registry).into_iter().find_map(|k| cfg.auths.get(&k));
    if let Some(e) = entry {
        if let (Some(u), Some(p)) = (&e.username, &e.password) {
            return Ok(RegistryAuth::Basic(u.clone(), p.clone()));
        }
        if let Some(a) = &e.auth {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(a.trim())
                .map_err(|_| bad(format!("auths.{registry}.auth is not base64")))?;
            let text = String::from_utf8(raw)
                .map_err(|_| bad(format!("auths.{registry}.auth is not UTF-8")))?;
            let (u, p) = text
                .split_once(':')
                .ok_or_else(|| bad(format!("auths.{registry}.auth is not user:password")))?;
            return Ok(RegistryAuth::Basic(u.to_string(), p.to_string()));
        }
    }
    // Credentials kept by a helper program: not supported, and saying so
    // beats a confusing "unauthorized" from the registry.
    let helper = keys(registry)
        .iter()
        .find_map(|k| cfg.cred_helpers.get(k))
        .or(entry.and(cfg.creds_store.as_ref()));
    if let Some(h) = helper {
        return Err(bad(format!(
            "credentials for {registry} are in the helper docker-credential-{h}, which rt-image does not run"
        )));
    }
    Ok(RegistryAuth::Anonymous)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_docker_login_entries() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("config.json");
        let token = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
        std::fs::write(
            &p,
            format!(
                r#"{{"auths": {{"https://index.docker.io/v1/": {{"auth": "{token}"}},
                   "127.0.0.1:5000": {{"username": "bob", "password": "pw"}},
                   "helped.example": {{}}}}, "credsStore": "desktop"}}"#
            ),
        )
        .unwrap();
        let basic = |u: &str, pw: &str| RegistryAuth::Basic(u.into(), pw.into());
        assert_eq!(
            for_registry(Some(&p), "docker.io").unwrap(),
            basic("alice", "s3cret")
        );
        assert_eq!(
            for_registry(Some(&p), "127.0.0.1:5000").unwrap(),
            basic("bob", "pw")
        );
        assert_eq!(
            for_registry(Some(&p), "quay.io").unwrap(),
            RegistryAuth::Anonymous
        );
        let e = for_registry(Some(&p), "helped.example")
            .unwrap_err()
            .to_string();
        assert!(e.contains("docker-credential-desktop"), "{e}");
        let missing = d.path().join("none.json");
        assert_eq!(
            for_registry(Some(&missing), "x.io").unwrap(),
            RegistryAuth::Anonymous
        );
    }
}
