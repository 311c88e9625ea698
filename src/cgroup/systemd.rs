//! The systemd cgroup driver (`--systemd-cgroup`): the container's cgroup
//! is a transient scope unit that systemd makes and delegates to rt, asked
//! for over D-Bus (org.freedesktop.systemd1). Nothing here runs, and no
//! bus connection is made, without `--systemd-cgroup`.
//!
//! - create: `StartTransientUnit` of `<prefix>-<name>.scope` in the slice,
//!   with `Delegate=yes`, a placeholder process of rt's as its first pid
//!   (so the scope and its limits exist before the container's init does),
//!   and the limits systemd knows as unit properties; rt waits for the job.
//! - update: `SetUnitProperties`, then the files as without systemd.
//! - delete: `StopUnit`, waiting for the job, then `ResetFailedUnit`.
//! - devices: `DevicePolicy=strict` and `DeviceAllow` when the rules are an
//!   allow list systemd can say exactly (see [`device_properties`]); rt's
//!   own device program stays attached either way.

use std::path::Path;
use std::time::{Duration, Instant};

use dbus::arg::{RefArg, Variant};
use dbus::blocking::Connection;
use dbus::message::MessageType;
use dbus::Message;

use super::devices::{self, Rule};
use super::resources::Write;
use crate::error::{Error, Result};

const DEST: &str = "org.freedesktop.systemd1";
const PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
/// How long a start or stop job may take (runc waits 30 s too).
const JOB_TIMEOUT: Duration = Duration::from_secs(30);
const CALL_TIMEOUT: Duration = Duration::from_secs(25);

/// A scope unit and the slice it goes in, from `slice:prefix:name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub slice: String,
    pub unit: String,
}

/// The prefix of a container's scope whose config names no cgroup path:
/// `system.slice:rt:<id>`, `rt-<id>.scope`.
pub const DEFAULT_PREFIX: &str = "rt";

impl Scope {
    /// The slice and unit named by a `slice:prefix:name` cgroups path: the
    /// unit is `<prefix>-<name>.scope` (or `name` when it ends in .scope),
    /// an empty slice is system.slice.
    pub fn parse(p: &str) -> Result<Scope> {
        let parts: Vec<&str> = p.split(':').collect();
        let [slice, prefix, name] = parts[..] else {
            return Err(Error::InvalidField {
                field: "linux.cgroupsPath".into(),
                reason: format!("{p:?} is not of the form slice:prefix:name (--systemd-cgroup)"),
            });
        };
        let slice = if slice.is_empty() {
            "system.slice"
        } else {
            slice
        };
        let bad = |what: &str| Error::InvalidField {
            field: "linux.cgroupsPath".into(),
            reason: format!("{p:?}: {what} (--systemd-cgroup)"),
        };
        let Some(stem) = slice.strip_suffix(".slice") else {
            return Err(bad("the slice must end in .slice"));
        };
        if stem.is_empty()
            || stem.contains('/')
            || (stem != "-" && stem.split('-').any(|s| s.is_empty()))
        {
            return Err(bad("bad slice name"));
        }
        if name.is_empty() || name.contains('/') || prefix.contains('/') {
            return Err(bad("bad unit name"));
        }
        if name.ends_with(".slice") {
            return Err(Error::Unsupported(format!(
                "linux.cgroupsPath {p:?}: a container in a slice unit of its own"
            )));
        }
        let unit = if name.ends_with(".scope") {
            name.to_string()
        } else if prefix.is_empty() {
            format!("{name}.scope")
        } else {
            format!("{prefix}-{name}.scope")
        };
        Ok(Scope {
            slice: slice.to_string(),
            unit,
        })
    }

    /// The cgroup path systemd gives the unit: `a-b.slice` is
    /// `/a.slice/a-b.slice`, `-.slice` is the root.
    pub fn cgroup_path(&self) -> String {
        let stem = self.slice.trim_end_matches(".slice");
        let mut path = String::new();
        if stem != "-" {
            let mut acc = String::new();
            for (i, part) in stem.split('-').enumerate() {
                if i > 0 {
                    acc.push('-');
                }
                acc.push_str(part);
                path.push('/');
                path.push_str(&acc);
                path.push_str(".slice");
            }
        }
        format!("{path}/{}", self.unit)
    }
}

