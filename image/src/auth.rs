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
pub(crate) fn keys(registry: &str) -> Vec<String> {
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

/// The key `docker login` stores a registry's entry under.
pub fn config_key(registry: &str) -> String {
    if matches!(
        registry,
        "docker.io" | "index.docker.io" | "registry-1.docker.io"
    ) {
        "https://index.docker.io/v1/".to_string()
    } else {
        registry.to_string()
    }
}

fn read_config(path: &Path) -> Result<serde_json::Map<String, serde_json::Value>> {
    let bad = |reason: String| Error::Auth {
        path: path.to_path_buf(),
        reason,
    };
    match std::fs::read(path) {
        Ok(d) => match serde_json::from_slice(&d) {
            Ok(serde_json::Value::Object(m)) => Ok(m),
            Ok(_) => Err(bad("not a JSON object".into())),
            Err(e) => Err(bad(format!("invalid JSON: {e}"))),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(serde_json::Map::new()),
        Err(e) => Err(bad(e.to_string())),
    }
}

/// Replaces the file at `path` with `cfg` (mode 0600, by a rename, so a
/// reader never sees half a file); the directory is made (0700) if needed.
fn write_config(path: &Path, cfg: &serde_json::Map<String, serde_json::Value>) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let bad = |reason: String| Error::Auth {
        path: path.to_path_buf(),
        reason,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| bad(format!("making {}: {e}", dir.display())))?;
    let mut f = tempfile::Builder::new()
        .prefix(".config.json.")
        .tempfile_in(&dir)
        .map_err(|e| bad(e.to_string()))?;
    f.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(|e| bad(e.to_string()))?;
    let mut data = serde_json::to_vec_pretty(cfg).expect("JSON serializes");
    data.push(b'\n');
    f.write_all(&data).map_err(|e| bad(e.to_string()))?;
    f.as_file().sync_all().map_err(|e| bad(e.to_string()))?;
    f.persist(path).map_err(|e| bad(e.error.to_string()))?;
    Ok(())
}

/// Stores `user`/`password` for `registry` in the docker config at `path`
/// as `docker login` does (`auths.<registry>.auth`, base64 of
/// `user:password`), keeping everything else in the file.
pub fn store_credentials(path: &Path, registry: &str, user: &str, password: &str) -> Result<()> {
    let mut cfg = read_config(path)?;
    let auths = cfg
        .entry("auths")
        .or_insert_with(|| serde_json::Value::Object(Default::default()));
    let serde_json::Value::Object(auths) = auths else {
        return Err(Error::Auth {
            path: path.to_path_buf(),
            reason: "\"auths\" is not a JSON object".into(),
        });
    };
    // One entry per registry: older ones under other spellings would be
    // found first by some readers.
    for k in keys(registry) {
        auths.remove(&k);
    }
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    auths.insert(config_key(registry), serde_json::json!({ "auth": token }));
    write_config(path, &cfg)
}

/// Removes `registry`'s credentials from the docker config at `path`;
/// false when there were none.
pub fn remove_credentials(path: &Path, registry: &str) -> Result<bool> {
    if !path.exists() {
        return Ok(false);
    }
    let mut cfg = read_config(path)?;
    let Some(serde_json::Value::Object(auths)) = cfg.get_mut("auths") else {
        return Ok(false);
    };
    let mut found = false;
    for k in keys(registry) {
        found |= auths.remove(&k).is_some();
    }
    if found {
        write_config(path, &cfg)?;
    }
    Ok(found)
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

    #[test]
    fn login_entries_are_written_0600_and_removed() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub/config.json");
        std::fs::create_dir(d.path().join("sub")).unwrap();
        std::fs::write(
            &p,
            r#"{"auths": {"http://127.0.0.1:5000": {"auth": "b2xkOm9sZA=="},
                          "quay.io": {"auth": "cTpx"}}, "psFormat": "table"}"#,
        )
        .unwrap();
        store_credentials(&p, "127.0.0.1:5000", "bob", "pw:with:colons").unwrap();
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        assert_eq!(v["psFormat"], "table", "other settings are kept");
        assert_eq!(v["auths"]["quay.io"]["auth"], "cTpx");
        assert!(
            v["auths"].get("http://127.0.0.1:5000").is_none(),
            "the old spelling is replaced: {v}"
        );
        assert_eq!(
            for_registry(Some(&p), "127.0.0.1:5000").unwrap(),
            RegistryAuth::Basic("bob".into(), "pw:with:colons".into())
        );
        assert!(remove_credentials(&p, "127.0.0.1:5000").unwrap());
        assert!(!remove_credentials(&p, "127.0.0.1:5000").unwrap());
        assert_eq!(
            for_registry(Some(&p), "127.0.0.1:5000").unwrap(),
            RegistryAuth::Anonymous
        );
        store_credentials(&p, "docker.io", "alice", "s").unwrap();
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        assert!(
            v["auths"]["https://index.docker.io/v1/"]["auth"].is_string(),
            "{v}"
        );
        let fresh = d.path().join("new/dir/config.json");
        store_credentials(&fresh, "x.io", "u", "p").unwrap();
        assert_eq!(
            std::fs::metadata(fresh.parent().unwrap())
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o700
        );
    }
}
