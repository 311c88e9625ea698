//! A container's network for `rt-image run`: `none` (a namespace of its
//! own with only loopback, `rt spec`'s default), `host` (the host's), or
//! `bridge`: a namespace rt-image makes ([`crate::netns`]) and attaches
//! with the standard CNI plugins ([`crate::cni`]): `bridge` (bridge `rt0`,
//! the gateway, masquerading out), `host-local` addresses from
//! 10.89.0.0/24, `portmap` for `-p`, `firewall` (forwarding allowed
//! where the FORWARD policy drops), and `loopback` for `lo`.
//!
//! What was attached is recorded in the bundle (`DIR/.rt-image/network.json`,
//! written before the first plugin runs) so that [`detach`] releases it
//! all: CNI DEL in reverse, then the namespace file. Everything rt-image
//! keeps for networks (namespace files, host-local's reservations) is
//! under [`RUN_DIR`], which a reboot empties as it empties the kernel's.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::cni::{self, AddResult, NetworkList, PortMapping, Runtime};
use crate::error::{Error, IoContext, Result};
use crate::netns;

/// rt-image's run directory: `netns/ID` and `ipam/` (host-local's).
pub const RUN_DIR: &str = "/run/rt-image";
/// The default bridge network's name, bridge and subnet.
pub const NAME: &str = "rt";
pub const BRIDGE: &str = "rt0";
pub const SUBNET: &str = "10.89.0.0/24";

const STATE: &str = ".rt-image/network.json";

/// `run --network`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    None,
    Host,
    Bridge,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Mode, String> {
        match s {
            "none" => Ok(Mode::None),
            "host" => Ok(Mode::Host),
            "bridge" => Ok(Mode::Bridge),
            _ => Err(format!("--network {s:?}: expected none, host or bridge")),
        }
    }
}

/// The network a `run` asks for: `--network` as given, else `bridge`
/// when ports are published, else `none` (the namespace `rt spec` gives).
pub fn mode(network: Option<Mode>, ports: &[PortMapping]) -> Result<Mode> {
    match network {
        Some(m) if m != Mode::Bridge && !ports.is_empty() => Err(Error::Network(format!(
            "-p publishes ports on the bridge network, not with --network {}",
            if m == Mode::Host { "host" } else { "none" }
        ))),
        Some(m) => Ok(m),
        None if ports.is_empty() => Ok(Mode::None),
        None => Ok(Mode::Bridge),
    }
}

/// The default bridge network's configuration list.
pub fn default_list(run_dir: &Path) -> Value {
    json!({
        "cniVersion": cni::VERSION,
        "name": NAME,
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": true,
                "ipMasq": true,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": SUBNET}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": run_dir.join("ipam"),
                }
            },
            {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true},
            {"type": "firewall", "backend": "iptables"}
        ]
    })
}

/// The list that brings the container's `lo` up.
fn loopback_list() -> Value {
    json!({"cniVersion": cni::VERSION, "name": format!("{NAME}-loopback"), "plugins": [{"type": "loopback"}]})
}

/// What a bundle's network is: enough to release it (the lists as they
/// were, the namespace, the ports) and to show it (the result).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    pub container_id: String,
    pub netns: PathBuf,
    pub cni_path: String,
    pub network: Value,
    pub loopback: Value,
    #[serde(default)]
    pub ports: Vec<PortMapping>,
    /// The ADD result; none until it succeeded.
    #[serde(default)]
    pub result: Option<Value>,
}

impl Attachment {
    fn runtime(&self, ifname: &str) -> Runtime {
        Runtime {
            container_id: self.container_id.clone(),
            netns: self.netns.clone(),
            ifname: ifname.to_string(),
            path: self.cni_path.clone(),
            port_mappings: self.ports.clone(),
        }
    }

    /// The container's first address (without its prefix length) and
    /// gateway.
    pub fn ip(&self) -> Option<(String, Option<String>)> {
        let r = AddResult::parse(self.result.as_ref()?).ok()?;
        let ip = r.container_ips().first().map(|i| {
            let addr = i.address.split('/').next().unwrap_or(&i.address);
            (addr.to_string(), i.gateway.clone())
        });
        ip
    }