/// Whether systemd is the init of this host (sd_booted: /run/systemd/system
/// is a directory).
pub fn running() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

fn not_running(why: &str) -> Error {
    Error::SystemdNotRunning(why.to_string())
}

/// A unit property: its name and value.
pub type Property = (&'static str, Variant<Box<dyn RefArg>>);

fn prop<T: RefArg + 'static>(name: &'static str, v: T) -> Property {
    (name, Variant(Box::new(v)))
}

/// A connection to systemd's manager on the system bus (the user's bus
/// for a caller that is not root, or root only in a user namespace that
/// is a user outside: see [`super::user_bus`]).
pub struct Systemd {
    conn: Connection,
}

fn bus_error(what: &str, e: &dbus::Error) -> Error {
    Error::Systemd {
        what: what.to_string(),
        msg: format!(
            "{}{}",
            e.message().unwrap_or("failed"),
            e.name().map(|n| format!(" ({n})")).unwrap_or_default()
        ),
    }
}

impl Systemd {
    /// Connects, failing in one line when systemd is not running or its
    /// bus cannot be reached.
    pub fn connect() -> Result<Systemd> {
        if !running() {
            return Err(not_running("no /run/systemd/system"));
        }
        let conn = if let Some(uid) = super::user_bus::namespaced_root_uid() {
            // Root of a user namespace that is a user outside (rootless
            // Podman's): that user's manager, authenticated as that user.
            let bus = super::user_bus::find(
                std::env::var("DBUS_SESSION_BUS_ADDRESS").ok().as_deref(),
                std::env::var("XDG_RUNTIME_DIR").ok().as_deref(),
                uid,
            )?;
            super::user_bus::connect(&bus, uid)?
        } else {
            if nix::unistd::geteuid().is_root() {
                Connection::new_system()
            } else {
                Connection::new_session()
            }
            .map_err(|e| {
                not_running(&format!(
                    "cannot connect to its bus: {}",
                    e.message().unwrap_or("failed")
                ))
            })?
        };
        let sd = Systemd { conn };
        // Job signals are sent only to subscribed clients.
        sd.call("Subscribe", |m| m)
            .map_err(|e| not_running(&e.to_string()))?;
        sd.conn
            .add_match_no_cb(
                "type='signal',sender='org.freedesktop.systemd1',\
                 interface='org.freedesktop.systemd1.Manager',member='JobRemoved'",
            )
            .map_err(|e| bus_error("subscribe to JobRemoved", &e))?;
        Ok(sd)
    }

    fn call_raw(
        &self,
        method: &str,
        args: impl FnOnce(Message) -> Message,
    ) -> std::result::Result<Message, dbus::Error> {
        let m = Message::new_method_call(DEST, PATH, MANAGER, method).expect("valid D-Bus names");
        self.conn
            .channel()
            .send_with_reply_and_block(args(m), CALL_TIMEOUT)
    }

    fn call(&self, method: &str, args: impl FnOnce(Message) -> Message) -> Result<Message> {
        self.call_raw(method, args)
            .map_err(|e| bus_error(method, &e))
    }

