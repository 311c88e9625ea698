//! CNI plugins called as a CNI runtime calls them (CNI spec 1.0.0, which
//! Debian's containernetworking-plugins 1.1.1 speak): the plugin binary
//! found in `CNI_PATH`, `CNI_COMMAND`/`CNI_CONTAINERID`/`CNI_NETNS`/
//! `CNI_IFNAME`/`CNI_PATH` in its environment, its network configuration
//! on stdin, its result (or its error) on stdout.
//!
//! A network configuration list runs its plugins in order for ADD, each
//! given the list's `name` and `cniVersion`, the previous plugin's result
//! as `prevResult`, and `runtimeConfig` for the capabilities it declares
//! (`portMappings`); DEL runs them in reverse, CHECK in order, both with
//! the cached result of the ADD as `prevResult`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::error::{Error, Result};

/// The spec version rt-image writes.
pub const VERSION: &str = "1.0.0";

/// Where plugins are looked for when `CNI_PATH` is not set: Debian's
/// package first, then the upstream tarball's place.
pub const DEFAULT_PATH: &str = "/usr/lib/cni:/opt/cni/bin";

/// `CNI_PATH` from the environment, else [`DEFAULT_PATH`].
pub fn search_path() -> String {
    std::env::var("CNI_PATH")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| DEFAULT_PATH.to_string())
}

/// A published port, as the portmap plugin's `portMappings` capability
/// takes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortMapping {
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: String,
    /// Empty: every address of the host.
    #[serde(rename = "hostIP", default, skip_serializing_if = "String::is_empty")]
    pub host_ip: String,
}

impl std::fmt::Display for PortMapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ip = match self.host_ip.as_str() {
            "" => "0.0.0.0".to_string(),
            ip if ip.contains(':') => format!("[{ip}]"),
            ip => ip.to_string(),
        };
        write!(
            f,
            "{ip}:{}->{}/{}",
            self.host_port, self.container_port, self.protocol
        )
    }
}