    /// What `rt-image run -d` and `rt-image ps --json` print.
    pub fn summary(&self) -> Value {
        let (ip, gateway) = self.ip().unzip();
        json!({
            "id": self.container_id,
            "network": self.network.get("name").cloned().unwrap_or(Value::Null),
            "netns": self.netns,
            "ip": ip,
            "gateway": gateway.flatten(),
            "ports": self.ports.iter().map(ToString::to_string).collect::<Vec<_>>(),
        })
    }
}

fn state_path(bundle: &Path) -> PathBuf {
    bundle.join(STATE)
}

/// The bundle's attachment, if it has one.
pub fn attachment(bundle: &Path) -> Result<Option<Attachment>> {
    let p = state_path(bundle);
    match fs::read(&p) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| Error::BadJson {
                what: p.display().to_string(),
                reason: e.to_string(),
            }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).at(p),
    }
}

fn save(bundle: &Path, a: &Attachment) -> Result<()> {
    let p = state_path(bundle);
    let tmp = p.with_extension("json.tmp");
    fs::write(&tmp, serde_json::to_vec_pretty(a).expect("json")).at(&tmp)?;
    fs::rename(&tmp, &p).at(&p)
}

/// Sets (or with None removes the path of) the network namespace in the
/// bundle's config.json; with `host` removes the namespace altogether.
fn set_namespace(bundle: &Path, path: Option<&Path>, host: bool) -> Result<()> {
    let p = bundle.join("config.json");
    let text = fs::read(&p).at(&p)?;
    let mut spec: Value = serde_json::from_slice(&text).map_err(|e| Error::BadJson {
        what: p.display().to_string(),
        reason: e.to_string(),
    })?;
    set_network_namespace(&mut spec, path, host);
    fs::write(&p, serde_json::to_vec_pretty(&spec).expect("json")).at(&p)
}

/// config.json's `linux.namespaces` with the network entry given `path`
/// (or none), or without it for the host's network.
pub fn set_network_namespace(spec: &mut Value, path: Option<&Path>, host: bool) {
    let Some(ns) = spec["linux"]["namespaces"].as_array_mut() else {
        return;
    };
    ns.retain(|n| n["type"] != "network");
    if host {
        return;
    }
    let mut entry = json!({"type": "network"});
    if let Some(p) = path {
        entry["path"] = json!(p);
    }
    ns.push(entry);
}

/// Whether `mode` can be had here, said before anything is made: a
/// bridge needs root and the plugins.
pub fn preflight(mode: Mode) -> Result<()> {
    if mode != Mode::Bridge {
        return Ok(());
    }
    if !nix::unistd::geteuid().is_root() || rt::rootless::detect().is_rootless() {
        return Err(Error::Network(
            "a bridge network (and -p) needs root: rt-image has no rootless network (such as slirp4netns)"
                .into(),
        ));
    }
    let cni_path = cni::search_path();
    for kind in ["bridge", "host-local", "portmap", "firewall", "loopback"] {
        if cni::find_plugin(kind, &cni_path).is_none() {
            return Err(Error::Network(format!(
                "the CNI plugin {kind} is not in CNI_PATH {cni_path} (Debian: apt install containernetworking-plugins)"
            )));
        }
    }
    Ok(())
}

/// The bundle's network as `mode` asks: for `bridge` a namespace, CNI ADD
/// and config.json pointing at it, or nothing at all when a step fails.
pub fn attach(
    bundle: &Path,
    id: &str,
    mode: Mode,
    ports: &[PortMapping],
) -> Result<Option<Attachment>> {
    match mode {
        Mode::None => return Ok(None),
        Mode::Host => {
            set_namespace(bundle, None, true)?;
            return Ok(None);
        }
        Mode::Bridge => {}
    }
    preflight(Mode::Bridge)?;
    let run_dir = Path::new(RUN_DIR);
    let cni_path = cni::search_path();
    let mut a = Attachment {
        container_id: id.to_string(),
        netns: run_dir.join("netns").join(id),
        cni_path,
        network: default_list(run_dir),
        loopback: loopback_list(),
        ports: ports.to_vec(),
        result: None,
    };
    netns::create(&a.netns)?;
    match add(bundle, &mut a) {
        Ok(()) => Ok(Some(a)),
        Err(e) => {
            let _ = release(bundle, &a);
            Err(e)
        }
    }
}