    /// Waits for systemd's JobRemoved signal for `job`, and fails unless
    /// its result is "done".
    fn wait_job(&self, job: &dbus::Path, what: &str) -> Result<()> {
        let deadline = Instant::now() + JOB_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::Systemd {
                    what: what.to_string(),
                    msg: format!("job {job} not finished within {JOB_TIMEOUT:?}"),
                });
            }
            let msg = self
                .conn
                .channel()
                .blocking_pop_message(left)
                .map_err(|e| bus_error(what, &e))?;
            let Some(msg) = msg else { continue };
            if msg.msg_type() != MessageType::Signal
                || msg.member().as_deref() != Some("JobRemoved")
            {
                continue;
            }
            let Ok((_id, path, _unit, result)) = msg.read4::<u32, dbus::Path, String, String>()
            else {
                continue;
            };
            if &path != job {
                continue;
            }
            return if result == "done" {
                Ok(())
            } else {
                Err(Error::Systemd {
                    what: what.to_string(),
                    msg: format!("the job ended {result:?} (see journalctl -u)"),
                })
            };
        }
    }

    /// Starts the transient scope with `pid` in it and waits for it to be
    /// running. A unit of that name left failed by an earlier container is
    /// reset first and the start tried again.
    pub fn start_scope(
        &self,
        scope: &Scope,
        pid: i32,
        description: &str,
        limits: Vec<Property>,
    ) -> Result<()> {
        let what = format!("start {}", scope.unit);
        #[allow(clippy::cast_sign_loss)] // a pid is never negative
        let build = |limits: &[Property]| -> Vec<Property> {
            let mut p = vec![
                prop("Description", description.to_string()),
                prop("Slice", scope.slice.clone()),
                prop("Delegate", true),
                prop("DefaultDependencies", false),
                prop("PIDs", vec![pid as u32]),
                prop("MemoryAccounting", true),
                prop("CPUAccounting", true),
                prop("IOAccounting", true),
                prop("TasksAccounting", true),
            ];
            p.extend(limits.iter().map(|(n, v)| (*n, Variant(v.0.box_clone()))));
            p
        };
        let mut tried_reset = false;
        loop {
            let props = build(&limits);
            let aux: Vec<(String, Vec<Property>)> = vec![];
            let r = self.call_raw("StartTransientUnit", |m| {
                m.append3(scope.unit.as_str(), "replace", props)
                    .append1(aux)
            });
            match r {
                Ok(reply) => {
                    let job: dbus::Path = reply.read1().map_err(|e| Error::Systemd {
                        what: what.clone(),
                        msg: format!("bad reply: {e}"),
                    })?;
                    return self.wait_job(&job, &what);
                }
                Err(e)
                    if !tried_reset && e.name() == Some("org.freedesktop.systemd1.UnitExists") =>
                {
                    // A failed unit of that name stays until reset; an
                    // active one means the name is taken.
                    tried_reset = true;
                    if self.active_state(&scope.unit).as_deref() == Some("active") {
                        return Err(Error::Systemd {
                            what,
                            msg: "a unit of that name is already running".into(),
                        });
                    }
                    let _ = self.reset_failed(&scope.unit);
                }
                Err(e) => return Err(bus_error(&what, &e)),
            }
        }
    }

    /// The unit's ActiveState, if systemd has the unit loaded.
    pub fn active_state(&self, unit: &str) -> Option<String> {
        let reply = self.call_raw("GetUnit", |m| m.append1(unit)).ok()?;
        let path: dbus::Path = reply.read1().ok()?;
        let m = Message::new_method_call(DEST, path, "org.freedesktop.DBus.Properties", "Get")
            .ok()?
            .append2("org.freedesktop.systemd1.Unit", "ActiveState");
        let reply = self
            .conn
            .channel()
            .send_with_reply_and_block(m, CALL_TIMEOUT)
            .ok()?;
        let v: Variant<String> = reply.read1().ok()?;
        Some(v.0)
    }

    /// Changes properties of a running unit (`rt update`).
    pub fn set_properties(&self, unit: &str, props: Vec<Property>) -> Result<()> {
        if props.is_empty() {
            return Ok(());
        }
        self.call("SetUnitProperties", |m| m.append3(unit, true, props))
            .map_err(|e| with_unit(e, unit))?;
        Ok(())
    }

    /// Stops the unit and waits for it to go; a unit already gone is fine.
    pub fn stop(&self, unit: &str) -> Result<()> {
        let what = format!("stop {unit}");
        match self.call_raw("StopUnit", |m| m.append2(unit, "replace")) {
            Ok(reply) => {
                let job: dbus::Path = reply.read1().map_err(|e| Error::Systemd {
                    what: what.clone(),
                    msg: format!("bad reply: {e}"),
                })?;
                self.wait_job(&job, &what)?;
            }
            Err(e) if e.name() == Some("org.freedesktop.systemd1.NoSuchUnit") => {}
            Err(e) => return Err(bus_error(&what, &e)),
        }
        let _ = self.reset_failed(unit);
        Ok(())
    }

    fn reset_failed(&self, unit: &str) -> Result<()> {
        self.call("ResetFailedUnit", |m| m.append1(unit))?;
        Ok(())
    }
}