/// Parses `-p`'s `[HOSTIP:]HOSTPORT:CONTAINERPORT[/tcp|udp|sctp]`
/// (an IPv6 host address in brackets: `[::1]:8080:80`); the error is
/// what clap puts after "invalid value 'SPEC' for '--publish'".
pub fn parse_port(spec: &str) -> std::result::Result<PortMapping, String> {
    let bad = |why: &str| format!("{why} (expected [HOSTIP:]HOSTPORT:CONTAINERPORT[/tcp|udp])");
    let (addr, protocol) = match spec.rsplit_once('/') {
        Some((a, p)) => (a, p.to_ascii_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    if !matches!(protocol.as_str(), "tcp" | "udp" | "sctp") {
        return Err(bad(&format!("unknown protocol {protocol:?}")));
    }
    let port = |s: &str, what: &str| match s.parse::<u16>() {
        Ok(0) | Err(_) => Err(bad(&format!("{what} {s:?} is not a port (1-65535)"))),
        Ok(p) => Ok(p),
    };
    let (rest, container) = addr.rsplit_once(':').ok_or_else(|| bad("no host port"))?;
    let container_port = port(container, "container port")?;
    let (ip, host) = match rest.rsplit_once(':') {
        Some((ip, host)) => (ip, host),
        None => ("", rest),
    };
    let host_port = port(host, "host port")?;
    let ip = ip
        .strip_prefix('[')
        .and_then(|i| i.strip_suffix(']'))
        .unwrap_or(ip);
    let host_ip = if ip.is_empty() {
        String::new()
    } else {
        ip.parse::<std::net::IpAddr>()
            .map_err(|_| bad(&format!("{ip:?} is not an IP address")))?
            .to_string()
    };
    Ok(PortMapping {
        host_port,
        container_port,
        protocol,
        host_ip,
    })
}

/// A network configuration list (`.conflist`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkList {
    pub cni_version: String,
    pub name: String,
    pub plugins: Vec<Value>,
}

impl NetworkList {
    /// Parses a conflist, checking each plugin names its `type`.
    pub fn parse(json: &Value) -> Result<NetworkList> {
        let list: NetworkList =
            serde_json::from_value(json.clone()).map_err(|e| Error::BadJson {
                what: "CNI network configuration list".into(),
                reason: e.to_string(),
            })?;
        if list.plugins.is_empty() {
            return Err(Error::Network(format!("network {}: no plugins", list.name)));
        }
        for p in &list.plugins {
            plugin_type(p).ok_or_else(|| {
                Error::Network(format!(
                    "network {}: a plugin without a \"type\"",
                    list.name
                ))
            })?;
        }
        Ok(list)
    }
}

fn plugin_type(p: &Value) -> Option<&str> {
    p.get("type")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
}

/// What a runtime tells every plugin of one attachment.
#[derive(Clone, Debug, PartialEq)]
pub struct Runtime {
    pub container_id: String,
    /// The network namespace (a path, as `CNI_NETNS`).
    pub netns: PathBuf,
    pub ifname: String,
    /// `CNI_PATH`: where plugins (and the plugins they call) are.
    pub path: String,
    pub port_mappings: Vec<PortMapping>,
}

/// The stdin of one plugin of `list`: the plugin's own configuration with
/// the list's name and version, `prevResult` when there is one, and
/// `runtimeConfig` for each capability the plugin declares and rt-image
/// has (`portMappings`).
pub fn plugin_config(
    list: &NetworkList,
    plugin: &Value,
    prev: Option<&Value>,
    rt: &Runtime,
) -> Value {
    let mut conf = plugin.as_object().cloned().unwrap_or_default();
    conf.insert("name".into(), json!(list.name));
    conf.insert("cniVersion".into(), json!(list.cni_version));
    match prev {
        Some(p) => conf.insert("prevResult".into(), p.clone()),
        None => conf.remove("prevResult"),
    };
    let declares = |cap: &str| {
        plugin
            .get("capabilities")
            .and_then(|c| c.get(cap))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    };
    let mut runtime = Map::new();
    if declares("portMappings") {
        runtime.insert("portMappings".into(), json!(rt.port_mappings));
    }
    if runtime.is_empty() {
        conf.remove("runtimeConfig");
    } else {
        conf.insert("runtimeConfig".into(), Value::Object(runtime));
    }
    Value::Object(conf)
}

/// One interface of a result.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Interface {
    pub name: String,
    #[serde(default)]
    pub mac: String,
    /// The netns path for an interface inside the container.
    #[serde(default)]
    pub sandbox: Option<String>,
}

/// One address of a result.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct IpConfig {
    /// Index into the result's interfaces.
    #[serde(default)]
    pub interface: Option<usize>,
    /// CIDR: `10.89.0.2/24`.
    pub address: String,
    #[serde(default)]
    pub gateway: Option<String>,
}

/// The parts of an ADD result rt-image reads.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddResult {
    pub cni_version: String,
    #[serde(default)]
    pub interfaces: Vec<Interface>,
    #[serde(default)]
    pub ips: Vec<IpConfig>,
}

impl AddResult {
    pub fn parse(v: &Value) -> Result<AddResult> {
        serde_json::from_value(v.clone()).map_err(|e| Error::BadJson {
            what: "CNI result".into(),
            reason: e.to_string(),
        })
    }

    /// The addresses of interfaces inside the container (or of no named
    /// interface), in the result's order.
    pub fn container_ips(&self) -> Vec<&IpConfig> {
        self.ips
            .iter()
            .filter(
                |ip| match ip.interface.and_then(|i| self.interfaces.get(i)) {
                    Some(i) => i.sandbox.as_deref().is_some_and(|s| !s.is_empty()),
                    None => true,
                },
            )
            .collect()
    }
}