/// The ADDs of `attach`, recorded first; on failure the caller releases
/// what `a` names.
fn add(bundle: &Path, a: &mut Attachment) -> Result<()> {
    save(bundle, a)?;
    let lo = NetworkList::parse(&a.loopback)?;
    cni::add(&lo, &a.runtime("lo"))?;
    let list = NetworkList::parse(&a.network)?;
    a.result = Some(cni::add(&list, &a.runtime("eth0"))?);
    save(bundle, a)?;
    set_namespace(bundle, Some(&a.netns), false)?;
    resolv_conf(bundle)
}

/// The host's resolv.conf without loopback nameservers (which are not
/// the container's), or None when no nameserver is left.
pub fn container_resolv_conf(host: &str) -> Option<String> {
    let loopback = |l: &str| {
        let mut w = l.split_whitespace();
        w.next() == Some("nameserver")
            && w.next()
                .and_then(|a| a.parse::<std::net::IpAddr>().ok())
                .is_some_and(|a| a.is_loopback())
    };
    let kept: Vec<&str> = host.lines().filter(|l| !loopback(l)).collect();
    kept.iter()
        .any(|l| l.trim_start().starts_with("nameserver"))
        .then(|| kept.join("\n") + "\n")
}

/// The container's /etc/resolv.conf on the bridge: the host's nameservers
/// (a copy in the bundle, bound read-only), as Docker gives; nothing when
/// the host names only loopback ones.
fn resolv_conf(bundle: &Path) -> Result<()> {
    let Some(text) = fs::read_to_string("/etc/resolv.conf")
        .ok()
        .and_then(|h| container_resolv_conf(&h))
    else {
        return Ok(());
    };
    let copy = bundle.join(".rt-image/resolv.conf");
    fs::write(&copy, text).at(&copy)?;
    let p = bundle.join("config.json");
    let mut spec: Value =
        serde_json::from_slice(&fs::read(&p).at(&p)?).map_err(|e| Error::BadJson {
            what: p.display().to_string(),
            reason: e.to_string(),
        })?;
    if let Some(mounts) = spec["mounts"].as_array_mut() {
        mounts.retain(|m| m["destination"] != "/etc/resolv.conf");
        mounts.push(json!({"destination": "/etc/resolv.conf", "type": "bind",
                           "source": copy, "options": ["rbind", "ro"]}));
    }
    fs::write(&p, serde_json::to_vec_pretty(&spec).expect("json")).at(&p)
}

/// CNI DEL of both lists, then the namespace file, then the record; the
/// first failure is returned after every step was tried.
fn release(bundle: &Path, a: &Attachment) -> Result<()> {
    // A file with no namespace bound on it (rt-image killed between the
    // two) is not one: plugins told of it refuse, of none release.
    if a.netns.exists() && !netns::exists(&a.netns) {
        let _ = fs::remove_file(&a.netns);
    }
    let steps = [
        NetworkList::parse(&a.network)
            .and_then(|l| cni::del(&l, &a.runtime("eth0"), a.result.as_ref())),
        NetworkList::parse(&a.loopback).and_then(|l| cni::del(&l, &a.runtime("lo"), None)),
        netns::remove(&a.netns),
    ];
    if let Some(e) = steps.into_iter().find_map(|r| r.err()) {
        // The record stays, for `bundle --remove` to try again.
        return Err(e);
    }
    let state = state_path(bundle);
    match fs::remove_file(&state) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e).at(state),
        _ => {}
    }
    // A bundle run again by hand gets a namespace of its own.
    if bundle.join("config.json").exists() {
        set_namespace(bundle, None, false)?;
    }
    Ok(())
}

