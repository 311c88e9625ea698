//! The bundle's config.json: `rt spec`'s defaults (namespaces, mounts,
//! masked and read-only paths) with the process the image config asks for.

use std::path::Path;

use oci_spec::image::ImageConfiguration;
use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::user;
use crate::userns;

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What the caller adds to the image's config.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// Replace the image's Cmd (after its Entrypoint), as `docker run IMAGE ARGS`.
    pub args: Vec<String>,
    /// The container's hostname.
    pub hostname: Option<String>,
    pub terminal: bool,
}

/// Builds config.json for `image` (named `name`) whose root filesystem is
/// at `rootfs`.
pub fn build(
    config: &ImageConfiguration,
    name: &str,
    rootfs: &Path,
    o: &Overrides,
) -> Result<Value> {
    let c = config.config().clone().unwrap_or_default();
    let entrypoint = c.entrypoint().clone().unwrap_or_default();
    let cmd = if o.args.is_empty() {
        c.cmd().clone().unwrap_or_default()
    } else {
        o.args.clone()
    };
    let args: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if args.is_empty() {
        return Err(Error::Bundle {
            path: rootfs.parent().unwrap_or(rootfs).to_path_buf(),
            reason: format!("image {name} has no Entrypoint or Cmd: give the command after --"),
        });
    }
    let mut env = c.env().clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, DEFAULT_PATH.to_string());
    }
    if o.terminal && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    let cwd = match c.working_dir().as_deref() {
        None | Some("") => "/".to_string(),
        Some(d) if d.starts_with('/') => d.to_string(),
        Some(d) => format!("/{d}"),
    };
    let u = user::resolve(rootfs, c.user().as_deref().unwrap_or(""), name)?;

    let mut spec = if rt::rootless::detect().is_rootless() {
        rootless_base()
    } else {
        rt::config::template::default_spec()
    };
    let p = &mut spec["process"];
    p["terminal"] = json!(o.terminal);
    p["args"] = json!(args);
    p["env"] = json!(env);
    p["cwd"] = json!(cwd);
    p["user"] = json!({"uid": u.uid, "gid": u.gid});
    if !u.additional_gids.is_empty() {
        p["user"]["additionalGids"] = json!(u.additional_gids);
    }
    // The overlay's upper layer takes the container's writes.
    spec["root"] = json!({"path": "rootfs", "readonly": false});
    if let Some(h) = &o.hostname {
        spec["hostname"] = json!(h);
    }

    // Annotations as the OCI image spec's conversion section names them.
    let mut ann = Map::new();
    for (k, v) in c.labels().clone().unwrap_or_default() {
        ann.insert(k, json!(v));
    }
    let ports = c.exposed_ports().clone().unwrap_or_default();
    if !ports.is_empty() {
        ann.insert(
            "org.opencontainers.image.exposedPorts".into(),
            json!(ports.join(",")),
        );
    }
    if let Some(s) = c.stop_signal() {
        ann.insert("org.opencontainers.image.stopSignal".into(), json!(s));
    }
    ann.insert(
        "org.opencontainers.image.os".into(),
        json!(config.os().to_string()),
    );
    ann.insert(
        "org.opencontainers.image.architecture".into(),
        json!(config.architecture().to_string()),
    );
    if let Some(a) = config.author() {
        ann.insert("org.opencontainers.image.author".into(), json!(a));
    }
    if let Some(t) = config.created() {
        ann.insert("org.opencontainers.image.created".into(), json!(t));
    }
    ann.insert("org.opencontainers.image.ref.name".into(), json!(name));
    spec["annotations"] = Value::Object(ann);
    Ok(spec)
}

/// `rt spec --rootless` for the caller: its uid and gid mapped to root,
/// and, when /etc/subuid and /etc/subgid give it ranges (and newuidmap is
/// installed to map them), ids from 1 up mapped onto them, so that an
/// image's non-root USER exists in the container. These are the maps
/// rt-image unpacked the layers with ([`userns::maps`]), so the
/// container sees the owners the image gives.
fn rootless_base() -> Value {
    let maps = userns::maps();
    let own = |m: &[userns::Map]| m.iter().find(|l| l.0 == 0).map(|l| l.1);
    let (uid, gid) = match &maps {
        Some((u, g)) if own(u).is_some() && own(g).is_some() => {
            (own(u).unwrap_or(0), own(g).unwrap_or(0))
        }
        _ => (
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        ),
    };
    let mut spec = rt::config::template::rootless_spec(uid, gid);
    if let Some((u, g)) = maps {
        let json_of = |m: Vec<userns::Map>| {
            m.into_iter()
                .map(|(c, h, n)| json!({"containerID": c, "hostID": h, "size": n}))
                .collect::<Vec<_>>()
        };
        spec["linux"]["uidMappings"] = json!(json_of(u));
        spec["linux"]["gidMappings"] = json!(json_of(g));
    }
    spec
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn rootfs() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir(d.path().join("etc")).unwrap();
        fs::write(
            d.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\napp:x:100:101::/:/bin/sh\n",
        )
        .unwrap();
        fs::write(d.path().join("etc/group"), "root:x:0:\napp:x:101:\n").unwrap();
        d
    }

    fn image(config: Value) -> ImageConfiguration {
        serde_json::from_value(json!({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": []},
            "config": config,
        }))
        .unwrap()
    }

    #[test]
    fn docker_rules_for_the_process() {
        let d = rootfs();
        let img = image(json!({
            "Entrypoint": ["/bin/tini", "--"], "Cmd": ["sh", "-c", "echo hi"],
            "Env": ["A=1"], "WorkingDir": "/srv", "User": "app",
            "Labels": {"maintainer": "me"}, "ExposedPorts": {"80/tcp": {}, "53/udp": {}},
            "StopSignal": "SIGQUIT"
        }));
        let s = build(&img, "img:1", d.path(), &Overrides::default()).unwrap();
        assert_eq!(
            s["process"]["args"],
            json!(["/bin/tini", "--", "sh", "-c", "echo hi"])
        );
        assert_eq!(s["process"]["env"], json!([DEFAULT_PATH, "A=1"]));
        assert_eq!(s["process"]["cwd"], "/srv");
        assert_eq!(s["process"]["user"], json!({"uid": 100, "gid": 101}));
        assert_eq!(s["annotations"]["maintainer"], "me");
        let ports = s["annotations"]["org.opencontainers.image.exposedPorts"]
            .as_str()
            .unwrap();
        assert!(
            ports.contains("80/tcp") && ports.contains("53/udp"),
            "{ports}"
        );
        assert_eq!(
            s["annotations"]["org.opencontainers.image.stopSignal"],
            "SIGQUIT"
        );
        assert_eq!(s["root"]["readonly"], false);
        assert_eq!(
            s["linux"]["namespaces"],
            rt::config::template::default_spec()["linux"]["namespaces"]
        );

        let o = Overrides {
            args: vec!["date".into()],
            ..Default::default()
        };
        let s = build(&img, "img:1", d.path(), &o).unwrap();
        assert_eq!(
            s["process"]["args"],
            json!(["/bin/tini", "--", "date"]),
            "args replace Cmd only"
        );
        let text = serde_json::to_vec(&s).unwrap();
        rt::config::spec::parse(&text).unwrap();
    }

    #[test]
    fn no_command_is_an_error() {
        let d = rootfs();
        let err = build(
            &image(json!({})),
            "empty:1",
            d.path(),
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("empty:1"), "{err}");
    }
}