/// A plugin's error (`{"code", "msg", "details"}` on stdout) as one line;
/// its stderr, or its exit status, when stdout holds no error.
pub fn error_line(stdout: &[u8], stderr: &[u8], status: &str) -> String {
    #[derive(Deserialize)]
    struct PluginError {
        #[serde(default)]
        code: Option<u64>,
        #[serde(default)]
        msg: String,
        #[serde(default)]
        details: String,
    }
    if let Ok(e) = serde_json::from_slice::<PluginError>(stdout) {
        if !e.msg.is_empty() {
            let mut line = e.msg;
            if !e.details.is_empty() {
                line.push_str(&format!(": {}", e.details));
            }
            if let Some(c) = e.code {
                line.push_str(&format!(" (code {c})"));
            }
            return line;
        }
    }
    let err = String::from_utf8_lossy(stderr);
    let out = String::from_utf8_lossy(stdout);
    let said = [err.trim(), out.trim()]
        .into_iter()
        .find(|s| !s.is_empty())
        .map(|s| s.lines().collect::<Vec<_>>().join("; "));
    match said {
        Some(s) => format!("{status}: {s}"),
        None => status.to_string(),
    }
}

/// The plugin binary `kind` in the `:`-separated `path`.
pub fn find_plugin(kind: &str, path: &str) -> Option<PathBuf> {
    if kind.contains('/') {
        return None;
    }
    path.split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(kind))
        .find(|p| p.is_file())
}

/// Runs one plugin; its result for ADD (None for DEL and CHECK, which
/// print nothing on success).
fn exec(list: &str, command: &str, conf: &Value, rt: &Runtime) -> Result<Option<Value>> {
    let kind = plugin_type(conf).unwrap_or("");
    let fail = |reason: String| Error::Cni {
        plugin: kind.to_string(),
        command: command.to_string(),
        network: list.to_string(),
        reason,
    };
    let bin = find_plugin(kind, &rt.path).ok_or_else(|| {
        fail(format!(
            "not found in CNI_PATH {} (Debian: apt install containernetworking-plugins)",
            rt.path
        ))
    })?;
    let mut child = Command::new(&bin)
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", &rt.container_id)
        .env("CNI_NETNS", &rt.netns)
        .env("CNI_IFNAME", &rt.ifname)
        .env("CNI_PATH", &rt.path)
        .env("CNI_ARGS", "")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("run {}: {e}", bin.display())))?;
    let input = serde_json::to_vec(conf).expect("json");
    if let Some(mut stdin) = child.stdin.take() {
        // A plugin that exits without reading says why on stdout.
        let _ = stdin.write_all(&input);
    }
    let out = child
        .wait_with_output()
        .map_err(|e| fail(format!("wait for {}: {e}", bin.display())))?;
    if !out.status.success() {
        return Err(fail(error_line(
            &out.stdout,
            &out.stderr,
            &out.status.to_string(),
        )));
    }
    if command != "ADD" {
        return Ok(None);
    }
    let result: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| fail(format!("its result is not JSON: {e}")))?;
    Ok(Some(result))
}

/// ADD: the list's plugins in order, each given the previous result; the
/// last plugin's result.
pub fn add(list: &NetworkList, rt: &Runtime) -> Result<Value> {
    let mut prev: Option<Value> = None;
    for p in &list.plugins {
        let conf = plugin_config(list, p, prev.as_ref(), rt);
        let result = exec(&list.name, "ADD", &conf, rt)?.ok_or_else(|| Error::Cni {
            plugin: plugin_type(p).unwrap_or("").into(),
            command: "ADD".into(),
            network: list.name.clone(),
            reason: "no result".into(),
        })?;
        prev = Some(result);
    }
    Ok(prev.expect("a list has plugins"))
}

/// DEL: the list's plugins in reverse, each given the cached ADD result
/// (none after a failed ADD). Every plugin is called even when one fails,
/// so that as much as can be released is; the first failure is returned.
pub fn del(list: &NetworkList, rt: &Runtime, cached: Option<&Value>) -> Result<()> {
    let mut first = None;
    for p in list.plugins.iter().rev() {
        let conf = plugin_config(list, p, cached, rt);
        if let Err(e) = exec(&list.name, "DEL", &conf, rt) {
            first.get_or_insert(e);
        }
    }
    first.map_or(Ok(()), Err)
}