/// Releases the bundle's network (CNI DEL, the namespace file); whether
/// it had one. Run once the container is gone.
pub fn detach(bundle: &Path) -> Result<bool> {
    match attachment(bundle)? {
        None => Ok(false),
        Some(a) => release(bundle, &a).map(|()| true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mode_follows_network_and_ports() {
        let p = cni::parse_port("8080:80").unwrap();
        assert_eq!(mode(None, &[]).unwrap(), Mode::None);
        assert_eq!(mode(None, std::slice::from_ref(&p)).unwrap(), Mode::Bridge);
        assert_eq!(mode(Some(Mode::Host), &[]).unwrap(), Mode::Host);
        let e = mode(Some(Mode::None), &[p]).unwrap_err().to_string();
        assert!(e.contains("not with --network none"), "{e}");
        assert!("bogus".parse::<Mode>().is_err());
    }

    #[test]
    fn the_default_network_is_a_valid_list() {
        let v = default_list(Path::new("/run/rt-image"));
        let l = NetworkList::parse(&v).unwrap();
        assert_eq!(l.name, "rt");
        let types: Vec<_> = l
            .plugins
            .iter()
            .map(|p| p["type"].as_str().unwrap())
            .collect();
        assert_eq!(types, ["bridge", "portmap", "firewall"]);
        assert_eq!(l.plugins[0]["ipam"]["dataDir"], "/run/rt-image/ipam");
        assert_eq!(l.plugins[1]["capabilities"]["portMappings"], true);
        NetworkList::parse(&loopback_list()).unwrap();
    }

    #[test]
    fn the_container_gets_the_hosts_nameservers_but_loopback_ones() {
        let host = "# generated\nnameserver 127.0.0.53\nnameserver 10.0.0.1\nnameserver ::1\nsearch example.org\n";
        assert_eq!(
            container_resolv_conf(host).as_deref(),
            Some("# generated\nnameserver 10.0.0.1\nsearch example.org\n")
        );
        assert_eq!(
            container_resolv_conf("nameserver 127.0.0.53\noptions edns0\n"),
            None
        );
        assert_eq!(container_resolv_conf(""), None);
    }

    #[test]
    fn the_network_namespace_entry_is_replaced() {
        let mut spec = json!({"linux": {"namespaces": [{"type": "pid"}, {"type": "network"}]}});
        set_network_namespace(&mut spec, Some(Path::new("/run/rt-image/netns/c1")), false);
        assert_eq!(
            spec["linux"]["namespaces"],
            json!([{"type": "pid"}, {"type": "network", "path": "/run/rt-image/netns/c1"}])
        );
        set_network_namespace(&mut spec, None, false);
        assert_eq!(
            spec["linux"]["namespaces"],
            json!([{"type": "pid"}, {"type": "network"}])
        );
        set_network_namespace(&mut spec, None, true);
        assert_eq!(spec["linux"]["namespaces"], json!([{"type": "pid"}]));
    }

    #[test]
    fn the_summary_shows_the_container_address() {
        let a = Attachment {
            container_id: "c1".into(),
            netns: "/run/rt-image/netns/c1".into(),
            cni_path: cni::DEFAULT_PATH.into(),
            network: default_list(Path::new(RUN_DIR)),
            loopback: loopback_list(),
            ports: vec![cni::parse_port("127.0.0.1:8080:80").unwrap()],
            result: Some(json!({
                "cniVersion": "1.0.0",
                "interfaces": [{"name": "rt0"}, {"name": "veth1"}, {"name": "eth0", "sandbox": "/run/rt-image/netns/c1"}],
                "ips": [{"interface": 2, "address": "10.89.0.5/24", "gateway": "10.89.0.1"}]
            })),
        };
        assert_eq!(
            a.summary(),
            json!({"id": "c1", "network": "rt", "netns": "/run/rt-image/netns/c1", "ip": "10.89.0.5",
                   "gateway": "10.89.0.1", "ports": ["127.0.0.1:8080->80/tcp"]})
        );
        let back: Attachment = serde_json::from_slice(&serde_json::to_vec(&a).unwrap()).unwrap();
        assert_eq!(back, a);
    }

    #[test]
    fn a_bundle_without_a_network_detaches_as_nothing() {
        let d = tempfile::tempdir().unwrap();
        assert!(attachment(d.path()).unwrap().is_none());
        assert!(!detach(d.path()).unwrap());
    }
}