fn with_unit(e: Error, unit: &str) -> Error {
    match e {
        Error::Systemd { what, msg } => Error::Systemd {
            what: format!("{what} {unit}"),
            msg,
        },
        e => e,
    }
}

/// The unit properties for the planned cgroup file writes that systemd
/// knows, with the same values: systemd then writes what rt wrote, also
/// when it reloads. The files are written by rt as well (systemd has no
/// property for the others, and rounds some).
pub fn properties(writes: &[Write]) -> Vec<Property> {
    let max = |v: &str| -> Option<u64> {
        if v == "max" {
            Some(u64::MAX)
        } else {
            v.parse().ok()
        }
    };
    let mut out = Vec::new();
    for w in writes {
        let v = w.value.trim();
        match w.file.as_str() {
            "memory.max" => out.extend(max(v).map(|n| prop("MemoryMax", n))),
            "memory.low" => out.extend(max(v).map(|n| prop("MemoryLow", n))),
            "memory.swap.max" => out.extend(max(v).map(|n| prop("MemorySwapMax", n))),
            "pids.max" => out.extend(max(v).map(|n| prop("TasksMax", n))),
            "cpu.weight" => out.extend(v.parse::<u64>().ok().map(|n| prop("CPUWeight", n))),
            // Only the default weight ("N" or "default N"), not per device.
            "io.weight" => {
                let n = v.strip_prefix("default ").unwrap_or(v);
                out.extend(n.parse::<u64>().ok().map(|n| prop("IOWeight", n)));
            }
            "cpu.max" => {
                let mut it = v.split_whitespace();
                let (Some(q), Some(p)) = (it.next(), it.next().and_then(|p| p.parse::<u64>().ok()))
                else {
                    continue;
                };
                if p == 0 {
                    continue;
                }
                let per_sec = match q {
                    "max" => u64::MAX,
                    q => match q.parse::<u64>() {
                        // systemd writes per_sec * period / 1 s: round up
                        // so that it never writes less than asked.
                        Ok(q) => (q * 1_000_000).div_ceil(p),
                        Err(_) => continue,
                    },
                };
                out.push(prop("CPUQuotaPeriodUSec", p));
                out.push(prop("CPUQuotaPerSecUSec", per_sec));
            }
            "cpuset.cpus" => out.extend(cpu_mask(v).map(|m| prop("AllowedCPUs", m))),
            "cpuset.mems" => out.extend(cpu_mask(v).map(|m| prop("AllowedMemoryNodes", m))),
            _ => {}
        }
    }
    out
}

/// The device rules as unit properties, so that systemd's own device
/// program, which it attaches to the scope and re-applies at every
/// daemon-reload, allows what rt's does. systemd only has allow lists
/// (everything else denied), so the rules are said only when they are one:
/// every deny before every allow (rules match last to first, so that is a
/// union of the allows). Otherwise, and for "allow everything", nothing is
/// set and systemd attaches no device program of its own; rt's is attached
/// to the scope either way (with BPF_F_ALLOW_MULTI, both must allow).
pub fn device_properties(rules: &[Rule]) -> Vec<Property> {
    let proc_devices = std::fs::read_to_string("/proc/devices").unwrap_or_default();
    match device_allow(rules, &proc_devices) {
        Some(allow) => vec![
            prop("DevicePolicy", "strict".to_string()),
            prop("DeviceAllow", allow),
        ],
        None => vec![],
    }
}