/// CHECK: the list's plugins in order, each given the cached ADD result.
pub fn check(list: &NetworkList, rt: &Runtime, cached: &Value) -> Result<()> {
    for p in &list.plugins {
        let conf = plugin_config(list, p, Some(cached), rt);
        exec(&list.name, "CHECK", &conf, rt)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pm(host_ip: &str, host: u16, container: u16, proto: &str) -> PortMapping {
        PortMapping {
            host_port: host,
            container_port: container,
            protocol: proto.into(),
            host_ip: host_ip.into(),
        }
    }

    #[test]
    fn ports_parse_as_docker_writes_them() {
        assert_eq!(parse_port("8080:80"), Ok(pm("", 8080, 80, "tcp")));
        assert_eq!(
            parse_port("127.0.0.1:8080:80"),
            Ok(pm("127.0.0.1", 8080, 80, "tcp"))
        );
        assert_eq!(parse_port("8080:80/udp"), Ok(pm("", 8080, 80, "udp")));
        assert_eq!(parse_port("[::1]:53:53/UDP"), Ok(pm("::1", 53, 53, "udp")));
        assert_eq!(
            parse_port("0.0.0.0:1:65535"),
            Ok(pm("0.0.0.0", 1, 65535, "tcp"))
        );
    }

    #[test]
    fn bad_ports_are_named() {
        for (spec, says) in [
            ("80", "no host port"),
            ("0:80", "host port \"0\""),
            ("8080:70000", "container port \"70000\""),
            ("8080:80/icmp", "unknown protocol \"icmp\""),
            ("localhost:8080:80", "\"localhost\" is not an IP address"),
            (":80", "host port \"\""),
        ] {
            let e = parse_port(spec).unwrap_err();
            assert!(e.contains(says), "{spec}: {e}");
        }
    }

    #[test]
    fn a_mapping_serializes_as_portmap_reads_it() {
        let v = serde_json::to_value(pm("127.0.0.1", 8080, 80, "tcp")).unwrap();
        assert_eq!(
            v,
            json!({"hostPort": 8080, "containerPort": 80, "protocol": "tcp", "hostIP": "127.0.0.1"})
        );
        let v = serde_json::to_value(pm("", 8080, 80, "udp")).unwrap();
        assert!(v.get("hostIP").is_none());
        assert_eq!(pm("", 8080, 80, "tcp").to_string(), "0.0.0.0:8080->80/tcp");
        assert_eq!(pm("::1", 1, 2, "udp").to_string(), "[::1]:1->2/udp");
    }

    fn list() -> NetworkList {
        NetworkList::parse(&json!({
            "cniVersion": "1.0.0",
            "name": "rt",
            "plugins": [
                {"type": "bridge", "bridge": "rt0", "ipam": {"type": "host-local"}},
                {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true},
            ]
        }))
        .unwrap()
    }

    fn runtime() -> Runtime {
        Runtime {
            container_id: "c1".into(),
            netns: "/run/rt-image/netns/c1".into(),
            ifname: "eth0".into(),
            path: DEFAULT_PATH.into(),
            port_mappings: vec![pm("127.0.0.1", 8080, 80, "tcp")],
        }
    }

    #[test]
    fn each_plugin_gets_the_list_name_version_and_previous_result() {
        let l = list();
        let first = plugin_config(&l, &l.plugins[0], None, &runtime());
        assert_eq!(
            first,
            json!({"type": "bridge", "bridge": "rt0", "ipam": {"type": "host-local"},
                   "name": "rt", "cniVersion": "1.0.0"})
        );
        let prev = json!({"cniVersion": "1.0.0", "ips": [{"address": "10.89.0.2/24"}]});
        let second = plugin_config(&l, &l.plugins[1], Some(&prev), &runtime());
        assert_eq!(second["prevResult"], prev);
        assert_eq!(second["name"], "rt");
        assert_eq!(
            second["runtimeConfig"],
            json!({"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp", "hostIP": "127.0.0.1"}]})
        );
    }

    #[test]
    fn only_declared_capabilities_get_runtime_config() {
        let l = list();
        let c = plugin_config(&l, &l.plugins[0], None, &runtime());
        assert!(c.get("runtimeConfig").is_none());
        let mut rt = runtime();
        rt.port_mappings.clear();
        // Declared with nothing to map: an empty list, as containerd sends.
        let c = plugin_config(&l, &l.plugins[1], None, &rt);
        assert_eq!(c["runtimeConfig"], json!({"portMappings": []}));
    }

    #[test]
    fn lists_need_plugins_with_types() {
        let e = NetworkList::parse(&json!({"cniVersion": "1.0.0", "name": "n", "plugins": []}));
        assert!(e.unwrap_err().to_string().contains("no plugins"));
        let e = NetworkList::parse(
            &json!({"cniVersion": "1.0.0", "name": "n", "plugins": [{"bridge": "x"}]}),
        );
        assert!(e.unwrap_err().to_string().contains("without a \"type\""));
        let e = NetworkList::parse(&json!({"name": "n"}));
        assert!(e.unwrap_err().to_string().contains("invalid JSON"));
    }

    #[test]
    fn results_give_the_container_side_addresses() {
        // The bridge plugin's result, as Debian's 1.1.1 prints it.
        let r = AddResult::parse(&json!({
            "cniVersion": "1.0.0",
            "interfaces": [
                {"name": "rt0", "mac": "02:27:6f:82:33:e4"},
                {"name": "vethaaaa4be7", "mac": "66:74:8a:97:e4:25"},
                {"name": "eth0", "mac": "de:85:df:e9:3b:04", "sandbox": "/run/rt-image/netns/c1"}
            ],
            "ips": [{"interface": 2, "address": "10.89.0.2/24", "gateway": "10.89.0.1"}],
            "routes": [{"dst": "0.0.0.0/0"}],
            "dns": {}
        }))
        .unwrap();
        let ips = r.container_ips();
        assert_eq!(ips.len(), 1);
        assert_eq!(ips[0].address, "10.89.0.2/24");
        assert_eq!(ips[0].gateway.as_deref(), Some("10.89.0.1"));
        let host_side = AddResult::parse(&json!({
            "cniVersion": "1.0.0",
            "interfaces": [{"name": "rt0"}],
            "ips": [{"interface": 0, "address": "10.89.0.1/24"}]
        }))
        .unwrap();
        assert!(host_side.container_ips().is_empty());
    }

    #[test]
    fn plugin_errors_become_one_line() {
        let out = br#"{"cniVersion":"1.0.0","code":11,"msg":"failed to allocate for range 0","details":"no IP addresses available"}"#;
        assert_eq!(
            error_line(out, b"", "exit status: 1"),
            "failed to allocate for range 0: no IP addresses available (code 11)"
        );
        assert_eq!(
            error_line(b"", b"boom\nmore\n", "exit status: 2"),
            "exit status: 2: boom; more"
        );
        assert_eq!(error_line(b"", b"", "signal: 9"), "signal: 9");
        let e = Error::Cni {
            plugin: "bridge".into(),
            command: "ADD".into(),
            network: "rt".into(),
            reason: "x".into(),
        };
        assert_eq!(e.to_string(), "CNI plugin bridge (ADD on network rt): x");
    }

    #[test]
    fn plugins_are_found_in_the_path_by_type_only() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("bridge"), "").unwrap();
        let path = format!("/nonexistent::{}", d.path().display());
        assert_eq!(find_plugin("bridge", &path), Some(d.path().join("bridge")));
        assert_eq!(find_plugin("portmap", &path), None);
        assert_eq!(find_plugin("../bridge", &path), None);
    }

    #[test]
    fn a_missing_plugin_is_named() {
        let l = list();
        let mut rt = runtime();
        rt.path = "/nonexistent".into();
        let e = add(&l, &rt).unwrap_err().to_string();
        assert!(
            e.starts_with(
                "CNI plugin bridge (ADD on network rt): not found in CNI_PATH /nonexistent"
            ),
            "{e}"
        );
        let e = del(&l, &rt, None).unwrap_err().to_string();
        assert!(
            e.starts_with("CNI plugin portmap (DEL on network rt)"),
            "{e}"
        );
    }
}
