//! `rt-image login`: checks a user name and password against a registry
//! before they are stored. The registry's `GET /v2/` says how it wants
//! them (the OCI distribution spec's and Docker's token auth):
//!
//! - 200: it asks for no credentials;
//! - 401 with `WWW-Authenticate: Basic ...`: the same request with basic
//!   credentials must answer 200;
//! - 401 with `WWW-Authenticate: Bearer realm=...,service=...`: the realm
//!   must hand out a token for the credentials, and `/v2/` must accept it.
//!
//! oci-client does not verify basic credentials before they are used, so
//! these few requests are made here with reqwest (which it is built on).

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::StatusCode;

use crate::error::{Error, IoContext, Result};

#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Talk plain HTTP (a registry on loopback).
    pub plain_http: bool,
    /// Accept any TLS certificate.
    pub insecure: bool,
}

/// How the registry checked the credentials.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verified {
    /// The registry asks for no credentials at all.
    NotRequired,
    /// Basic auth on the registry itself.
    Basic,
    /// A bearer token from the registry's token service.
    Token,
}

/// The registry a `login`/`logout` operand names: `docker.io` when none,
/// without a scheme or path (`https://host:5000/v2/` is `host:5000`).
pub fn registry_name(input: Option<&str>) -> String {
    let Some(s) = input else {
        return "docker.io".to_string();
    };
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let host = s.split('/').next().unwrap_or(s);
    match host {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".to_string(),
        h => h.to_string(),
    }
}

/// The host requests for `registry` go to.
fn api_host(registry: &str) -> &str {
    if registry == "docker.io" {
        "registry-1.docker.io"
    } else {
        registry
    }
}

/// Checks `user`/`password` against `registry`.
pub fn verify(registry: &str, user: &str, password: &str, opts: &Options) -> Result<Verified> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .at("tokio runtime")?;
    rt.block_on(verify_async(registry, user, password, opts))
}

async fn verify_async(
    registry: &str,
    user: &str,
    password: &str,
    opts: &Options,
) -> Result<Verified> {
    let refused = |reason: String| Error::Login {
        registry: registry.to_string(),
        reason,
    };
    let unreachable = |e: reqwest::Error| Error::Registry {
        reference: registry.to_string(),
        reason: format!("connection to the registry failed: {}", chain(&e)),
    };
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(opts.insecure)
        .connect_timeout(Duration::from_secs(30))
        .timeout(Duration::from_secs(120))
        .build()
        .map_err(unreachable)?;
    let scheme = if opts.plain_http { "http" } else { "https" };
    let ping = format!("{scheme}://{}/v2/", api_host(registry));
    let res = client.get(&ping).send().await.map_err(unreachable)?;
    match res.status() {
        s if s.is_success() => return Ok(Verified::NotRequired),
        StatusCode::UNAUTHORIZED => {}
        s => return Err(refused(format!("GET {ping} answered HTTP {}", s.as_u16()))),
    }
    let header = res
        .headers()
        .get(reqwest::header::WWW_AUTHENTICATE)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_string();
    let (scheme_name, params) = challenge(&header);
    match scheme_name.as_str() {
        "basic" => {
            let res = client
                .get(&ping)
                .basic_auth(user, Some(password))
                .send()
                .await
                .map_err(unreachable)?;
            match res.status() {
                s if s.is_success() => Ok(Verified::Basic),
                s => Err(refused(status_reason(
                    s,
                    &res.text().await.unwrap_or_default(),
                ))),
            }
        }
        "bearer" => {
            let realm = params
                .get("realm")
                .ok_or_else(|| refused(format!("a Bearer challenge without a realm: {header}")))?;
            let mut query = vec![("account", user.to_string())];
            if let Some(s) = params.get("service") {
                query.push(("service", s.clone()));
            }
            let mut url = reqwest::Url::parse(realm)
                .map_err(|e| refused(format!("token realm {realm:?}: {e}")))?;
            url.query_pairs_mut().extend_pairs(query);
            let res = client
                .get(url)
                .basic_auth(user, Some(password))
                .send()
                .await
                .map_err(unreachable)?;
            let status = res.status();
            let body = res.text().await.map_err(unreachable)?;
            if !status.is_success() {
                return Err(refused(format!(
                    "token service: {}",
                    status_reason(status, &body)
                )));
            }
            let v: serde_json::Value = serde_json::from_str(&body)
                .map_err(|e| refused(format!("token service answered no JSON: {e}")))?;
            let token = v
                .get("token")
                .or_else(|| v.get("access_token"))
                .and_then(|t| t.as_str())
                .ok_or_else(|| refused("the token service answered no token".into()))?;
            let res = client
                .get(&ping)
                .bearer_auth(token)
                .send()
                .await
                .map_err(unreachable)?;
            match res.status() {
                s if s.is_success() => Ok(Verified::Token),
                s => Err(refused(format!(
                    "the registry does not accept the token: {}",
                    status_reason(s, &res.text().await.unwrap_or_default())
                ))),
            }
        }
        _ => Err(refused(format!(
            "unsupported authentication challenge {header:?}"
        ))),
    }
}

fn status_reason(s: StatusCode, body: &str) -> String {
    let detail = crate::push::envelope(body)
        .map(|m| format!(": {m}"))
        .unwrap_or_default();
    match s {
        StatusCode::UNAUTHORIZED => format!("wrong user name or password (HTTP 401{detail})"),
        StatusCode::FORBIDDEN => format!("access denied (HTTP 403{detail})"),
        s => format!("HTTP {}{detail}", s.as_u16()),
    }
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(&format!(": {inner}"));
        src = inner.source();
    }
    s
}

/// Parses a `WWW-Authenticate` challenge: the scheme (lower case) and its
/// `key=value` / `key="quoted value"` parameters.
fn challenge(h: &str) -> (String, BTreeMap<String, String>) {
    let h = h.trim();
    let (scheme, mut rest) = h.split_once(' ').unwrap_or((h, ""));
    let mut params = BTreeMap::new();
    loop {
        rest = rest.trim_start_matches([' ', ',']);
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key.trim().to_ascii_lowercase();
        let mut value = String::new();
        if let Some(q) = after.strip_prefix('"') {
            let mut chars = q.char_indices();
            let mut end = q.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            value.push(n);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            rest = &q[end..];
        } else {
            let end = after.find(',').unwrap_or(after.len());
            value = after[..end].trim().to_string();
            rest = &after[end..];
        }
        params.insert(key, value);
    }
    (scheme.to_ascii_lowercase(), params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        let (s, p) = challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(s, "bearer");
        assert_eq!(p["realm"], "https://auth.example/token");
        assert_eq!(p["service"], "registry.example");
        assert_eq!(p["scope"], "repository:a/b:pull,push");
        let (s, p) = challenge(r#"Basic realm="rt \"test\"""#);
        assert_eq!((s.as_str(), p["realm"].as_str()), ("basic", "rt \"test\""));
        let (s, p) = challenge("Basic realm=plain, charset=UTF-8");
        assert_eq!((s.as_str(), p["realm"].as_str()), ("basic", "plain"));
        assert_eq!(p["charset"], "UTF-8");
    }

    #[test]
    fn registry_names() {
        assert_eq!(registry_name(None), "docker.io");
        assert_eq!(
            registry_name(Some("https://index.docker.io/v1/")),
            "docker.io"
        );
        assert_eq!(
            registry_name(Some("http://127.0.0.1:5000/v2/")),
            "127.0.0.1:5000"
        );
        assert_eq!(registry_name(Some("quay.io")), "quay.io");
    }
}