/// DeviceAllow's (specifier, access) pairs for `rules`, or None when
/// systemd should be given no device policy (see [`device_properties`]).
/// A major without a minor is named as /proc/devices names it
/// (`char-pts`); a major no driver registered is left out, since no node
/// of it can be opened.
fn device_allow(rules: &[Rule], proc_devices: &str) -> Option<Vec<(String, String)>> {
    let first_allow = rules.iter().position(|r| r.allow)?;
    if rules[first_allow..].iter().any(|r| !r.allow) {
        return None;
    }
    let allows = &rules[first_allow..];
    if allows
        .iter()
        .any(|r| r.typ.is_none() && r.major.is_none() && r.minor.is_none() && r.access == 7)
    {
        return None;
    }
    let mut out = Vec::new();
    for r in allows {
        let access = access_string(r.access);
        let types: &[(u32, &str)] = match r.typ {
            Some(devices::DEV_BLOCK) => &[(devices::DEV_BLOCK, "block")],
            Some(devices::DEV_CHAR) => &[(devices::DEV_CHAR, "char")],
            Some(_) => &[],
            None => &[(devices::DEV_CHAR, "char"), (devices::DEV_BLOCK, "block")],
        };
        for (typ, kind) in types {
            let spec = match (r.major, r.minor) {
                (Some(maj), Some(min)) => Some(format!("/dev/{kind}/{maj}:{min}")),
                (Some(maj), None) => {
                    major_name(proc_devices, *typ, maj).map(|n| format!("{kind}-{n}"))
                }
                // systemd has no "any major, this minor": all of the type
                // (broader, but rt's own program still holds the minor).
                (None, _) => Some(format!("{kind}-*")),
            };
            out.extend(spec.map(|s| (s, access.clone())));
        }
    }
    Some(out)
}

/// "rwm" order, as systemd prints it back.
fn access_string(access: u32) -> String {
    [
        (devices::ACC_READ, 'r'),
        (devices::ACC_WRITE, 'w'),
        (devices::ACC_MKNOD, 'm'),
    ]
    .iter()
    .filter(|(bit, _)| access & bit != 0)
    .map(|(_, c)| *c)
    .collect()
}

/// The name /proc/devices gives `major` of type `typ`.
fn major_name(proc_devices: &str, typ: u32, major: u32) -> Option<&str> {
    let header = if typ == devices::DEV_CHAR {
        "Character devices:"
    } else {
        "Block devices:"
    };
    proc_devices
        .lines()
        .skip_while(|l| l.trim() != header)
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .find_map(|l| {
            let (n, name) = l.trim().split_once(char::is_whitespace)?;
            (n.parse::<u32>().ok()? == major).then(|| name.trim())
        })
}

/// A cpu list ("0-2,4") as systemd's bitmask: byte i bit j is cpu 8i+j.
fn cpu_mask(list: &str) -> Option<Vec<u8>> {
    let mut mask = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.parse::<usize>().ok()?, b.parse::<usize>().ok()?),
            None => {
                let a = part.parse::<usize>().ok()?;
                (a, a)
            }
        };
        if a > b || b >= 8192 {
            return None;
        }
        for c in a..=b {
            if mask.len() <= c / 8 {
                mask.resize(c / 8 + 1, 0);
            }
            mask[c / 8] |= 1 << (c % 8);
        }
    }
    Some(mask)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_names_and_paths() {
        let s = Scope::parse("system.slice:docker:abc").unwrap();
        assert_eq!(s.unit, "docker-abc.scope");
        assert_eq!(s.cgroup_path(), "/system.slice/docker-abc.scope");
        let s = Scope::parse("machine-web.slice:libpod:c1").unwrap();
        assert_eq!(
            s.cgroup_path(),
            "/machine.slice/machine-web.slice/libpod-c1.scope"
        );
        let s = Scope::parse(":cri-containerd:x").unwrap();
        assert_eq!(s.cgroup_path(), "/system.slice/cri-containerd-x.scope");
        let s = Scope::parse("-.slice::x.scope").unwrap();
        assert_eq!(s.cgroup_path(), "/x.scope");
        for bad in [
            "/a/b",
            "a.slice:b",
            "a:b:c",
            "a--b.slice:p:n",
            "a.slice:p:",
            "a/b.slice:p:n",
        ] {
            let e = Scope::parse(bad).unwrap_err().to_string();
            assert!(
                e.contains("linux.cgroupsPath") && e.contains(bad),
                "{bad}: {e}"
            );
        }
        assert!(matches!(
            Scope::parse("a.slice:p:n.slice"),
            Err(Error::Unsupported(_))
        ));
    }

    #[test]
    fn properties_carry_the_planned_values() {
        let w = |f: &str, v: &str| Write {
            field: String::new(),
            file: f.into(),
            value: v.into(),
        };
        let props = properties(&[
            w("memory.max", "67108864"),
            w("memory.swap.max", "max"),
            w("cpu.max", "50000 100000"),
            w("cpu.weight", "39"),
            w("pids.max", "20"),
            w("cpuset.cpus", "0-2,9"),
            w("io.weight", "default 100"),
            w("io.weight", "8:0 50"),
            w("memory.high", "100"),
        ]);
        let shown: Vec<String> = props
            .iter()
            .map(|(n, v)| format!("{n}={:?}", v.0))
            .collect();
        assert_eq!(
            shown,
            [
                "MemoryMax=67108864",
                format!("MemorySwapMax={}", u64::MAX).as_str(),
                "CPUQuotaPeriodUSec=100000",
                "CPUQuotaPerSecUSec=500000",
                "CPUWeight=39",
                "TasksMax=20",
                "AllowedCPUs=[7, 2]",
                "IOWeight=100",
            ]
        );
    }

    #[test]
    fn connecting_without_systemd_says_so() {
        if running() {
            return;
        }
        let e = Systemd::connect().err().unwrap().to_string();
        assert!(e.contains("systemd is not running"), "{e}");
    }

    const PROC_DEVICES: &str = "Character devices:\n  1 mem\n  5 /dev/tty\n136 pts\n\nBlock devices:\n  8 sd\n254 virtblk\n";

    fn rule(
        allow: bool,
        typ: Option<u32>,
        major: Option<u32>,
        minor: Option<u32>,
        access: u32,
    ) -> Rule {
        Rule {
            allow,
            typ,
            major,
            minor,
            access,
        }
    }

    #[test]
    fn an_allow_list_becomes_device_allow() {
        let mut rules = vec![rule(false, None, None, None, 7)];
        rules.push(rule(
            true,
            Some(devices::DEV_BLOCK),
            Some(8),
            None,
            devices::ACC_READ,
        ));
        rules.push(rule(
            true,
            None,
            Some(4),
            Some(1),
            devices::ACC_READ | devices::ACC_WRITE,
        ));
        rules.extend_from_slice(devices::DEFAULT_ALLOWED);
        let allow = device_allow(&rules, PROC_DEVICES).unwrap();
        let got: Vec<String> = allow.iter().map(|(d, a)| format!("{d} {a}")).collect();
        for want in [
            "block-sd r",
            "/dev/char/4:1 rw",
            "/dev/block/4:1 rw",
            "char-* m",
            "block-* m",
            "/dev/char/1:3 rwm",
            "/dev/char/5:2 rwm",
            "char-pts rwm",
        ] {
            assert!(got.iter().any(|g| g == want), "{want} not in {got:?}");
        }
    }

    #[test]
    fn what_systemd_cannot_say_is_left_to_rts_program() {
        // A deny after an allow: not a union of allows.
        let rules = [
            rule(true, Some(devices::DEV_CHAR), None, None, 7),
            rule(false, Some(devices::DEV_CHAR), Some(1), Some(3), 7),
        ];
        assert_eq!(device_allow(&rules, PROC_DEVICES), None);
        // Everything allowed (a privileged container): no policy at all.
        let rules = [
            rule(false, None, None, None, 7),
            rule(true, None, None, None, 7),
        ];
        assert_eq!(device_allow(&rules, PROC_DEVICES), None);
        // A major no driver registered cannot be opened: left out.
        let rules = [rule(true, Some(devices::DEV_CHAR), Some(77), None, 7)];
        assert_eq!(device_allow(&rules, PROC_DEVICES), Some(vec![]));
    }
}
